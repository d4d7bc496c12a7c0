"""codex_lite: a small synchronous client for the OpenAI Responses API.

It speaks the wire format of the Rust Codex client (``openai/codex``): response
items and their ids, session and turn headers, request bodies encoded and
compressed once, a blocking retry loop that re-applies auth on every attempt,
streamed events, and rollouts on disk.

The module reads top to bottom in the order a request's data flows out and
back, a section each; each uses only the sections above it:

    Secrets and errors          secrets remembered and scrubbed; CodexError's tree
    Helpers used everywhere     JSON and typed getters, files, logging, redaction
    Items and ids               response items as frozen dataclasses, one codec
    Images and history preparation  images fitted, ids given, calls answered
    The request body            Prompt, rules, identity, headers, body encoded once
    SigV4                       AWS Signature Version 4 as named steps
    Auth                        API keys, ChatGPT sign-in (device code), SigV4
    Sign in with ChatGPT (plan)  the plan's own sign-in, refresh and sign-out
    Providers                   [model_providers.<id>], what it means; retry policy
    Config                      config.toml, profiles, -c overrides, fast mode
    Reading responses           bytes -> SSE -> Responses events; status errors
    Responses over HTTP         a transport: one signed POST, its event stream
    Responses over WebSocket    a transport: one connection per client, increments
    Retry and the turn          the retry decision; Client; Turn and its loop
    Tools and structured output functions as tools, schemas, replies parsed
    Rollouts                    rollout files: write, read back, find
    Conversation                history + rollout + client, turns with tools
    Realtime                    a realtime start: WebSocket session or WebRTC call
    Command line                codex-lite exec, resume, login, sessions, ...

One turn's path, in call order:

    Conversation.stream_turn    records the user input (Conversation.record)
      -> Turn.stream            one request, sent again if the stream breaks
        -> _request_parts       the body and headers -> _RequestParts, once
        -> Turn._send           each attempt: Turn._attempt (turn state, auth),
                                a transport's send; _next_step decides; sleep
        -> _Http                _http_request (joined, compressed) POSTed, then
                                events: _body_chunks -> SSEDecoder -> reader
        or _WebSocket           send: the handshake; events: _continuing ->
                                _response_create frame; frames -> reader
      -> Conversation.record    output items into history
        -> RolloutWriter.append the rollout lines, with their ordinals
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import enum
import functools
import importlib
import io
import itertools
import json
import logging
import math
import os
import re
import sys
import threading
import time
import types
import typing
import urllib.parse
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, Union

if typing.TYPE_CHECKING:  # imported where used: loading requests costs more
    import argparse  # than this whole module, and `--help` needs neither

    import requests

# What a script needs: the README names the core first.  The plumbing (the
# SSE decoder, SigV4, the rollout writer, image preparation, the command
# line) stays importable by name, outside this list.
# fmt: off
__all__ = [  # noqa: RUF022
    # core: a conversation, its client and turns, settings, tools, providers
    "Conversation", "TurnResult", "Client", "Turn", "Prompt", "RequestFields",
    "RetryPolicy", "Config", "load_config", "ModelProvider", "ProviderInfo",
    "AuthProvider", "BearerAuth", "ChatGptPlanAuth", "sign_in_with_chatgpt",
    "PreparedRequest", "Tool", "tool",
    "Rollout", "read_rollout", "find_rollout",
    # errors
    "CodexError", "ConfigError", "AuthError", "ItemError", "ApiError",
    "TransportError", "StreamError", "RetryLimitExceeded", "ToolRoundsExceeded",
    "OutputParseError", "CompactionFailed", "ContextWindowExceeded",
    "QuotaExceeded", "UsageNotIncluded", "InvalidRequest", "CyberPolicy", "ServerOverloaded",
    "PlanUsageError",
    # items (the API's response items and content parts) and their JSON
    "ResponseItem", "ContentItem", "Message", "MessagePhase", "InputText",
    "InputImage", "InputAudio", "OutputText", "EncryptedContent", "SummaryText",
    "ReasoningText", "ItemMetadata", "UnknownItem", "AgentMessage", "Reasoning",
    "LocalShellCall", "FunctionCall", "FunctionCallOutput", "CustomToolCall",
    "CustomToolCallOutput", "ToolSearchCall", "ToolSearchOutput", "WebSearchCall",
    "ImageGenerationCall", "Compaction", "ContextCompaction", "AdditionalTools",
    "ConfigurationUpdate", "CompactionTrigger", "item_from_json", "item_to_json",
    # streamed events
    "ResponseEvent", "Created", "OutputItemAdded", "OutputItemDone",
    "OutputTextDelta", "ToolCallInputDelta", "ReasoningSummaryDelta",
    "ReasoningContentDelta", "ReasoningSummaryPartAdded", "StreamRetry", "Completed",
    "TokenUsage", "RateLimits", "RateLimitWindow", "ServerModel", "ModelsEtag",
    "ServerReasoningIncluded",
    # realtime
    "RealtimeStart", "RealtimeTransport", "RealtimeCall", "RealtimeSession",
    "RealtimeEvent", "RealtimeTextDelta", "RealtimeDone", "RealtimeServerEvent",
]
# fmt: on

__version__ = "0.1.0"

_log = logging.getLogger("codex_lite")


# --- Secrets and errors -----------------------------------------------------
#
# Every credential this process reads (keys, tokens, AWS keys, secret query
# parameters, header values from the config or the environment) is
# remembered, so that whatever is shown or raised can be shown without it:
# servers do echo an `Authorization` header back in their error pages.  The
# errors come after, as they scrub what a server said:
#
#   CodexError
#   ├── ItemError (a ValueError too)   an item that is not what its type says
#   ├── ConfigError                    found before anything is sent: exit 2
#   ├── AuthError                      credentials missing, refused, unrefreshable
#   ├── ApiError                       the server said no (status, code, request id)
#   │   ├── ContextWindowExceeded, QuotaExceeded, UsageNotIncluded,
#   │   │   InvalidRequest, CyberPolicy, ServerOverloaded
#   │   └── StreamError                a stream that broke or failed
#   ├── TransportError                 no answer: connection, TLS, proxy
#   ├── RetryLimitExceeded             the budget or the turn's deadline ran out
#   ├── ToolRoundsExceeded             the model kept calling tools
#   └── OutputParseError               a structured reply that does not fit


_SECRETS: set[str] = set()
_SHORTEST_SECRET = 8  # shorter values are too likely to be ordinary text


def _secret(value: str) -> str:
    """Remember `value` as a secret, and the forms JSON text carries it in;
    return it."""
    if len(value) >= _SHORTEST_SECRET:
        escaped = json.dumps(value)[1:-1]
        # servers write `\u00e9` or `\u00E9`, some `\/`; a repr doubles `\`
        upper = re.sub(r"(?<=\\u)[0-9a-f]{4}", lambda m: m[0].upper(), escaped)
        forms = {value, json.dumps(value, ensure_ascii=False)[1:-1], escaped, upper}
        forms |= {f.replace("/", "\\/") for f in forms}
        _SECRETS.update(forms, (f.replace("\\", "\\\\") for f in forms))
    return value


_ELLIPSIS = re.compile(r"(\.\.\.|\u2026)")


def _scrub(text: str) -> str:
    """`text` with every known secret replaced by `<redacted>`, and what of
    one text cut short still shows: a long start of it where the text ends
    or an ellipsis follows, a long end of it after an ellipsis."""
    secrets = sorted(_SECRETS, key=len, reverse=True)
    for value in secrets:
        text = text.replace(value, "<redacted>")
    pieces = _ELLIPSIS.split(text)  # what was cut, and the ellipses
    for i in range(0, len(pieces), 2):
        for value in secrets:
            if (at := _cut_start(pieces[i], value)) != -1:
                pieces[i] = pieces[i][:at] + "<redacted>"
            start = pieces[i][: len(value)]
            if i and (at := _cut_start(start[::-1], value[::-1])) != -1:
                pieces[i] = "<redacted>" + pieces[i][len(start) - at :]
    return "".join(pieces)


def _cut_start(text: str, value: str) -> int:
    """Where the start of `value` that `text` ends in begins, if it is
    `_SHORTEST_SECRET` characters or longer; else -1."""
    head = value[:_SHORTEST_SECRET]
    at = text.find(head, max(0, len(text) - len(value)))
    while at != -1 and not value.startswith(text[at:]):
        at = text.find(head, at + 1)
    return at


class CodexError(Exception):
    """Base of every error this module raises on purpose."""


class ItemError(CodexError, ValueError):
    """A JSON object is not a valid response item; the message names the field."""


class ConfigError(CodexError):
    """Configuration that cannot work, found before anything is sent."""


class AuthError(CodexError):
    """No usable credentials, or credentials the server refused."""


class ApiError(CodexError):
    """The server answered with an error.

    `status` is the HTTP status (None for an error reported inside a stream),
    `code` the API's error code, `request_id` the `x-request-id` to quote.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        # server text, codes and ids may quote our credentials
        self.message = message = _scrub(message)
        self.status = status
        self.code = code and _scrub(code)
        self.request_id = request_id = request_id and _scrub(request_id)
        text = message if status is None else f"{status}: {message}"
        super().__init__(f"{text} (request id {request_id})" if request_id else text)


class ContextWindowExceeded(ApiError):
    """The conversation no longer fits the model's context window."""


class QuotaExceeded(ApiError):
    """The account is out of quota; never retried."""


class UsageNotIncluded(ApiError):
    """The plan does not include this usage."""


class InvalidRequest(ApiError):
    """The server refused the request as invalid (HTTP 4xx, or `invalid_prompt`)."""


class CyberPolicy(ApiError):
    """The request was flagged under the cyber policy."""


class ServerOverloaded(ApiError):
    """The server is overloaded (`server_is_overloaded`, `slow_down`)."""


_PLAN_USAGE_PAGE = "https://chatgpt.com/settings/usage"
# What ChatGPT plan usage's refusals mean: never billed another way instead.
_PLAN_REFUSALS = {
    "subscription_sharing_user_not_eligible": "not for this account, workspace or policy",
    "subscription_sharing_usage_limit_exceeded": "a plan or app usage limit is hit",
    "subscription_sharing_usage_unavailable": "usage could not be checked; try later",
    "subscription_sharing_unsupported_capability": "a field, tool or model is refused",
    "subscription_sharing_route_not_supported": "only POST /v1/responses is served",
    "subscription_sharing_invalid_user": "the subscriber is not valid: sign in again",
    "subscription_sharing_user_unavailable": "account data is unavailable; try later",
    "chatpass_v2_scope_not_authorized": "the grant does not allow this",
    "chatpass_v2_invalid_authorization_context": "the grant does not allow this",
}


class PlanUsageError(ApiError):
    """ChatGPT plan usage refused a request (a `subscription_sharing_*` or
    `chatpass_v2_*` code); the message says what it means and where the
    user manages the plan's usage."""

    def __init__(self, message: str, **where: Any) -> None:
        meaning = _PLAN_REFUSALS.get(where.get("code") or "", "plan usage refused")
        message += f" ({meaning}; manage usage at {_PLAN_USAGE_PAGE})"
        super().__init__(message, **where)


class StreamError(ApiError):
    """The stream broke or ended badly; the turn may be retried.

    `delay` is the wait the server asked for, in seconds, when it said one.
    """

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        delay: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code, request_id=request_id)
        self.delay = delay


class TransportError(CodexError):
    """No answer came: the connection failed, timed out or broke before the
    response headers (retried; see `RetryLimitExceeded.last_error`)."""


class RetryLimitExceeded(CodexError):
    """Every allowed attempt failed; `last_error` is the final one."""

    def __init__(self, message: str, last_error: BaseException) -> None:
        super().__init__(f"{message}: {last_error}")
        self.last_error = last_error


class ToolRoundsExceeded(CodexError):
    """The model still called tools after `max_tool_rounds` rounds; the
    conversation's history keeps every call and output."""


class CompactionFailed(CodexError):
    """Compacting the history failed, so the turn that needed it did too;
    the error that stopped it is the `__cause__`, when one did."""


class OutputParseError(CodexError):
    """A structured reply that does not parse as its schema; `text` is the reply."""

    def __init__(self, message: str, text: str) -> None:
        super().__init__(message)
        self.text = text


# --- Helpers used everywhere ------------------------------------------------
#
# JSON in and out and one family of typed getters, files replaced whole and
# locked, the TRACE log level, credentials bound for headers, what is safe
# to print of headers and URLs, and what every HTTP caller (the transports,
# the sign-in service) shares: a body read as it arrives, a transport
# failure in a few words.


# One encoder for every item: json.dumps with options makes a new one a call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; text UTF-8 cannot carry (a lone surrogate from an
    undecodable file name or argument) is written as `?`, never dropped."""
    return _ENCODER.encode(value).encode("utf-8", "replace")


def _write_atomically(path: Path, data: bytes | Iterable[bytes], *, mode: int) -> None:
    """Replace `path` with `data` (bytes, or pieces of them) by a temporary
    file and a rename: a reader sees the old file or the new one, never a
    torn one."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.writelines([data] if isinstance(data, bytes) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # a full disk, say: name the file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def _file_error(path: Path, exc: OSError, remedy: str) -> ConfigError:
    """A file-system failure in the Codex home as a ConfigError: the file,
    the reason (and the folder at fault, when it is one above), what to do."""
    at = f" ({exc.filename})" if Path(exc.filename or path) in path.parents else ""
    return ConfigError(f"{path}: {exc.strerror or type(exc).__name__}{at}; {remedy}")


_T = typing.TypeVar("_T")


# The typed getters, one family: every typed value read from parsed JSON, a
# TOML table or response headers goes through one of these.  A bool is never
# a number, and a whole number is a float too.
# fmt: off
_TYPE_NAMES = {
    str: "a string", int: "an integer", float: "a number", bool: "true or false",
    list: "an array", dict: "an object",
}
# fmt: on


def _is_type(value: Any, kind: type[Any]) -> bool:
    if kind is float and type(value) is int:
        return True
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


@typing.overload
def _json_get(obj: Any, key: str) -> Any: ...
@typing.overload
def _json_get(obj: Any, key: str, kind: type[_T]) -> _T | None: ...
def _json_get(obj: Any, key: str, kind: type[Any] | None = None) -> Any:
    """What a server or a file may leave out or get wrong: `obj[key]` when
    `obj` is an object and, given a `kind`, the value is of it; else None."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if kind is None or _is_type(value, kind) else None


def _typed(
    obj: Mapping[str, Any],
    key: str,
    kind: type[Any],
    where: str | None = None,
    *,
    error: type[Exception] = ConfigError,
    required: bool = False,
) -> Any:
    """What must be right: `obj[key]` when it is of `kind`; None when it is
    absent or null and not `required`; else `error`, naming the key by
    `where` (its full name, when that is more than `key`)."""
    value = obj.get(key)
    if value is None and not required:
        return None
    if not _is_type(value, kind):
        # config.toml calls an object a table
        name = "a table" if kind is dict and error is ConfigError else _TYPE_NAMES[kind]
        raise error(f"{where or key} must be {name}, not {type(value).__name__}")
    return value


# Numbers as Rust parses them: no `_` separators, no NaN or infinity, and
# integers that fit in 64 bits.
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT = re.compile(r"[+-]?\d{1,18}")


def _header(headers: Mapping[str, str], name: str, kind: type[Any] = str) -> Any:
    """A response header's value as a `kind` (str, bool, int or float), or
    None when it is missing, empty or malformed."""
    value = headers.get(name, "")
    if kind is str:
        return value.strip() or None
    if kind is bool:
        return {"true": True, "1": True, "false": False, "0": False}.get(value.lower())
    if not (_FLOAT if kind is float else _INT).fullmatch(value):
        return None
    number = kind(value)
    return number if math.isfinite(number) else None


def _json_or_none(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _originator(given: str | None = None) -> str:
    """Who the requests say they come from: `given`, else what Codex's
    override sets, else codex_lite."""
    return given or os.environ.get("CODEX_INTERNAL_ORIGINATOR_OVERRIDE") or "codex_lite"


def _user_agent(originator: str) -> str:
    import platform

    terminal = os.environ.get("TERM_PROGRAM") or os.environ.get("TERM") or "unknown"
    agent = (
        f"{originator}/{__version__} ({platform.system()} {platform.release()}; "
        f"{platform.machine() or 'unknown'}) {terminal}"
    )
    return "".join(c if " " <= c <= "~" else "_" for c in agent)


TRACE = 5
logging.addLevelName(TRACE, "TRACE")
_transport_log = logging.getLogger("codex_lite.transport")
_retry_log = logging.getLogger("codex_lite.retry")  # the command line shows it


def _header_secret(
    value: str, where: str, *, error: type[CodexError] = ConfigError
) -> str:
    """A credential bound for a header, remembered as a secret.  One a header
    cannot carry is refused by the name of its source, never by its value."""
    if not all(" " <= c <= "~" or "\xa0" <= c <= "\xff" for c in value):
        raise error(
            f"{where} holds a character an HTTP header cannot carry "
            "(a line break, a control character or non-Latin-1 text); "
            "the value is not shown"
        )
    return _secret(value)


def _scrub_record(record: logging.LogRecord) -> bool:
    """A log filter taking secrets out: urllib3 logs URLs, query keys and all."""
    if _SECRETS:
        message = record.getMessage()
        if (clean := _scrub(message)) != message:
            record.msg, record.args = clean, ()
    return True


# A logger's filter does not see what its children log, so each is named.
for _name in (
    "codex_lite",
    "codex_lite.transport",
    "codex_lite.retry",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.response",
    "urllib3.poolmanager",
    "urllib3.util.retry",
    "websockets.client",  # the handshake's headers, frames, close reasons
):
    logging.getLogger(_name).addFilter(_scrub_record)


_SECRET_HEADER = re.compile(
    r"authorization|api-key|token|secret|cookie|signature|account-id", re.IGNORECASE
)
_SECRET_QUERY = re.compile(r"key|token|sig|secret|credential|password", re.IGNORECASE)


def _redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers safe to print: values that are or hold a secret hidden (by
    name and by value), the auth scheme kept."""
    out = {}
    for name, value in headers.items():
        if _SECRET_HEADER.search(name) or _scrub(value) != value:
            scheme, space, _ = value.partition(" ")
            value = f"{scheme} <redacted>" if scheme and space else "<redacted>"
        out[name] = value
    return out


def _redact_url(url: str) -> str:
    """A URL safe to print: no user info, no secret query values."""
    try:
        parts = urllib.parse.urlsplit(url)
        pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return "<a URL that does not parse>"
    _, at, host = parts.netloc.rpartition("@")
    netloc = f"<redacted>@{host}" if at else host
    query = "&".join(
        f"{k}={'<redacted>' if _SECRET_QUERY.search(k) or _scrub(v) != v else v}"
        for k, v in pairs
    )
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def _host(url: str) -> str:
    """A URL's host and port alone: its user, path and query may hold secrets."""
    authority = re.split(r"[?#]", url.partition("://")[2] or url)[0]
    return authority.rpartition("@")[2].split("/")[0]


def default_codex_home() -> Path:
    """`$CODEX_HOME`, or `~/.codex`."""
    value = os.environ.get("CODEX_HOME", "").strip()
    try:
        return Path(value).expanduser() if value else Path.home() / ".codex"
    except RuntimeError:  # no HOME, and no home in the user database
        raise ConfigError("no home directory: set CODEX_HOME (or HOME)") from None


class _locked:
    """An exclusive `flock` on an open file for the length of a `with` block.

    Where there are no advisory locks (Windows, some Android builds) the
    block runs unlocked: one writer per file is then the caller's promise.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._flock: Any = None

    def __enter__(self) -> None:
        try:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._flock = fcntl
        except (ImportError, OSError):
            pass

    def __exit__(self, *exc: object) -> None:
        if self._flock is not None:
            self._flock.flock(self._fd, self._flock.LOCK_UN)


def _read_at(fd: int, offset: int, size: int) -> bytes:
    # os.pread is not on Windows; lseek and read are.  (Appends with
    # O_APPEND go to the end whatever the offset.)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, size)


def _describe(exc: BaseException) -> str:
    """A one-line reason for a transport error, without URLs or headers."""
    import requests

    for kind, text in (
        (requests.ConnectTimeout, "connect timeout"),
        (requests.ReadTimeout, "read timeout"),
        (requests.exceptions.SSLError, "TLS error"),
        (requests.ConnectionError, "connection error"),
    ):
        if isinstance(exc, kind):
            cause = exc.args[0] if exc.args else None
            reason = getattr(cause, "reason", None)
            return f"{text} ({type(reason).__name__})" if reason is not None else text
    return type(exc).__name__


def _body_chunks(response: requests.Response) -> Iterator[bytes]:
    """The decoded body as it arrives (not waiting for full reads).

    urllib3 decodes the encodings requests asks for (gzip and deflate, and
    brotli or zstd where it has them), each read bounded to 64 KiB of output
    however small the input.  A body in an encoding not asked for is refused:
    decoding it would be unbounded.
    """
    encoding = response.headers.get("content-encoding", "").strip().lower()
    for part in filter(None, (e.strip() for e in encoding.split(","))):
        if part != "identity" and part not in response.raw.CONTENT_DECODERS:
            raise StreamError(
                f"the response body is {part}-encoded, which was not asked for",
                request_id=response.headers.get("x-request-id"),
            )
    while chunk := response.raw.read1(65536, decode_content=True):
        yield chunk


# --- Items and ids ----------------------------------------------------------
#
# Every response item and content part is a frozen dataclass whose fields are
# declared in upstream's serialization order, so one generic codec turns JSON
# into items and back.  Keys an item does not model land in `extra` and are
# written back unchanged: servers add fields and we lose nothing.


@dataclass(frozen=True, slots=True, kw_only=True)
class _Wire:
    """What every modelled JSON object has: the keys it does not model.

    A class names its wire `type` tag, and the prefix of the ids it takes
    (none: it takes no id), in its header: `class X(_Wire, tag=..., prefix=...)`.
    """

    type: ClassVar[str]
    prefix: ClassVar[str | None] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __init_subclass__(
        cls, tag: str | None = None, prefix: str | None = None
    ) -> None:
        # `slots=True` makes each class a second time, without these
        # arguments; that second class keeps what the first was given.
        if tag is not None:
            cls.type = tag
            cls.prefix = prefix

    def __post_init__(self) -> None:
        # `content=[...]` would neither equal nor encode as the tuple the
        # codec makes: it is taken as that tuple, or refused, here.
        for spec in _field_specs(type(self)):
            value = getattr(self, spec.attr)
            if spec.parts and isinstance(value, list):
                object.__setattr__(self, spec.attr, tuple(value))
            elif spec.parts and not isinstance(value, (tuple, str, type(None))):
                raise TypeError(f"{type(self).__name__}.{spec.attr} must be a tuple")


def _null_when_absent() -> Any:
    # Upstream serializes these few optional fields as `null` instead of
    # leaving them out; replaying them byte-for-byte needs the same.
    return field(default=None, metadata={"null": True})


@dataclass(frozen=True, slots=True, kw_only=True)
class InputText(_Wire, tag="input_text"):
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InputImage(_Wire, tag="input_image"):
    """An image by URL (https or inline `data:`) or by uploaded `file_id`."""

    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudio(_Wire, tag="input_audio"):
    audio_url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputText(_Wire, tag="output_text"):
    """Assistant text; `annotations` and `logprobs` replay even when empty."""

    text: str
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EncryptedContent(_Wire, tag="encrypted_content"):
    encrypted_content: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SummaryText(_Wire, tag="summary_text"):
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReasoningText(_Wire, tag="reasoning_text"):
    """Raw reasoning; `kind` is the wire tag, `reasoning_text` or `text`."""

    text: str
    kind: Literal["reasoning_text", "text"] = "reasoning_text"


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownItem:
    """An item or content part of a `type` this module does not model, kept verbatim."""

    data: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.data.get("type"))


# fmt: off
ContentItem = (
    InputText | InputImage | InputAudio | OutputText | EncryptedContent | SummaryText
    | ReasoningText | UnknownItem
)
# fmt: on


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemMetadata(_Wire):
    """`internal_chat_message_metadata_passthrough`: OpenAI-only item metadata."""

    turn_id: str | None = None
    create_time: float | None = None
    content_item_kinds: list[str] | None = None


# Output-only metadata keys: read back from history they could fake tool
# records, so they are dropped on input.
_METADATA_OUTPUT_ONLY = ("cell_id", "executed_tool_calls", "tool_calls_complete")
_METADATA_KEY = "internal_chat_message_metadata_passthrough"

MessagePhase = Literal["commentary", "partial_answer", "final_answer"]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Item(_Wire):
    """A response item that carries `metadata`: every kind but the three
    request-side ones.  The codec writes it last, as upstream does."""

    metadata: ItemMetadata | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AdditionalTools(_Wire, tag="additional_tools", prefix="at"):
    id: str | None = None
    role: str
    tools: list[Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Message(_Item, tag="message", prefix="msg"):
    encrypted_content: str | None = None
    status: str | None = None
    id: str | None = None
    role: str
    content: tuple[ContentItem, ...]
    phase: MessagePhase | None = None

    @classmethod
    def user(cls, text: str) -> Message:
        """A user message of one text part."""
        return cls(role="user", content=(InputText(text=text),))

    @classmethod
    def developer(cls, text: str) -> Message:
        """A developer message of one text part."""
        return cls(role="developer", content=(InputText(text=text),))


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentMessage(_Item, tag="agent_message", prefix="amsg"):
    id: str | None = None
    author: str
    recipient: str
    content: tuple[ContentItem, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reasoning(_Item, tag="reasoning", prefix="rs"):
    id: str | None = None
    summary: tuple[ContentItem, ...]
    content: tuple[ContentItem, ...] | None = None
    encrypted_content: str | None = _null_when_absent()


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalShellCall(_Item, tag="local_shell_call", prefix="lsh"):
    encrypted_content: str | None = None
    id: str | None = None
    call_id: str | None = _null_when_absent()
    status: str
    action: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCall(_Item, tag="function_call", prefix="fc"):
    """A function tool call; `arguments` is a JSON *string*."""

    encrypted_content: str | None = None
    status: str | None = None
    id: str | None = None
    name: str
    namespace: str | None = None
    arguments: str
    encrypted_function_args: list[str] | None = None
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSearchCall(_Item, tag="tool_search_call", prefix="tsc"):
    encrypted_content: str | None = None
    id: str | None = None
    call_id: str | None = _null_when_absent()
    status: str | None = None
    execution: str
    arguments: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCallOutput(_Item, tag="function_call_output", prefix="fco"):
    """A function result: a plain string or a list of content items."""

    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    namespace: str | None = None
    output: str | tuple[ContentItem, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomToolCall(_Item, tag="custom_tool_call", prefix="ctc"):
    encrypted_content: str | None = None
    id: str | None = None
    status: str | None = None
    call_id: str
    name: str
    namespace: str | None = None
    input: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomToolCallOutput(_Item, tag="custom_tool_call_output", prefix="ctco"):
    id: str | None = None
    call_id: str
    name: str | None = None
    output: str | tuple[ContentItem, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSearchOutput(_Item, tag="tool_search_output", prefix="tso"):
    id: str | None = None
    call_id: str | None = _null_when_absent()
    status: str
    execution: str
    tools: list[Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSearchCall(_Item, tag="web_search_call", prefix="ws"):
    encrypted_content: str | None = None
    id: str | None = None
    status: str | None = None
    action: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageGenerationCall(_Item, tag="image_generation_call", prefix="ig"):
    encrypted_content: str | None = None
    id: str | None = None
    status: str
    revised_prompt: str | None = None
    result: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Compaction(_Item, tag="compaction", prefix="cmp"):
    id: str | None = None
    encrypted_content: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextCompaction(_Item, tag="context_compaction", prefix="cmp"):
    id: str | None = None
    encrypted_content: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigurationUpdate(_Wire, tag="configuration_update"):
    reasoning: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class CompactionTrigger(_Wire, tag="compaction_trigger"):
    """A request control, not a durable item: the API refuses an id on it, so
    one read with an id keeps it but requests go without (no `prefix`)."""

    id: str | None = None


# fmt: off
ResponseItem = (
    Message | AgentMessage | Reasoning | LocalShellCall | FunctionCall
    | FunctionCallOutput | CustomToolCall | CustomToolCallOutput
    | ToolSearchCall | ToolSearchOutput | WebSearchCall | ImageGenerationCall
    | Compaction | ContextCompaction | AdditionalTools | ConfigurationUpdate
    | CompactionTrigger | UnknownItem
)
# fmt: on

_ITEM_TYPES: dict[str, type[Any]] = {
    cls.type: cls for cls in typing.get_args(ResponseItem) if cls is not UnknownItem
}
_ITEM_TYPES["compaction_summary"] = Compaction  # the old tag, still read
_CONTENT_TYPES: dict[str, type[Any]] = {
    cls.type: cls for cls in typing.get_args(ContentItem) if cls is not UnknownItem
}
_CONTENT_TYPES["text"] = ReasoningText


# The codec's rules, read once from each dataclass's annotations:
#   an attribute          is the JSON key of its name, except that
#     `metadata`          is "internal_chat_message_metadata_passthrough", last,
#     `extra`             holds every key the class does not model (kept as is),
#     `kind`              is the wire tag where one class has two (ReasoningText);
#   `type` (from `tag=`)  is the tag the class reads and writes;
#   `tuple[...]`          is content parts, each read by its own `type`;
#   `str | tuple[...]`    is a string, or else content parts (tool outputs);
#   `Literal[...]`        is a known value; an unknown one is kept in `extra`;
#   a default             makes it optional: None is left out, or written as
#                         `null` where `_null_when_absent` says so.


class _FieldSpec(typing.NamedTuple):
    attr: str
    key: str
    required: bool
    null_when_absent: bool
    kind: Any  # the field's annotation with `| None` removed
    parts: bool  # it holds content parts (a tuple, maybe or a string)


_SPECS: dict[type[Any], tuple[_FieldSpec, ...]] = {}


def _field_specs(cls: type[Any]) -> tuple[_FieldSpec, ...]:
    """The wire layout of a dataclass, worked out once from its annotations."""
    if cls not in _SPECS:
        hints = typing.get_type_hints(cls)
        _SPECS[cls] = tuple(
            _FieldSpec(
                attr=f.name,
                key=_METADATA_KEY if f.name == "metadata" else f.name,
                required=f.default is dataclasses.MISSING,
                null_when_absent=bool(f.metadata.get("null")),
                kind=_strip_none(hints[f.name]),
                parts="tuple[" in str(hints[f.name]),
            )
            # `metadata`, declared on `_Item`, goes after the class's own fields
            for f in sorted(dataclasses.fields(cls), key=lambda x: x.name == "metadata")
            if f.name not in ("extra", "kind")
        )
    return _SPECS[cls]


def _strip_none(hint: Any) -> Any:
    # Every optional field is `X | None`, with None last.
    args = typing.get_args(hint)
    return args[0] if type(None) in args else hint


def _decode_field(obj: dict[str, Any], spec: _FieldSpec, where: str) -> Any:
    """`obj[spec.key]`, not null, as the field's kind."""
    kind, value = spec.kind, obj[spec.key]
    if kind is Any or (isinstance(value, str) and str in typing.get_args(kind)):
        return value  # a tool's `output` is a string, or else content parts
    if spec.parts:
        parts = _typed(obj, spec.key, list, where, error=ItemError)
        return tuple(
            _content_from_json(v, f"{where}[{i}]") for i, v in enumerate(parts)
        )
    if kind is ItemMetadata:
        return _metadata_from_json(_typed(obj, spec.key, dict, where, error=ItemError))
    value = _typed(
        obj, spec.key, typing.get_origin(kind) or kind, where, error=ItemError
    )
    return float(value) if kind is float else value


def _decode_object(cls: type[Any], obj: dict[str, Any], what: str) -> Any:
    # ReasoningText keeps which of its two tags it was read with.
    kwargs: dict[str, Any] = {"kind": obj["type"]} if cls is ReasoningText else {}
    specs = _field_specs(cls)
    known = {s.key for s in specs}
    extra = {k: v for k, v in obj.items() if k != "type" and k not in known}
    for spec in specs:
        value = obj.get(spec.key)
        if value is None and spec.required:
            raise ItemError(f'{what} missing "{spec.key}"')
        if value is None:
            continue  # a `null` optional field reads as absent
        if typing.get_origin(spec.kind) is not Literal:
            kwargs[spec.attr] = _decode_field(obj, spec, f'{what} field "{spec.key}"')
        elif value in typing.get_args(spec.kind):
            kwargs[spec.attr] = value
        else:
            extra[spec.key] = value  # an unknown enum value: kept, not understood
    return cls(**kwargs, extra=extra)


def _metadata_from_json(obj: dict[str, Any]) -> ItemMetadata:
    obj = {k: v for k, v in obj.items() if k not in _METADATA_OUTPUT_ONLY}
    kinds = obj.get("content_item_kinds")
    if kinds is not None and not (
        isinstance(kinds, list) and all(isinstance(k, str) for k in kinds)
    ):
        del obj["content_item_kinds"]  # malformed kinds are dropped, not an error
    return typing.cast(ItemMetadata, _decode_object(ItemMetadata, obj, "metadata"))


def _content_from_json(obj: Any, where: str) -> ContentItem:
    if not isinstance(obj, dict):
        raise ItemError(f"{where} must be an object")
    tag = _json_get(obj, "type", str)
    cls = _CONTENT_TYPES.get(tag or "")
    if cls is None:
        return UnknownItem(data=obj)
    part = _decode_object(cls, obj, f"{where} ({tag})")
    if cls is InputImage and part.image_url is None and part.file_id is None:
        raise ItemError(f'{where} (input_image) missing "image_url" or "file_id"')
    return typing.cast(ContentItem, part)


def item_from_json(obj: Any) -> ResponseItem:
    """Read one response item from parsed JSON.

    Raises `ItemError` (a `ValueError`) naming the item type and the field at
    fault.  An unknown `type` becomes an `UnknownItem` that writes back as is.
    """
    if not isinstance(obj, dict):
        raise ItemError(
            f"response item must be a JSON object, not {type(obj).__name__}"
        )
    tag = obj.get("type")
    if not isinstance(tag, str):
        raise ItemError('response item missing "type"')
    cls = _ITEM_TYPES.get(tag)
    if cls is None:
        return UnknownItem(data=obj)
    return typing.cast(ResponseItem, _decode_object(cls, obj, tag))


def _encode_object(obj: Any) -> dict[str, Any]:
    if isinstance(obj, UnknownItem):
        return obj.data
    tag = getattr(obj, "kind", None) or getattr(type(obj), "type", None)
    out: dict[str, Any] = {} if tag is None else {"type": tag}  # metadata has none
    for spec in _field_specs(type(obj)):
        value = getattr(obj, spec.attr)
        if value is None and not spec.null_when_absent:
            continue
        if isinstance(value, tuple):
            value = [_encode_object(v) for v in value]
        elif isinstance(value, ItemMetadata):
            value = _encode_object(value)
        out[spec.key] = value
    out.update(obj.extra)
    return out


def item_to_json(item: ResponseItem) -> dict[str, Any]:
    """The JSON object upstream would serialize for `item`, keys in wire order."""
    out = _encode_object(item)
    # Upstream never replays raw reasoning text; plain `text` parts are kept.
    if isinstance(item, Reasoning) and any(
        isinstance(p, ReasoningText) and p.kind == "reasoning_text"
        for p in item.content or ()
    ):
        del out["content"]
    return out


def _item_id_prefix(item: ResponseItem) -> str | None:
    """The id prefix the Responses API expects for this item, or None if it takes no id."""
    # An assistant message wrapping encrypted inter-agent traffic is an agent
    # message as far as the id goes.
    if (
        isinstance(item, Message)
        and item.role == "assistant"
        and item.content
        and all(isinstance(p, EncryptedContent) for p in item.content)
    ):
        return "amsg"
    return getattr(item, "prefix", None)  # an UnknownItem has none


def _is_prefixed_id(item_id: str) -> bool:
    head, sep, tail = item_id.partition("_")
    return bool(head and sep and tail)


def _replace(item: ResponseItem, **changes: Any) -> ResponseItem:
    # `dataclasses.replace` on an item of any kind, typed as an item.
    return typing.cast(
        ResponseItem, dataclasses.replace(typing.cast(Any, item), **changes)
    )


def _stamped(item: ResponseItem, turn_id: str, now: float) -> ResponseItem:
    """The item with `turn_id` in its metadata unless it has a non-empty one,
    and `create_time` where upstream dates items (user and developer
    messages, agent messages and tool outputs, wire-spec §1) and none is set."""
    if not isinstance(item, _Item):
        return item
    old = item.metadata or ItemMetadata()
    dated = isinstance(
        item, (AgentMessage, FunctionCallOutput, CustomToolCallOutput, ToolSearchOutput)
    ) or (isinstance(item, Message) and item.role in ("user", "developer"))
    metadata = dataclasses.replace(
        old,
        turn_id=old.turn_id or turn_id,
        create_time=now if dated and old.create_time is None else old.create_time,
    )
    return item if metadata == item.metadata else _replace(item, metadata=metadata)


_uuid7_lock = threading.Lock()
_uuid7_last = 0


def _uuid7() -> str:
    """A hyphenated lowercase UUIDv7, strictly increasing within this process."""
    global _uuid7_last
    with _uuid7_lock:
        # 48 bits of Unix milliseconds, then 74 random bits; when the clock
        # has not moved on, count up from the last value instead.
        rand = int.from_bytes(os.urandom(10), "big") >> 6  # 74 bits
        value = (time.time_ns() // 1_000_000) << 74 | rand
        if value <= _uuid7_last:
            value = _uuid7_last + 1
        _uuid7_last = value
    millis, rand_a, rand_b = value >> 74, (value >> 62) & 0xFFF, value & (1 << 62) - 1
    n = millis << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# --- Images and history preparation -----------------------------------------
#
# Items made ready for history: inline images fitted as upstream fits them
# (or a placeholder), ids given where they are missing, and calls a cut-short
# turn left unanswered.


IMAGE_OMITTED_TEXT = "image content omitted because it could not be processed"

_IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg", b"GIF8": "gif"}
# What upstream sends at most, by detail: the longest side, and patches of
# 32x32 pixels; `low` is the server's to shrink.
_IMAGE_LIMITS = {"original": (6000, 10000), "high": (2048, 2500)}  # auto too
# What downscaling may decode, in pixels: one image (a 64 MP photo; JPEGs
# decode at a fraction of their size first), and one turn's or one resumed
# thread's images together.  Images the model sent are never decoded.
_DECODED_PIXELS = 64_000_000
_DECODED_PIXELS_PER_TURN = 4 * _DECODED_PIXELS
# The largest image file `-i` reads.
_IMAGE_FILE_MAX = 64 << 20


class _PixelBudget:
    """The pixels one preparation may still decode."""

    def __init__(self) -> None:
        self.left = _DECODED_PIXELS_PER_TURN

    def spend(self, width: int, height: int) -> None:
        if width * height > min(self.left, _DECODED_PIXELS):
            raise ValueError(
                f"a {width}x{height} image is more than codex-lite decodes to downscale"
            )
        self.left -= width * height


def _image_kind(raw: bytes) -> str | None:
    """png, jpeg, gif or webp, from the first bytes; None for anything else."""
    kind = next((k for magic, k in _IMAGE_MAGIC.items() if raw.startswith(magic)), None)
    return kind or ("webp" if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP" else None)


def _image_size(raw: bytes, kind: str) -> tuple[int, int] | None:
    """Width and height from the header, without decoding (None if unread)."""
    le = int.from_bytes
    if kind == "png" and raw[12:16] == b"IHDR":
        return le(raw[16:20], "big"), le(raw[20:24], "big")
    if kind == "gif":
        return le(raw[6:8], "little"), le(raw[8:10], "little")
    if kind == "webp" and raw[12:16] == b"VP8X":
        return le(raw[24:27], "little") + 1, le(raw[27:30], "little") + 1
    if kind == "webp" and raw[12:16] == b"VP8L":
        bits = le(raw[21:25], "little")
        return (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1
    if kind == "webp" and raw[12:16] == b"VP8 ":
        return le(raw[26:28], "little") & 0x3FFF, le(raw[28:30], "little") & 0x3FFF
    at = 2  # JPEG: the segments up to a start-of-frame marker
    while kind == "jpeg" and at + 9 <= len(raw) and raw[at] == 0xFF:
        marker = raw[at + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return le(raw[at + 7 : at + 9], "big"), le(raw[at + 5 : at + 7], "big")
        at += 2 + le(raw[at + 2 : at + 4], "big")
    return None


def _fitted_size(width: int, height: int, limit: tuple[int, int]) -> tuple[int, int]:
    """The largest size of the same shape within the longest side and the
    patch count of `limit` (the size itself when it fits)."""
    side, patches = limit
    scale = min(
        1.0, side / max(width, height), 32 * math.sqrt(patches / (width * height))
    )
    while True:
        size = max(1, int(width * scale)), max(1, int(height * scale))
        if -(-size[0] // 32) * -(-size[1] // 32) <= patches:
            return size
        scale *= 0.99


def _fitted_image(
    raw: bytes, detail: str | None, budget: _PixelBudget
) -> tuple[bytes, str]:
    """The image as upstream sends it, and its kind: PNG or JPEG within the
    limits of `detail` as it is (`raw` itself); else, with Pillow,
    downscaled (the right way up, by its EXIF orientation) and encoded again
    (JPEG stays JPEG at quality 85, anything else becomes PNG), decoding no
    more than `budget` allows.  Without Pillow the bytes go as they are,
    with a warning when they are over.
    ValueError: not an image, or one too large to decode."""
    kind = _image_kind(raw)
    if kind is None:
        raise ValueError("unsupported image format")
    limit = _IMAGE_LIMITS.get(detail or "", _IMAGE_LIMITS["high"])
    try:
        from PIL import Image, ImageOps
    except ImportError:
        size = _image_size(raw, kind)
        if size and min(size) > 0 and _fitted_size(*size, limit) != size:
            _log.warning(
                "a %dx%d image is over the %d px / %d patch limit; sent as it is "
                "(install codex-lite[images] to downscale it)",
                *size,
                *limit,
            )
        return raw, kind
    import warnings

    try:
        # the pixels decoded are counted below, after a JPEG's reduction
        with warnings.catch_warnings(
            action="ignore", category=Image.DecompressionBombWarning
        ):
            image: Image.Image = Image.open(io.BytesIO(raw))
        size = _fitted_size(*image.size, limit)
        if size == image.size and kind in ("png", "jpeg"):
            return raw, kind
        image.draft(None, size)  # a JPEG decodes at 1/2, 1/4 or 1/8 first
        budget.spend(*image.size)
        if image.getexif().get(0x0112, 1) != 1:  # Orientation
            image = ImageOps.exif_transpose(image)
        resized = image.resize(
            _fitted_size(*image.size, limit), Image.Resampling.BILINEAR
        )
        out = io.BytesIO()
        if kind == "jpeg":
            resized.convert("RGB").save(out, "JPEG", quality=85)
        else:
            resized.save(out, "PNG")
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001  # Pillow raises more than OSError on bad bytes
        raise ValueError(f"cannot decode the image ({type(exc).__name__})") from None
    return out.getvalue(), "jpeg" if kind == "jpeg" else "png"


def _prepared_image(part: InputImage, budget: _PixelBudget) -> ContentItem:
    """An inline image fitted as upstream fits it, or the placeholder."""
    url = part.image_url or ""
    if url[:5].lower() != "data:":
        return part  # remote images are the server's
    header, _, payload = url.partition(",")
    try:
        if not header.lower().endswith(";base64"):
            raise ValueError("not base64")
        raw = base64.b64decode(payload, validate=True)
        fitted, kind = _fitted_image(raw, part.detail, budget)
    except ValueError as exc:  # binascii.Error is one
        _log.warning("an inline image is left out: %s", exc)
        return InputText(text=IMAGE_OMITTED_TEXT)
    if fitted is raw:  # as it came: not encoded again
        return part
    encoded = base64.b64encode(fitted).decode()
    return dataclasses.replace(part, image_url=f"data:image/{kind};base64,{encoded}")


def _prepare_images(item: ResponseItem, budget: _PixelBudget) -> ResponseItem:
    """Images the user side sends fitted; the model's own are its to shrink."""
    if isinstance(item, Message) and item.role != "assistant":
        field_name, parts = "content", item.content
    elif isinstance(item, (FunctionCallOutput, CustomToolCallOutput)) and isinstance(
        item.output, tuple
    ):
        field_name, parts = "output", item.output
    else:
        return item
    if not any(isinstance(p, InputImage) and p.image_url for p in parts):
        return item
    prepared = [
        _prepared_image(p, budget) if isinstance(p, InputImage) else p for p in parts
    ]
    return _replace(item, **{field_name: tuple(prepared)})


def prepare_conversation_items_for_history(
    items: Iterable[ResponseItem], *, item_ids: bool
) -> list[ResponseItem]:
    """Make items ready for history and the rollout; the single id allocation boundary.

    Inline images that cannot be processed become a placeholder text.  With
    `item_ids`, an item that takes an id but has none (or an empty one) gets
    `{prefix}_{uuid7}`; ids already present, from the server or earlier, stay.
    """
    prepared = []
    budget = _PixelBudget()
    for item in items:
        item = _prepare_images(item, budget)
        if item_ids and not getattr(item, "id", None):
            prefix = _item_id_prefix(item)
            if prefix is not None:
                item = _replace(item, id=f"{prefix}_{_uuid7()}")
        prepared.append(item)
    return prepared


def _unanswered(history: Sequence[ResponseItem]) -> list[FunctionCall | CustomToolCall]:
    """The calls in `history` no output answers yet.  It runs on every
    request, over the whole history: one pass, isinstance with tuples (twice
    as fast as with unions)."""
    calls: list[FunctionCall | CustomToolCall] = []
    answered: set[str | None] = set()
    for item in history:
        if isinstance(item, (FunctionCall, CustomToolCall)):
            calls.append(item)
        elif isinstance(item, (FunctionCallOutput, CustomToolCallOutput)):
            answered.add(item.call_id)
    return [c for c in calls if c.call_id not in answered]


# Codex's namespace for the ids of the outputs below (seen on the wire).
_SYNTHETIC_OUTPUTS = "90d38d3e-6a5b-4d52-bfe2-2f1e634bfac4"


def _with_call_outputs(items: Sequence[ResponseItem]) -> Sequence[ResponseItem]:
    """`items` with an "aborted" output after each call none answers (a turn
    cut short), as Codex sends them: the API refuses a call alone.  They are
    never stored, so their id comes from the call's, the same on every resume."""
    pending = {c.call_id for c in _unanswered(items)}
    if not pending:
        return items  # the usual case
    import uuid

    namespace = uuid.UUID(_SYNTHETIC_OUTPUTS)
    out: list[ResponseItem] = []
    for item in items:
        out.append(item)
        if isinstance(item, (FunctionCall, CustomToolCall)) and item.call_id in pending:
            custom = isinstance(item, CustomToolCall)
            answer = CustomToolCallOutput if custom else FunctionCallOutput
            name = uuid.uuid5(namespace, f"{answer.prefix}:{item.id}")
            output_id = f"{answer.prefix}_{name}" if item.id else None
            out.append(answer(id=output_id, call_id=item.call_id, output="aborted"))
    return out


def local_image_content(
    path: Path, number: int, *, detail: str = "high"
) -> list[ContentItem]:
    """A local image as upstream sends it: a tag, the inline image (fitted
    to the limits of its detail, see `_fitted_image`), a closing tag."""
    unreadable = f"Codex could not read the local image at `{path}`"
    try:
        fitted, kind = _fitted_image(_read_image_file(path), detail, _PixelBudget())
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else exc
        return [InputText(text=f"{unreadable}: {reason}")]
    url = f"data:image/{kind};base64,{base64.b64encode(fitted).decode()}"
    return [
        InputText(text=f'<image name=[Image #{number}] path="{path}">'),
        InputImage(image_url=url, detail=detail),
        InputText(text="</image>"),
    ]


def _read_image_file(path: Path) -> bytes:
    """A regular file of at most `_IMAGE_FILE_MAX` bytes; anything else (a
    FIFO, a device, a huge file) is refused before a byte is read."""
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO: no wait
    with open(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file")
        if info.st_size > _IMAGE_FILE_MAX:
            raise OSError(0, f"larger than {_IMAGE_FILE_MAX >> 20} MiB")
        raw = f.read(_IMAGE_FILE_MAX + 1)
    if len(raw) > _IMAGE_FILE_MAX:  # it grew meanwhile
        raise OSError(0, f"larger than {_IMAGE_FILE_MAX >> 20} MiB")
    return raw


# --- The request body -------------------------------------------------------
#
# What one request says, built once for every attempt over either transport:
# the prompt and the client's settings, the per-provider rules, who is
# asking (identity, headers, turn metadata), the body as items already
# encoded (the fragment cache) joined into bytes and compressed once.


_SERVICE_TIERS = {"fast": "priority", "priority": "priority", "flex": "flex"}
# Item keys that only OpenAI accepts in a request.
_OPENAI_ONLY_KEYS = (_METADATA_KEY, "encrypted_function_args")


# Fields codex_lite sends or has a name for: extra_body may not name them,
# override_body replaces them.
# fmt: off
_OWN_FIELDS = frozenset({
    "model", "tools", "tool_choice", "parallel_tool_calls", "reasoning", "store",
    "stream", "include", "service_tier", "prompt_cache_key", "text",
    "client_metadata", "max_output_tokens", "metadata", "safety_identifier",
    "truncation", "background",
})
# fmt: on
# Made for each request from the history, or a WebSocket frame's own.
_FIXED_FIELDS = ("input", "previous_response_id", "type")


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestFields:
    """Request fields a script may set, for one `Prompt` or as a client's
    default (`Client(fields=...)`); each left None takes the client's.

    `tool_choice` is "auto" (the default), "required", "none" or an object
    such as `{"type": "function", "name": ...}` or `{"type": "allowed_tools",
    ...}`; `include` adds to the "reasoning.encrypted_content" always asked;
    `prompt_cache_key` defaults to the session id.  `store` keeps responses
    on the server: over HTTP a request then sends only what the last one did
    not (`previous_response_id`), and all of it when the server forgot.
    `background` runs the response in the background (stored, over HTTP): a
    stream that breaks is resumed where it stopped, and a response nobody
    will read (the caller stopped, the deadline came) is cancelled.
    `extra_body` adds any other field by name; `override_body` replaces one
    codex_lite sets.
    """

    tool_choice: str | dict[str, Any] | None = None
    include: Sequence[str] | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    truncation: str | None = None
    store: bool | None = None
    background: bool | None = None
    extra_body: dict[str, Any] | None = None
    override_body: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        named = _json_get(self.tool_choice, "type", str) is not None
        if self.tool_choice not in (None, "auto", "required", "none") and not named:
            raise ConfigError(
                'tool_choice must be "auto", "required", "none" or an object '
                f'with a "type", not {self.tool_choice!r}'
            )
        if self.truncation not in (None, "auto", "disabled"):
            raise ConfigError(
                f'truncation must be "auto" or "disabled", not {self.truncation!r}'
            )
        if isinstance(self.include, str):
            raise ConfigError(
                f"include must be a list of strings, not {self.include!r}"
            )
        bodies = {"extra_body": self.extra_body, "override_body": self.override_body}
        for where, body in bodies.items():
            for key in body or ():
                if key in _FIXED_FIELDS:
                    raise ConfigError(f"{where}.{key}: codex_lite makes this field")
                if key in _OWN_FIELDS and where == "extra_body":
                    raise ConfigError(
                        f"{where}.{key}: a field codex_lite sets or names; "
                        "override_body replaces it"
                    )

    def _over(self, default: RequestFields) -> typing.Self:
        """These fields, each left None taken from `default`."""
        names = [f.name for f in dataclasses.fields(RequestFields)]
        taken = {n: getattr(default, n) for n in names if getattr(self, n) is None}
        return dataclasses.replace(self, **taken)


@dataclass(frozen=True, slots=True, kw_only=True)
class Prompt(RequestFields):
    """What one request asks: input items and the settings that go with them.

    `tools` is the raw JSON list of tool definitions.  Settings left None
    fall back to the client's.
    """

    input: Sequence[ResponseItem]
    instructions: str = ""
    tools: list[Any] | None = None
    parallel_tool_calls: bool = False
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None
    verbosity: str | None = None
    output_schema: dict[str, Any] | None = None
    service_tier: str | None = None


class _Rules(typing.NamedTuple):
    """What differs per provider, in one place, worked out once per client."""

    chatgpt_backend: bool  # the openai provider signed in with ChatGPT
    chatgpt_plan: bool  # Sign in with ChatGPT's plan usage: fields refused
    openai_metadata: bool  # client_metadata, turn metadata, OpenAI-only item keys
    store: bool  # Azure keeps responses (wire-spec §2)
    compress: bool  # zstd request bodies (§5)
    service_tier: bool  # a tier may be asked for: not on Bedrock (§10)
    responses_lite: bool  # tools and instructions as items (§11)


def _resolve_installation_id(home: Path | None = None, *, keep: bool = True) -> str:
    """The id in `$CODEX_HOME/installation_id`, made (a UUIDv4) and kept
    there if missing or corrupt.  Where it cannot be kept (a read-only or
    missing home), or `keep` is off, an id that exists is read, else the
    one made is this process's alone."""
    import uuid

    home = home if home is not None else default_codex_home()
    path, fd, why = home / "installation_id", -1, "an ephemeral run makes none"
    try:
        if keep:
            home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            with _locked(fd):
                # 0644 as upstream makes it; a stricter mode is kept
                if os.name == "posix" and os.fstat(fd).st_mode & 0o022:
                    os.chmod(path, 0o644)
                text = _read_at(fd, 0, 128).decode("utf-8", "replace").strip()
                try:
                    return str(uuid.UUID(text))
                except ValueError:
                    fresh = str(uuid.uuid4())
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, fresh.encode())
                    os.fsync(fd)
                    return fresh
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
    finally:
        if fd >= 0:
            os.close(fd)
    try:
        with path.open("rb") as f:
            return str(uuid.UUID(f.read(128).decode("utf-8", "replace").strip()))
    except (OSError, ValueError):
        _log.debug("%s: %s; an installation id for this process only", path, why)
        return str(uuid.uuid4())


class _Identity(typing.NamedTuple):
    """Who sends a request: the one source of the ids that its headers, its
    turn metadata and its `client_metadata` carry."""

    session_id: str
    thread_id: str
    turn_id: str
    started_at_ms: int
    originator: str
    subagent: str | None
    parent_thread_id: str | None
    installation_id: str | None  # told to OpenAI alone
    window_number: int  # one more after each compaction
    compaction: dict[str, str] | None = None  # what a compaction request says it is


def _request_parts(
    prompt: Prompt,
    model: str,
    who: _Identity,
    rules: _Rules,
    cache: _FragmentCache,
    url: str,
    provider_headers: Mapping[str, str],
) -> _RequestParts:
    """The request before it is joined, without auth or turn state: what
    every attempt, over either transport, starts from.  `prompt` holds the
    client's defaults for what it leaves None."""
    tier = _SERVICE_TIERS.get(prompt.service_tier or "")
    # Codex sends turn metadata to every provider; we keep it, like
    # client_metadata, to OpenAI.
    openai = rules.openai_metadata
    window = f"{who.thread_id}:{who.window_number}"  # the context window's id
    turn_metadata = _turn_metadata(who, window, model, prompt.reasoning_effort)
    # what headers and client_metadata both end with
    lineage = {
        "x-codex-turn-metadata": turn_metadata if openai else None,
        "x-openai-subagent": who.subagent,
        "x-codex-parent-thread-id": who.parent_thread_id,
    }
    ids = {key: value for key, value in lineage.items() if value}
    reasoning: dict[str, Any] = {}
    if prompt.reasoning_effort:
        reasoning["effort"] = prompt.reasoning_effort
    if prompt.reasoning_summary and prompt.reasoning_summary != "none":
        reasoning["summary"] = prompt.reasoning_summary
    leading: list[bytes] = []
    items = _with_call_outputs(prompt.input)
    if rules.responses_lite:
        prompt, items, leading = _responses_lite(prompt, items, reasoning, who)
    if prompt.instructions:
        leading.append(_instructions_item(prompt.instructions, who, openai))
    head: dict[str, Any] = {"model": model}
    tail: dict[str, Any] = {}
    if prompt.tools is not None:
        tail["tools"] = prompt.tools
    tail["tool_choice"] = prompt.tool_choice or "auto"
    tail["parallel_tool_calls"] = prompt.parallel_tool_calls
    tail["reasoning"] = reasoning or None
    tail["store"] = rules.store if prompt.store is None else prompt.store
    if prompt.background:
        tail["background"] = tail["store"] = True
    tail["stream"] = True
    include = ["reasoning.encrypted_content", *(prompt.include or ())]
    tail["include"] = list(dict.fromkeys(include))
    if tier and rules.service_tier:
        tail["service_tier"] = tier
    # the session id keeps the cache across resumes and sub-agents
    tail["prompt_cache_key"] = prompt.prompt_cache_key or who.session_id
    text: dict[str, Any] = {"verbosity": prompt.verbosity} if prompt.verbosity else {}
    if prompt.output_schema is not None:
        text["format"] = {
            "type": "json_schema",
            "strict": True,
            "schema": prompt.output_schema,
            "name": "codex_output_schema",
        }
    if text:
        tail["text"] = text
    for key in ("max_output_tokens", "metadata", "safety_identifier", "truncation"):
        if (value := getattr(prompt, key)) is not None:
            tail[key] = value
    tail.update(prompt.extra_body or {})
    if openai:
        tail["client_metadata"] = {
            "x-codex-installation-id": who.installation_id,
            "session_id": who.session_id,
            "thread_id": who.thread_id,
            "x-codex-window-id": window,
            "turn_id": who.turn_id,
            "root_turn_id": who.turn_id,
            **ids,
        }
    for key, value in (prompt.override_body or {}).items():
        (head if key in head else tail)[key] = value
    headers = {"Accept": "text/event-stream", **provider_headers}
    headers["originator"] = who.originator
    headers["User-Agent"] = _user_agent(who.originator)
    headers["x-client-request-id"] = who.thread_id
    headers["session-id"] = who.session_id
    headers["thread-id"] = who.thread_id
    headers["x-codex-window-id"] = window
    if who.compaction:  # Codex names the feature on all its requests
        headers["x-codex-beta-features"] = "remote_compaction_v2"
    headers.update(ids)
    if rules.responses_lite:
        headers["x-openai-internal-codex-responses-lite"] = "true"
    if rules.chatgpt_backend:
        tier_part = f";tier={tier}" if tier else ""
        headers["x-codex-routing-hint"] = f"model={model}{tier_part}"
    if rules.chatgpt_plan:
        _check_plan_body({**head, **tail}, items)
        headers = {k: v for k, v in headers.items() if not k.startswith("x-codex-")}
    fragments = leading + cache.encode(items)
    stored = bool(prompt.store or prompt.background)
    return _RequestParts(
        url, headers, head, fragments, items, tail, len(leading), stored
    )


# What ChatGPT plan usage refuses over HTTP (the preview's limits).
# fmt: off
_PLAN_REFUSED_FIELDS = (
    "background", "conversation", "max_output_tokens", "max_tool_calls", "metadata",
    "moderation", "multi_agent", "prompt", "prompt_cache_retention",
    "safety_identifier", "temperature", "top_logprobs", "top_p", "truncation", "user",
)
_PLAN_REFUSED_TOOLS = (
    "image_generation", "file_search", "code_interpreter", "computer_use", "mcp",
    "tool_search", "programmatic_tool_calling",
)
# fmt: on


def _check_plan_body(body: Mapping[str, Any], items: Sequence[ResponseItem]) -> None:
    """A ConfigError, before anything is sent, for what ChatGPT plan usage
    would refuse (`subscription_sharing_unsupported_capability`)."""
    refused = [name for name in _PLAN_REFUSED_FIELDS if name in body]
    if body.get("store") is not False or body.get("stream") is not True:
        refused.append("store other than false or stream other than true")
    tools = [_json_get(entry, "type", str) or "" for entry in body.get("tools") or ()]
    refused += [
        f"{kind} tools" for kind in tools if kind.startswith(_PLAN_REFUSED_TOOLS)
    ]
    if any(isinstance(item, Message) and item.role == "system" for item in items):
        refused.append("system messages (instructions are sent as developer text)")
    if refused:
        raise ConfigError(
            f"ChatGPT plan usage does not take {', '.join(refused)}; "
            "leave them out for this provider"
        )


def _turn_metadata(who: _Identity, window: str, model: str, effort: str | None) -> str:
    """`x-codex-turn-metadata`: who and what this request is, as one
    ASCII JSON string (the header and `client_metadata` carry the same)."""
    metadata: dict[str, Any] = {
        "installation_id": who.installation_id,
        "session_id": who.session_id,
        "thread_id": who.thread_id,
        "turn_id": who.turn_id,
        "window_id": window,
        "window_number": who.window_number,
        "request_kind": "compaction" if who.compaction else "turn",
        "root_turn_id": who.turn_id,
        "turn_started_at_unix_ms": who.started_at_ms,
    }
    # a compaction request names how it compacts instead of the model
    if who.compaction:
        metadata["compaction"] = who.compaction
    else:
        metadata["model"] = model
        if effort:
            metadata["reasoning_effort"] = effort
    return json.dumps(metadata, separators=(",", ":"))


def _responses_lite(
    prompt: Prompt,
    items: Sequence[ResponseItem],
    reasoning: dict[str, Any],
    who: _Identity,
) -> tuple[Prompt, list[ResponseItem], list[bytes]]:
    """Responses Lite (wire-spec §11) as one step: the tools move into a
    leading `additional_tools` item, parallel tool calls are off, the
    reasoning covers all turns, configuration updates are left out.  A
    conversation keeps that item and the instructions in its history
    (`Conversation.stream_turn`): then none is added here."""
    reasoning["context"] = "all_turns"
    items = [i for i in items if not isinstance(i, ConfigurationUpdate)]
    lite = dataclasses.replace(prompt, tools=None, parallel_tool_calls=False)
    if any(isinstance(i, AdditionalTools) for i in items):
        return dataclasses.replace(lite, instructions=""), items, []
    tools = prompt.tools or []
    tools_item = {
        "type": "additional_tools",
        "id": _stable_id(who, "at", _dumps(tools).decode()),
        "role": "developer",
        "tools": tools,
    }
    return lite, items, [_dumps(tools_item)]


def _instructions_item(instructions: str, who: _Identity, openai: bool) -> bytes:
    """The instructions as Codex 0.169 sends them: a developer message
    before the history."""
    message: dict[str, Any] = {
        "type": "message",
        "id": _stable_id(who, "msg", instructions),
        "role": "developer",
        "content": [{"type": "input_text", "text": instructions}],
    }
    if openai:
        message[_METADATA_KEY] = {"content_item_kinds": ["model.base_instructions"]}
    return _dumps(message)


def _stable_id(who: _Identity, prefix: str, content: str) -> str:
    """An id that is the same on every attempt, turn and resume: a UUIDv5
    of the thread and the content, as Codex makes them."""
    import uuid

    namespace = uuid.uuid5(uuid.NAMESPACE_OID, who.thread_id)
    return f"{prefix}_{uuid.uuid5(namespace, content)}"


def _zstd_compress(data: bytes) -> bytes:
    """A request body compressed, logged as Codex logs it (wire-spec §5)."""
    started = time.perf_counter()
    # Imported here: only compressed requests pay for loading zstd.
    try:
        from compression import zstd  # type: ignore[import-not-found]  # novermin

        packed = typing.cast(bytes, zstd.compress(data, level=3))
    except ImportError:
        import zstandard

        packed = zstandard.ZstdCompressor(level=3).compress(data)
    _transport_log.info(
        "Compressed request body with zstd pre_compression_bytes=%d "
        "post_compression_bytes=%d compression_duration_ms=%d",
        len(data),
        len(packed),
        (time.perf_counter() - started) * 1000,
    )
    return packed


def _join_request(
    head: Mapping[str, Any], items: Sequence[bytes], tail: Mapping[str, Any]
) -> bytes:
    """`_dumps({**head, "input": [...], **tail})`, with the items already encoded.

    One join over all the pieces, so the body is the only large allocation.
    """
    parts = [_dumps(dict(head))[:-1] + b',"input":[' if head else b'{"input":[']
    for item in items:
        parts += (item, b",")
    if items:
        parts.pop()
    parts.append(b"]" + (b"," + _dumps(dict(tail))[1:] if tail else b"}"))
    return b"".join(parts)


class _RequestParts(typing.NamedTuple):
    """A Responses request before it is joined: what both transports send.

    `input` holds the encoded items: first the `leading` ones the client
    adds (instructions, Responses Lite tools), then those of `items`.
    """

    url: str
    headers: dict[str, str]  # without auth, turn state or body headers
    head: dict[str, Any]
    input: list[bytes]
    items: Sequence[ResponseItem]
    tail: dict[str, Any]
    leading: int
    stored: bool = False  # asked for: over HTTP it may continue the last response

    def settings(self) -> bytes:
        """Every field but the input and the per-request metadata: what must
        stay the same for a request to continue the last one."""
        tail = {k: v for k, v in self.tail.items() if k != "client_metadata"}
        return _dumps([self.head, tail])


class _LastExchange(typing.NamedTuple):
    """What the server holds: the last request (of a connection, or stored)
    and its answer."""

    settings: bytes
    input: list[bytes]
    response_id: str
    output_ids: list[str | None]


def _continuing(
    last: _LastExchange | None,
    parts: _RequestParts,
    settings: bytes,
    head: dict[str, Any],
) -> tuple[dict[str, Any], list[bytes]]:
    """`head` and the input of a request that continues the last exchange:
    its `previous_response_id` and the items it adds.  A request that does
    not continue it (other settings, or an input that is not the last input
    followed by the last response's output, matched by item id) keeps
    `head` and its whole input."""
    if last is None or settings != last.settings or None in last.output_ids:
        return head, parts.input
    known, output = len(last.input), len(last.output_ids)
    start = known - parts.leading  # where the last input's prompt items end
    ids = [getattr(i, "id", None) for i in parts.items[start : start + output]]
    if start < 0 or parts.input[:known] != last.input or ids != last.output_ids:
        return head, parts.input
    head = {**head, "previous_response_id": last.response_id}
    return head, parts.input[known + output :]


def _log_request(
    transport: str, items: int, body_bytes: int, reused: bool | None, mode: str
) -> None:
    """Codex's "Responses request prepared" line (wire-spec §5)."""
    large = body_bytes >= 8 << 20
    fields = (transport, mode, items, body_bytes, reused)
    _log.log(
        logging.WARNING if large else logging.INFO,
        "%sResponses request prepared transport=%s request.mode=%s request."
        "input_items=%d request.body_bytes=%d transport.connection_reused=%s",
        "large " if large else "",
        *fields,
    )


class _FragmentCache:
    """Encoded request copies of items, kept while the items stay in the prompt.

    Keyed on `id(item)`, checked with `is`: items are frozen, so the same
    object always encodes the same, and hashing a large item (its whole
    content) would cost what the cache saves.  An entry holds its item, so
    an id is never reused while its entry lives.
    """

    def __init__(self, to_request_json: Any) -> None:
        self._to_json = to_request_json
        self._cache: dict[int, tuple[ResponseItem, bytes]] = {}

    def encode(self, items: Sequence[ResponseItem]) -> list[bytes]:
        cache, out = self._cache, []
        for item in items:
            entry = cache.get(id(item))
            if entry is None or entry[0] is not item:
                entry = cache[id(item)] = (item, _dumps(self._to_json(item)))
            out.append(entry[1])
        if len(cache) > 2 * len(items) + 64:  # items left the prompt: forget them
            kept = {id(item) for item in items}
            self._cache = {k: v for k, v in cache.items() if k in kept}
        return out


# --- SigV4 ------------------------------------------------------------------
#
# AWS Signature Version 4 with the standard library, as named steps:
# canonical request, string to sign, signing key, authorization header.
# Amazon Bedrock Mantle signs the exact bytes sent, compressed or not.

# fmt: off
_SIGV4_UNSIGNED = frozenset({
    "authorization", "connection", "expect", "keep-alive", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
    "user-agent", "x-amzn-trace-id",
})
# fmt: on
_SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class AwsCredentials:  # a dataclass, not a tuple: it must not unpack its secret
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def _remove_dot_segments(path: str) -> str:
    import posixpath

    # One leading slash: POSIX keeps a leading "//" as it is.
    normal = posixpath.normpath("/" + path.lstrip("/"))
    return normal + "/" if path.endswith("/") and normal != "/" else normal


def _sigv4_encode(text: str) -> str:
    return urllib.parse.quote(urllib.parse.unquote(text), safe="-_.~")


def _sigv4_canonical_request(
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    payload_hash: str,
    *,
    normalize: bool = True,
) -> tuple[str, str]:
    """The canonical request and its signed-header list."""
    parts = urllib.parse.urlsplit(url)
    path = _remove_dot_segments(parts.path) if normalize else parts.path
    # The path is already percent-encoded on the wire; every service but S3
    # wants it encoded once more ("double encoding").
    uri = urllib.parse.quote(path or "/", safe="/~")
    pairs = []
    for part in filter(None, parts.query.split("&")):
        key, _, value = part.partition("=")
        pairs.append((_sigv4_encode(key), _sigv4_encode(value)))
    query = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        name = name.lower()
        if name not in _SIGV4_UNSIGNED:
            merged.setdefault(name, []).append(" ".join(value.split()))
    names = sorted(merged)
    block = "".join(f"{n}:{','.join(merged[n])}\n" for n in names)
    signed = ";".join(names)
    canonical = f"{method.upper()}\n{uri}\n{query}\n{block}\n{signed}\n{payload_hash}"
    return canonical, signed


def _sigv4_string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    import hashlib

    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{_SIGV4_ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def _sigv4_headers(
    url: str, headers: Iterable[tuple[str, str]], amz_date: str, token: str | None
) -> list[tuple[str, str]]:
    """The headers to sign and send: `host` added when missing; `x-amz-date`,
    and `x-amz-security-token` when there is a token, replacing earlier ones."""
    replaced = {"authorization", "x-amz-date"} | (
        {"x-amz-security-token"} if token else set()
    )
    pairs = [(n, v) for n, v in headers if n.lower() not in replaced]
    if not any(n.lower() == "host" for n, _ in pairs):
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        default = {"http": 80, "https": 443}.get(parts.scheme)
        port = "" if parts.port in (None, default) else f":{parts.port}"
        pairs.insert(0, ("host", host + port))
    pairs.append(("x-amz-date", amz_date))
    if token:
        pairs.append(("x-amz-security-token", token))
    return pairs


def _sigv4_authorization(
    credentials: AwsCredentials, amz_date: str, scope: str, canonical: str, signed: str
) -> str:
    """The `authorization` header: the string to sign, signed with the key
    derived along the scope (day, region, service, "aws4_request")."""
    import hashlib
    import hmac

    key = f"AWS4{credentials.secret_access_key}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    string_to_sign = _sigv4_string_to_sign(amz_date, scope, canonical)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"{_SIGV4_ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )


def sigv4_sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    credentials: AwsCredentials,
    region: str,
    service: str,
) -> dict[str, str]:
    """Sign a request now; returns every header to send, `authorization` included.

    Earlier `authorization` and `x-amz-date` values are replaced, and so is
    `x-amz-security-token` when the credentials carry a token.  No
    `x-amz-content-sha256` header is added (Bedrock does not want one); one
    given is the payload hash signed.
    """
    import hashlib

    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    pairs = _sigv4_headers(url, headers.items(), amz_date, credentials.session_token)
    given = [v for n, v in pairs if n.lower() == "x-amz-content-sha256"]
    payload_hash = given[0] if given else hashlib.sha256(body).hexdigest()
    canonical, signed = _sigv4_canonical_request(method, url, pairs, payload_hash)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    signature = _sigv4_authorization(credentials, amz_date, scope, canonical, signed)
    return dict(pairs) | {"authorization": signature}


# --- Auth -------------------------------------------------------------------
#
# An `AuthProvider` adds what a request needs to be accepted.  It runs inside
# the retry loop on the final request, so a signature always covers the exact
# bytes and a fresh timestamp.


class PreparedRequest(typing.NamedTuple):
    """One request as it goes on the wire: what `--dry-run` prints.

    `json` is the body before compression, when it was kept for display.
    """

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    json: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"PreparedRequest({self.method} {_redact_url(self.url)}, "
            f"headers={_redact_headers(self.headers)}, body={len(self.body)} bytes)"
        )


class AuthProvider:
    """Adds credentials to requests.  The base class sends none.

    `kind` says what the credentials are: "none", "api_key", "chatgpt",
    "bedrock_bearer" or "sigv4"; `account_id` whose they are, when known.
    """

    kind: str = "none"
    account_id: str | None = None

    def add_auth_headers(self, headers: dict[str, str]) -> None:
        """Add the body-independent auth headers."""

    def apply_auth(self, request: PreparedRequest) -> PreparedRequest:
        """The request to send; by default the same with the auth headers added.

        It may change the headers and the URL, never the body bytes.
        """
        headers = dict(request.headers)
        self.add_auth_headers(headers)
        return request._replace(headers=headers)

    def refresh_if_stale(self) -> None:
        """Before a request goes out: renew credentials about to expire.  The
        one auth step that may use the network; `Turn.prepare` (a dry run)
        does not call it."""

    def reload(self) -> bool:
        """After a 401: look for fresher credentials; True if found."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r})"


class BearerAuth(AuthProvider):
    """`Authorization: Bearer <token>`, plus `ChatGPT-Account-ID` when known."""

    kind = "api_key"

    def __init__(self, token: str, *, source: str = "the bearer token"):
        self._token = _header_secret(token, source)

    def add_auth_headers(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = f"Bearer {self._token}"
        if self.account_id:
            headers["ChatGPT-Account-ID"] = self.account_id


class ChatGptAuth(BearerAuth):
    """A ChatGPT login from `$CODEX_HOME/auth.json`, kept fresh as Codex keeps it.

    Before a request whose access token expires within five minutes (or,
    when its `exp` cannot be read, whose `last_refresh` is over eight days
    old) the tokens are refreshed.  After a 401 the file is read again, as
    another process may have refreshed it, and failing that refreshed.  A
    refresh token the server will never take again is an `AuthError` asking
    the user to sign in again, and nothing more is sent with it.
    """

    kind = "chatgpt"

    def __init__(self, path: Path, *, refresh_url: str | None = None) -> None:
        super().__init__("")
        self.path = path
        self.refresh_url = refresh_url or f"{_AUTH_ISSUER}/oauth/token"
        self._adopt(_read_credentials(path))

    def _adopt(self, data: dict[str, Any]) -> None:
        """Take the tokens of auth.json's `data`, remembered as secrets."""
        tokens = data.get("tokens")
        access = (_json_get(tokens, "access_token", str) or "").strip()
        if not access:
            raise AuthError(f'{self.path} has no "tokens.access_token"')
        for name in ("id_token", "refresh_token"):  # short ones are ignored
            _secret(_json_get(tokens, name, str) or "")
        account = (_json_get(tokens, "account_id", str) or "").strip()
        _header_secret(account, f"{self.path} tokens.account_id")
        self._token = _header_secret(access, f"{self.path} tokens.access_token")
        self.account_id = account or None
        self._last_refresh = _rfc3339(data.get("last_refresh"))

    def _stale(self) -> bool:
        exp = _json_get(_jwt_claims(self._token), "exp", float)
        now = time.time()
        if exp is not None:
            return exp - now < _REFRESH_BEFORE_EXPIRY
        last = self._last_refresh
        return last is not None and now - last > _REFRESH_AFTER

    def refresh_if_stale(self) -> None:
        if self._stale():
            self._refresh("proactive_expiry")

    def reload(self) -> bool:
        token = self._token
        try:
            self._adopt(_read_credentials(self.path))
        except (CodexError, OSError):
            return False
        return self._token != token or self._refresh("unauthorized")

    def _refresh(self, reason: str) -> bool:
        """Refresh the tokens unless another process just did; True when the
        access token changed.  Network trouble leaves things as they were."""
        before = self._token

        def refreshed(data: dict[str, Any] | None) -> dict[str, Any] | None:
            if data is None:
                raise AuthError(f"{self.path} is gone: sign in again")
            self._adopt(data)
            if self._token != before and not self._stale():
                return None  # someone else refreshed while we waited
            return self._renewed(data, reason)

        try:
            self._adopt(_update_credentials_file(self.path, refreshed))
        except OSError as exc:  # the lock or the file: the token may still do
            _log.warning("%s: cannot refresh the sign-in: %s", self.path, exc.strerror)
        return self._token != before

    def _renewed(self, data: dict[str, Any], reason: str) -> dict[str, Any] | None:
        """auth.json with the tokens the token endpoint sent back, or None
        when it could not be reached or answered oddly (a warning says why)."""
        tokens: dict[str, Any] = data["tokens"]  # `_adopt` checked it
        body = {
            "client_id": _CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": _json_get(tokens, "refresh_token", str),
            "refresh_reason": reason,
        }
        if not body["refresh_token"]:
            return None
        reply, status = _fetch_json(self.refresh_url, body)
        taken = status is not None and status < 300
        code = None if taken else _error_code(reply)
        if code in _DEAD_REFRESH_TOKEN:
            raise AuthError(
                "Your access token could not be refreshed because your "
                f"refresh token {_DEAD_REFRESH_TOKEN[code]}. Please sign in "
                "again (`codex login` or `codex-lite login`); "
                f"{self.path} was left as it was."
            )
        fresh = _sent_tokens(reply, self.refresh_url) if taken else {}
        if "access_token" not in fresh:
            _log.warning("token refresh failed: %s", _came(status, "an access token"))
            return None
        return {**data, "tokens": tokens | fresh, "last_refresh": _rfc3339_now()}


_AUTH_ISSUER = "https://auth.openai.com"
_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
_REFRESH_BEFORE_EXPIRY = 300  # seconds
_REFRESH_AFTER = 8 * 86400  # seconds: eight days
# The token endpoint's codes for a refresh token it will never take again,
# and what that means for the user.
_DEAD_REFRESH_TOKEN = {
    "refresh_token_expired": "has expired",
    "refresh_token_reused": "was already used",
    "refresh_token_invalidated": "was revoked",
    "invalid_grant": "is no longer valid",
}


def _error_code(reply: Any) -> str | None:
    """The code of a token endpoint's error, in either shape it comes in:
    `{"error": "<code>"}` or `{"error": {"code": "<code>"}}`."""
    error = _json_get(reply, "error")
    code = _json_get(error, "code") if isinstance(error, dict) else error
    return code if isinstance(code, str) else None


_TOKEN_NAMES = ("id_token", "access_token", "refresh_token")


def _sent_tokens(reply: Any, url: str) -> dict[str, str]:
    """The tokens a token endpoint at `url` sent (the non-empty strings of
    those named), its access token checked fit for a header."""
    tokens = {
        name: value for name in _TOKEN_NAMES if (value := _json_get(reply, name, str))
    }
    if "access_token" in tokens:
        source = f"the access token the sign-in service at {_redact_url(url)} sent"
        _header_secret(tokens["access_token"].strip(), source, error=AuthError)
    return tokens


def _fetch_json(
    url: str,
    fields: Mapping[str, str | None] | None = None,
    *,
    form: bool = False,
    bearer: str | None = None,
) -> tuple[Any, int | None]:
    """GET `url`, or POST `fields` to it as JSON or as a form: the parsed
    JSON answer (None if it is not JSON) and the status, or (None, None)
    when the service cannot be reached.  An answer over 1 MiB, or still
    coming after a minute, is an AuthError."""
    import requests
    import urllib3

    originator = _originator()
    headers = {"originator": originator, "User-Agent": _user_agent(originator)}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    body = None
    if fields is not None:
        kind = "application/x-www-form-urlencoded" if form else "application/json"
        headers["Content-Type"] = kind
        body = urllib.parse.urlencode(fields).encode() if form else _dumps(fields)
    answer, deadline = bytearray(), time.monotonic() + 60
    try:
        with requests.request(
            "POST" if body is not None else "GET",
            url,
            data=body,
            headers=headers,
            timeout=(15, 60),
            allow_redirects=False,
            stream=True,
        ) as response:
            for chunk in _body_chunks(response):
                answer += chunk
                if len(answer) > 1 << 20 or time.monotonic() > deadline:
                    raise AuthError(
                        f"the sign-in service at {_redact_url(url)} sent over "
                        "1 MiB or for over a minute: that is no sign-in answer"
                    )
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        _log.warning("%s: %s", _redact_url(url), _describe(exc))
        return None, None
    return _json_or_none(bytes(answer)), response.status_code


def _came(status: int | None, wanted: str) -> str:
    """What a sign-in request expected, and what came instead."""
    came = "no answer" if status is None else f"HTTP {status}"
    return f"expected HTTP 200 with {wanted}, got {came}" + (
        f" without {wanted}" if status == 200 else ""
    )


def _exchange_code(url: str, **grant: str | None) -> tuple[Any, dict[str, str]]:
    """Trade an authorization code (with `grant`'s other fields) at the token
    endpoint `url`: its answer and its three tokens, remembered as secrets."""
    form = {"grant_type": "authorization_code", **grant}
    if None in form.values():
        raise AuthError("no authorization code came back; nothing was saved")
    reply, status = _fetch_json(url, form, form=True)
    tokens = _sent_tokens(reply, url) if status == 200 else {}
    if len(tokens) < len(_TOKEN_NAMES):
        why = _error_code(reply) or _came(status, "the tokens")
        raise AuthError(f"the sign-in code was not taken: {why}; nothing was saved")
    for token in tokens.values():
        _secret(token)
    return reply, tokens


def _auth_issuer() -> str:
    override = os.environ.get("CODEX_LITE_AUTH_ISSUER", "").strip().rstrip("/")
    return override or _AUTH_ISSUER


def _device_login(path: Path) -> None:
    """Sign in with ChatGPT by a device code, for machines without a browser:
    the user opens a page elsewhere and types the code shown here."""
    issuer = _auth_issuer()
    api = f"{issuer}/api/accounts/deviceauth"
    start, status = _fetch_json(f"{api}/usercode", {"client_id": _CLIENT_ID})
    poll = {
        "device_auth_id": _json_get(start, "device_auth_id", str),
        "user_code": _json_get(start, "user_code", str),
    }
    if status != 200 or None in poll.values():
        raise AuthError(
            f"device sign-in could not start at {issuer}: {_came(status, 'a user code')}"
        )
    try:  # a string (as Codex's service sends it) or a number; huge is inf
        interval = float(str(_json_get(start, "interval") or 5))
    except ValueError:
        interval = 5.0
    if not interval < 15 * 60:  # NaN too: not one poll before the code expires
        raise AuthError(
            f"device sign-in: {issuer} sent a polling interval that is not "
            "a number of seconds under 15 minutes"
        )
    interval = min(max(interval, 1.0), 60.0)
    print(
        f"To sign in, open {issuer}/codex/device and enter this code: {poll['user_code']}\n"
        "(it expires in 15 minutes)",
        file=sys.stderr,
    )
    deadline = time.monotonic() + 15 * 60
    while True:
        time.sleep(interval)
        answer, status = _fetch_json(f"{api}/token", poll)
        if status == 200:
            break
        if status is not None and status < 500 and status not in (403, 404, 429):
            raise AuthError(f"device sign-in failed: {_came(status, 'a code')}")
        if time.monotonic() > deadline:
            raise AuthError("device sign-in timed out after 15 minutes")
    _, tokens = _exchange_code(
        f"{issuer}/oauth/token",
        code=_json_get(answer, "authorization_code", str),
        code_verifier=_json_get(answer, "code_verifier", str),
        redirect_uri=f"{issuer}/deviceauth/callback",
        client_id=_CLIENT_ID,
    )
    claims = _json_get(_jwt_claims(tokens["id_token"]), "https://api.openai.com/auth")
    login = {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {**tokens, "account_id": _json_get(claims, "chatgpt_account_id")},
        "last_refresh": _rfc3339_now(),
    }
    _update_credentials_file(path, lambda _: login, read=False)


def _update_credentials_file(
    path: Path,
    change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    *,
    read: bool = True,
) -> dict[str, Any]:
    """Read a JSON credentials file (auth.json, the plan's, the host id), let
    `change` say what it becomes, and write that back, all under an exclusive
    lock so that two processes never tear it or lose each other's refresh:
    what the file then holds ({} for none).  `change` gets None when there is
    no file (or `read` is off, for a new sign-in that replaces whatever is
    there), and returns None to leave it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The lock file's name is the one Codex leaves beside auth.json.
    fd = os.open(path.with_name(f"{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with _locked(fd):
            old = _read_credentials(path) if read and path.exists() else None
            new = change(old)
            if new is not None:
                _write_credentials(path, new)
    finally:
        os.close(fd)
    return new if new is not None else old or {}


def _write_credentials(path: Path, data: dict[str, Any]) -> None:
    """Write a credentials file owner-only (0600), by temporary file and rename;
    the caller holds its lock."""
    text = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
    target = path.resolve()  # a symlinked file stays a link
    try:
        _write_atomically(target, text, mode=0o600)
    except OSError:  # a file mounted on its own cannot be renamed
        target.write_bytes(text)  # over: write it in place


def _jwt_claims(token: str) -> dict[str, Any]:
    """A JWT's claims, read without checking its signature (as Codex reads
    them: only to know when it expires and whose it is)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(_unb64url(parts[1]))
    except (ValueError, RecursionError):  # binascii.Error is a ValueError
        return {}
    return claims if isinstance(claims, dict) else {}


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")


def _rfc3339(value: Any) -> float | None:
    """An RFC 3339 time (any number of fraction digits) as a Unix time."""
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    base, fraction, zone = match.groups()
    try:
        when = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return None
    return when.timestamp() + float(fraction or 0)


def _rfc3339_now() -> str:
    """Now as Codex writes `last_refresh`: UTC, nanoseconds, `Z`."""
    ns = time.time_ns()
    moment = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ns % 1_000_000_000:09d}Z"


def _read_credentials(path: Path) -> dict[str, Any]:
    fix = "make it readable"
    if path.name == "auth.json":  # an API key can stand in for Codex's sign-in
        fix += ", or set OPENAI_API_KEY"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise AuthError(f"{path} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise _file_error(path, exc, fix) from None
    if not isinstance(data, dict):
        raise AuthError(f"{path} must hold a JSON object")
    return data


class _BedrockBearerAuth(BearerAuth):
    """An Amazon Bedrock API key (`AWS_BEARER_TOKEN_BEDROCK`); it names its region."""

    kind = "bedrock_bearer"

    def __init__(self, token: str) -> None:
        super().__init__(token, source="environment variable AWS_BEARER_TOKEN_BEDROCK")
        self.region = _bedrock_token_region(token)


def _bedrock_token_region(token: str) -> str:
    """The region an Amazon Bedrock API key was made for.

    The key is `bedrock-api-key-` and a base64 presigned URL; the region is
    the third part of its `X-Amz-Credential`.
    """

    def invalid(reason: str) -> AuthError:
        return AuthError(f"Amazon Bedrock bearer token is invalid: {reason}")

    body = token.strip().removeprefix("bedrock-api-key-").split("&Version=", 1)[0]
    try:
        url = base64.b64decode(body + "=" * (-len(body) % 4), validate=True).decode()
    except ValueError:  # binascii.Error and UnicodeDecodeError among them
        raise invalid("not base64 after the bedrock-api-key- prefix") from None
    query = urllib.parse.parse_qs(url.partition("?")[2])
    parts = query.get("X-Amz-Credential", [""])[0].split("/")
    if len(parts) < 3 or not parts[2]:
        raise invalid("missing X-Amz-Credential, or one without a region")
    return parts[2]


# Current credentials and when they expire (a Unix time, or None), and what
# gives them.
_Credentials = tuple[AwsCredentials, float | None]
_CredentialSource = Callable[[], _Credentials]


class SigV4Auth(AuthProvider):
    """AWS SigV4 over the exact method, URL, headers and body bytes sent.

    Credentials come from `credentials`, a callable asked again when the
    ones it gave expire (a `credential_process` or botocore may rotate them).
    """

    kind = "sigv4"

    def __init__(
        self,
        credentials: _CredentialSource,
        *,
        region: str,
        service: str = "bedrock-mantle",
    ) -> None:
        self._resolve = credentials
        self.region = region
        self.service = service
        self._expires: float | None = 0.0  # long gone: resolved at once
        # Resolved now, so missing credentials show before anything is sent.
        self._current()

    def _current(self) -> AwsCredentials:
        """The credentials, asked for again when they expire within a minute;
        remembered as secrets, the parts that go into headers checked."""
        if self._expires is not None and time.time() > self._expires - 60:
            creds, self._expires = self._resolve()
            _header_secret(creds.access_key_id, "the AWS access key id")
            _secret(creds.secret_access_key)
            _header_secret(creds.session_token or "", "the AWS session token")
            self._credentials = creds
        return self._credentials

    def apply_auth(self, request: PreparedRequest) -> PreparedRequest:
        signed = sigv4_sign(
            request.method,
            request.url,
            {k: v for k, v in request.headers.items() if k.lower() != "session_id"},
            request.body,
            credentials=self._current(),
            region=self.region,
            service=self.service,
        )
        return request._replace(headers=signed)


def _aws_profile(
    profile: str | None, environ: Mapping[str, str]
) -> tuple[str, dict[str, str]]:
    """The profile's name (`AWS_PROFILE` or "default" when none is given) and
    its settings: the credentials file over the config file."""
    import configparser

    profile = profile or environ.get("AWS_PROFILE", "").strip() or "default"
    credentials = environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    config = environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
    config_section = "default" if profile == "default" else f"profile {profile}"
    merged: dict[str, str] = {}
    for name, section in ((config, config_section), (credentials, profile)):
        path = Path(name).expanduser()
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as exc:
            raise AuthError(f"{path}: cannot parse: {exc}") from None
        except UnicodeDecodeError:
            raise AuthError(f"{path}: not UTF-8 text") from None
        if parser.has_section(section):
            merged.update(parser[section])
    return profile, merged


def _credential_process(command: str, profile: str) -> _Credentials:
    import shlex
    import subprocess

    process = f"credential_process of AWS profile {profile!r}"
    errors = (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError)
    try:
        done = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=60, check=True
        )
        data = json.loads(done.stdout)
        creds = AwsCredentials(
            data["AccessKeyId"], data["SecretAccessKey"], data.get("SessionToken")
        )
    except errors as exc:
        raise AuthError(f"{process} failed: {type(exc).__name__}") from None
    expires = _rfc3339(data["Expiration"]) if "Expiration" in data else None
    if "Expiration" in data and expires is None:
        raise AuthError(f"{process} gave an Expiration that is not an RFC 3339 time")
    return creds, expires


def aws_credentials_resolver(
    profile: str | None = None, environ: Mapping[str, str] | None = None
) -> _CredentialSource:
    """A callable giving `(AwsCredentials, expiry or None)` from the usual places.

    In order: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`;
    the shared credentials and config files for the profile (with
    `credential_process`); then, only if botocore is installed, its chain.
    """
    env = os.environ if environ is None else environ

    def resolve() -> _Credentials:
        key = env.get("AWS_ACCESS_KEY_ID", "").strip()
        secret = env.get("AWS_SECRET_ACCESS_KEY", "").strip()
        if key and secret:
            token = env.get("AWS_SESSION_TOKEN", "").strip() or None
            return AwsCredentials(key, secret, token), None
        name, settings = _aws_profile(profile, env)
        key = settings.get("aws_access_key_id", "")
        secret = settings.get("aws_secret_access_key", "")
        if key and secret:
            token = settings.get("aws_session_token") or None
            return AwsCredentials(key, secret, token), None
        if settings.get("credential_process"):
            return _credential_process(settings["credential_process"], name)
        try:
            botocore_session = importlib.import_module("botocore.session")
        except ImportError:
            raise AuthError(
                f"no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                f"or configure AWS profile {name!r}"
            ) from None
        found = botocore_session.Session(profile=name).get_credentials()
        if found is None:
            raise AuthError(f"no AWS credentials found for profile {name!r}")
        frozen = found.get_frozen_credentials()
        return AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token), None

    return resolve


# --- Sign in with ChatGPT (plan) --------------------------------------------
#
# OpenAI's Sign in with ChatGPT for open-source clients, to spend a ChatGPT
# plan on the public Responses API: apart from Codex's sign-in above.  A
# client id issued to codex-lite for the account, tokens in codex-lite's own
# file (Codex would refresh them with its client id and burn the rotating
# refresh token), requests with the bearer token alone.

_PLAN_SCOPE = "chatgpt.tokens.use.direct"
_PLAN_SCOPES = f"openid profile email offline_access resource.invoke {_PLAN_SCOPE}"
_PLAN_API = "https://api.openai.com/v1"  # the `resource` every grant names
_PLAN_FILE = "codex-lite-chatgpt-plan.json"
_PLAN_HOST_FILE = "codex-lite-host-id.json"  # never carried to another host
_DYNAMIC_CLIENT = "dynamic_agent_client"  # asks for a registration
_ISSUED_CLIENT = re.compile(r"[A-Za-z0-9_-]{1,200}")
_HOST_ID_FORMS = ("urn:uuid:", "urn:ietf:params:oauth:jwk-thumbprint:", "did:key:")
_SIGN_IN = "sign in again: codex-lite login --chatgpt-plan"
_DEAD_PLAN_TOKEN = _DEAD_REFRESH_TOKEN | {
    "invalid_refresh_token": "is not valid",
    "token_expired": "has expired",
}
# What a sign-out forgets; the client id and the account stay for the next.
_PLAN_SESSION = (*_TOKEN_NAMES, "token_type", "expires_in", "scopes", "saved_at")
# The DER DigestInfo prefix of a SHA-256 digest (RFC 8017 §9.2, note 1).
_SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def _discover(issuer: str) -> dict[str, str]:
    """The endpoints the issuer's discovery document names, each at the issuer."""
    document, status = _fetch_json(f"{issuer}/.well-known/openid-configuration")
    names = ("authorization_endpoint", "token_endpoint", "revocation_endpoint")
    found = {end: _json_get(document, end, str) or "" for end in (*names, "jwks_uri")}
    at_issuer = all(url.startswith(f"{issuer}/") for url in found.values())
    if _json_get(document, "issuer") != issuer or not at_issuer:
        raise AuthError(f"no discovery document at {issuer}: {_came(status, 'it')}")
    return found


def _plan_host_id(home: Path) -> str:
    """This host's `ext_agent_host_id`: made once, a `urn:uuid:`, and kept in
    a file of its own, so credentials carried to another host leave its id."""
    import uuid

    def keep(data: dict[str, Any] | None) -> dict[str, Any] | None:
        if (_json_get(data, "ext_agent_host_id", str) or "").startswith(_HOST_ID_FORMS):
            return None
        return {"ext_agent_host_id": f"urn:uuid:{uuid.uuid4()}"}

    kept = _update_credentials_file(home / _PLAN_HOST_FILE, keep)
    return str(kept["ext_agent_host_id"])


def _rs256_valid(token: str, jwks: Any) -> bool:
    """Whether a JWT is signed RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC
    8017 §8.2.2) by a key of the JWKS of 2048 bits or more."""
    import hashlib

    def number(text: str) -> int:
        return int.from_bytes(_unb64url(text), "big")

    signed, _, signature = token.rpartition(".")
    digest = _SHA256_INFO + hashlib.sha256(signed.encode()).digest()
    for key in _json_get(jwks, "keys", list) or []:
        try:
            header = json.loads(_unb64url(signed.partition(".")[0]))
            n, e, sig = number(key["n"]), number(key["e"]), number(signature)
        except (KeyError, TypeError, ValueError, RecursionError):
            continue
        size = (n.bit_length() + 7) // 8
        padded = b"\x01" + b"\xff" * (size - len(digest) - 3) + b"\x00" + digest
        if (
            _json_get(header, "alg") == "RS256"
            and key.get("kid") == _json_get(header, "kid")
            and n.bit_length() >= 2048
            and sig < n
            and pow(sig, e, n) == int.from_bytes(padded, "big")
        ):
            return True
    return False


def _checked_id_token(token: str, record: dict[str, Any], nonce: str) -> dict[str, Any]:
    """The claims of an ID token whose signature (by a key the issuer
    publishes), issuer, audience (the client id), expiry and nonce are right;
    else an AuthError naming what is wrong."""
    claims = _jwt_claims(token)
    checks = {
        "signature": _rs256_valid(token, _fetch_json(record["jwks_uri"])[0]),
        "issuer": claims.get("iss") == record["issuer"],
        "audience": claims.get("aud") in (record["client_id"], [record["client_id"]]),
        "expiry": (_json_get(claims, "exp", float) or 0) > time.time() - 5,
        "nonce": claims.get("nonce") == nonce,
        "subject": bool(_json_get(claims, "sub", str)),
    }
    if wrong := [name for name, right in checks.items() if not right]:
        raise AuthError(f"bad ID token ({', '.join(wrong)}); nothing was saved")
    return claims


def _await_callback(listener: Any, state: str, deadline: float) -> dict[str, str]:
    """The query of the browser's `GET /auth/callback` carrying `state`.
    Other requests are answered 404, another state 400, and the wait goes on."""
    import http.client

    host = f"127.0.0.1:{listener.getsockname()[1]}"
    while (left := deadline - time.monotonic()) > 0:
        listener.settimeout(left)
        try:  # a timeout too: then the loop's condition ends the wait
            connection = listener.accept()[0]
            with connection, connection.makefile("rb") as reader:
                connection.settimeout(10)
                request = reader.readline(65536).decode("latin-1")
                method, target, _ = request.split(" ", 2)
                hosts = http.client.parse_headers(reader).get_all("Host")
                path, _, query = target.partition("?")
                pairs = urllib.parse.parse_qs(query, keep_blank_values=True)
                if method != "GET" or path != "/auth/callback" or hosts != [host]:
                    status, page = "404 Not Found", "Not found."
                elif pairs.get("state") != [state] or max(map(len, pairs.values())) > 1:
                    status, page = "400 Bad Request", "Not the sign-in awaited."
                else:
                    status, page = "200 OK", "Back to codex-lite: close this tab."
                body = f"<!doctype html><title>codex-lite</title><p>{page}".encode()
                connection.sendall(
                    f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                    f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                    "Referrer-Policy: no-referrer\r\nConnection: close\r\n"
                    "Content-Security-Policy: default-src 'none'\r\n\r\n".encode()
                    + body
                )
        except (OSError, ValueError, http.client.HTTPException):
            continue
        if status == "200 OK":
            return {name: values[0] for name, values in pairs.items()}
    raise AuthError("no sign-in came back in time; nothing was saved")


def _plan_session(reply: Any, tokens: dict[str, str], scopes: Any) -> dict[str, Any]:
    """A token answer as the plan's file keeps it, all replaced together: the
    tokens, their lifetime, the scopes granted (`scopes` when it names none)."""
    scope = _json_get(reply, "scope", str)
    return tokens | {
        "token_type": _json_get(reply, "token_type", str) or "Bearer",
        "expires_in": _json_get(reply, "expires_in", float) or 3600,
        "scopes": scope.split() if scope else scopes,
        "saved_at": _rfc3339_now(),
    }


def sign_in_with_chatgpt(
    home: Path | None = None,
    *,
    open_url: Callable[[str], Any] | None = None,
    port: int = 1455,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Sign in with ChatGPT for plan usage, by the system browser and a
    listener on 127.0.0.1 (`open_url` opens the page; its address is also
    printed for a browser elsewhere on this machine).  The first sign-in
    registers codex-lite for the account; later ones use the client id
    issued then.  Returns the account (email, subject, client id) and
    whether plan usage was granted; the tokens go to codex-lite's own file
    in `home` (the Codex home), owner-only."""
    import hashlib
    import secrets
    import socket
    import webbrowser

    home = home if home is not None else default_codex_home()
    path, issuer = home / _PLAN_FILE, _auth_issuer()
    ends = _discover(issuer)
    kept = _read_credentials(path) if path.exists() else {}
    known = _json_get(kept, "client_id", str) if kept.get("issuer") == issuer else None
    refused = "scopes" in kept and _PLAN_SCOPE not in kept["scopes"]
    verifier, state, nonce = (secrets.token_urlsafe(48) for _ in range(3))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    try:
        listener = socket.create_server(("127.0.0.1", port))
    except OSError:  # taken: any free port
        listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        redirect = f"http://127.0.0.1:{listener.getsockname()[1]}/auth/callback"
        query = {
            "client_id": known or _DYNAMIC_CLIENT,
            "agent_name_hint": None if known else "codex-lite",
            "ext_agent_host_id": _plan_host_id(home),
            "login_hint": known and _json_get(kept, "email", str),
            "response_type": "code",
            "redirect_uri": redirect,
            "scope": _PLAN_SCOPES,
            "resource": _PLAN_API,
            "state": state,
            "nonce": nonce,
            "code_challenge_method": "S256",
            "code_challenge": challenge.rstrip(b"=").decode(),
            # plan usage was refused before: signing in again turns it on
            "prompt": "consent" if known and refused else None,
        }
        query = {name: value for name, value in query.items() if value}
        url = f"{ends['authorization_endpoint']}?{urllib.parse.urlencode(query)}"
        print(f"Continue with ChatGPT in the browser, at:\n{url}", file=sys.stderr)
        (open_url or webbrowser.open)(url)
        answer = _await_callback(listener, state, time.monotonic() + timeout)
    if error := answer.get("error"):
        raise AuthError(f"the sign-in was not completed ({error}); nothing was saved")
    client_id = answer.get("client_id", known)
    if known and client_id != known:
        raise AuthError("the sign-in came back for another client; nothing was saved")
    if client_id == _DYNAMIC_CLIENT or not _ISSUED_CLIENT.fullmatch(client_id or ""):
        raise AuthError("no usable client id came back: the registration is incomplete")
    record: dict[str, Any] = {"issuer": issuer, "client_id": client_id, **ends}
    if not known and "access_token" not in kept:  # no tokens to lose
        # kept before the exchange: a failed one registers nothing new
        _update_credentials_file(path, lambda _: record, read=False)
    reply, tokens = _exchange_code(
        ends["token_endpoint"],
        client_id=client_id,
        code=answer.get("code"),
        code_verifier=verifier,
        redirect_uri=redirect,
        resource=_PLAN_API,
    )
    claims = _checked_id_token(tokens["id_token"], record, nonce)
    if known and kept.get("subject") not in (None, claims["sub"]):
        raise AuthError("that is another account than this client's; nothing was saved")
    record |= {"email": _json_get(claims, "email", str), "subject": claims["sub"]}
    record |= _plan_session(reply, tokens, [])
    _update_credentials_file(path, lambda _: record, read=False)
    account = {name: record[name] for name in ("email", "subject", "client_id")}
    return account | {"plan_usage": _PLAN_SCOPE in record["scopes"]}


def _signed_out(record: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in record.items() if name not in _PLAN_SESSION}


class ChatGptPlanAuth(ChatGptAuth):
    """ChatGPT plan usage from codex-lite's own file (`sign_in_with_chatgpt`):
    the bearer token alone, kept fresh as `ChatGptAuth` keeps Codex's (five
    minutes before it expires, or after a 401; one refresh for two
    processes).  A refresh token the service will never take again signs out
    (the client id and account are kept) with an AuthError asking to sign in
    again; without the `chatgpt.tokens.use.direct` scope nothing is sent."""

    kind = "chatgpt_plan"

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise AuthError(f"not signed in for ChatGPT plan usage: {_SIGN_IN}")
        super().__init__(path)

    def _adopt(self, record: dict[str, Any]) -> None:
        access = (_json_get(record, "access_token", str) or "").strip()
        if not access:
            raise AuthError(f"{self.path} holds no tokens (signed out): {_SIGN_IN}")
        for name in ("id_token", "refresh_token"):
            _secret(_json_get(record, name, str) or "")
        if _PLAN_SCOPE not in (_json_get(record, "scopes", list) or ()):
            raise AuthError(
                f"ChatGPT plan usage is not granted ({_PLAN_SCOPE}), so nothing "
                f"is sent on it: {_SIGN_IN} and allow it, or use an API key"
            )
        self._token = _header_secret(access, f"{self.path} access_token")
        self.record = record

    def _stale(self) -> bool:
        saved_at = _rfc3339(self.record.get("saved_at")) or 0.0
        expires = saved_at + (_json_get(self.record, "expires_in", float) or 0)
        return expires - time.time() < _REFRESH_BEFORE_EXPIRY

    def _renewed(self, record: dict[str, Any], reason: str) -> dict[str, Any] | None:
        url = _json_get(record, "token_endpoint", str) or ""
        grant = {
            "grant_type": "refresh_token",
            "client_id": _json_get(record, "client_id", str),
            "refresh_token": _json_get(record, "refresh_token", str),
            "resource": _PLAN_API,
        }
        reply, status = _fetch_json(url, grant, form=True)
        code = _error_code(reply)
        if code in _DEAD_PLAN_TOKEN:  # signed out on disk (the lock is ours)
            _write_credentials(self.path, _signed_out(record))
            raise AuthError(f"Your refresh token {_DEAD_PLAN_TOKEN[code]}: {_SIGN_IN}")
        if code == "invalid_client":
            raise AuthError(f"{url} refused the client id (invalid_client): {_SIGN_IN}")
        fresh = _sent_tokens(reply, url) if status == 200 else {}
        if "access_token" not in fresh:
            _log.warning("token refresh failed: %s", _came(status, "a token"))
            return None
        fresh.pop("id_token", None)  # the signed-in one names the account
        return record | _plan_session(reply, fresh, record.get("scopes"))

    def models(self, base_url: str = _PLAN_API) -> list[dict[str, Any]]:
        """The models the plan lists for the account (`GET /models`), in the
        server's order: those it shows (`visibility: "list"`)."""
        self.refresh_if_stale()
        url = f"{base_url.rstrip('/')}/models"
        reply, status = _fetch_json(url, bearer=self._token)
        if status != 200:
            raise ApiError(f"{_redact_url(url)}: {_came(status, 'the models')}")
        listed = _json_get(reply, "models", list) or []
        return [m for m in listed if _json_get(m, "visibility") == "list"]


def _plan_sign_out(path: Path) -> bool | None:
    """Revoke the refresh token (three tries), then forget the tokens,
    keeping the client id and the account for the next sign-in: whether
    the service confirmed the revocation, None when not signed in."""
    confirmed: list[bool] = []

    def sign_out(data: dict[str, Any] | None) -> dict[str, Any] | None:
        revoke = {
            "token": _json_get(data, "refresh_token", str),
            "token_type_hint": "refresh_token",
            "client_id": _json_get(data, "client_id", str),
        }
        if data is None or not revoke["token"]:
            return None
        url = _json_get(data, "revocation_endpoint", str) or ""
        for attempt in range(3):
            time.sleep(attempt * 0.5)
            _, status = _fetch_json(url, revoke, form=True)
            if status is not None and status < 500:
                break
        confirmed.append(status == 200)
        return _signed_out(data)

    if path.exists():
        _update_credentials_file(path, sign_out)
    return confirmed[0] if confirmed else None


# --- Providers --------------------------------------------------------------
#
# `ProviderInfo` is a `[model_providers.<id>]` table as written;
# `ModelProvider` is what it means at run time: URLs, headers, retry
# settings and the auth to use.

_RETRY_CAP = 100
# fmt: off
_AZURE_MARKERS = (
    "openai.azure.", "cognitiveservices.azure.", "aoai.azure.", "azure-api.",
    "azurefd.", "windows.net/openai",
)
_BEDROCK_MANTLE_REGIONS = (
    "us-east-2", "us-east-1", "us-west-2", "ap-southeast-3", "ap-south-1",
    "ap-northeast-1", "eu-central-1", "eu-west-1", "eu-west-2", "eu-south-1",
    "eu-north-1", "sa-east-1",
)
# fmt: on
_CHATGPT_BASE_URL = "https://chatgpt.com/backend-api/codex"
_OPENAI_BASE_URL = "https://api.openai.com/v1"


class AwsAuthInfo(typing.NamedTuple):
    profile: str | None = None
    region: str | None = None


# Provider keys that choose another kind of auth than AWS, or a transport
# Bedrock does not have.
# fmt: off
_NOT_WITH_AWS = (
    "env_key", "experimental_bearer_token", "auth", "requires_openai_auth",
    "supports_websockets",
)
# fmt: on


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderInfo:
    """One model provider as configured (`[model_providers.<id>]`)."""

    name: str = ""
    base_url: str | None = field(default=None, repr=False)  # may hold a password
    env_key: str | None = None
    env_key_instructions: str | None = None
    experimental_bearer_token: str | None = field(default=None, repr=False)
    aws: AwsAuthInfo | None = None
    wire_api: str = "responses"
    # These may carry keys (an `api-key` query or header): kept out of repr.
    query_params: dict[str, str] | None = field(default=None, repr=False)
    http_headers: dict[str, str] | None = field(default=None, repr=False)
    env_http_headers: dict[str, str] | None = None
    request_max_retries: int | None = None
    stream_max_retries: int | None = None
    stream_idle_timeout_ms: int | None = None
    websocket_connect_timeout_ms: int | None = None
    requires_openai_auth: bool = False
    supports_websockets: bool = False
    responses_lite: bool = False

    @classmethod
    def from_toml(
        cls, table: Mapping[str, Any], *, where: str = "model_provider"
    ) -> ProviderInfo:
        """Validate a provider table; errors name the key at fault."""
        values = {
            key: _typed(table, key, kind, f"{where}.{key}")
            for key, kind in _provider_keys().items()
            if table.get(key) is not None
        }
        for name, value in values.items():
            if name.endswith("_ms") and not 0 < value <= _MAX_IDLE_MS:
                raise ConfigError(
                    f"{where}.{name} must be from 1 to {_MAX_IDLE_MS} (a day), "
                    f"not {value}"
                )
            if not isinstance(value, dict):
                continue
            for key, entry in value.items():  # query parameters or headers
                _typed(value, key, str, f"{where}.{name}.{key}")
                if name == "http_headers" and ("\r" in entry or "\n" in entry):
                    raise ConfigError(f"{where}.{name}.{key} must not contain CR or LF")
                if name != "query_params" and not _HEADER_NAME.fullmatch(key):
                    raise ConfigError(f"{where}.{name}: {key!r} is not a header name")
        if values.get("wire_api", "responses") != "responses":
            if values["wire_api"] == "chat":
                raise ConfigError(
                    f'{where}.wire_api: `wire_api = "chat"` is no longer supported.\n'
                    'How to fix: set `wire_api = "responses"` in your provider config.'
                )
            raise ConfigError(f'{where}.wire_api must be "responses"')
        if "aws" in table:
            aws = _typed(table, "aws", dict, f"{where}.aws")
            values["aws"] = AwsAuthInfo(
                profile=_typed(aws, "profile", str, f"{where}.aws.profile"),
                region=_typed(aws, "region", str, f"{where}.aws.region"),
            )
            clashes = [k for k in _NOT_WITH_AWS if table.get(k) not in (None, False)]
            if clashes:
                raise ConfigError(
                    f"{where}: provider aws cannot be combined with {', '.join(clashes)}"
                )
        if table.get("auth") is not None:
            raise ConfigError(
                f"{where}.auth: command-backed auth is not supported here; "
                "use env_key or experimental_bearer_token"
            )
        return cls(**values)


_MAX_IDLE_MS = 86_400_000


def _provider_keys() -> dict[str, type[Any]]:
    """The keys of a provider table and their TOML types, as `ProviderInfo`
    declares them (`aws`, a table of its own, is read apart)."""
    keys = {}
    for name, hint in typing.get_type_hints(ProviderInfo).items():
        if isinstance(hint, types.UnionType):  # `X | None`
            hint = typing.get_args(hint)[0]
        keys[name] = typing.get_origin(hint) or hint
    del keys["aws"]
    return keys


# An RFC 9110 token: what a header name may be.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _built_in_providers(
    environ: Mapping[str, str] | None = None, openai_base_url: str | None = None
) -> dict[str, ProviderInfo]:
    """The providers Codex has built in; the openai one's base URL is
    `openai_base_url` (the config key) over `OPENAI_BASE_URL`, as Codex
    reads only the key when it is set."""
    env = os.environ if environ is None else environ
    openai_base = (openai_base_url or "").strip() or env.get("OPENAI_BASE_URL", "")
    oss_port = env.get("CODEX_OSS_PORT", "").strip()

    def oss(port: int) -> ProviderInfo:
        base = env.get("CODEX_OSS_BASE_URL", "").strip()
        return ProviderInfo(
            name="gpt-oss", base_url=base or f"http://localhost:{oss_port or port}/v1"
        )

    return {
        "openai": ProviderInfo(
            name="OpenAI",
            base_url=openai_base.strip() or None,
            http_headers={"version": __version__},
            env_http_headers={
                "OpenAI-Organization": "OPENAI_ORGANIZATION",
                "OpenAI-Project": "OPENAI_PROJECT",
            },
            requires_openai_auth=True,
            supports_websockets=True,
        ),
        # Sign in with ChatGPT's plan usage; another base URL only by a
        # provider table of this name
        "chatgpt-plan": ProviderInfo(name="ChatGPT plan"),
        "amazon-bedrock": ProviderInfo(name="Amazon Bedrock", aws=AwsAuthInfo()),
        "ollama": oss(11434),
        "lmstudio": oss(1234),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How hard to try.  Delays are in seconds.

    Requests are retried on 5xx, 408 and transport errors, with `base_delay`
    doubling and ±10% jitter; 409 and 429 only when the server says when.
    A stream that breaks is sent again up to `stream_max_retries` times.
    The budgets nest: each stream attempt is a request with its own retries,
    so a turn sends at most (request_max_retries + 1) * (stream_max_retries
    + 1) requests, 30 by default; twice that when a WebSocket spent its
    budget and HTTP gets one of its own.  A wait the server asks for longer than
    `max_retry_after` is not waited: the error is raised.  `turn_timeout`,
    when set, bounds the whole turn, retries and waits included.
    """

    request_max_retries: int = 4
    stream_max_retries: int = 5
    base_delay: float = 0.2
    max_retry_after: float = 120.0
    connect_timeout: float = 15.0
    websocket_connect_timeout: float = 15.0  # the whole handshake
    stream_idle_timeout: float = 300.0
    turn_timeout: float | None = None

    def backoff(self, attempt: int) -> float:
        """The delay before retry number `attempt` (1 for the first retry)."""
        jitter = 0.9 + int.from_bytes(os.urandom(4), "big") % 20_001 / 100_000
        return float(self.base_delay * 2 ** (attempt - 1) * jitter)


class ModelProvider:
    """A configured provider at run time.

    `environ` and `home` (the Codex home, for auth.json) default to the
    process environment and `default_codex_home()`.
    """

    def __init__(
        self,
        provider_id: str,
        info: ProviderInfo,
        *,
        environ: Mapping[str, str] | None = None,
        home: Path | None = None,
    ) -> None:
        self.id = provider_id
        self.info = info
        self.environ = os.environ if environ is None else environ
        self.home = home if home is not None else default_codex_home()
        self.is_openai = info.name == "OpenAI"
        self.is_amazon_bedrock = info.name == "Amazon Bedrock"
        self.is_chatgpt_plan = info.name == "ChatGPT plan"
        base = (info.base_url or "").lower()
        azure = any(marker in base for marker in _AZURE_MARKERS)
        self.is_azure = info.name.lower() == "azure" or azure

    def __repr__(self) -> str:
        return f"ModelProvider({self.id!r}, name={self.info.name!r})"

    def retry_policy(self) -> RetryPolicy:
        changes: dict[str, Any] = {}
        for name in ("request_max_retries", "stream_max_retries"):
            if (retries := getattr(self.info, name)) is not None:
                changes[name] = min(retries, _RETRY_CAP)
        for name in ("stream_idle_timeout", "websocket_connect_timeout"):
            if (milliseconds := getattr(self.info, f"{name}_ms")) is not None:
                changes[name] = milliseconds / 1000
        return RetryPolicy(**changes)

    def _env(self, name: str) -> str | None:
        return self.environ.get(name, "").strip() or None

    def headers(self) -> dict[str, str]:
        """The provider's static headers and those taken from the environment.

        All their values count as secrets: an `Ocp-Apim-Subscription-Key`
        or an `X-Auth` header is as secret as an `Authorization` one.
        """
        headers = dict(self.info.http_headers or {})
        for static in headers.values():
            _secret(static)
        for header, var in (self.info.env_http_headers or {}).items():
            if value := self._env(var):
                headers[header] = _header_secret(value, f"environment variable {var}")
        return headers

    def auth(self) -> AuthProvider:
        """The credentials for the next request (wire-spec §6 and §7 order)."""
        info = self.info
        if self.is_chatgpt_plan:  # the plan alone: never an API key instead
            return ChatGptPlanAuth(self.home / _PLAN_FILE)
        if info.env_key:
            if token := self._env(info.env_key):
                return BearerAuth(token, source=f"environment variable {info.env_key}")
            hint = f" {info.env_key_instructions}" if info.env_key_instructions else ""
            raise AuthError(f"environment variable {info.env_key} is not set.{hint}")
        if bearer := (info.experimental_bearer_token or "").strip():
            source = f"model_providers.{self.id}.experimental_bearer_token"
            return BearerAuth(bearer, source=source)
        if self.is_amazon_bedrock or info.aws is not None:
            if token := self._env("AWS_BEARER_TOKEN_BEDROCK"):
                return _BedrockBearerAuth(token)
            profile = (info.aws or AwsAuthInfo()).profile
            resolver = aws_credentials_resolver(profile, self.environ)
            return SigV4Auth(resolver, region=self._aws_region())
        if not info.requires_openai_auth:
            return AuthProvider()
        for var in ("CODEX_API_KEY", "OPENAI_API_KEY"):
            if key := self._env(var):
                return BearerAuth(key, source=f"environment variable {var}")
        path = self.home / "auth.json"
        if not os.path.exists(path):  # never raises, whatever the home's mode
            raise AuthError(
                f"no OpenAI credentials: set OPENAI_API_KEY (or CODEX_API_KEY), "
                f"or log in with Codex to create {path}"
            )
        data = _read_credentials(path)
        api_key = (_json_get(data, "OPENAI_API_KEY", str) or "").strip()
        api_key_mode = data.get("auth_mode") in ("apikey", "api_key")
        if api_key and (api_key_mode or not data.get("tokens")):
            return BearerAuth(api_key, source=f"{path} OPENAI_API_KEY")
        return ChatGptAuth(
            path, refresh_url=self._env("CODEX_REFRESH_TOKEN_URL_OVERRIDE")
        )

    def _aws_region(self) -> str:
        aws = self.info.aws or AwsAuthInfo()
        from_env = self._env("AWS_REGION") or self._env("AWS_DEFAULT_REGION")
        if region := (aws.region or "").strip() or from_env:
            return region
        profile, settings = _aws_profile(aws.profile, self.environ)
        if region := settings.get("region", "").strip():
            return region
        raise ConfigError(
            "AWS SDK config did not resolve a region: set aws.region for provider "
            f"{self.id!r}, AWS_REGION, or region in the {profile!r} AWS profile"
        )

    def base_url(self, auth: AuthProvider) -> str:
        if self.info.base_url:
            return self.info.base_url
        if self.is_openai or self.is_chatgpt_plan:
            return _CHATGPT_BASE_URL if auth.kind == "chatgpt" else _OPENAI_BASE_URL
        if self.is_amazon_bedrock:
            region = getattr(auth, "region", None) or self._aws_region()
            if region not in _BEDROCK_MANTLE_REGIONS:
                raise ConfigError(
                    f"Amazon Bedrock Mantle does not support region `{region}`"
                )
            return f"https://bedrock-mantle.{region}.api.aws/openai/v1"
        raise ConfigError(f"model provider {self.id!r} has no base_url")

    def url_for_path(self, path: str, auth: AuthProvider) -> str:
        """The URL of an endpoint, `query_params` percent-encoded after it."""
        base = self.base_url(auth)
        try:
            password = urllib.parse.urlsplit(base).password
        except ValueError:
            raise ConfigError(
                f"model provider {self.id!r}: base_url is not a valid URL"
            ) from None
        _secret(password or "")
        url = f"{base.rstrip('/')}/{path.lstrip('/')}"
        if params := self.info.query_params:
            for key, value in params.items():
                if _SECRET_QUERY.search(key):
                    _secret(value)
                    _secret(urllib.parse.quote(value, safe=""))
            url += "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        return url


# --- Config -----------------------------------------------------------------
#
# The same `$CODEX_HOME/config.toml` Codex reads.  Keys we do not use are
# ignored; a key we use with the wrong type is an error naming file and key.

DEFAULT_MODEL = "gpt-5-codex"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Settings after file, profile and `-c` overrides are merged."""

    home: Path
    path: Path
    model: str = DEFAULT_MODEL
    model_provider: str = "openai"
    providers: dict[str, ProviderInfo] = field(default_factory=dict)
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None
    verbosity: str | None = None
    service_tier: str | None = None
    features: dict[str, bool] = field(default_factory=dict)
    profile: str | None = None
    model_auto_compact_token_limit: int | None = None

    def provider(self, environ: Mapping[str, str] | None = None) -> ModelProvider:
        if (info := self.providers.get(self.model_provider)) is None:
            raise ConfigError(
                f"{self.path}: model_provider {self.model_provider!r} is not defined "
                f"(known: {', '.join(sorted(self.providers))})"
            )
        return ModelProvider(self.model_provider, info, environ=environ, home=self.home)


def _read_toml(file: Path, name: Path, problem: str = "") -> tuple[str, dict[str, Any]]:
    """A TOML file's text and table, empty when it does not exist; one that
    cannot be read or parsed is a ConfigError naming `name`."""
    import tomllib

    try:
        text = file.read_text(encoding="utf-8") if file.exists() else ""
        return text, tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: {problem}{exc}") from None
    except OSError as exc:
        raise _file_error(name, exc, "make it readable, or set CODEX_HOME") from None


def _parse_override(text: str) -> tuple[list[str], Any]:
    """`key.path=value`: the value as TOML, else as a plain string (Codex's rule)."""
    import tomllib

    key, eq, raw = text.partition("=")
    if not eq or not key.strip():
        raise ConfigError(f"-c {text!r}: expected key=value")
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return [part.strip() for part in key.strip().split(".")], value


def _merge_tables(base: dict[str, Any], layer: Mapping[str, Any]) -> None:
    """Codex's layering of config files: tables merge key by key, other values replace."""
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge_tables(base[key], value)
        else:
            base[key] = value


def load_config(
    codex_home: Path | str | None = None,
    *,
    profile: str | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read `config.toml` from the Codex home, as Codex 0.169+ does: with a
    profile, `NAME.config.toml` beside it goes over it; `-c` overrides over both."""

    home = default_codex_home() if codex_home is None else Path(codex_home).expanduser()
    path = home / "config.toml"
    if profile is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", profile):
        raise ConfigError(
            f"invalid profile {profile!r}: pass a plain name such as 'work' "
            f"(it reads {home}/NAME.config.toml)"
        )
    settings: dict[str, Any] = {}
    source: dict[str, str] = {}  # the file (or -c) each top-level key came from
    for file in (path, home / f"{profile}.config.toml") if profile else (path,):
        doc = _read_toml(file, file)[1]
        legacy = "profile" in doc or profile in (_json_get(doc, "profiles", dict) or {})
        if file == path and profile and legacy:
            raise ConfigError(
                f"{path}: -p {profile} cannot be used while this file has a legacy "
                f'profile = "..." or [profiles.{profile}] (Codex refuses it too); '
                f"move those settings into {home / f'{profile}.config.toml'}"
            )
        _merge_tables(settings, doc)
        source.update(dict.fromkeys(doc, str(file)))
    for keys, value in map(_parse_override, overrides):
        table = settings
        for key in keys[:-1]:  # tables on the way made or replaced
            if not isinstance(table.get(key), dict):
                table[key] = {}
            table = table[key]
        table[keys[-1]] = value
        source[keys[0]] = "-c"
    # Codex 0.169+ refuses a legacy profile rather than pick it
    if (old := settings.get("profile")) is not None:
        raise ConfigError(
            f'{source["profile"]}: legacy profile = "{old}" is no longer supported '
            f"(Codex refuses it too); move [profiles.{old}] into "
            f"{home / f'{old}.config.toml'} and pass -p {old}"
        )

    def where(key: str) -> str:
        return f"{source.get(key, path)}: config"

    def get(key: str, kind: type[Any] = str) -> Any:
        return _typed(settings, key, kind, f"{where(key)}.{key}")

    tier = get("service_tier")
    if tier not in (None, "fast", "flex"):
        raise ConfigError(
            f'{where("service_tier")}.service_tier must be "fast" or "flex", '
            f"not {tier!r}"
        )
    features = get("features", dict) or {}
    for name in features:
        _typed(features, name, bool, f"{where('features')}.features.{name}")
    return Config(
        home=home,
        path=path,
        model=get("model") or DEFAULT_MODEL,
        model_provider=get("model_provider") or "openai",
        providers=_merge_providers(
            get("model_providers", dict) or {},
            f"{source.get('model_providers', path)}: model_providers",
            environ,
            openai_base_url=get("openai_base_url"),
        ),
        reasoning_effort=get("model_reasoning_effort"),
        reasoning_summary=get("model_reasoning_summary"),
        verbosity=get("model_verbosity"),
        service_tier=tier,
        features=features,
        profile=profile,
        model_auto_compact_token_limit=get("model_auto_compact_token_limit", int),
    )


def _merge_providers(
    tables: Mapping[str, Any],
    where: str,
    environ: Mapping[str, str] | None,
    *,
    openai_base_url: str | None = None,
) -> dict[str, ProviderInfo]:
    """Built-ins plus the user's; of a built-in only Bedrock's aws and base_url
    may change, and the openai one's base URL by `openai_base_url`."""
    providers = _built_in_providers(environ, openai_base_url)
    for provider_id in tables:
        key = f"{where}.{provider_id}"
        table = _typed(tables, provider_id, dict, key)
        if provider_id == "amazon-bedrock":
            info = ProviderInfo.from_toml(
                {k: v for k, v in table.items() if k in ("aws", "base_url")}, where=key
            )
            providers[provider_id] = dataclasses.replace(
                providers[provider_id],
                aws=info.aws or AwsAuthInfo(),
                base_url=info.base_url,
            )
        elif provider_id in providers:
            _log.warning("%s: built-in providers cannot be overridden; ignored", key)
        else:
            providers[provider_id] = ProviderInfo.from_toml(table, where=key)
    return providers


# A top-level `service_tier = "..."` line: what comes before the value, the
# value, and what follows it (a comment, the line end).
_TIER_LINE = re.compile(
    r"""(?P<head>[ \t]*service_tier[ \t]*=[ \t]*)(?:"(?:[^"\\\n]|\\.)*"|'[^'\n]*')(?P<rest>.*)""",
    re.DOTALL,
)


def set_fast_mode(home: Path, enabled: bool) -> Path:
    """Set or remove the top-level `service_tier = "fast"` in config.toml.

    An existing top-level `service_tier` line takes the new value where it
    stands, its comment kept (or goes, turning fast mode off); else the line
    is added at the top.  Nothing else changes, byte for byte: each possible
    edit is checked by parsing, so a look-alike line inside a multi-line
    string or a table is left alone.  A symlinked config.toml is edited at
    its target.  The file is replaced atomically (a temporary file, then
    rename) with its mode kept.
    """
    import tomllib

    path = home / "config.toml"
    target = path.resolve() if path.is_symlink() else path
    text, before = _read_toml(target, path, "cannot edit service_tier safely: ")
    if before.get("service_tier") == ("fast" if enabled else None):
        return path
    expected = {k: v for k, v in before.items() if k != "service_tier"}
    if enabled:
        expected["service_tier"] = "fast"
    lines = text.splitlines(keepends=True)
    edits = []
    for i, line in enumerate(lines):
        if match := _TIER_LINE.fullmatch(line):
            value = [f'{match["head"]}"fast"{match["rest"]}'] if enabled else []
            edits.append("".join([*lines[:i], *value, *lines[i + 1 :]]))
    if enabled:
        edits.append(f'service_tier = "fast"\n{text}')
    for new in edits:
        try:
            if tomllib.loads(new) == expected:
                break
        except tomllib.TOMLDecodeError:
            continue
    else:
        raise ConfigError(f"{path}: cannot edit service_tier safely; edit it by hand")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
        _write_atomically(target, new.encode(), mode=mode)
    except OSError as exc:
        raise _file_error(target, exc, "make it writable, or set CODEX_HOME") from None
    return path


# --- Reading responses ------------------------------------------------------
#
# Two sans-IO layers: `SSEDecoder` turns bytes into `ServerSentEvent`s by the
# WHATWG rules, and `_ResponsesReader` turns those into Responses events.
# Neither touches a socket; whatever reads the body feeds them.  Beside them,
# the events the response headers carry, and a status answer (or a
# WebSocket error frame) as its typed error (`_status_error`).

_BOM = b"\xef\xbb\xbf"


class ServerSentEvent(typing.NamedTuple):
    """One dispatched event; `id` is the last event id in force, if any was set."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


_MAX_EVENT_BYTES = 64 << 20


class SSEDecoder:
    """Incremental event-stream decoder: `feed` bytes, get events.

    Results do not depend on how the stream is split into chunks.  An event
    left unterminated when the stream ends is discarded (`flush`).  A line
    or an event's data longer than `max_size` bytes is a `StreamError`, so
    a server cannot make the client hold an unbounded buffer.
    """

    def __init__(self, *, max_size: int = _MAX_EVENT_BYTES) -> None:
        self.max_size = max_size
        self._buffer = bytearray()  # the line being received
        self._data_size = 0  # of the event being received
        self._at_start = True  # a BOM may still come
        self._after_cr = False  # the last chunk ended in CR: a leading LF belongs to it
        self._event: bytes | None = None
        self._data: list[bytes] = []
        self._retry: int | None = None
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if not chunk:
            return []
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._after_cr = chunk[-1:] == b"\r"
        # CR and CRLF end lines too: make them LF
        chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer
        start = len(buffer)  # only the new bytes can hold a new line end
        buffer += chunk
        if self._at_start:
            if len(buffer) < 3 and _BOM.startswith(buffer):
                return []
            self._at_start = False
            if buffer.startswith(_BOM):
                del buffer[:3]
                start = 0
        end = buffer.rfind(b"\n", start)
        lines = bytes(buffer[:end]).split(b"\n") if end != -1 else []
        del buffer[: end + 1]
        if len(buffer) > self.max_size or (
            end > self.max_size and any(len(ln) > self.max_size for ln in lines)
        ):
            raise StreamError(f"an SSE line is longer than {self.max_size} bytes")
        return self._lines(lines)

    def flush(self) -> None:
        """End of stream: an unterminated line or event is discarded."""
        self._buffer, self._after_cr = bytearray(), False
        self._event, self._data, self._data_size, self._retry = None, [], 0, None

    def _lines(self, lines: list[bytes]) -> list[ServerSentEvent]:
        # One loop over complete lines, state in locals: this is the hot path.
        events: list[ServerSentEvent] = []
        event_type, data, retry = self._event, self._data, self._retry
        last_id, size = self._last_id, self._data_size
        for line in lines:
            if not line:
                if data:
                    kind = (event_type or b"message").decode("utf-8", "replace")
                    text = b"\n".join(data).decode("utf-8", "replace")
                    events.append(ServerSentEvent(kind, text, last_id, retry))
                event_type, data, retry, size = None, [], None, 0
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data.append(value)
                size += len(value) + 1  # and the newline joining it
            elif name == b"event":
                event_type = value
            elif name == b"id" and b"\0" not in value:
                last_id = value.decode("utf-8", "replace")
            elif name == b"retry" and value.isdigit() and len(value) <= 4300:
                retry = int(value)  # ASCII digits; Python converts up to 4,300
            # anything else, a comment (no name) included, is ignored
        if size > self.max_size:  # once a chunk: what can grow is across chunks
            raise StreamError(f"an SSE event is larger than {self.max_size} bytes")
        self._event, self._data, self._retry = event_type, data, retry
        self._last_id, self._data_size = last_id, size
        return events


class TokenUsage(typing.NamedTuple):
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    total_tokens: int = 0


class RateLimitWindow(typing.NamedTuple):
    used_percent: float
    window_minutes: int | None = None
    resets_at: int | None = None


class RateLimits(typing.NamedTuple):
    """One rate-limit family from the response headers (`codex` for the main one)."""

    limit_id: str
    primary: RateLimitWindow | None = None
    secondary: RateLimitWindow | None = None
    limit_name: str | None = None
    credits: dict[str, Any] | None = None


class ServerModel(typing.NamedTuple):
    model: str


class ModelsEtag(typing.NamedTuple):
    etag: str


class ServerReasoningIncluded(typing.NamedTuple):
    included: bool = True


class Created(typing.NamedTuple):
    response_id: str | None = None


class OutputItemAdded(typing.NamedTuple):
    item: ResponseItem


class OutputItemDone(typing.NamedTuple):
    item: ResponseItem


class OutputTextDelta(typing.NamedTuple):
    delta: str
    item_id: str | None = None


class ToolCallInputDelta(typing.NamedTuple):
    item_id: str | None
    call_id: str | None
    delta: str


class ReasoningSummaryDelta(typing.NamedTuple):
    delta: str
    summary_index: int


class ReasoningContentDelta(typing.NamedTuple):
    delta: str
    content_index: int


class ReasoningSummaryPartAdded(typing.NamedTuple):
    summary_index: int


class StreamRetry(typing.NamedTuple):
    """The stream failed and will be sent again: drop partial deltas seen so far."""

    attempt: int
    max_attempts: int
    delay: float
    error: CodexError


class Completed(typing.NamedTuple):
    response_id: str | None
    usage: TokenUsage | None = None
    end_turn: bool | None = None


# fmt: off
ResponseEvent = (
    ServerModel | RateLimits | ModelsEtag | ServerReasoningIncluded | Created
    | OutputItemAdded | OutputItemDone | OutputTextDelta | ToolCallInputDelta
    | ReasoningSummaryDelta | ReasoningContentDelta | ReasoningSummaryPartAdded
    | StreamRetry | Completed
)
# fmt: on


def _rate_limit_window(
    headers: Mapping[str, str], prefix: str
) -> RateLimitWindow | None:
    used = _header(headers, f"{prefix}-used-percent", float)
    minutes = _header(headers, f"{prefix}-window-minutes", int)
    resets = _header(headers, f"{prefix}-reset-at", int)
    if used is None or (used == 0 and not minutes and resets is None):
        return None
    return RateLimitWindow(used, minutes, resets)


_FAMILY = re.compile(r"x-([a-z0-9-]+)-primary-used-percent")


def _rate_limits_from_headers(headers: Mapping[str, str]) -> list[RateLimits]:
    """The `codex` snapshot (always, first), then every other
    `x-<family>-primary-used-percent` family that carries data, by name."""
    found = {
        "has_credits": _header(headers, "x-codex-credits-has-credits", bool),
        "unlimited": _header(headers, "x-codex-credits-unlimited", bool),
        "balance": _header(headers, "x-codex-credits-balance"),
    }
    credits = None if None in (found["has_credits"], found["unlimited"]) else found
    families = {m[1] for h in headers if (m := _FAMILY.fullmatch(h.lower()))}
    out = []
    for family in ["codex", *sorted(families - {"codex"})]:
        snapshot = RateLimits(
            limit_id=family.replace("-", "_"),
            primary=_rate_limit_window(headers, f"x-{family}-primary"),
            secondary=_rate_limit_window(headers, f"x-{family}-secondary"),
            limit_name=_header(headers, f"x-{family}-limit-name"),
            credits=credits,
        )
        if family == "codex" or snapshot.primary or snapshot.secondary or credits:
            out.append(snapshot)
    return out


def _events_from_headers(headers: Mapping[str, str]) -> list[ResponseEvent]:
    """What the response headers say, in the order upstream emits it, with
    no secret a server echoed in them (events reach `--json` and rollouts)."""
    headers = {name.lower(): _scrub(value) for name, value in headers.items()}
    events: list[ResponseEvent] = []
    if model := headers.get("openai-model"):
        events.append(ServerModel(model))
    events.extend(_rate_limits_from_headers(headers))
    if etag := _header(headers, "x-models-etag"):
        events.append(ModelsEtag(etag))
    if "x-reasoning-included" in headers:
        events.append(ServerReasoningIncluded())
    return events


_TRY_AGAIN = re.compile(r"(?i)try again in\s*(\d+(?:\.\d+)?)\s*(s|ms|seconds?)")


# Error codes the API reports, what they become here, and the message to use
# when the server sends none.
_ERROR_CODES: dict[str, tuple[type[ApiError], str]] = {
    "context_length_exceeded": (ContextWindowExceeded, "context window exceeded"),
    "insufficient_quota": (QuotaExceeded, "quota exceeded"),
    "usage_not_included": (UsageNotIncluded, "usage not included in your plan"),
    "cyber_policy": (
        CyberPolicy,
        "This request has been flagged for possible cybersecurity risk.",
    ),
    "invalid_prompt": (InvalidRequest, "Invalid request."),
    "server_is_overloaded": (ServerOverloaded, "server is overloaded"),
    "slow_down": (ServerOverloaded, "server is overloaded"),
    **{code: (PlanUsageError, "ChatGPT plan usage refused") for code in _PLAN_REFUSALS},
}


def _failed_error(response: Any, request_id: str | None) -> ApiError:
    """The error a `response.failed` event stands for (wire-spec §13)."""
    error = _json_get(response, "error", dict)
    if error is None:
        return StreamError("response.failed event received", request_id=request_id)
    code, message = error.get("code"), str(error.get("message") or "")
    if code in _ERROR_CODES:
        cls, default = _ERROR_CODES[code]
        return cls(message or default, code=code, request_id=request_id)
    delay = None
    if code == "rate_limit_exceeded" and (match := _TRY_AGAIN.search(message)):
        value, unit = match.groups()
        delay = int(float(value)) / 1000 if unit.lower() == "ms" else float(value)
    return StreamError(
        message or f"response.failed with error code {code!r} and no message",
        request_id=request_id,
        delay=delay,
        code=code if isinstance(code, str) else None,
    )


def _usage(raw: Any) -> TokenUsage | None:
    if not isinstance(raw, dict):
        return None
    details = raw.get("input_tokens_details"), raw.get("output_tokens_details")
    return TokenUsage(
        input_tokens=_json_get(raw, "input_tokens", int) or 0,
        cached_input_tokens=_json_get(details[0], "cached_tokens", int) or 0,
        output_tokens=_json_get(raw, "output_tokens", int) or 0,
        reasoning_output_tokens=_json_get(details[1], "reasoning_tokens", int) or 0,
        total_tokens=_json_get(raw, "total_tokens", int) or 0,
    )


def _status_error(
    status: int,
    headers: Mapping[str, str],
    body: Any,
    raw: bytes = b"",
    reason: str | None = None,
) -> ApiError:
    """The typed error an HTTP status and error body (parsed, and `raw`)
    stand for; a WebSocket error frame is read the same way."""
    import http.client

    request_id = headers.get("x-request-id")
    phrase = http.client.responses.get(status) if status >= 400 else None
    message, code = reason or phrase or "an error, with no message", None
    error = _json_get(body, "error")
    if isinstance(error, dict):
        message = str(error.get("message") or message)
        code = error.get("code") or error.get("type")
        code = code if isinstance(code, str) else None
    elif text := _json_get(body, "error", str) or _json_get(body, "detail", str):
        message = text  # a `detail` refuses admission, before any stream
    elif body is None and raw and b"<" not in raw[:1]:  # scrubbed, then cut
        message = f"{message}: {_scrub(raw.decode('utf-8', 'replace'))[:200].strip()}"
    if code in _ERROR_CODES:
        cls = _ERROR_CODES[code][0]
    elif 400 <= status < 500 and status not in (401, 403, 408, 409, 429):
        cls = InvalidRequest
    else:
        cls = ApiError
    return cls(message, status=status, code=code, request_id=request_id)


class _ResponsesReader:
    """Responses stream semantics over decoded SSE events (sans-IO).

    Events are told apart by the JSON `type` in the data, not the SSE event
    name: some servers send no `event:` lines.  `done` turns true at
    `response.completed`; `failure` is what a stream that ends before that
    amounts to, if the server said.  Over a `websocket` an `error` event ends the request.
    A stream resumed `after` a sequence number skips any event up to it.
    """

    def __init__(
        self,
        request_id: str | None,
        *,
        websocket: bool = False,
        after: int | None = None,
    ) -> None:
        self.request_id = request_id
        self.websocket = websocket
        self.response_id: str | None = None  # from `response.created`
        self.sequence = after  # the last event's `sequence_number`, if it had one
        self.done = False
        self.failure: ApiError | None = None  # what the stream ends in, if not done
        self.failure_headers: dict[str, str] = {}  # an error frame's
        self.turn_state: str | None = None  # from a WebSocket `response.metadata`

    def read(self, sse: ServerSentEvent) -> ResponseEvent | None:
        if self.done or not sse.data or sse.data == "[DONE]":
            return None
        try:
            obj = json.loads(sse.data)
        except (ValueError, RecursionError):
            # scrubbed whole: %.200r cuts it, and could leave part of a key
            _log.debug("skipping SSE data that is not JSON: %.200r", _scrub(sse.data))
            return None
        if not isinstance(obj, dict):
            return None
        kind, sequence = obj.get("type"), obj.get("sequence_number")
        if type(sequence) is int:
            if self.sequence is not None and sequence <= self.sequence:
                return None  # read before the stream was resumed
            self.sequence = sequence
        try:
            return self._event(kind, obj)
        except (ItemError, KeyError, TypeError, ValueError) as exc:
            _log.debug("skipping malformed %s event: %s", kind, exc)
            return None

    def _event(self, kind: Any, obj: dict[str, Any]) -> ResponseEvent | None:
        def need(key: str, of: type[Any] = str) -> Any:  # else the event is skipped
            return _typed(obj, key, of, error=TypeError, required=True)

        response = obj.get("response")
        if kind == "response.output_text.delta":
            return OutputTextDelta(need("delta"), obj.get("item_id"))
        if kind == "response.output_item.done":
            return OutputItemDone(item_from_json(obj["item"]))
        if kind == "response.output_item.added":
            return OutputItemAdded(item_from_json(obj["item"]))
        if kind == "response.created" and isinstance(response, dict):
            self.response_id = _json_get(response, "id", str)
            return Created(response.get("id"))
        if kind == "response.custom_tool_call_input.delta":
            call_id = obj.get("call_id")
            return ToolCallInputDelta(
                obj.get("item_id") or call_id, call_id, need("delta")
            )
        if kind == "response.reasoning_summary_text.delta":
            return ReasoningSummaryDelta(need("delta"), need("summary_index", int))
        if kind == "response.reasoning_text.delta":
            return ReasoningContentDelta(need("delta"), need("content_index", int))
        if kind == "response.reasoning_summary_part.added":
            return ReasoningSummaryPartAdded(need("summary_index", int))
        if kind == "response.completed" and isinstance(response, dict):
            self.done = True
            return Completed(
                response.get("id"),
                _usage(response.get("usage")),
                _json_get(response, "end_turn", bool),
            )
        if kind == "response.failed":
            self.failure = _failed_error(response, self.request_id)
        elif kind == "response.incomplete":
            reason = _json_get(_json_get(response, "incomplete_details"), "reason")
            self.failure = StreamError(
                f"Incomplete response returned, reason: {reason or 'unknown'}",
                request_id=self.request_id,
            )
        elif kind == "response.metadata":
            state = _json_get(_json_get(obj, "headers"), "x-codex-turn-state", str)
            self.turn_state = self.turn_state or state
        elif kind == "error" and self.websocket:
            # with the HTTP status the request would have had, if it says
            raw = _json_get(obj, "headers", dict) or {}
            headers = {k.lower(): v for k, v in raw.items() if isinstance(v, str)}
            self.failure_headers = headers
            if type(status := obj.get("status")) is int:
                self.failure = _status_error(status, headers, obj)
            else:
                self.failure = _failed_error(obj, self.request_id)
        elif kind == "error":
            _log.warning(
                "server sent an error event: %s", _scrub(json.dumps(obj))[:500]
            )
        return None


# --- Responses over HTTP ----------------------------------------------------
#
# A transport sends one prepared, signed request and gives back its events,
# translating what its library raises into typed errors; deciding what to do
# after a failure is the turn's.


def _unsendable(provider: ModelProvider, exc: Exception) -> ConfigError:
    # A URL or header requests refuses: sending again cannot help.  Its
    # message may quote the URL or a header value, so only its kind is told.
    return ConfigError(
        f"model provider {provider.id!r}: the request could not be made "
        f"({type(exc).__name__}); check its base_url and headers"
    )


def _http_request(
    parts: _RequestParts,
    compress: bool,
    *,
    keep_json: bool = False,
    last: _LastExchange | None = None,
) -> PreparedRequest:
    """The unsigned HTTP request: the body joined, encoded and compressed once;
    its JSON is kept beside compressed bytes only when asked or traced.  With
    the `last` stored exchange it continues, it sends only what is new."""
    head, items = parts.head, parts.input
    if last is not None:  # the settings are encoded only to be compared
        head, items = _continuing(last, parts, parts.settings(), head)
    json_bytes = _join_request(head, items, parts.tail)
    headers = {**parts.headers, "Content-Type": "application/json"}
    data = json_bytes
    if compress:
        data = _zstd_compress(json_bytes)
        headers["Content-Encoding"] = "zstd"
    mode = "full" if items is parts.input else "incremental"
    _log_request("responses_http", len(items), len(json_bytes), None, mode)
    trace = _transport_log.isEnabledFor(TRACE)
    if trace:
        url = _redact_url(parts.url)
        _transport_log.log(TRACE, "POST to %s: %s", url, json_bytes.decode())
    shown = json_bytes if keep_json or trace or not compress else None
    return PreparedRequest("POST", parts.url, headers, data, shown)


class _Http:
    """Responses over HTTP: `send` POSTs one signed request and gives back a
    2xx answer or the failure; `events` reads the answer's event stream.
    Errors come out typed: TransportError, ApiError, StreamError."""

    def __init__(
        self, http: requests.Session, provider: ModelProvider, unsigned: PreparedRequest
    ) -> None:
        import requests

        self.http, self.provider, self.url = http, provider, unsigned.url
        self.reader: _ResponsesReader | None = None  # of the last `events`
        # What requests would redo on every attempt and which cannot change
        # between attempts (session headers and cookies, proxies and CA
        # bundle from the environment) is done once.
        request = requests.Request(unsigned.method, unsigned.url, data=unsigned.body)
        try:
            self.base = http.prepare_request(request)
        except requests.RequestException as exc:
            raise _unsendable(provider, exc) from None
        self.settings = http.merge_environment_settings(
            self.base.url, {}, True, None, None
        )
        proxy = requests.utils.select_proxy(unsigned.url, self.settings["proxies"])
        through = f" through proxy {_host(proxy)}" if proxy else ""
        self.where = _host(self.url) + through

    def send(
        self, signed: PreparedRequest, timeout: tuple[float, float]
    ) -> requests.Response | _Failure:
        import requests
        from requests.exceptions import ChunkedEncodingError

        wire = self.base.copy()
        wire.headers.update(signed.headers)
        if signed.url != self.url:
            wire.prepare_url(signed.url, None)
        try:
            response = self.http.send(
                wire, timeout=timeout, allow_redirects=False, **self.settings
            )
        # what a retry can cure: the connection, not the request
        except (
            requests.ConnectionError,
            requests.Timeout,
            ChunkedEncodingError,
        ) as exc:
            failed = TransportError(f"request to {self.where} failed: {_describe(exc)}")
            return _Failure(failed, None, {})
        except requests.RequestException as exc:
            raise _unsendable(self.provider, exc) from None
        if response.status_code < 300:
            return response
        error = _http_error(response)
        response.close()
        return _Failure(error, response.status_code, response.headers)

    def events(
        self,
        response: requests.Response,
        max_size: int,
        deadline: float | None,
        after: int | None = None,
    ) -> Iterator[ResponseEvent]:
        """Header events, then the body's events until `Completed` (wire-spec §13),
        each line and event at most `max_size` bytes, none read past `deadline`;
        a resumed stream's (`after` a sequence number) without header events.
        `reader` holds what was read: the response id, the last sequence number."""
        import requests
        import urllib3

        reader = self.reader = _ResponsesReader(
            response.headers.get("x-request-id"), after=after
        )
        if after is None:
            yield from _events_from_headers(response.headers)
        decoder = SSEDecoder(max_size=max_size)
        try:
            for chunk in _body_chunks(response):
                if deadline is not None and time.monotonic() > deadline:
                    raise RetryLimitExceeded(
                        "the turn's deadline came",
                        StreamError("still streaming", request_id=reader.request_id),
                    )
                for sse in decoder.feed(chunk):
                    event = reader.read(sse)
                    if event is not None:
                        yield event
                        if reader.done:
                            return
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            raise StreamError(
                "idle timeout waiting for SSE", request_id=reader.request_id
            ) from None
        except (
            urllib3.exceptions.HTTPError,
            requests.RequestException,
            OSError,
        ) as exc:
            raise StreamError(
                f"stream disconnected before completion: {type(exc).__name__}",
                request_id=reader.request_id,
            ) from None
        kind = response.headers.get("content-type") or "no content type"
        if reader.failure is None and "text/event-stream" not in kind.lower():
            raise StreamError(
                f"expected an event stream ending in response.completed, got {kind}",
                request_id=reader.request_id,
            )
        raise reader.failure or StreamError(
            "stream closed before response.completed", request_id=reader.request_id
        )


def _http_error(response: requests.Response) -> ApiError:
    """The typed error for a non-2xx response, from its JSON error body if any."""
    import requests
    import urllib3

    try:
        raw = response.raw.read(65536, decode_content=True)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        raw = b""
    status, headers = response.status_code, response.headers
    return _status_error(status, headers, _json_or_none(raw), raw, response.reason)


class _Failure(typing.NamedTuple):
    """An attempt that failed, and the status and headers of the answer
    (None and {} when none came)."""

    error: CodexError
    status: int | None
    headers: Mapping[str, str]


# --- Responses over WebSocket -----------------------------------------------
#
# Codex's first choice for OpenAI (codex-interop.md): one connection per
# client, one text frame per request and per event.  The server keeps the
# last response of the connection, so a request that only adds to the last
# one names it (`previous_response_id`) and sends just the new items.

_RESPONSES_WEBSOCKETS_BETA = "responses_websockets=2026-02-06"


class _UseHttp(Exception):
    """The server does not take WebSockets here: HTTP from now on."""


class _ResponsesSocket:
    """A client's connection, and what the server holds of it."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection  # a websockets.sync ClientConnection
        self.last: _LastExchange | None = None
        self.used = False  # whether a request went over it yet
        self.busy = False  # a request sent, its response not read to the end
        self.request_id: str | None = None  # the handshake answer's
        self.header_events: list[ResponseEvent] = []


class _WebSocket:
    """Responses over a WebSocket: `send` is the handshake, one signed
    request that gives back a connection or the failure; `events` sends the
    `response.create` frame on a connection and reads a frame per event.
    Errors come out typed, an error frame as `decide` makes it; a server
    that will not take WebSockets raises `_UseHttp`.  `turn_state` is the
    turn's, and the first one this request is given."""

    def __init__(
        self,
        provider: ModelProvider,
        parts: _RequestParts,
        *,
        turn_state: str | None,
        deadline: float | None,
        decide: Callable[[ApiError, Mapping[str, str]], ApiError],
        idle_timeout: float,
        max_size: int,
    ) -> None:
        self.provider, self.parts = provider, parts
        self.turn_state, self.deadline = turn_state, deadline
        self.decide, self.idle_timeout, self.max_size = decide, idle_timeout, max_size
        url = "ws" + parts.url.removeprefix("http")  # ws:// or wss://
        headers = {k: v for k, v in parts.headers.items() if k != "Accept"}
        self.request = PreparedRequest("GET", url, headers, b"")

    def send(
        self, signed: PreparedRequest, timeout: tuple[float, float]
    ) -> _ResponsesSocket | _Failure:
        wire = {k: v for k, v in signed.headers.items() if k != "x-codex-turn-state"}
        wire["OpenAI-Beta"] = _RESPONSES_WEBSOCKETS_BETA
        signed = signed._replace(headers=wire)
        limits = (self.max_size, self.idle_timeout)
        connection = _websocket_handshake(signed, timeout[0], self.provider, *limits)
        if isinstance(connection, _Failure):
            status = connection.status
            if status is None or status in (401, 403, 408, 429) or status >= 500:
                return connection
            raise _UseHttp(f"the WebSocket handshake was answered {status}")
        socket = _ResponsesSocket(connection)
        if connection.response is not None:
            answer = _plain_headers(connection.response.headers)
            self.turn_state = self.turn_state or answer.get("x-codex-turn-state")
            socket.header_events = _events_from_headers(answer)
            socket.request_id = answer.get("x-request-id")
        return socket

    def events(
        self, socket: _ResponsesSocket, *, generate: bool = True
    ) -> Iterator[ResponseEvent]:
        from websockets.exceptions import ConnectionClosed

        parts = self.parts
        if not generate:  # a prewarm: the leading items, nothing generated
            parts = parts._replace(input=parts.input[: parts.leading], items=())
        settings = parts.settings()
        metadata = {"x-codex-ws-stream-request-start-ms": str(time.time_ns() // 10**6)}
        if self.turn_state is not None:
            metadata["x-codex-turn-state"] = self.turn_state
        frame = _response_create(parts, socket, settings, metadata, generate=generate)
        socket.last, socket.used, socket.busy = None, True, True
        reader = _ResponsesReader(socket.request_id, websocket=True)
        output_ids: list[str | None] = []
        if generate:  # what the handshake's answer said, once per connection
            yield from socket.header_events
            socket.header_events = []
        try:
            socket.connection.send(frame, text=True)
            while True:
                idle = self.idle_timeout
                if self.deadline is not None:
                    idle = min(idle, self.deadline - time.monotonic())
                    if idle <= 0:
                        error = StreamError("still streaming")
                        raise RetryLimitExceeded("the turn's deadline came", error)
                message = _recv_websocket(socket.connection, idle)
                if not isinstance(message, str):
                    continue  # Responses events are text frames
                event = reader.read(ServerSentEvent(data=message))
                self.turn_state = self.turn_state or reader.turn_state
                if reader.failure is not None:
                    raise self.decide(reader.failure, reader.failure_headers)
                if isinstance(event, OutputItemDone):
                    output_ids.append(getattr(event.item, "id", None))
                elif isinstance(event, Completed):
                    socket.busy = False  # before the consumer sees it
                    if event.response_id:
                        socket.last = _LastExchange(
                            settings, parts.input, event.response_id, output_ids
                        )
                if event is not None and generate:
                    yield event
                if not socket.busy:
                    return
        except TimeoutError:
            raise StreamError("idle timeout waiting for WebSocket events") from None
        except (ConnectionClosed, OSError) as exc:
            close = getattr(exc, "rcvd", None) or getattr(exc, "sent", None)
            why = f" (close code {close.code})" if close is not None else ""
            raise StreamError(
                f"WebSocket closed before response.completed{why}"
            ) from None
        finally:
            if socket.busy:  # a response may still be coming: never read it
                _close_websocket(socket.connection)


def _websocket_handshake(
    signed: PreparedRequest,
    timeout: float,
    provider: ModelProvider,
    max_size: int,
    write_timeout: float,
) -> Any | _Failure:
    """One signed handshake: a websockets.sync connection, or the failure (a
    refusal with its typed error, or no answer); what cannot be sent at all
    is raised.  It goes through the proxy the environment names, TLS
    verified against what the HTTP path trusts (requests' CA bundle
    variables, else the system's)."""
    from websockets import exceptions as ws
    from websockets.sync.client import connect

    wire = dict(signed.headers)
    try:
        context = None
        if signed.url.startswith("wss:"):
            import ssl

            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get(
                "CURL_CA_BUNDLE"
            )  # a file or, as requests allows, a directory of certificates
            folder = bundle if bundle and os.path.isdir(bundle) else None
            context = ssl.create_default_context(
                cafile=None if folder else bundle or None, capath=folder
            )
        connection = connect(
            signed.url,
            additional_headers=wire,
            user_agent_header=wire.pop("User-Agent", None),
            open_timeout=timeout,
            close_timeout=1,
            max_size=max_size,  # inflated size: permessage-deflate too
            ssl=context,
        )
        connection.__enter__()  # as the library asks (17.1 warns otherwise)
        # Its writes have no time limit: a pong or a request to a server that
        # stopped reading would block forever, holding the lock every send takes.
        connection.socket.settimeout(write_timeout)
        return connection
    except ws.InvalidStatus as exc:
        status, answer = exc.response.status_code, _plain_headers(exc.response.headers)
        raw = bytes(exc.response.body or b"")
        error = _status_error(status, answer, _json_or_none(raw), raw)
        return _Failure(error, status, answer)
    except ws.InvalidURI:  # a base URL that is not http(s)
        raise _unsendable(provider, ValueError()) from None
    except (ws.InvalidProxy, ImportError) as exc:  # SOCKS, no python-socks
        raise ConfigError(
            f"the proxy the environment names cannot be used "
            f"({type(exc).__name__}); check HTTPS_PROXY and ALL_PROXY"
        ) from None
    except (OSError, TimeoutError, ws.InvalidHandshake) as exc:
        why = type(exc).__name__
        failed = f"WebSocket connect to {_host(signed.url)} failed: {why}"
        return _Failure(TransportError(failed), None, {})


def _recv_websocket(connection: Any, timeout: float) -> Any:
    """The next message, waited for `timeout` seconds at most.  Once the
    library has sent a close (1009: a message over `max_size`) it waits for
    the server to hang up, unbounded: here the connection is closed after
    `close_timeout`, and `recv` raises ConnectionClosed."""
    deadline = time.monotonic() + timeout
    while True:
        step = min(deadline - time.monotonic(), connection.close_timeout)
        try:
            return connection.recv(timeout=step)
        except TimeoutError:
            if connection.protocol.close_expected():
                _close_websocket(connection)
            elif step < connection.close_timeout:
                raise


def _close_websocket(connection: Any) -> None:
    """Close a connection at once, in any state.  The library's `close()`
    takes a lock its reader holds while writing a pong, for good when the
    server stopped reading: shutting the socket down fails that write."""
    import socket

    try:
        connection.socket.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # closed already
    connection.close()
    # A parser error's traceback holds what was read (a message over
    # max_size, inflated), and a reference cycle holds the error.
    if connection.protocol.parser_exc is not None:
        connection.protocol.parser_exc.__traceback__ = None


def _plain_headers(headers: Any) -> dict[str, str]:
    """websockets' headers as one value a name (lowercase), repeats joined
    by commas: its own mapping raises on a repeated name."""
    plain: dict[str, str] = {}
    for name, value in headers.raw_items():
        key = name.lower()
        plain[key] = f"{plain[key]}, {value}" if key in plain else value
    return plain


def _response_create(
    parts: _RequestParts,
    socket: _ResponsesSocket,
    settings: bytes,
    metadata: dict[str, str],
    *,
    generate: bool,
) -> bytes:
    """The `response.create` frame, logged: the HTTP body with its `type`,
    in full or continuing the socket's last response (`_continuing`);
    `metadata` joins `client_metadata` (over a WebSocket the turn state
    travels there)."""
    head = {"type": "response.create", **parts.head}
    head, items = _continuing(socket.last, parts, settings, head)
    tail = {
        **parts.tail,
        "client_metadata": {**parts.tail.get("client_metadata", {}), **metadata},
    }
    if not generate:
        tail["generate"] = False
    frame = _join_request(head, items, tail)
    mode = "full" if items is parts.input else "incremental"
    _log_request("responses_websocket", len(items), len(frame), socket.used, mode)
    return frame


# --- Retry and the turn -----------------------------------------------------
#
# A `Client` is one thread of conversation with one provider; a `Turn` is one
# user turn, holding the sticky routing token.  `Turn.stream` builds the body
# once, then runs the blocking retry loop: auth is applied on every attempt,
# the bytes never change.  What to do after a failure is one pure decision,
# `_next_step`.


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or HTTP date)."""
    if (millis := _header(headers, "retry-after-ms", float)) is not None:
        return float(millis) / 1000
    if (seconds := _header(headers, "retry-after", float)) is not None:
        return float(seconds)
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(headers.get("retry-after", ""))
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, with no zone said
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


def _next_step(
    error: CodexError,
    status: int | None,
    headers: Mapping[str, str],
    attempt: int,
    reloaded: bool,
    policy: RetryPolicy,
) -> float | Literal["reload", "raise", "exhausted"]:
    """What to do after attempt number `attempt` failed with `error`: wait so
    many seconds and send again, reload the credentials and send again at
    once (a first 401), raise `error`, or raise that the attempts ran out.

    `status` and `headers` are the response's (None and {} when no response
    came).  Pure: it reads nothing but its arguments and the jitter.
    """
    if status == 401 and not reloaded:
        return "reload"
    after = None
    if status is not None:
        should_retry = headers.get("x-should-retry")
        after = _retry_after(headers)
        retryable = status >= 500 or status == 408 or should_retry == "true"
        # 409 and 429 only when the server says when
        told_when = status in (409, 429) and after is not None
        if (
            isinstance(error, QuotaExceeded)
            or should_retry == "false"
            or (after is not None and after > policy.max_retry_after)
            or not (retryable or told_when)
        ):
            return "raise"
    if attempt > policy.request_max_retries:
        return "exhausted"
    return after if after is not None and after > 0 else policy.backoff(attempt)


_DEFAULT_FEATURES: dict[str, bool] = {
    "item_ids": True,
    "responses_websockets": True,
    "enable_request_compression": True,
}


class Client:
    """One conversation thread with one provider; use one per thread of execution.

    `thread_id` and `session_id` are UUIDv7 strings; a root thread's session
    id is its thread id, a sub-agent (`subagent`) shares its root's.  A
    streamed line or event over `max_event_bytes` is a `StreamError`.
    `prewarm` opens each WebSocket with a request that generates nothing
    (as Codex does), so the first turn on it is already incremental.
    `fields` are request fields every prompt gets unless it sets its own.
    `window_number` counts the thread's compactions: each starts a new
    context window, which every request names.
    """

    def __init__(
        self,
        provider: ModelProvider,
        *,
        model: str,
        auth: AuthProvider | None = None,
        thread_id: str | None = None,
        session_id: str | None = None,
        installation_id: str | None = None,
        features: Mapping[str, bool] | None = None,
        originator: str | None = None,
        subagent: str | None = None,
        parent_thread_id: str | None = None,
        reasoning_effort: str | None = None,
        reasoning_summary: str | None = None,
        verbosity: str | None = None,
        service_tier: str | None = None,
        fields: RequestFields | None = None,
        retry_policy: RetryPolicy | None = None,
        http: requests.Session | None = None,
        max_event_bytes: int = _MAX_EVENT_BYTES,
        prewarm: bool = False,
    ) -> None:
        self.provider = provider
        self.model = model
        self._auth = auth
        self.thread_id = thread_id or _uuid7()
        self.session_id = session_id or self.thread_id
        self._installation_id = installation_id
        self.features = {**_DEFAULT_FEATURES, **(features or {})}
        self.originator = _originator(originator)
        self.subagent = subagent
        self.parent_thread_id = parent_thread_id
        self.reasoning_effort = reasoning_effort
        self.reasoning_summary = reasoning_summary
        self.verbosity = verbosity
        self.service_tier = service_tier
        self.fields = fields or RequestFields()
        self.retry_policy = retry_policy or provider.retry_policy()
        self.max_event_bytes = max_event_bytes
        self.prewarm = prewarm
        self.window_number = 0
        self._socket: _ResponsesSocket | None = None
        self._stored: _LastExchange | None = None  # the last stored, over HTTP
        self._over_http = False  # latched: never a WebSocket again
        self._http = http
        self._owns_http = http is None
        self._fragments = _FragmentCache(self._request_item_json)

    def __repr__(self) -> str:
        return f"Client({self.provider!r}, model={self.model!r}, thread_id={self.thread_id!r})"

    def close(self) -> None:
        """Close its WebSocket and the HTTP session it made (its pooled connections)."""
        self._drop_socket()
        if self._http is not None and self._owns_http:
            self._http.close()

    @functools.cached_property
    def rules(self) -> _Rules:
        """What this client's provider and credentials change on the wire."""
        provider = self.provider
        chatgpt = provider.is_openai and self.auth.kind == "chatgpt"
        plan = self.auth.kind == "chatgpt_plan"
        compress = self.features.get("enable_request_compression", False)
        return _Rules(
            chatgpt_backend=chatgpt,
            chatgpt_plan=plan,
            openai_metadata=provider.is_openai and not plan,
            store=provider.is_azure,
            compress=chatgpt and compress,
            service_tier=not provider.is_amazon_bedrock,
            responses_lite=provider.info.responses_lite,
        )

    def __enter__(self) -> typing.Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        thread_id: str | None = None,
        session_id: str | None = None,
        auth: AuthProvider | None = None,
    ) -> Client:
        """A client with the provider, model and settings `config` names."""
        return cls(
            config.provider(),
            model=config.model,
            auth=auth,
            thread_id=thread_id,
            session_id=session_id,
            features=config.features,
            reasoning_effort=config.reasoning_effort,
            reasoning_summary=config.reasoning_summary,
            verbosity=config.verbosity,
            service_tier=config.service_tier,
        )

    @property
    def http(self) -> requests.Session:
        """The requests session, made when the first request is sent."""
        if self._http is None:
            import requests

            self._http = requests.Session()
        return self._http

    @property
    def auth(self) -> AuthProvider:
        """The provider's credentials, resolved on first use."""
        if self._auth is None:
            self._auth = self.provider.auth()
        return self._auth

    @property
    def installation_id(self) -> str:
        if self._installation_id is None:
            self._installation_id = _resolve_installation_id(self.provider.home)
        return self._installation_id

    def new_turn(self, turn_id: str | None = None) -> Turn:
        return Turn(self, turn_id or _uuid7())

    def subagent_client(self, label: str) -> Client:
        """A client for a sub-agent: same session and settings, its own thread."""
        child = copy.copy(self)
        child.thread_id, child.subagent = _uuid7(), label
        child.parent_thread_id = self.thread_id
        child.window_number = 0
        child._fragments = _FragmentCache(child._request_item_json)
        child._socket = None  # a connection holds one thread's last response
        child._stored = None  # and so does a stored response
        child._http, child._owns_http = self.http, False  # one pool for the tree
        return child

    def _drop_socket(self) -> None:
        if self._socket is not None:
            _close_websocket(self._socket.connection)
            self._socket = None

    def _request_item_json(self, item: ResponseItem) -> dict[str, Any]:
        """The copy of an item a request carries (wire-spec §2, §12)."""
        obj = item_to_json(item)
        drop = set() if self.rules.openai_metadata else set(_OPENAI_ONLY_KEYS)
        item_id = obj.get("id")
        unprefixed = isinstance(item_id, str) and not _is_prefixed_id(item_id)
        # a request control such as compaction_trigger takes no id: the API
        # refuses one there, even one read back from JSON
        control = _item_id_prefix(item) is None and not isinstance(item, UnknownItem)
        if unprefixed or control:
            drop.add("id")
        if drop.intersection(obj):
            obj = {k: v for k, v in obj.items() if k not in drop}
        return obj


# The fields `POST /responses/input_tokens` takes besides the model and input.
# fmt: off
_COUNTED_FIELDS = frozenset({
    "tools", "tool_choice", "parallel_tool_calls", "reasoning", "text", "truncation",
})
# fmt: on


class Turn:
    """One user turn, and the rules its requests follow.

    - The first `x-codex-turn-state` a response carries is sent back on
      every later request of the turn; a new turn starts without.
    - `turn_timeout` is a deadline for the whole turn: no wait, connect or
      read runs past it (`_wait`, `_send`, the transports' reads).
    - Two budgets nest: each send is tried `request_max_retries` more times
      (`_send`), and a stream that breaks is sent again `stream_max_retries`
      times (`stream`).
    - A WebSocket that spends its stream budget, whose handshake keeps
      failing, or that the server refuses, latches the client to HTTP for
      its life; HTTP gets a stream budget of its own, the count runs on.
    - A 401 reloads the credentials once a send (`_reload_auth`); an error
      frame on a WebSocket is decided like an HTTP answer (`_next_step`).
    - Stored responses (`store`) over HTTP: a request sends what the last
      stored one did not hold, and all of it at once when the server forgot
      (`previous_response_not_found`).
    - A background response (`background`) goes over HTTP; a stream that
      breaks after it got further is resumed at once where it stopped
      (nothing to drop: no `StreamRetry`), else after the usual wait and
      within the stream budget; one that ends any other way than completed
      (the caller stopped, the deadline, an error) is cancelled.

    The transports, `_Http` and `_WebSocket`, send one signed request and
    give back its events, with typed errors; deciding is the turn's.
    """

    def __init__(self, client: Client, turn_id: str) -> None:
        self.client = client
        self.turn_id = turn_id
        self.turn_state: str | None = None
        self.started_at_ms = time.time_ns() // 1_000_000
        self._deadline: float | None = None  # time.monotonic(), with turn_timeout
        self._expired = False  # the deadline stopped a wait
        self._background: tuple[str, int] | None = None  # response id, last event
        self._output_ids: list[str | None] = []  # of the response being read

    def __repr__(self) -> str:
        return f"Turn(turn_id={self.turn_id!r}, thread_id={self.client.thread_id!r})"

    def _parts(
        self, prompt: Prompt, compaction: dict[str, str] | None = None
    ) -> _RequestParts:
        client = self.client
        prompt = dataclasses.replace(
            prompt._over(client.fields),
            reasoning_effort=prompt.reasoning_effort or client.reasoning_effort,
            reasoning_summary=prompt.reasoning_summary or client.reasoning_summary,
            verbosity=prompt.verbosity or client.verbosity,
            service_tier=prompt.service_tier or client.service_tier,
        )
        who = _Identity(
            client.session_id,
            client.thread_id,
            self.turn_id,
            self.started_at_ms,
            client.originator,
            client.subagent,
            client.parent_thread_id,
            client.installation_id if client.rules.openai_metadata else None,
            client.window_number,
            compaction,
        )
        url = client.provider.url_for_path("responses", client.auth)
        headers = client.provider.headers()
        parts = (client.model, who, client.rules, client._fragments, url, headers)
        return _request_parts(prompt, *parts)

    def _attempt(self, request: PreparedRequest) -> PreparedRequest:
        if self.turn_state is not None:
            headers = {**request.headers, "x-codex-turn-state": self.turn_state}
            request = request._replace(headers=headers)
        return self.client.auth.apply_auth(request)

    def prepare(self, prompt: Prompt) -> PreparedRequest:
        """The request the next attempt would send, auth applied, with its JSON."""
        parts, client = self._parts(prompt), self.client
        last = client._stored if parts.stored else None
        request = _http_request(parts, client.rules.compress, keep_json=True, last=last)
        return self._attempt(request)

    def count_input_tokens(self, prompt: Prompt) -> int:
        """The input tokens `prompt` would take, as the server counts them
        (`POST /responses/input_tokens`), without running the model; sent
        with the same headers, auth and retries as a turn's request."""
        parts, client = self._parts(prompt), self.client
        tail = {k: v for k, v in parts.tail.items() if k in _COUNTED_FIELDS}
        body = _join_request(parts.head, parts.input, tail)
        url = client.provider.url_for_path("responses/input_tokens", client.auth)
        kind = {"Accept": "application/json", "Content-Type": "application/json"}
        unsigned = PreparedRequest("POST", url, {**parts.headers, **kind}, body)
        http = _Http(client.http, client.provider, unsigned)
        timeout = client.retry_policy.connect_timeout
        with self._send(unsigned, http.send, timeout) as response:
            self._capture_turn_state(response.headers.get("x-codex-turn-state"))
            answer = b""
            for chunk in _body_chunks(response):
                answer += chunk
                if len(answer) > 1 << 20:
                    break  # no count takes a megabyte
        count = _json_get(_json_or_none(answer), "input_tokens", int)
        if count is None:
            raise ApiError(f"{_host(url)} answered no input_tokens count")
        return int(count)

    # Sending ---------------------------------------------------------------

    def _capture_turn_state(self, value: str | None) -> None:
        """Keep the first turn state a response carries."""
        if value and self.turn_state is None:
            self.turn_state = value

    def stream(
        self, prompt: Prompt, compaction: dict[str, str] | None = None
    ) -> Iterator[ResponseEvent]:
        """Send the prompt and yield events until `Completed`.

        A stream that breaks is sent again (same bytes); a `StreamRetry`
        event comes first, so a consumer can drop what it had so far.  Past
        the stream retry budget a WebSocket client goes over to HTTP, with a
        budget of its own; that switch is a retry too, and the count runs on
        (so a WebSocket client's `max_attempts` is twice the budget plus one).
        `compaction`, in the turn metadata, makes it a compaction request
        (`Conversation.compact`).
        """
        parts, self._background = self._parts(prompt, compaction), None
        try:
            yield from self._attempts(parts)
        except BaseException:
            if self._background is not None:  # nobody will read it
                self._cancel(parts, self._background[0])
            raise

    def _attempts(self, parts: _RequestParts) -> Iterator[ResponseEvent]:
        client = self.client
        policy, request = client.retry_policy, None
        if policy.turn_timeout is not None and self._deadline is None:
            self._deadline = time.monotonic() + policy.turn_timeout  # the turn's
        retries = spent = 0  # spent: the WebSocket's, once it went over to HTTP
        background = parts.tail.get("background") is True
        while True:
            self._wait(0.0)  # a tool or a wait may have used the turn's time
            websocket = not background and self._websocket_ready()
            resumed = self._background
            try:
                if websocket:
                    yield from self._over_websocket(parts)
                    return
                last = client._stored if parts.stored else None
                request = request or _http_request(
                    parts, client.rules.compress, last=last
                )
                yield from self._over_http(parts, request)
                return
            except InvalidRequest as error:
                if error.code != "previous_response_not_found" or not client._stored:
                    raise
                client._stored = request = None  # forgotten: all of it, at once
            except _UseHttp as reason:
                self._use_http(str(reason))
            except RetryLimitExceeded as exc:
                # a handshake that kept failing, not for want of time
                handshake = websocket and isinstance(exc.last_error, TransportError)
                if not handshake or self._expired:
                    raise
                self._use_http(str(exc.last_error))
            except StreamError as error:
                if self._background is not None and self._background != resumed:
                    continue  # a background stream got further: on from there
                budget = policy.stream_max_retries
                most = 2 * budget + 1 if websocket or spent else budget
                if retries >= budget and websocket:
                    self._use_http(f"the stream failed {retries + 1} times")
                    spent, retries = retries + 1, 0
                    yield StreamRetry(spent, most, 0.0, error)
                    continue
                if retries >= budget or (error.delay or 0) > policy.max_retry_after:
                    raise
                retries += 1
                delay = policy.backoff(retries) if error.delay is None else error.delay
                if self._background is None:  # else it goes on: nothing to drop
                    yield StreamRetry(spent + retries, most, delay, error)
                self._wait(delay, error)

    def _over_http(
        self, parts: _RequestParts, request: PreparedRequest
    ) -> Iterator[ResponseEvent]:
        client, after = self.client, None
        if self._background is None:
            self._output_ids = []
        else:  # resumed where the stream broke
            response_id, after = self._background
            url = self._response_url(response_id)
            url += f"{'&' if '?' in url else '?'}stream=true&starting_after={after}"
            request = PreparedRequest("GET", url, parts.headers, b"")
        http = _Http(client.http, client.provider, request)
        connect = client.retry_policy.connect_timeout
        try:
            with self._send(request, http.send, connect) as answer:
                self._capture_turn_state(answer.headers.get("x-codex-turn-state"))
                events = http.events(
                    answer, client.max_event_bytes, self._deadline, after
                )
                for event in events:
                    if isinstance(event, OutputItemDone):
                        self._output_ids.append(getattr(event.item, "id", None))
                    elif isinstance(event, Completed) and parts.stored:
                        client._stored = self._held(parts, event.response_id)
                    yield event
        finally:
            if http.reader is not None and parts.tail.get("background") is True:
                self._background = self._resumable(parts, http.reader)

    def _resumable(
        self, parts: _RequestParts, reader: _ResponsesReader
    ) -> tuple[str, int] | None:
        """Where a background response's broken stream goes on: None once
        the response ended (completed, failed, incomplete: sent again or
        raised as any other), or when it cannot be resumed (no sequence
        numbers), then cancelled rather than left running."""
        known = self._background[0] if self._background else None
        held_id = reader.response_id or known
        if reader.done or reader.failure is not None or held_id is None:
            return None
        if reader.sequence is None:
            self._cancel(parts, held_id)
            return None
        return held_id, reader.sequence

    def _held(
        self, parts: _RequestParts, response_id: str | None
    ) -> _LastExchange | None:
        """What a stored response holds, for the next request to continue."""
        if response_id is None:
            return None
        ids = self._output_ids
        return _LastExchange(parts.settings(), parts.input, response_id, ids)

    def _response_url(self, response_id: str, then: str = "") -> str:
        path = f"responses/{urllib.parse.quote(response_id, safe='')}{then}"
        return self.client.provider.url_for_path(path, self.client.auth)

    def _cancel(self, parts: _RequestParts, response_id: str) -> None:
        """Cancel a background response: once, at once, whatever comes of it."""
        client = self.client
        url = self._response_url(response_id, "/cancel")
        headers = {**parts.headers, "Accept": "application/json"}
        request = PreparedRequest("POST", url, headers, b"")
        timeout = client.retry_policy.connect_timeout
        try:
            http = _Http(client.http, client.provider, request)
            answer = http.send(self._attempt(request), (timeout, timeout))
        except CodexError:
            return
        if not isinstance(answer, _Failure):
            answer.close()

    def _over_websocket(self, parts: _RequestParts) -> Iterator[ResponseEvent]:
        client, policy = self.client, self.client.retry_policy
        if client._socket is not None and client._socket.busy:
            client._drop_socket()  # a stream left unread: its events are not ours
        ws = _WebSocket(
            client.provider,
            parts,
            turn_state=self.turn_state,
            deadline=self._deadline,
            decide=self._error_frame,
            idle_timeout=policy.stream_idle_timeout,
            max_size=client.max_event_bytes,
        )
        if client._socket is None:
            connect = policy.websocket_connect_timeout
            client._socket = self._send(ws.request, ws.send, connect)
            if client.prewarm:  # a request that generates nothing
                for _ in ws.events(client._socket, generate=False):
                    pass
        try:
            yield from ws.events(client._socket)
        finally:
            self._capture_turn_state(ws.turn_state)

    def _send(
        self,
        unsigned: PreparedRequest,
        send_once: Callable[[PreparedRequest, tuple[float, float]], _T | _Failure],
        connect_timeout: float,
    ) -> _T:
        """Attempts until one succeeds; raise a typed error otherwise.

        Each attempt signs the unsigned request afresh (auth, turn state) and
        sends the same body bytes with a transport's `send`; what to do after
        a failure is `_next_step`.
        """
        policy, auth = self.client.retry_policy, self.client.auth
        attempt, reloaded = 1, False
        while True:
            auth.refresh_if_stale()
            self._wait(0.0)  # a refresh may have used the rest of the turn's time
            timeout = (connect_timeout, policy.stream_idle_timeout)
            if self._deadline is not None:  # no wait, read or connect past it
                left = max(0.1, self._deadline - time.monotonic())
                timeout = (min(timeout[0], left), min(timeout[1], left))
            outcome = send_once(self._attempt(unsigned), timeout)
            if not isinstance(outcome, _Failure):
                return outcome
            error, status, headers = outcome
            step = _next_step(error, status, headers, attempt, reloaded, policy)
            if step == "reload":
                reloaded = True
                if self._reload_auth():
                    continue
                step = _next_step(error, status, headers, attempt, reloaded, policy)
            if step == "exhausted":
                raise RetryLimitExceeded(
                    f"request failed after {attempt} attempts", error
                ) from error
            if isinstance(step, str):  # "raise"; after a reload never "reload"
                raise error
            _retry_log.info(
                "retrying request %d/%d in %.1fs … (%s)",
                attempt,
                policy.request_max_retries,
                step,
                error,
            )
            attempt += 1
            self._wait(step, error)

    def _error_frame(self, failure: ApiError, headers: Mapping[str, str]) -> ApiError:
        """What an error frame on the socket becomes, decided as an HTTP
        answer would be: a stream error to retry (on a fresh connection: the
        failed one is dropped), or the typed error to raise."""
        # The server forgot, or ends a connection at 60 minutes: a fresh
        # connection starts over, in full, at once.
        limit = "websocket_connection_limit_reached"
        if failure.code in ("previous_response_not_found", limit):
            return StreamError(
                failure.message, request_id=failure.request_id, delay=0.0
            )
        if failure.status is None:
            return failure  # `response.failed` or `.incomplete`: as over HTTP
        policy = self.client.retry_policy
        step = _next_step(failure, failure.status, headers, 1, False, policy)
        if step == "reload":
            step = 0.0 if self._reload_auth() else "raise"
        if not isinstance(step, float):
            return failure
        message = f"{failure.status}: {failure.message}"
        return StreamError(message, request_id=failure.request_id, delay=step)

    def _websocket_ready(self) -> bool:
        """Whether the next request goes over a WebSocket: on a provider that
        supports them (the built-in `openai`), unless turned off
        (`features.responses_websockets`), signed with SigV4, or without the
        `websockets` package (then HTTP, quietly)."""
        client = self.client
        if client._over_http or not (
            client.provider.info.supports_websockets
            and client.features.get("responses_websockets")
            and not isinstance(client.auth, SigV4Auth)
            and client.auth.kind != "chatgpt_plan"  # HTTP until known to work
        ):
            return False
        try:
            from websockets.version import version
        except ImportError:
            version = "0"
        if int(version.split(".")[0]) >= 15:
            return True  # the first with proxies and `send(text=)`
        _log.debug("Responses over HTTP: no websockets package >= 15")
        client._over_http = True
        return False

    def _use_http(self, why: str) -> None:
        _log.info("Responses over HTTP from now on: %s", why)
        self.client._over_http = True
        self.client._drop_socket()

    def _reload_auth(self) -> bool:
        """Reload the credentials after a 401: whether they could be.  Turn
        state taken under another account is dropped."""
        auth = self.client.auth
        owner = auth.account_id
        if not auth.reload():
            return False
        if auth.account_id != owner:
            self.turn_state = None
        return True

    def _wait(self, delay: float, error: CodexError | None = None) -> None:
        """Sleep before a retry (0 before any request), unless that would
        pass the turn's deadline."""
        if self._deadline is not None and time.monotonic() + delay > self._deadline:
            self._expired = True
            timeout = self.client.retry_policy.turn_timeout
            error = error or CodexError(f"turn_timeout ({timeout}s) ran out")
            raise RetryLimitExceeded("the turn's deadline came", error) from error
        time.sleep(delay)


# --- Tools and structured output --------------------------------------------
#
# A plain function becomes a function tool: its name, the first paragraph of
# its docstring, a JSON Schema from its signature.  The schema is worked out
# when the tool is made, so a type it cannot describe fails there, not when
# the model calls it.

_JSON_TYPES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    None: "null",
    type(None): "null",
}


class Tool(typing.NamedTuple):
    """A tool the model may call: its JSON definition, and what runs it
    (with the parsed arguments as keywords; a custom tool with its input)."""

    definition: dict[str, Any]
    call: Callable[..., Any]


def tool(fn: Callable[..., Any], *, custom: bool = False) -> Tool:
    """`fn` as a function tool, or with `custom` as a free-form (custom)
    tool, which must take one str.  Raises TypeError for what has no schema."""
    import inspect

    name, doc = fn.__name__, inspect.getdoc(fn) or ""
    about = " ".join(doc.split("\n\n")[0].split())
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except NameError as exc:  # an annotation naming what is not defined
        raise TypeError(f"tool {name}: {exc}") from None
    params = inspect.signature(fn).parameters
    if custom:
        if [hints.get(p) for p in params] != [str]:
            raise TypeError(f"custom tool {name}: it must take one str")
        return Tool({"type": "custom", "name": name, "description": about}, fn)
    properties = {}
    for key, param in params.items():
        where = f"tool {name}: parameter {key}"
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise TypeError(f"{where}: only named parameters can be given as JSON")
        if key not in hints:
            raise TypeError(f"{where} has no type annotation")
        properties[key] = _json_schema(hints[key], where)
    required = [k for k, param in params.items() if param.default is param.empty]
    definition = {"type": "function", "name": name, "description": about}
    parameters = _object_schema(properties, required)
    return Tool({**definition, "parameters": parameters, "strict": False}, fn)


def _json_schema(hint: Any, where: str, outer: tuple[type, ...] = ()) -> dict[str, Any]:
    """The JSON Schema of a type hint; TypeError for one it cannot say.
    `outer` holds the records being described, to refuse a recursive one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        notes = " ".join(a for a in args[1:] if isinstance(a, str))
        schema = _json_schema(args[0], where, outer)
        return {**schema, "description": notes} if notes else schema
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    kinds = {type(a) for a in args}
    if origin is Literal and len(kinds) == 1 and type(args[0]) in _JSON_TYPES:
        return {"type": _JSON_TYPES[type(args[0])], "enum": list(args)}
    if origin in (Union, types.UnionType):
        return {"anyOf": [_json_schema(a, where, outer) for a in args]}
    if origin is list and len(args) == 1:
        return {"type": "array", "items": _json_schema(args[0], where, outer)}
    if origin is dict and len(args) == 2 and args[0] is str:
        values = _json_schema(args[1], where, outer)
        return {"type": "object", "additionalProperties": values}
    if (fields := _record_fields(hint)) is not None:  # every key required
        if hint in outer:
            raise TypeError(f"{where}: {hint.__name__} contains itself")
        inner = (*outer, hint)
        properties = {
            k: _json_schema(v, f"{where}.{k}", inner) for k, v in fields.items()
        }
        return _object_schema(properties, list(fields))
    raise TypeError(
        f"{where}: no JSON Schema for {hint!r} (use str, int, float, bool, None, "
        "list[...], dict[str, ...], Literal[...], Optional[...], a dataclass)"
    )


def _object_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    # no other keys: what strict structured output and tool arguments want
    schema = {"type": "object", "properties": properties, "required": required}
    return {**schema, "additionalProperties": False}


def _record_fields(hint: Any) -> dict[str, Any] | None:
    """The keys and types of a record, what becomes a JSON object with
    properties (None for anything else): a dataclass's fields its
    constructor takes; a TypedDict's keys, without `Required`/`NotRequired`
    (a strict schema requires every key)."""
    if not (dataclasses.is_dataclass(hint) or typing.is_typeddict(hint)):
        return None
    hints = typing.get_type_hints(hint, include_extras=True)
    if dataclasses.is_dataclass(hint):
        return {f.name: hints[f.name] for f in dataclasses.fields(hint) if f.init}
    marks = (typing.Required, typing.NotRequired)
    return {
        k: typing.get_args(v)[0] if typing.get_origin(v) in marks else v
        for k, v in hints.items()
    }


def _schema_problem(schema: Any, value: Any, path: str) -> str | None:
    """What in `value` does not fit `schema` (the subset `_json_schema`
    writes; other keywords pass), or None."""
    if not isinstance(schema, dict):
        return None
    if "anyOf" in schema:
        if any(_schema_problem(s, value, path) is None for s in schema["anyOf"]):
            return None
        return f"{path}: matches none of its allowed types"
    kind = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: must be one of {json.dumps(schema['enum'])}"
    # JSON's `1e999` is read as infinity: no number
    is_number = type(value) is int or (type(value) is float and math.isfinite(value))
    fits = {
        "string": isinstance(value, str),
        "integer": is_number and (type(value) is int or value.is_integer()),
        "number": is_number,
        "boolean": isinstance(value, bool),
        "null": value is None,
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }
    if fits.get(str(kind), True) is False:
        return f"{path}: must be of type {kind}"
    if isinstance(value, list):
        items = schema.get("items")
        for index, item in enumerate(value):
            if problem := _schema_problem(items, item, f"{path}[{index}]"):
                return problem
    if isinstance(value, dict) and kind == "object":
        if missing := [k for k in schema.get("required", ()) if k not in value]:
            return f"{path}: {missing[0]!r} is missing"
        properties = schema.get("properties", {})
        for key, item in value.items():
            sub = properties.get(key, schema.get("additionalProperties", True))
            if sub is False:
                return f"{path}: {key!r} is not a parameter"
            if problem := _schema_problem(sub, item, f"{path}.{key}"):
                return problem
    return None


def _tool_output(run: Callable[[], Any]) -> str:
    """What a tool's run tells the model: a str as it is, other values as
    JSON, an exception as its type and message (no traceback).  Only
    SystemExit and KeyboardInterrupt end the turn."""
    try:
        result = run()
        if isinstance(result, str):
            return result
        return json.dumps(result, ensure_ascii=False)  # too deep: a RecursionError
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - any failure is the tool's answer
        try:
            return f"error: {type(exc).__name__}: {exc}"
        except Exception:  # noqa: BLE001 - a message that fails is the tool's too
            return f"error: {type(exc).__name__} (its message cannot be shown)"


def _answer(
    call: FunctionCall | CustomToolCall, tools: Mapping[str, Tool]
) -> ResponseItem:
    """The output item for one call: the tool's result, or what was wrong."""
    found, text = tools.get(call.name), f"error: no tool named {call.name!r}"
    if isinstance(call, CustomToolCall):
        if found is not None:
            text = _tool_output(lambda: found.call(call.input))
        return CustomToolCallOutput(call_id=call.call_id, output=text)
    try:
        arguments = json.loads(call.arguments or "{}")
    except (ValueError, RecursionError) as exc:
        text = f"error: the arguments are not JSON: {exc}"
    else:
        schema = found.definition.get("parameters") if found else None
        problem = _schema_problem(schema, arguments, "arguments")
        if found is not None and (problem or not isinstance(arguments, dict)):
            text = f"error: {problem or 'arguments: must be an object'}"
        elif found is not None:
            text = _tool_output(lambda: _call_tool(found.call, arguments))
    return FunctionCallOutput(call_id=call.call_id, output=text)


def _as_tool(given: Callable[..., Any] | Tool) -> Tool:
    return given if isinstance(given, Tool) else tool(given)


# A model makes a few calls a response, a dozen in parallel; a server that
# sends thousands must not have them all run.  Calls past this many are
# answered that they were not run (the next request needs an output for
# every call), so the model learns it and may make them again.
_MAX_TOOL_CALLS = 64
_UNRUN = f"error: not run: at most {_MAX_TOOL_CALLS} tool calls are run at once"


def _parsed(hint: Any, schema: dict[str, Any], text: str) -> Any:
    """A structured reply checked against `schema` (the JSON Schema of
    `hint`) and read as `hint` says: a dict (or any JSON value) for a JSON
    Schema or TypedDict, an instance for a dataclass."""
    try:
        value = json.loads(text)
        if problem := _schema_problem(schema, value, "reply"):
            raise ValueError(problem)
        return _from_json(hint, value)
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise OutputParseError(
            f"the reply does not parse as its schema: {exc}", text
        ) from None


def _from_json(hint: Any, value: Any) -> Any:
    """`value`, which fits the schema of `hint`, as `hint` says: records
    made (dataclasses, TypedDicts), integers as ints (JSON's `3.0` is one)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _from_json(args[0], value)
    if hint is int and type(value) is float:
        return int(value)
    if (fields := _record_fields(hint)) is not None:
        if not isinstance(value, dict):
            raise TypeError(f"{hint.__name__} wants an object")
        return hint(**{k: _from_json(fields[k], value[k]) for k in fields})
    if origin is list and isinstance(value, list):
        return [_from_json(args[0], v) for v in value]
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {k: _from_json(args[1], v) for k, v in value.items()}
    if origin in (Union, types.UnionType):
        for arm in args:  # the first the value fits, as the schema check took it
            try:
                problem = _schema_problem(_json_schema(arm, ""), value, "")
            except TypeError:  # a type with no schema takes anything
                problem = None
            if problem is None:
                return _from_json(arm, value)
    return value


def _call_tool(fn: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    """`fn` with the arguments as keywords, objects made into the dataclasses
    its annotations name."""
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError):
        hints = {}
    return fn(**{k: _from_json(hints.get(k), v) for k, v in arguments.items()})


# --- Rollouts ---------------------------------------------------------------
#
# A rollout is the conversation on disk: JSON lines under
# $CODEX_HOME/sessions/YYYY/MM/DD/, the same files upstream Codex writes, so a
# thread started by either resumes in the other.


def _utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# What to do when a rollout cannot be written.
_ROLLOUT_REMEDY = (
    "set CODEX_HOME to a writable folder with room, "
    "or run ephemeral (--ephemeral, ephemeral=True)"
)


class RolloutWriter:
    """Appends `RolloutLine`s to one rollout file, one `write` call per line.

    Lines carry `ordinal`, the line's number from 0, whenever the file's
    lines do (Codex 0.169 refuses to resume a file whose last line lacks
    one); a file in the older format without ordinals keeps that format.
    Appends hold an exclusive lock, so two writers never share a number or
    interleave a line.  Each line reaches the kernel before `append`
    returns, so a crash loses at most the line being written; `close` fsyncs.

    Codex appends without a lock, one `write` a line, and a line can be
    hundreds of MB: a file that ends mid-line may be another program's write
    still under way.  So no byte this writer did not write is ever removed;
    a line of ours that follows a partial one starts on a line of its own.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _file_error(path, exc, _ROLLOUT_REMEDY) from None
        # Where the file ends and the next ordinal: read under the lock, at
        # the first append and whenever another writer was here since.
        self._end = -1
        self._ordinal: int | None = None

    @classmethod
    def create(
        cls, home: Path, thread_id: str, meta: Mapping[str, Any]
    ) -> RolloutWriter:
        """Start a new rollout for `thread_id` with its `session_meta` line."""
        local = datetime.now().astimezone()
        name = f"rollout-{local.strftime('%Y-%m-%dT%H-%M-%S')}-{thread_id}.jsonl"
        writer = cls(home / "sessions" / local.strftime("%Y/%m/%d") / name)
        writer.append("session_meta", {"id": thread_id, **meta})
        return writer

    def append(self, kind: str, payload: Any) -> None:
        with _locked(self._fd):
            if os.fstat(self._fd).st_size != self._end:
                self._end = os.lseek(self._fd, 0, os.SEEK_END)
                self._ordinal = _next_ordinal(self._fd, self._end)
            line: dict[str, Any] = {"timestamp": _utc_timestamp()}
            if self._ordinal is not None:
                line["ordinal"] = self._ordinal
                self._ordinal += 1
            line["type"], line["payload"] = kind, payload
            data = _dumps(line) + b"\n"
            if self._end and _read_at(self._fd, self._end - 1, 1) != b"\n":
                data = b"\n" + data  # after a line a crash cut, or one being written
            view, written = memoryview(data), 0
            try:
                while written < len(data):
                    written += os.write(self._fd, view[written:])
            except OSError as exc:  # a full disk, say: no half line, name the file
                if written and os.fstat(self._fd).st_size == self._end + written:
                    os.ftruncate(self._fd, self._end)  # only what this call wrote
                raise _file_error(self.path, exc, _ROLLOUT_REMEDY) from None
            self._end = os.fstat(self._fd).st_size

    def append_items(self, items: Iterable[ResponseItem]) -> None:
        for item in items:
            self.append("response_item", item_to_json(item))

    def close(self) -> None:
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise _file_error(self.path, exc, _ROLLOUT_REMEDY) from None
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> typing.Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Where both Codex and codex-lite write a line's ordinal: at its head, so a
# line of hundreds of MB need not be read whole to number the next one.
_ORDINAL_AT_HEAD = re.compile(
    rb'\{\s*"timestamp"\s*:\s*"[^"\\]{0,64}"\s*,\s*"ordinal"\s*:\s*(\d{1,18})\s*[,}]'
)


def _line_ordinal(fd: int, start: int, stop: int, *, whole: bool = True) -> int | None:
    if match := _ORDINAL_AT_HEAD.match(_read_at(fd, start, min(stop - start, 256))):
        return int(match[1])
    if not whole:
        return None
    return _json_get(_json_or_none(_read_at(fd, start, stop - start)), "ordinal", int)


def _next_ordinal(fd: int, end: int) -> int | None:
    """The ordinal the next line takes: 0 in an empty file, one past the
    last numbered line (counting the whole lines after it), or None for a
    file in the format without ordinals.  A partial last line counts by the
    ordinal at its head alone, as Codex counts it."""
    after = 0
    for start, stop in _lines_backwards(fd, end):
        if (ordinal := _line_ordinal(fd, start, stop, whole=stop < end)) is not None:
            return ordinal + after + 1
        if stop == end:
            continue
        if after == 0 and _line_ordinal(fd, 0, _first_line_end(fd, end)) is None:
            return None  # neither the first nor the last line is numbered
        after += 1
    return 0 if after == 0 else None


def _first_line_end(fd: int, end: int) -> int:
    """Where the first line stops: its newline, or the end of the file."""
    for at in range(0, end, 1 << 16):
        if (cut := _read_at(fd, at, 1 << 16).find(b"\n")) >= 0:
            return at + cut
    return end


def _lines_backwards(fd: int, end: int) -> Iterator[tuple[int, int]]:
    """Where the non-empty lines before `end` start and stop, last first (a
    last line without its newline too); read in blocks, each byte once."""
    stop = at = end
    while at > 0:
        start = max(0, at - (1 << 16))
        block = _read_at(fd, start, at - start)
        cut = len(block)
        while (cut := block.rfind(b"\n", 0, cut)) >= 0:
            if start + cut + 1 < stop:
                yield start + cut + 1, stop
            stop = start + cut
        at = start
    if stop > 0:
        yield 0, stop


class Rollout(typing.NamedTuple):
    """A rollout read back: its `session_meta` payload, the rebuilt history,
    the thread's token usage so far and the last response's (the last
    `token_count` event's), and the context window the last `compacted`
    line began."""

    path: Path
    meta: dict[str, Any]
    items: list[ResponseItem]
    token_usage: dict[str, Any] | None = None
    last_token_usage: dict[str, Any] | None = None
    window_number: int = 0

    @property
    def thread_id(self) -> str:
        return str(self.meta.get("id", ""))

    @property
    def base_instructions(self) -> str:
        """The system prompt the thread was written under ("" if none was stored)."""
        value = self.meta.get("base_instructions")
        return value if isinstance(value, str) else _json_get(value, "text", str) or ""


def read_rollout(path: Path | str) -> Rollout:
    """Rebuild history from a rollout file (`.jsonl`, or `.jsonl.zst`).

    History is the `response_item` lines, changed as Codex changes it: a
    `compacted` line replaces what came before (with its
    `replacement_history`, or else with the recent user messages and the
    summary), a `thread_rolled_back` event drops the last user turns.
    Inline images are prepared again.  A torn last line (a crash mid-write)
    is skipped with a warning; any other bad line is skipped with a warning
    that names its line number, so one bad line never costs the whole file.
    A file past `_ROLLOUT_MAX` bytes (decompressed), or more than memory
    holds, is a ConfigError naming it.
    """
    path = Path(path)
    try:
        return _read_rollout(path)
    except MemoryError:
        raise ConfigError(
            f"{path}: the thread is too large to hold in memory"
        ) from None
    except OSError as exc:
        raise _file_error(path, exc, "make it readable") from None


def _read_rollout(path: Path) -> Rollout:
    meta: dict[str, Any] = {}
    items: list[ResponseItem] = []
    usage = last = None
    window = 0
    summaries: set[str] = set()
    for number, raw in enumerate(_rollout_lines(path), start=1):
        if not raw.endswith(b"\n") and raw.strip():
            _log.warning("%s: ignoring a torn last line (%d bytes)", path, len(raw))
            break
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            kind, payload = line["type"], line["payload"]
            event = _json_get(payload, "type") if kind == "event_msg" else None
            if kind == "session_meta" and not meta:
                meta = dict(payload)
            elif kind == "response_item":
                items.append(item_from_json(payload))
            elif kind == "compacted":
                items = _compacted_history(items, payload, summaries)
                window = _json_get(payload, "window_number", int) or window + 1
            elif event == "thread_rolled_back":
                items = _rolled_back(items, payload["num_turns"])
            elif event == "token_count" and isinstance(payload.get("info"), dict):
                usage = _json_get(payload["info"], "total_token_usage", dict)
                last = _json_get(payload["info"], "last_token_usage", dict)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            _log.warning(
                "%s:%d: skipping unreadable rollout line: %s", path, number, exc
            )
    items = prepare_conversation_items_for_history(items, item_ids=False)
    return Rollout(path, meta, items, usage, last, window)


# The most of a rollout resume reads into memory, decompressed: well past
# any thread a model can take, far short of what a compressed file can claim.
_ROLLOUT_MAX = 256 << 20


def _rollout_lines(path: Path, limit: int = _ROLLOUT_MAX) -> Iterator[bytes]:
    """A rollout's lines as they are read, each with its newline (a torn
    last one without); `.zst` files decompressed on the way.  ConfigError,
    naming the file: more than `limit` bytes, corrupt or cut zstd data."""
    pending: list[bytes] = []
    total = 0
    with path.open("rb") as f:
        zst = path.name.endswith(".zst")
        chunks = _zstd_chunks(f) if zst else iter(lambda: f.read(1 << 20), b"")
        try:
            for chunk in chunks:
                total += len(chunk)
                if total > limit:
                    raise ValueError(
                        f"more than the {limit >> 20} MiB codex-lite reads"
                    )
                start = 0
                while (cut := chunk.find(b"\n", start) + 1) > 0:
                    yield b"".join([*pending, chunk[start:cut]])
                    pending, start = [], cut
                pending.append(chunk[start:])
        except ValueError as exc:  # found before anything is sent: exit 2
            raise ConfigError(f"{path}: {exc}") from None
    if tail := b"".join(pending):
        yield tail


def _zstd_chunks(f: typing.BinaryIO) -> Iterator[bytes]:
    """A zstd file's content, every frame of it, in bounded pieces (a
    kilobyte of input inflates to 32 MiB at the most).  ValueError: corrupt
    or cut short, where the libraries' stream readers would just stop."""
    try:
        from compression import zstd  # novermin
    except ImportError:
        import zstandard

        decoder = None
        while data := f.read(1024):
            while data:
                decoder = decoder or zstandard.ZstdDecompressor().decompressobj()
                try:
                    yield decoder.decompress(data)
                except zstandard.ZstdError as exc:
                    raise ValueError(f"corrupt zstd data: {exc}") from None
                data, decoder = (
                    (decoder.unused_data, None) if decoder.eof else (b"", decoder)
                )
        if decoder is not None:
            raise ValueError("truncated zstd data")
        return
    try:
        with zstd.ZstdFile(f) as packed:
            yield from iter(lambda: packed.read(1 << 20), b"")
    except (zstd.ZstdError, EOFError) as exc:
        raise ValueError(f"corrupt or truncated zstd data: {exc}") from None


def _unpack_rollout(path: Path) -> Path:
    """Before appending to a `.jsonl.zst` rollout: decompress it back to
    `.jsonl` beside it (atomically), as Codex does, and remove the `.zst`."""
    if not path.name.endswith(".zst"):
        return path
    plain = path.with_name(path.name.removesuffix(".zst"))
    try:
        _write_atomically(plain, _rollout_lines(path), mode=0o644)
        path.unlink()
    except OSError as exc:
        raise _file_error(plain, exc, _ROLLOUT_REMEDY) from None
    return plain


# User messages that are context the harness adds, not a user's turn.
_CONTEXT_PREFIXES = (
    "<environment_context>",
    "<user_instructions>",
    "# AGENTS.md instructions",
    "<skill>",
    "<user_shell_command>",
    "<turn_aborted>",
    "<subagent_notification>",
)


def _user_text(item: ResponseItem) -> str | None:
    """The text of a message a user typed, or None for anything else."""
    if not isinstance(item, Message) or item.role != "user":
        return None
    text = "".join(p.text for p in item.content if isinstance(p, InputText))
    return None if text.lstrip().startswith(_CONTEXT_PREFIXES) else text


def _rolled_back(items: list[ResponseItem], num_turns: Any) -> list[ResponseItem]:
    """History without its last `num_turns` user turns (`thread_rolled_back`)."""
    if type(num_turns) is not int or num_turns < 0:
        raise TypeError("thread_rolled_back num_turns must be a whole number")
    starts = [i for i, item in enumerate(items) if _user_text(item) is not None]
    if num_turns == 0 or not starts:
        return items
    return items[: starts[-min(num_turns, len(starts))]]


# How many tokens of earlier user messages a compaction without a
# replacement history keeps; Codex counts a token as four bytes.
_COMPACT_USER_TOKENS = 20_000

# What starts the user message that carries a summary after a compaction
# by a provider other than OpenAI (the summary follows).
_SUMMARY_PREFIX = (
    "Another language model started to solve this problem and produced a summary "
    "of its thinking process. You also have access to the state of the tools that "
    "were used by that language model. Use this to build on the work that has "
    "already been done and avoid duplicating work. Here is the summary produced by "
    "the other language model, use the information in this summary to assist with "
    "your own analysis:\n"
)


def _compacted_history(
    items: list[ResponseItem], payload: Any, summaries: set[str]
) -> list[ResponseItem]:
    """History after a `compacted` line: its `replacement_history`, or else
    the most recent user messages (the oldest one kept cut in the middle)
    and then the summary, each as a user message."""
    replacement = payload.get("replacement_history")
    if replacement is not None:
        return [item_from_json(p) for p in replacement]
    message = "compacted message"
    summary = _typed(payload, "message", str, message, error=TypeError, required=True)
    # earlier summaries are no user's
    kept = [_user_text(i) or "" for i in _kept_user_messages(items, summaries)]
    summaries.add(summary)
    return [Message.user(text) for text in [*kept, summary or "(no summary available)"]]


def _kept_user_messages(
    items: Sequence[ResponseItem], skip: Container[str] = ()
) -> list[ResponseItem]:
    """The user messages a compaction keeps, as they were: the most recent
    ones, up to `_COMPACT_USER_TOKENS`, the oldest one kept cut in the middle.
    An earlier compaction's summary is no user's."""
    kept: list[ResponseItem] = []
    budget = _COMPACT_USER_TOKENS
    for item in reversed(items):
        text = _user_text(item)
        if text is None or text in skip or text.startswith(_SUMMARY_PREFIX):
            continue
        tokens = (len(text.encode()) + 3) // 4
        if tokens > budget:
            if budget > 0:  # the budget's bytes, half from each end
                cut = f"…{tokens - budget} tokens truncated…"
                kept.append(
                    Message.user(f"{text[: budget * 2]}{cut}{text[-budget * 2 :]}")
                )
            break
        kept.append(item)
        budget -= tokens
    return kept[::-1]


# What a thread id may look like: a UUID, as Codex makes them.  Anything
# else would be matched as a file-name pattern.
_THREAD_ID = re.compile(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")


def find_rollout(
    home: Path, thread_id: str | None = None, *, cwd: str | None = None
) -> Path:
    """The rollout of `thread_id`; or, when it is None, the most recently
    updated one, of a thread started in `cwd` when that is given.

    `.jsonl.zst` files are found too; the plain file wins when both exist.
    """
    sessions = home / "sessions"
    if thread_id is not None:
        if not _THREAD_ID.fullmatch(thread_id):
            raise ConfigError(f"{thread_id!r} is not a thread id (a UUID)")
        thread_id = thread_id.lower()  # as file names spell it
        found = _rollout_files(sessions, f"rollout-*-{thread_id}")
        if not found:
            raise ConfigError(f"no rollout for thread {thread_id} under {sessions}")
        return found[0]
    for path in sorted(_rollout_files(sessions), key=_mtime, reverse=True):
        if cwd is None or _session_cwd(path) == cwd:
            return path
    where = f" for {cwd}" if cwd is not None else ""
    raise ConfigError(f"no rollouts{where} under {sessions}")


def _rollout_files(sessions: Path, stem: str = "rollout-*") -> list[Path]:
    """Rollout files under `sessions`, plain before compressed."""
    plain = list(sessions.glob(f"*/*/*/{stem}.jsonl"))
    names = {p.name for p in plain}
    packed = sessions.glob(f"*/*/*/{stem}.jsonl.zst")
    return [p for p in plain if p.is_file()] + [
        p for p in packed if p.name[:-4] not in names and p.is_file()
    ]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _session_cwd(path: Path) -> str | None:
    """The `cwd` of a rollout's `session_meta`, reading only its first line."""
    try:
        first = next(_rollout_lines(path, limit=16 << 20), b"")
    except (OSError, CodexError):
        return None
    return _json_get(_json_get(_json_or_none(first), "payload"), "cwd", str)


# --- Conversation -----------------------------------------------------------
#
# A `Conversation` is a client plus its history and rollout: the layer the
# command line runs turns on.


# What Codex asks a provider other than OpenAI to compact the history with.
_SUMMARIZATION_PROMPT = """\
You are performing a CONTEXT CHECKPOINT COMPACTION. Create a handoff summary for another LLM that will resume the task.

Include:
- Current progress and key decisions made
- Important context, constraints, or user preferences
- What remains to be done (clear next steps)
- Any critical data, examples, or references needed to continue

Be concise, structured, and focused on helping the next LLM seamlessly continue the work.
"""

# What Codex says when even the shortest history does not fit.
_OUT_OF_ROOM = (
    "Codex ran out of room in the model's context window. Start a new thread "
    "or clear earlier history before retrying."
)


class TurnResult(typing.NamedTuple):
    """What a turn produced: the last answer's text, every item the turn
    added but the user input (tool calls and outputs too, with the outputs
    for calls an earlier turn left unanswered), the last response's token
    usage, and the structured reply when a schema asked for one."""

    text: str
    items: list[ResponseItem]
    usage: TokenUsage | None
    parsed: Any = None


class Conversation:
    """History, rollout and client of one thread.

    `token_usage` is the thread's running total and `last_token_usage` the
    last response's, as the rollout's `token_count` events carry them.
    With `auto_compact_token_limit` (config `model_auto_compact_token_limit`)
    the history is compacted (`compact`) when the last response's total
    tokens reached it and another request is due: before the next turn, or
    before the request that follows tool calls.
    """

    def __init__(
        self,
        client: Client,
        *,
        history: list[ResponseItem] | None = None,
        rollout: RolloutWriter | None = None,
        instructions: str = "",
        token_usage: Mapping[str, Any] | None = None,
        last_token_usage: Mapping[str, Any] | None = None,
        auto_compact_token_limit: int | None = None,
    ) -> None:
        self.client = client
        self.history = history if history is not None else []
        self.rollout = rollout
        self.instructions = instructions
        self.token_usage = _usage_counts(token_usage)
        self.last_token_usage = _usage_counts(last_token_usage)
        self.auto_compact_token_limit = auto_compact_token_limit
        self.last_result = TurnResult("", [], None)

    @classmethod
    def start(
        cls,
        config: Config,
        *,
        ephemeral: bool = False,
        auth: AuthProvider | None = None,
        instructions: str = "",
    ) -> Conversation:
        """A new thread; `ephemeral` writes no file: no rollout, no
        installation id (one that exists is read)."""
        client = _thread_client(config, ephemeral, auth)
        rollout = None
        if not ephemeral:
            meta: dict[str, Any] = {
                "session_id": client.session_id,
                "timestamp": _utc_timestamp(),
                "cwd": os.getcwd(),
                "originator": client.originator,
                "cli_version": __version__,
                "source": "exec",
                "model_provider": config.model_provider,
            }
            if instructions:
                meta["base_instructions"] = {"text": instructions}
            rollout = RolloutWriter.create(config.home, client.thread_id, meta)
        return cls(
            client,
            rollout=rollout,
            instructions=instructions,
            auto_compact_token_limit=config.model_auto_compact_token_limit,
        )

    @classmethod
    def resume(
        cls,
        config: Config,
        thread_id: str | None = None,
        *,
        last: bool = False,
        cwd: str | None = None,
        ephemeral: bool = False,
        auth: AuthProvider | None = None,
    ) -> Conversation:
        """Continue a thread from its rollout, under the base instructions it
        was written with.  `last` takes the most recently updated thread (of
        those started in `cwd`, when given)."""
        if thread_id is None and not last:
            raise ConfigError("resume needs a thread id or --last")
        path = find_rollout(config.home, thread_id, cwd=cwd)
        if not ephemeral:
            path = _unpack_rollout(path)
        rollout = read_rollout(path)
        if not rollout.thread_id:
            raise CodexError(f"{rollout.path} has no session_meta line with an id")
        session_id = rollout.meta.get("session_id") or rollout.thread_id
        client = _thread_client(config, ephemeral, auth, rollout.thread_id, session_id)
        client.window_number = rollout.window_number
        return cls(
            client,
            history=rollout.items,
            rollout=None if ephemeral else RolloutWriter(rollout.path),
            instructions=_PLAN_TOOL_SECTIONS.sub("", rollout.base_instructions),
            token_usage=rollout.token_usage,
            last_token_usage=rollout.last_token_usage,
            auto_compact_token_limit=config.model_auto_compact_token_limit,
        )

    def prepare_items(
        self, items: Iterable[ResponseItem], turn_id: str
    ) -> list[ResponseItem]:
        """Items as history keeps them: turn id and creation time stamped, ids
        and images prepared as configured."""
        now = time.time()
        return prepare_conversation_items_for_history(
            [_stamped(i, turn_id, now) for i in items],
            item_ids=self.client.features.get("item_ids", True),
        )

    def record(self, items: Iterable[ResponseItem], turn_id: str) -> list[ResponseItem]:
        """Add items to history and the rollout."""
        prepared = self.prepare_items(items, turn_id)
        self.history.extend(prepared)
        if self.rollout is not None:
            self.rollout.append_items(prepared)
        return prepared

    def _write(self, payload: dict[str, Any], kind: str = "event_msg") -> None:
        """Write a line to the rollout: an event unless `kind` says otherwise."""
        if self.rollout is not None:
            self.rollout.append(kind, payload)

    def stream_turn(
        self,
        user_input: str | Sequence[ResponseItem],
        *,
        tools: Sequence[Callable[..., Any] | Tool] = (),
        output_schema: Any = None,
        max_tool_rounds: int = 16,
        parallel_tool_calls: bool = False,
    ) -> Iterator[ResponseEvent]:
        """Run one turn, yielding its events.

        With `tools` (functions, or `Tool`s) every call the model makes is
        run and answered, and the next request sent, until a response calls
        none; calls left unanswered in the history (a turn cut short) are
        answered first.  `parallel_tool_calls` runs a round's calls on a few
        threads.  `output_schema` (a JSON Schema dict, a dataclass or a
        TypedDict) asks for structured output: `last_result.parsed`.  Each
        response is recorded at its `Completed`; the rollout gets the
        `task_started`, `token_count` and `task_complete` events Codex
        writes, so tools that read rollouts see usage and timing.
        """
        runners = {t.definition["name"]: t for t in map(_as_tool, tools)}
        if max_tool_rounds < 0:
            raise ValueError("max_tool_rounds must be 0 or more")
        schema = output_schema
        if schema is not None and not isinstance(schema, dict):
            schema = _json_schema(schema, "output_schema")
            if schema.get("type") != "object":  # strict structured output wants one
                raise TypeError("output_schema: a dataclass, a TypedDict or a dict")
        turn = self.client.new_turn()
        started = turn.started_at_ms / 1000
        self._write(_task_started(turn.turn_id, started))
        if isinstance(user_input, str):
            user_input = [Message.user(user_input)]
        definitions = [t.definition for t in runners.values()]
        if self.client.rules.responses_lite:
            self._record_lite_items(definitions, turn.turn_id)
        prompt = Prompt(
            input=(),
            instructions=self.instructions,
            output_schema=schema,
            tools=definitions or None,
            parallel_tool_calls=parallel_tool_calls,
        )
        # calls a turn cut short left unanswered come first
        turn_items = self._run_tools(turn, runners, parallel=parallel_tool_calls)
        try:
            self._compact_if_due(turn, prompt, "pre_turn")
        finally:  # kept even when that fails, as Codex keeps it
            self.record(user_input, turn.turn_id)
        first_output: float | None = None
        for rounds in itertools.count():
            output: list[ResponseItem] = []
            rate_limits = None
            request = dataclasses.replace(prompt, input=list(self.history))
            for event in turn.stream(request):
                if isinstance(event, StreamRetry):
                    output.clear()
                elif isinstance(event, RateLimits) and event.limit_id == "codex":
                    rate_limits = event
                elif isinstance(
                    event, OutputTextDelta | OutputItemAdded | OutputItemDone
                ):
                    first_output = first_output or time.time()
                    if isinstance(event, OutputItemDone):
                        output.append(event.item)
                elif isinstance(event, Completed):
                    output = self.record(output, turn.turn_id)
                    self._token_count(event.usage, rate_limits)
                    turn_items += output
                    text = _assistant_text(output)
                    self.last_result = TurnResult(text, turn_items, event.usage)
                yield event
            if not runners or not _unanswered(output):
                break
            if rounds == max_tool_rounds:
                raise ToolRoundsExceeded(
                    f"the model still called tools after {max_tool_rounds} rounds"
                )
            turn_items += self._run_tools(turn, runners, parallel=parallel_tool_calls)
            self._compact_if_due(turn, prompt, "mid_turn")
        done = time.time()
        self._write(
            {
                "type": "task_complete",
                "root_turn_id": turn.turn_id,
                "turn_id": turn.turn_id,
                "last_agent_message": self.last_result.text or None,
                "started_at": int(started),
                "completed_at": int(done),
                "duration_ms": int((done - started) * 1000),
                "time_to_first_token_ms": int(
                    ((first_output or done) - started) * 1000
                ),
            }
        )
        if output_schema is not None:
            parsed = _parsed(output_schema, schema, self.last_result.text)
            self.last_result = self.last_result._replace(parsed=parsed)

    def compact(self) -> None:
        """Compact the history now, as Codex's `/compact` does (a
        `CompactionFailed` if that fails)."""
        prompt = Prompt(input=(), instructions=self.instructions)
        self._compact(self.client.new_turn(), prompt, "standalone_turn")

    def _compact_if_due(self, turn: Turn, prompt: Prompt, phase: str) -> None:
        """Compact when the last response's total tokens reached the limit."""
        limit = self.auto_compact_token_limit
        if limit is not None and self.last_token_usage["total_tokens"] >= limit:
            self._compact(turn, prompt, phase)

    def _compact(self, turn: Turn, prompt: Prompt, phase: str) -> None:
        """Compact as Codex does: the user messages kept and what stands for
        the rest (`_compaction_answer`) replace the history and start a new
        context window, and the rollout gets the lines Codex writes."""
        started = time.time_ns() // 1_000_000
        summary, replacement = self._compaction_answer(turn, prompt, phase)
        self.history = [*_kept_user_messages(self.history), *replacement]
        self.client.window_number += 1
        history = [item_to_json(i) for i in self.history]
        self._write(
            {
                "message": summary,
                "replacement_history": history,
                "window_number": self.client.window_number,
            },
            "compacted",
        )
        # until a response says, the new history's size as Codex guesses it
        size = len(self.instructions.encode()) + sum(len(_dumps(i)) for i in history)
        self.last_token_usage = _usage_counts({"total_tokens": (size + 3) // 4})
        info = self._usage_info(True)
        self._write({"type": "token_count", "info": info, "rate_limits": None})
        self._write(
            {
                "type": "item_completed",
                "thread_id": self.client.thread_id,
                "turn_id": turn.turn_id,
                "item": {"type": "ContextCompaction", "id": _uuid7()},
                "started_at_ms": started,
                "completed_at_ms": time.time_ns() // 1_000_000,
            }
        )

    def _compaction_answer(
        self, turn: Turn, prompt: Prompt, phase: str
    ) -> tuple[str, list[ResponseItem]]:
        """The summary and the item that stand for the history, asked for as
        Codex asks.  The openai provider gets `prompt`'s request with the whole
        history and a trailing `compaction_trigger`, and answers with one
        `compaction` item (and no summary).  Others get it without tools, with
        the summarization prompt last, and without the oldest item (a call
        with its output) while that is too long; their answer goes to history,
        its usage counts, and its text becomes the summary message."""
        remote = self.client.provider.is_openai
        failed = "Error running remote compact task: " if remote else ""
        auto = phase != "standalone_turn"
        metadata = {
            "trigger": "auto" if auto else "manual",
            "reason": "context_limit" if auto else "user_requested",
            "implementation": "responses_compaction_v2" if remote else "responses",
            "phase": phase,
            "strategy": "memento",
        }
        last: ResponseItem = CompactionTrigger()
        if not remote:
            last = Message.user(_SUMMARIZATION_PROMPT)
            prompt = dataclasses.replace(prompt, tools=[], parallel_tool_calls=False)
        history = list(self.history)
        while True:
            output: list[ResponseItem] = []
            request = dataclasses.replace(prompt, input=[*history, last])
            try:
                for event in turn.stream(request, metadata):
                    if isinstance(event, StreamRetry):
                        output.clear()
                    elif isinstance(event, OutputItemDone):
                        output.append(event.item)
                    elif isinstance(event, Completed) and not remote:
                        self.record(output, turn.turn_id)
                        self._token_count(event.usage)
                break
            except CodexError as error:
                too_long = isinstance(error, ContextWindowExceeded)
                if too_long and history and not remote:
                    if call_id := getattr(history.pop(0), "call_id", None):
                        history = [
                            i for i in history if getattr(i, "call_id", None) != call_id
                        ]
                    continue
                message = _OUT_OF_ROOM if too_long else str(error)
                raise CompactionFailed(failed + message) from error
        if not remote:
            summary = _SUMMARY_PREFIX + _assistant_text(output)
            return summary, self.prepare_items([Message.user(summary)], turn.turn_id)
        found: list[ResponseItem] = [i for i in output if isinstance(i, Compaction)]
        if len(found) != 1:
            raise CompactionFailed(
                f"{failed}expected exactly one compaction output item, got "
                f"{len(found)} from {len(output)} output items"
            )
        return "", found

    def _record_lite_items(self, tools: list[Any], turn_id: str) -> None:
        """Responses Lite's tools and instructions items, kept in history as
        Codex keeps them, so every request and resume sends them unchanged:
        both at the thread's first turn, the tools again when they change."""
        stored = [i for i in self.history if isinstance(i, AdditionalTools)]
        if stored and stored[-1].tools == tools:
            return
        items: list[ResponseItem] = [
            AdditionalTools(id=f"at_{_uuid7()}", role="developer", tools=tools)
        ]
        if self.instructions and not stored:
            harness = [{"provenance": {"type": "harness", "hook": False}}]
            metadata = ItemMetadata(
                content_item_kinds=["model.base_instructions"],
                extra={"content_item_metadata": harness},
            )
            message = Message.developer(self.instructions)
            items.append(_replace(message, id=f"msg_{_uuid7()}", metadata=metadata))
        self.record(items, turn_id)

    def _run_tools(
        self, turn: Turn, tools: Mapping[str, Tool], *, parallel: bool
    ) -> list[ResponseItem]:
        """Answer the unanswered calls, outputs in call order, and record them.
        Past `_MAX_TOOL_CALLS` calls are answered that they were not run."""
        calls = _unanswered(self.history) if tools else []
        calls, unrun = calls[:_MAX_TOOL_CALLS], calls[_MAX_TOOL_CALLS:]
        if len(calls) > 1 and parallel:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(8, len(calls))) as pool:
                outputs = list(pool.map(lambda c: _answer(c, tools), calls))
        else:
            outputs = [_answer(c, tools) for c in calls]
        # an output of the right kind, as for no tool, saying why instead
        outputs += [_replace(_answer(c, {}), output=_UNRUN) for c in unrun]
        return self.record(outputs, turn.turn_id)

    def _token_count(
        self, usage: TokenUsage | None, rate_limits: RateLimits | None = None
    ) -> None:
        """Write a `token_count` event: this response's usage and the thread's
        total."""
        info = None
        if usage is not None:
            last = {k: getattr(usage, k, 0) for k in _USAGE_KEYS}
            self.token_usage = {k: v + last[k] for k, v in self.token_usage.items()}
            self.last_token_usage = last
            info = self._usage_info(False)
        limits = None
        if rate_limits is not None:
            limits = {
                "limit_id": rate_limits.limit_id,
                "limit_name": rate_limits.limit_name,
                "primary": rate_limits.primary and rate_limits.primary._asdict(),
                "secondary": rate_limits.secondary and rate_limits.secondary._asdict(),
                "credits": rate_limits.credits,
                "plan_type": None,
            }
        self._write({"type": "token_count", "info": info, "rate_limits": limits})

    def _usage_info(self, includes_reasoning: bool) -> dict[str, Any]:
        return {
            "total_token_usage": dict(self.token_usage),
            "last_token_usage": dict(self.last_token_usage),
            "last_usage_includes_reasoning": includes_reasoning,
            "model_context_window": None,
        }

    def run_turn(
        self,
        user_input: str | Sequence[ResponseItem],
        *,
        tools: Sequence[Callable[..., Any] | Tool] = (),
        output_schema: Any = None,
        max_tool_rounds: int = 16,
        parallel_tool_calls: bool = False,
    ) -> TurnResult:
        """`stream_turn` to its end: what the turn produced."""
        events = self.stream_turn(
            user_input,
            tools=tools,
            output_schema=output_schema,
            max_tool_rounds=max_tool_rounds,
            parallel_tool_calls=parallel_tool_calls,
        )
        for _ in events:
            pass
        return self.last_result

    def close(self) -> None:
        """Flush and close the rollout, and the client's connections."""
        try:
            if self.rollout is not None:
                self.rollout.close()
        finally:
            self.client.close()

    def __enter__(self) -> typing.Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _thread_client(
    config: Config,
    ephemeral: bool,
    auth: AuthProvider | None,
    thread_id: str | None = None,
    session_id: str | None = None,
) -> Client:
    """The client of a thread, new or resumed.  An ephemeral run writes no
    file: an installation id that exists is read, none is made."""
    client = Client.from_config(
        config, thread_id=thread_id, session_id=session_id, auth=auth
    )
    if ephemeral:
        client._installation_id = _resolve_installation_id(config.home, keep=False)
    return client


# The sections of Codex's base instructions about its `update_plan` tool: a
# level-2 heading and what follows up to the next heading of level 1 or 2.
# Codex leaves them out for a model it offers no such tool; codex-lite offers none.
_PLAN_TOOL_SECTIONS = re.compile(
    r"^## (?:Planning|`update_plan`)\n.*?(?=^#{1,2} |\Z)", re.MULTILINE | re.DOTALL
)


# The token counts of a `token_count` event, in Codex's order.
_USAGE_KEYS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
    "total_tokens",
)


def _usage_counts(given: Mapping[str, Any] | None) -> dict[str, int]:
    """The counts of a `token_count` event's usage, each 0 where it has none."""
    given = given or {}
    return {k: given[k] if type(given.get(k)) is int else 0 for k in _USAGE_KEYS}


def _task_started(turn_id: str, started: float) -> dict[str, Any]:
    return {
        "type": "task_started",
        "turn_attribution": {
            "turn_id": turn_id,
            "turn_trigger": "exec",
            "parent_turn_id": None,
            "initiating_agent_path": None,
            "root_turn_id": turn_id,
        },
        "turn_id": turn_id,
        "root_turn_id": turn_id,
        "started_at": int(started),
        "model_context_window": None,
        "collaboration_mode_kind": "default",
    }


def _assistant_text(items: Iterable[ResponseItem]) -> str:
    """The text of the assistant messages among `items`."""
    return "".join(
        part.text
        for item in items
        if isinstance(item, Message) and item.role == "assistant"
        for part in item.content
        if isinstance(part, OutputText)
    )


# --- Realtime ---------------------------------------------------------------
#
# A realtime start opens a session over a WebSocket (text in, typed events
# out) or makes a WebRTC call, a single request, by its transport.


class RealtimeCall(typing.NamedTuple):
    sdp_answer: str
    call_id: str


class RealtimeTransport(enum.Enum):
    WEBSOCKET = "websocket"
    WEBRTC = "webrtc"


@dataclass(frozen=True, slots=True, kw_only=True)
class RealtimeStart:
    """A realtime start: `open` it over its transport; `to_json` gives it as
    the params of the app-server's `thread/realtime/start` (camelCase).  A
    WebRTC start needs the SDP offer."""

    thread_id: str
    transport: RealtimeTransport = RealtimeTransport.WEBSOCKET
    sdp: str | None = None
    prompt: str | None = None
    voice: str | None = None

    def __post_init__(self) -> None:
        if self.transport is RealtimeTransport.WEBRTC and self.sdp is None:
            raise ConfigError("a webrtc realtime start needs an SDP offer")

    def open(
        self, client: Client, *, session: Mapping[str, Any] | None = None
    ) -> RealtimeSession | RealtimeCall:
        """A `RealtimeSession` over a WebSocket, or a WebRTC call made with
        the offer (`create_realtime_call`); `session` configures either."""
        if self.transport is RealtimeTransport.WEBSOCKET:
            return RealtimeSession(client, session=session)
        return create_realtime_call(client, self.sdp or "", session=session)

    def to_json(self) -> dict[str, Any]:
        transport: dict[str, Any] = {"type": self.transport.value}
        if self.transport is RealtimeTransport.WEBRTC:
            transport["sdp"] = self.sdp
        out: dict[str, Any] = {"threadId": self.thread_id, "transport": transport}
        optional = {"prompt": self.prompt, "voice": self.voice}
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


_REALTIME_BOUNDARY = "codex-realtime-call-boundary"


def create_realtime_call(
    client: Client, sdp_offer: str, *, session: Mapping[str, Any] | None = None
) -> RealtimeCall:
    """Start a WebRTC realtime call: POST the SDP offer, get the answer and
    call id.  Sent once: a failure is raised, not retried."""
    provider, auth = client.provider, client.auth
    url = provider.url_for_path("realtime/calls", auth)
    config = {k: v for k, v in (session or {}).items() if k != "id"}
    if session is None:
        kind, body = "application/sdp", sdp_offer.encode()
    elif "/backend-api" in provider.base_url(auth):
        kind, body = "application/json", _dumps({"sdp": sdp_offer, "session": config})
    else:
        kind = f"multipart/form-data; boundary={_REALTIME_BOUNDARY}"
        body = (
            f"--{_REALTIME_BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="sdp"\r\n'
            "Content-Type: application/sdp\r\n\r\n"
            f"{sdp_offer}\r\n"
            f"--{_REALTIME_BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="session"\r\n'
            "Content-Type: application/json\r\n\r\n"
            f"{_dumps(config).decode()}\r\n"
            f"--{_REALTIME_BOUNDARY}--\r\n"
        ).encode()
    headers = {**provider.headers(), "originator": client.originator}
    unsigned = PreparedRequest("POST", url, {**headers, "Content-Type": kind}, body)
    auth.refresh_if_stale()
    policy = client.retry_policy
    timeout = (policy.connect_timeout, policy.stream_idle_timeout)
    http = _Http(client.http, provider, unsigned)
    response = http.send(auth.apply_auth(unsigned), timeout)
    if isinstance(response, _Failure):
        raise response.error
    sdp = response.content.decode("utf-8", "replace")
    location = response.headers.get("Location")
    if not location:
        raise ApiError("realtime call response missing Location")
    segments = reversed(urllib.parse.urlsplit(location).path.split("/"))
    call_id = next((s for s in segments if s.startswith("rtc_") and s != "rtc_"), None)
    if call_id is None:
        raise ApiError(f"realtime call Location does not contain a call id: {location}")
    return RealtimeCall(_scrub(sdp), _scrub(call_id))


class RealtimeTextDelta(typing.NamedTuple):
    """Text of the response as it streams; `transcript` when it is the
    transcript of spoken output."""

    text: str
    transcript: bool = False


class RealtimeDone(typing.NamedTuple):
    response: dict[str, Any]


class RealtimeServerEvent(typing.NamedTuple):
    """Any other server event, kept as it came."""

    type: str
    data: dict[str, Any]


RealtimeEvent = RealtimeTextDelta | RealtimeDone | RealtimeServerEvent
# Text and transcript deltas, by their GA names and the beta ones.
_REALTIME_DELTAS = {
    "response.output_text.delta": False,
    "response.text.delta": False,
    "response.output_audio_transcript.delta": True,
    "response.audio_transcript.delta": True,
}


class RealtimeSession:
    """A realtime session over a WebSocket, `wss://<base>/realtime?model=`,
    with the auth and headers of `create_realtime_call`; `session` (without
    its `id`) goes first, as `session.update`.  Needs `codex-lite[ws]`."""

    def __init__(
        self, client: Client, *, session: Mapping[str, Any] | None = None
    ) -> None:
        try:
            importlib.import_module("websockets")
        except ImportError:
            raise ConfigError(
                "realtime over a WebSocket needs the websockets package: "
                "pip install 'codex-lite[ws]'"
            ) from None
        provider, policy = client.provider, client.retry_policy
        url = provider.url_for_path("realtime", client.auth)
        url = "ws" + url.removeprefix("http") + ("&" if "?" in url else "?")
        url += f"model={urllib.parse.quote(client.model)}"
        headers = {
            **provider.headers(),
            "originator": client.originator,
            "User-Agent": _user_agent(client.originator),
        }
        self._idle_timeout = policy.stream_idle_timeout
        limits = (client.max_event_bytes, policy.stream_idle_timeout)

        def handshake(signed: PreparedRequest, timeout: tuple[float, float]) -> Any:
            return _websocket_handshake(signed, timeout[0], provider, *limits)

        # the handshake is retried, and its refusals typed, as a turn's are
        unsigned = PreparedRequest("GET", url, headers, b"")
        connect = policy.websocket_connect_timeout
        self.connection = client.new_turn()._send(unsigned, handshake, connect)
        if session is not None:
            config = {k: v for k, v in session.items() if k != "id"}
            try:
                self._send({"type": "session.update", "session": config})
            except StreamError:
                self.close()
                raise

    def _send(self, event: dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            self.connection.send(_dumps(event), text=True)
        except (ConnectionClosed, OSError):
            raise StreamError("the realtime WebSocket closed") from None

    def send_text(self, text: str) -> None:
        """`text` as a user message, and a request for a response to it."""
        content = [{"type": "input_text", "text": text}]
        item = {"type": "message", "role": "user", "content": content}
        self._send({"type": "conversation.item.create", "item": item})
        self._send({"type": "response.create"})

    def events(self) -> Iterator[RealtimeEvent]:
        """The server's events up to `response.done`; an `error` event is raised."""
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                message = _recv_websocket(self.connection, self._idle_timeout)
            except TimeoutError:
                raise StreamError("idle timeout waiting for realtime events") from None
            except ConnectionClosed:
                raise StreamError("the realtime WebSocket closed") from None
            event = _json_or_none(message)
            kind = _json_get(event, "type", str)
            if kind == "error":
                raise _failed_error(event, None)
            if kind in _REALTIME_DELTAS and isinstance(event.get("delta"), str):
                yield RealtimeTextDelta(event["delta"], _REALTIME_DELTAS[kind])
            elif kind == "response.done":
                yield RealtimeDone(_json_get(event, "response", dict) or {})
                return
            elif kind is not None:  # what is not a JSON object with a type is skipped
                yield RealtimeServerEvent(kind, event)

    def close(self) -> None:
        _close_websocket(self.connection)

    def __enter__(self) -> typing.Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- Command line -----------------------------------------------------------
#
# `codex-lite exec` runs one turn and streams the answer; `--json` prints
# the events `codex exec --json` prints; `--dry-run` prints the request it
# would send.  Exit codes: `_EXEC_EPILOG`.

_USAGE = """usage: codex-lite COMMAND [options]

commands:
  exec [PROMPT | -]               run one turn and stream the answer
  exec resume [--last | THREAD_ID] [PROMPT]
                                  continue a thread from its rollout
  fast [on | off | status]        persist fast mode (service_tier) in config.toml
  login --with-api-key | --device-auth | status
                                  sign in (auth.json, shared with Codex)
  login --chatgpt-plan [status]   sign in with ChatGPT for plan usage
                                  (codex-lite's own; provider chatgpt-plan)
  logout [--chatgpt-plan]         remove the stored sign-in
  sessions                        list recent rollouts, newest first
  realtime --text TEXT            a realtime session over a WebSocket
  realtime --sdp-offer FILE       start a WebRTC realtime call

Run `codex-lite COMMAND --help` for a command's options;
`codex-lite --version` (or -V) prints the version.
"""

_EXEC_EPILOG = """examples:
  codex-lite exec "explain this error: ..."
  git diff | codex-lite exec "review this" -o review.md
  codex-lite exec --json "hi" | jq -r 'select(.item.type == "agent_message").item.text'
  codex-lite exec resume --last "and now in French"

environment:
  OPENAI_API_KEY, CODEX_API_KEY  API key of the openai provider (CODEX_API_KEY wins)
  OPENAI_BASE_URL                base URL of the openai provider
  CODEX_HOME                     config.toml, auth.json, sessions/ (default ~/.codex)
  CODEX_LITE_LOG                 info, debug or trace: log to stderr, secrets redacted
  HTTPS_PROXY, NO_PROXY          the proxy to use, and hosts to reach without it

exit codes:
  0    the turn completed
  1    the turn failed otherwise (a bad request, a full context window, -o not written)
  2    nothing was sent: a usage, configuration or credential error
  3    sign-in needed: the server refused the credentials, or they did not refresh
  4    quota or usage limit reached
  5    rate limited, after the retries
  6    server or network failure, after the retries
  130  interrupted
"""


class _UsageError(Exception):
    """A command line to correct: its message alone on stderr, exit code 2."""


def _parser(
    prog: str, description: str, epilog: str | None = None
) -> argparse.ArgumentParser:
    """An argument parser, with `--debug` as every command has it; argparse is
    loaded only by the command line."""
    import argparse

    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="log to stderr")
    return parser


def _repeatable(
    parser: argparse.ArgumentParser, *flags: str, metavar: str, help: str
) -> None:
    """An option that may be given again, each value kept in order."""
    parser.add_argument(
        *flags, action="append", default=[], metavar=metavar, help=f"{help}; repeatable"
    )


def _common_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("-m", "--model", help="the model to ask")
    add("-p", "--profile", help="read $CODEX_HOME/NAME.config.toml over config.toml")
    _repeatable(
        parser,
        "-c",
        "--config",
        metavar="KEY=VALUE",
        help="set a config.toml key for this run (the value read as TOML)",
    )
    add("--provider", metavar="ID", help="model provider id")


def _exec_parser() -> argparse.ArgumentParser:
    parser = _parser(
        "codex-lite exec", "Run one turn and stream the answer.", _EXEC_EPILOG
    )
    _common_options(parser)
    add = parser.add_argument
    add("--json", action="store_true", help="print events as `codex exec --json` does")
    add(
        "--raw-events",
        action="store_true",
        help="with --json: also every streamed event (text deltas, rate limits, ...)"
        " as a lite.* line",
    )
    add("--dry-run", action="store_true", help="print the request, send nothing")
    parser.set_defaults(fast=None)
    fast = parser.add_mutually_exclusive_group()
    fast.add_argument("--fast", action="store_true", help="this run in the fast tier")
    fast.add_argument("--no-fast", dest="fast", action="store_false", help="nor this")
    add("--output-schema", metavar="FILE", help="a JSON Schema the answer must fit")
    _repeatable(
        parser,
        "--body-field",
        metavar="KEY=VALUE",
        help="send this request field, replacing codex-lite's own (the value read "
        "as JSON, else as a string)",
    )
    _repeatable(parser, "-i", "--image", metavar="FILE", help="a local image to send")
    add(
        "-o", "--output-last-message", metavar="FILE", help="also write the answer here"
    )
    add("-C", "--cd", metavar="DIR", help="run in DIR, as if started there")
    add("--ephemeral", action="store_true", help="write no rollout")
    add(
        "--background",
        action="store_true",
        help="run the response in the background, resumed if the stream breaks",
    )
    add(
        "--last",
        action="store_true",
        help="with resume: the most recently updated thread started here",
    )
    add("--all", action="store_true", help="with resume --last: of any directory")
    add("words", nargs="*", help="[resume [THREAD_ID]] [PROMPT | -]")
    return parser


def _config_from_args(args: argparse.Namespace) -> Config:
    overrides = list(args.config)
    if args.model:
        overrides.append(f"model={json.dumps(args.model)}")
    if args.provider:
        overrides.append(f"model_provider={json.dumps(args.provider)}")
    config = load_config(profile=args.profile, overrides=overrides)
    fast = getattr(args, "fast", None)
    if fast is not None:  # --fast / --no-fast: this run only
        config = dataclasses.replace(config, service_tier="fast" if fast else None)
    return config


def _piped_stdin() -> str | None:
    """What is piped on stdin, or None when stdin is a terminal or closed."""
    if sys.stdin is None or sys.stdin.closed or sys.stdin.isatty():
        return None
    return sys.stdin.buffer.read().decode("utf-8", "replace")


def _user_input(args: argparse.Namespace, words: list[str]) -> list[ResponseItem]:
    if len(words) > 1:
        raise _UsageError("codex-lite exec: give the prompt as one argument (quote it)")
    text = words[0] if words else "-"
    piped = _piped_stdin()
    if text == "-":
        if piped is None:
            raise _UsageError(
                "codex-lite exec: no prompt given (pass one, or pipe it on stdin)"
            )
        text = piped
    elif piped and piped.strip():  # after the prompt, as `codex exec` adds it
        end = "" if piped.endswith("\n") else "\n"
        text = f"{text}\n\n<stdin>\n{piped}{end}</stdin>"
    if not text.strip():
        raise _UsageError("codex-lite exec: the prompt is empty")
    content: list[ContentItem] = []
    for number, image in enumerate(args.image, start=1):
        parts = local_image_content(Path(image), number)
        if not any(isinstance(p, InputImage) for p in parts):
            note = parts[0].text if isinstance(parts[0], InputText) else ""
            print(f"warning: {note}; the model is told so instead", file=sys.stderr)
        content.extend(parts)
    content.append(InputText(text=text))
    return [Message(role="user", content=tuple(content))]


def _json_object_file(option: str, path: str | None) -> dict[str, Any] | None:
    """The JSON object in the file an option names (None without the option)."""
    if path is None:
        return None
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
        _dumps(value)  # what could not be sent is refused now
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{option} {path}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{option} {path}: nested too deeply") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{option} {path}: must hold an object, in JSON")
    return value


def _body_fields(pairs: list[str], background: bool) -> RequestFields:
    """`--body-field`s: named on the command line, so they may replace ours."""
    body: dict[str, Any] = {}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        if not eq or not key:
            raise ConfigError(f"--body-field {pair!r}: expected KEY=VALUE")
        try:
            body[key] = json.loads(raw)
        except ValueError:
            body[key] = raw
    return RequestFields(background=background or None, override_body=body or None)


def _event_json(event: ResponseEvent) -> dict[str, Any]:
    """An event as a `--raw-events` line: its `type` the event's class name
    in snake case under `lite.` (never one of Codex's), its fields."""
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", type(event).__name__).lower()
    out: dict[str, Any] = {"type": f"lite.{name}"}
    for key, value in event._asdict().items():
        if isinstance(value, CodexError):
            value = str(value)
        elif key == "item":
            value = item_to_json(value)
        elif isinstance(value, (TokenUsage, RateLimitWindow)):
            value = value._asdict()
        out[key] = value
    return out


def _print_dry_run(
    conversation: Conversation, user_input: list[ResponseItem], schema: Any
) -> None:
    turn = conversation.client.new_turn()
    stamped = conversation.prepare_items(user_input, turn.turn_id)
    prompt = Prompt(
        input=[*conversation.history, *stamped],
        instructions=conversation.instructions,
        output_schema=schema,
    )
    request = turn.prepare(prompt)
    print(request.method, _redact_url(request.url))
    for name, value in _redact_headers(request.headers).items():
        print(f"{name}: {value}")
    body = json.loads(request.json) if request.json is not None else None
    print(f"\n{json.dumps(body, indent=2, ensure_ascii=False)}")


def _run_exec(argv: list[str]) -> int:
    args = _exec_parser().parse_intermixed_args(argv)
    _setup_logging(args.debug)
    resume = args.words[:1] == ["resume"]
    words = args.words[1:] if resume else list(args.words)
    if args.last and not resume:
        raise _UsageError("codex-lite exec: --last goes with resume")
    thread_id = None
    if resume and not args.last:
        if not words:
            raise _UsageError("codex-lite exec resume: give a THREAD_ID or --last")
        thread_id = words.pop(0)
    if args.all and not args.last:
        raise _UsageError("codex-lite exec: --all goes with resume --last")
    if args.cd is not None:
        try:
            os.chdir(args.cd)
        except OSError as exc:
            raise ConfigError(f"-C {args.cd}: {exc.strerror}") from None
    config = _config_from_args(args)
    user_input = _user_input(args, words)
    schema = _json_object_file("--output-schema", args.output_schema)
    fields = _body_fields(args.body_field, args.background)
    try:  # credentials first: a missing key writes no rollout
        auth = config.provider().auth()
    except AuthError as exc:
        if not args.dry_run:
            raise
        print(f"note: {exc} (showing the request without credentials)", file=sys.stderr)
        auth = AuthProvider()
    ephemeral = args.ephemeral or args.dry_run
    if resume:
        cwd = None if args.all else os.getcwd()
        conversation = Conversation.resume(
            config, thread_id, last=args.last, cwd=cwd, ephemeral=ephemeral, auth=auth
        )
    else:
        conversation = Conversation.start(config, ephemeral=ephemeral, auth=auth)
    conversation.client.fields = fields
    with conversation:
        if args.dry_run:
            _print_dry_run(conversation, user_input, schema)
            return 0
        try:
            return _stream_to_terminal(conversation, user_input, schema, args)
        finally:  # an answer that came is written, even if it did not parse
            if args.output_last_message and conversation.last_result.items:
                answer = conversation.last_result.text.encode("utf-8", "replace")
                path = Path(args.output_last_message)
                try:
                    _write_atomically(path, answer, mode=0o644)
                except OSError as exc:  # after the answer: no "nothing was sent" 2
                    raise CodexError(f"-o {path}: {exc.strerror}") from None


def _stream_to_terminal(
    conversation: Conversation,
    user_input: list[ResponseItem],
    schema: Any,
    args: argparse.Namespace,
) -> int:
    """Print a turn; return the exit code.  On a terminal the answer as it
    streams, a retry marked where the text starts again; to a pipe or file
    only the answer of the completed response, once (a retried stream sends
    its text again).  With `--json`, the lines `codex exec --json` prints
    (item ids counted from 0 in each run, usage the thread's total)."""
    out, err = sys.stdout, sys.stderr
    ids = itertools.count()

    def emit(line: dict[str, Any]) -> None:
        if args.json:
            print(_scrub(json.dumps(line, ensure_ascii=False)), file=out, flush=True)

    def emit_item(kind: str, text: str) -> None:
        if text:  # Codex shows no empty reasoning, and no other items
            item = {"id": f"item_{next(ids)}", "type": kind, "text": text}
            emit({"type": "item.completed", "item": item})

    emit({"type": "thread.started", "thread_id": conversation.client.thread_id})
    emit({"type": "turn.started"})
    live = not args.json and out.isatty()  # and the text shown is `deltas`
    deltas: list[str] = []  # for servers that send no output items
    answer = ""
    try:
        for event in conversation.stream_turn(user_input, output_schema=schema):
            if args.raw_events:
                emit(_event_json(event))
            if isinstance(event, OutputTextDelta):
                deltas.append(event.delta)
                if live:
                    print(event.delta, end="", file=out, flush=True)
            elif isinstance(event, StreamRetry):
                if live and deltas:
                    out.write("\n[connection lost: the answer starts again]\n")
                deltas.clear()
                retry = f"{event.attempt}/{event.max_attempts}"
                error = _error_json(
                    event.error, f"Reconnecting... {retry} ({event.error})"
                )
                emit({"type": "error", **error, "will_retry": True})
                if not args.json:
                    err.write(
                        f"\nreconnecting {retry} in {event.delay:.1f}s … ({event.error})\n"
                    )
            elif isinstance(event, Completed):  # the only one: exec runs no tools
                result = conversation.last_result
                answer = result.text or "".join(deltas)
                for item in result.items:
                    if isinstance(item, Reasoning):
                        summary = (
                            s.text for s in item.summary if isinstance(s, SummaryText)
                        )
                        emit_item("reasoning", "\n\n".join(summary))
                    else:
                        emit_item("agent_message", _assistant_text([item]))
                if not result.text:
                    emit_item("agent_message", answer)
    except CodexError as exc:
        error = _error_json(exc, str(exc))
        emit({"type": "error", **error, "will_retry": False})
        emit({"type": "turn.failed", "error": error})
        err.write(f"error: {exc}\n")
        return _EXIT_CODES[error["kind"]]
    finally:  # the line ends, whatever stopped it; an answer that came is shown
        if live and deltas:
            out.write("\n")
        elif answer and not live and not args.json:
            out.write(answer + "\n")
    total, usage = conversation.token_usage, conversation.last_result.usage
    emit({"type": "turn.completed", "usage": {k: total[k] for k in _USAGE_KEYS[:-1]}})
    if usage is not None and not args.json:
        err.write(
            f"tokens used: input {usage.input_tokens} (cached {usage.cached_input_tokens}), "
            f"output {usage.output_tokens} (reasoning {usage.reasoning_output_tokens}), "
            f"total {usage.total_tokens}\n"
        )
    return 0


# The exit code of a failed turn, by the `kind` of its error (`_EXEC_EPILOG`).
_EXIT_CODES = {
    "other": 1,
    "config": 2,
    "unauthorized": 3,
    "usage_limit": 4,
    "rate_limit": 5,
    "server": 6,
}


def _error_json(exc: CodexError, message: str) -> dict[str, Any]:
    """An error of a `--json` line: Codex's `message`, and what a script can
    branch on without reading it (a Codex consumer ignores the extra keys)."""
    cause = exc.last_error if isinstance(exc, RetryLimitExceeded) else exc
    status, code = getattr(cause, "status", None), getattr(cause, "code", None)
    if isinstance(cause, AuthError) or status == 401:
        kind = "unauthorized"
    elif isinstance(cause, QuotaExceeded | UsageNotIncluded) or code in (
        "usage_limit_reached",
        "subscription_sharing_usage_limit_exceeded",
    ):
        kind = "usage_limit"
    elif status == 429 or code == "rate_limit_exceeded":
        kind = "rate_limit"
    elif (
        isinstance(cause, TransportError | StreamError | ServerOverloaded)
        or (status or 0) >= 500
    ):
        kind = "server"
    else:
        kind = "config" if isinstance(cause, ConfigError) else "other"
    return {
        "message": message,
        "kind": kind,
        "http_status": status,
        "code": code,
        "request_id": getattr(cause, "request_id", None),
        "retryable": kind in ("rate_limit", "server"),
    }


def _run_fast(argv: list[str]) -> int:
    parser = _parser("codex-lite fast", "Persist fast mode in config.toml.")
    parser.add_argument(
        "state", nargs="?", choices=("on", "off", "status"), default="status"
    )
    args = parser.parse_args(argv)
    home = default_codex_home()
    if args.state != "status":
        set_fast_mode(home, args.state == "on")
    tier = load_config(home).service_tier
    print(f"fast mode is {'on' if tier == 'fast' else 'off'}")
    return 0


def _run_login(argv: list[str]) -> int:
    parser = _parser(
        "codex-lite login", "Sign in into $CODEX_HOME/auth.json, as Codex does."
    )
    parser.add_argument("action", nargs="?", choices=("status",))
    how = parser.add_mutually_exclusive_group().add_argument
    how("--with-api-key", action="store_true", help="read an API key from stdin")
    how("--device-auth", action="store_true", help="sign in with ChatGPT by a code")
    how("--chatgpt-plan", action="store_true", help="sign in for ChatGPT plan usage")
    args = parser.parse_args(argv)
    home = default_codex_home()
    path = home / "auth.json"
    if args.chatgpt_plan:  # after a sign-in, its status: granted, and billed?
        if args.action != "status":
            sign_in_with_chatgpt(home)
        return _plan_status(home)
    if args.action == "status":
        return _login_status(path)
    if args.device_auth:
        _device_login(path)
        print("Successfully logged in", file=sys.stderr)
        return 0
    if not args.with_api_key:
        raise _UsageError(
            "codex-lite login: use --with-api-key or --device-auth "
            "(the browser sign-in is `codex login`)"
        )
    piped = _piped_stdin()
    if piped is None:
        raise _UsageError(
            "codex-lite login --with-api-key reads the key from stdin, e.g.\n"
            "  printenv OPENAI_API_KEY | codex-lite login --with-api-key"
        )
    print("Reading API key from stdin...", file=sys.stderr)
    key = piped.strip()
    if not key:
        print("No API key provided via stdin.", file=sys.stderr)
        return 1
    if not all(" " < c <= "~" for c in key):
        raise _UsageError("codex-lite login: the API key on stdin is not printable")
    login = {"auth_mode": "apikey", "OPENAI_API_KEY": key}
    _update_credentials_file(path, lambda _: login, read=False)
    print(f"API key saved. {_CHECKED_LATER}", file=sys.stderr)
    return 0


_CHECKED_LATER = "Authentication is checked when you send a request."


def _login_status(path: Path) -> int:
    """What `codex login status` says of auth.json, in its words."""
    data = _read_credentials(path) if path.exists() else {}
    key = data.get("OPENAI_API_KEY")
    apikey = data.get("auth_mode") in ("apikey", "api_key") or not data.get("tokens")
    if isinstance(key, str) and key and apikey:
        masked = f"{key[:8]}***{key[-5:]}" if len(key) > 13 else "***"
        print(f"API key configured - {masked}\n{_CHECKED_LATER}", file=sys.stderr)
        return 0
    status = "Logged in using ChatGPT" if data.get("tokens") else "Not logged in"
    print(status, file=sys.stderr)
    return 0 if data.get("tokens") else 1


def _plan_status(home: Path) -> int:
    """The ChatGPT plan sign-in: whose it is, and whether it is the billing
    path the config selects."""
    try:
        record = ChatGptPlanAuth(home / _PLAN_FILE).record
    except AuthError as exc:
        print(f"ChatGPT plan: {exc}", file=sys.stderr)
        return 1
    provider = load_config(home).provider()
    billing = (
        "You're using your ChatGPT plan (model_provider chatgpt-plan)"
        if provider.is_chatgpt_plan
        else f"Requests bill not the plan: model_provider is {provider.id!r} "
        "(use --provider chatgpt-plan)"
    )
    who = record.get("email") or record.get("subject")
    print(
        f"Signed in with ChatGPT as {who} (client {record['client_id']})\n"
        f"{billing}; manage usage at {_PLAN_USAGE_PAGE}",
        file=sys.stderr,
    )
    return 0


def _run_logout(argv: list[str]) -> int:
    parser = _parser("codex-lite logout", "Remove $CODEX_HOME/auth.json.")
    parser.add_argument(
        "--chatgpt-plan", action="store_true", help="revoke the ChatGPT plan sign-in"
    )
    if parser.parse_args(argv).chatgpt_plan:
        confirmed = _plan_sign_out(default_codex_home() / _PLAN_FILE)
        if confirmed is None:
            print("Not signed in for ChatGPT plan usage", file=sys.stderr)
        elif confirmed:
            print("Signed out; the sign-in was revoked", file=sys.stderr)
        else:
            print(
                "Signed out here, but the revocation was not confirmed: disconnect "
                "codex-lite in ChatGPT's settings (Connected apps)",
                file=sys.stderr,
            )
        return 0
    path = default_codex_home() / "auth.json"
    gone = []

    def remove(_: dict[str, Any] | None) -> None:
        if path.exists() or path.is_symlink():
            path.unlink()
            gone.append(path)

    _update_credentials_file(path, remove, read=False)
    print("Successfully logged out" if gone else "Not logged in", file=sys.stderr)
    return 0


def _run_sessions(argv: list[str]) -> int:
    parser = _parser("codex-lite sessions", "List recent threads, newest first.")
    parser.add_argument("-n", "--limit", type=int, default=20)
    args = parser.parse_args(argv)
    sessions = default_codex_home() / "sessions"
    paths = sorted(_rollout_files(sessions), key=_mtime, reverse=True)
    for path in paths[: args.limit]:
        thread_id, first = _rollout_summary(path)
        summary = " ".join(first.split())[:60]
        print(f"{path.name[8:27]}  {thread_id}  {summary}")
    return 0


def _rollout_summary(path: Path) -> tuple[str, str]:
    """A rollout's thread id and first user message, from its first lines
    only: listing a long thread must not read all of it."""
    thread_id, text = "", ""
    try:
        for raw in itertools.islice(_rollout_lines(path, limit=16 << 20), 64):
            try:
                line = json.loads(raw)
                payload = line["payload"]
                if line["type"] == "session_meta" and not thread_id:
                    thread_id = str(payload.get("id", ""))
                elif line["type"] == "response_item":
                    text = _user_text(item_from_json(payload)) or ""
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                continue
            if text:
                break
    except (OSError, CodexError):
        pass  # what came before is summary enough
    return thread_id, text


def _run_realtime(argv: list[str]) -> int:
    parser = _parser(
        "codex-lite realtime",
        "Start a realtime session: over a WebSocket, send --text and print the "
        "streamed answer; over WebRTC, post --sdp-offer and print the SDP answer.",
    )
    _common_options(parser)
    add = parser.add_argument
    add("--transport", choices=("websocket", "webrtc"), help="webrtc with --sdp-offer")
    add("--text", help="the user message to send (websocket)")
    add("--sdp-offer", metavar="FILE", help="the SDP offer (webrtc)")
    add("--session-json", metavar="FILE", help="the session configuration to send")
    args = parser.parse_args(argv)
    transport = args.transport or ("webrtc" if args.sdp_offer else "websocket")
    if transport == "webrtc" and not args.sdp_offer:
        raise _UsageError("codex-lite realtime: webrtc needs --sdp-offer FILE")
    if transport == "websocket" and args.text is None:
        raise _UsageError("codex-lite realtime: websocket needs --text TEXT")
    session = _json_object_file("--session-json", args.session_json)
    client = Client.from_config(_config_from_args(args))
    offer = ""
    if transport == "webrtc":
        try:
            offer = Path(args.sdp_offer).read_text("utf-8")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--sdp-offer {args.sdp_offer}: {exc}") from None
    else:  # --text prints text: a text session, unless --session-json says otherwise
        session = {"type": "realtime", "output_modalities": ["text"], **(session or {})}
    start = RealtimeStart(
        thread_id=client.thread_id, transport=RealtimeTransport(transport), sdp=offer
    )
    realtime = start.open(client, session=session)
    if isinstance(realtime, RealtimeCall):
        sys.stdout.write(realtime.sdp_answer)
        print(f"call id: {realtime.call_id}", file=sys.stderr)
        return 0
    with realtime:
        realtime.send_text(args.text)
        for event in realtime.events():
            if isinstance(event, RealtimeTextDelta):
                print(event.text, end="", flush=True)
    print()
    return 0


def _setup_logging(debug: bool) -> None:
    name = "debug" if debug else os.environ.get("CODEX_LITE_LOG", "").strip().lower()
    levels = {"trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO}
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_scrub_record)  # whatever logger a record came from
    quiet = name not in levels  # request retries still show, as stream retries do
    _retry_log.handlers = [handler] if quiet else []
    _retry_log.setLevel(logging.INFO if quiet else logging.NOTSET)
    if not quiet:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        _log.addHandler(handler)
        _log.setLevel(levels[name])


def main(argv: Sequence[str] | None = None) -> int:
    """The `codex-lite` command; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] in ("-h", "--help"):
        sys.stdout.write(_USAGE)
        return 0 if args_list else 2
    if args_list[0] in ("-V", "--version"):
        print(f"codex-lite {__version__}")
        return 0
    command, rest = args_list[0], args_list[1:]
    for stream in (sys.stdout, sys.stderr):  # text no encoding can carry: replaced
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    try:
        if command == "exec":
            return _run_exec(rest)
        _setup_logging("--debug" in rest)
        if command == "fast":
            return _run_fast(rest)
        if command == "sessions":
            return _run_sessions(rest)
        if command == "login":
            return _run_login(rest)
        if command == "logout":
            return _run_logout(rest)
        if command == "realtime":
            return _run_realtime(rest)
        raise _UsageError(f"codex-lite: unknown command {command!r}\n\n{_USAGE}")
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except CodexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (ConfigError, AuthError, ItemError)) else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:  # a local file: unreadable, read-only, a full disk
        where = f": {exc.filename}" if exc.filename is not None else ""
        print(f"error: {exc.strerror or type(exc).__name__}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
