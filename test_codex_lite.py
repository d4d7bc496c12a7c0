"""Tests for codex_lite.

Everything that crosses HTTP goes to real servers on 127.0.0.1 (the standard
library's http.server in a thread); assertions are made on what arrives over
the socket.  Expected data comes from wire-spec text, the AWS test vectors, or
is written by hand here.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import hashlib
import http.server
import io
import itertools
import json
import logging
import os
import pathlib
import random
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import types
import typing
import urllib.parse
import uuid
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codex_lite as cl

# --- Test helpers: loopback servers, fixtures, builders ---------------------

HERE = pathlib.Path(__file__).parent
TESTS = HERE / "tests"


def load_jsonl(name: str) -> list[dict[str, Any]]:
    lines = (TESTS / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@dataclasses.dataclass
class Seen:
    """One request as it arrived on the socket."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None

    def header_names(self) -> list[str]:
        return [k.lower() for k, _ in self.headers]

    def json(self) -> Any:
        raw = self.body
        if self.header("content-encoding") == "zstd":
            raw = zstandard.ZstdDecompressor().decompress(raw)
        return json.loads(raw)


Reply = Callable[[http.server.BaseHTTPRequestHandler], None]


def sse(*events: dict[str, Any], named: bool = True) -> bytes:
    """Events as a Responses stream, with `event:` lines unless `named` is False."""
    out = b""
    for event in events:
        if named:
            out += f"event: {event['type']}\n".encode()
        out += b"data: " + json.dumps(event).encode() + b"\n\n"
    return out


def completed(response_id: str = "resp_1", **extra: Any) -> dict[str, Any]:
    return {"type": "response.completed", "response": {"id": response_id, **extra}}


def text_events(
    text: str = "Hello", response_id: str = "resp_1", item_id: str = "msg_1"
) -> list[dict[str, Any]]:
    return [
        {"type": "response.created", "response": {"id": response_id}},
        {"type": "response.output_text.delta", "delta": text, "item_id": item_id},
        {
            "type": "response.output_item.done",
            "item": {
                "type": "message",
                "id": item_id,
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            },
        },
        completed(
            response_id,
            usage={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
        ),
    ]


def text_stream(text: str = "Hello", response_id: str = "resp_1") -> bytes:
    return sse(*text_events(text, response_id))


def reply(
    status: int = 200,
    body: bytes | list[bytes] = b"",
    headers: dict[str, str] | None = None,
    *,
    pause: float = 0.0,
    hang: float = 0.0,
) -> Reply:
    """A scripted answer: status, headers, then body chunks (chunked encoding).

    `pause` waits between chunks; `hang` waits after the last chunk without
    ending the response (a stalled stream).
    """
    chunks = [body] if isinstance(body, bytes) else body

    def send(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        if "Content-Type" not in (headers or {}):
            handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for chunk in chunks:
            if chunk:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                handler.wfile.flush()
            if pause:
                time.sleep(pause)
        if hang:
            time.sleep(hang)
            handler.close_connection = True
            return
        handler.wfile.write(b"0\r\n\r\n")

    return send


def reset_connection(handler: http.server.BaseHTTPRequestHandler) -> None:
    """Close the socket with RST before any response."""
    handler.connection.setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
    )
    handler.close_connection = True


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


class RawWebSocket:
    """RFC 6455 frames read and written by hand (section 5.2), for what a
    library server hides: the client's masking, fragments, control frames."""

    def __init__(self, rfile: Any, wfile: Any) -> None:
        self.rfile, self.wfile = rfile, wfile

    def read(self) -> tuple[int, bool, bool, bytes]:
        """The next frame: opcode, FIN, whether it was masked, payload."""
        first, second = self.rfile.read(2)
        size = second & 0x7F
        if size >= 126:
            size = int.from_bytes(self.rfile.read(2 if size == 126 else 8), "big")
        mask = self.rfile.read(4) if second & 0x80 else b""
        data = self.rfile.read(size)
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return first & 0x0F, bool(first & 0x80), bool(mask), data

    def write(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        size = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if size < 126:
            head += bytes([size])
        elif size < 1 << 16:
            head += bytes([126]) + size.to_bytes(2, "big")
        else:
            head += bytes([127]) + size.to_bytes(8, "big")
        self.wfile.write(head + payload)
        self.wfile.flush()

    def send_events(self, *events: dict[str, Any]) -> None:
        for event in events:
            self.write(0x1, json.dumps(event).encode())


class Loopback:
    """A real HTTP server on 127.0.0.1 answering from a script.

    WebSocket handshakes are answered `upgrade_status` (426, as OpenAI tells
    a client it does not let use WebSockets), or taken by `websocket`.
    """

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.upgrades: list[Seen] = []  # WebSocket handshakes
        self.upgrade_status = 426  # what they get, unless `websocket` takes them
        self.websocket: Callable[[RawWebSocket], None] | None = None
        self.websocket_headers: dict[str, str] = {}  # on the 101, e.g. extensions
        self.script: list[Reply] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                outer.seen.append(
                    Seen(self.command, self.path, list(self.headers.items()), body)
                )
                step = outer.script.pop(0) if outer.script else reply(500, b"no script")
                step(self)

            def do_GET(self) -> None:
                if self.headers.get("Upgrade", "").lower() != "websocket":
                    return self.do_POST()
                outer.upgrades.append(
                    Seen(self.command, self.path, list(self.headers.items()), b"")
                )
                if outer.websocket is None:
                    status = outer.upgrade_status
                    reply(
                        status, b"no WebSockets here", {"Content-Type": "text/plain"}
                    )(self)
                    return None
                key = self.headers["Sec-WebSocket-Key"] + WS_GUID
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                accept = base64.b64encode(hashlib.sha1(key.encode()).digest())
                self.send_header("Sec-WebSocket-Accept", accept.decode())
                for name, value in outer.websocket_headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.close_connection = True
                return outer.websocket(RawWebSocket(self.rfile, self.wfile))

            def log_message(self, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # resets and hangs are on purpose here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def then(self, *steps: Reply) -> Loopback:
        self.script.extend(steps)
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[Loopback]:
    loop = Loopback()
    yield loop
    loop.close()


@pytest.fixture
def home(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A private CODEX_HOME and an environment without real credentials."""
    path = tmp_path / "codex-home"
    path.mkdir()
    monkeypatch.setenv("CODEX_HOME", str(path))
    for var in list(os.environ):
        if var.startswith(("OPENAI_", "CODEX_", "AWS_")) and var != "CODEX_HOME":
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    return path


FAST = cl.RetryPolicy(base_delay=0.001, stream_idle_timeout=5.0, connect_timeout=2.0)


def local_client(
    server: Served,
    home: pathlib.Path,
    *,
    info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> cl.Client:
    provider = cl.ModelProvider(
        "local",
        cl.ProviderInfo(**{"name": "local", "base_url": server.url, **(info or {})}),
        home=home,
    )
    kwargs.setdefault("retry_policy", FAST)
    return cl.Client(provider, model="test-model", **kwargs)


class Served(typing.Protocol):
    """A loopback server of any kind here."""

    @property
    def url(self) -> str: ...


def openai_client(
    server: Served,
    home: pathlib.Path,
    *,
    auth: cl.AuthProvider | None = None,
    **kwargs: Any,
) -> cl.Client:
    info = dataclasses.replace(
        cl._built_in_providers({})["openai"], base_url=server.url
    )
    provider = cl.ModelProvider("openai", info, home=home)
    kwargs.setdefault("retry_policy", FAST)
    return cl.Client(
        provider, model="gpt-test", auth=auth or cl.BearerAuth("sk-test"), **kwargs
    )


def user(text: str, **kwargs: Any) -> cl.Message:
    return cl.Message(role="user", content=(cl.InputText(text=text),), **kwargs)


def run(turn: cl.Turn, *items: cl.ResponseItem, **kwargs: Any) -> list[Any]:
    return list(turn.stream(cl.Prompt(input=list(items) or [user("hi")], **kwargs)))


UUID7 = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
)


PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def write_rollout(
    home: pathlib.Path, items: list[cl.ResponseItem]
) -> tuple[pathlib.Path, str]:
    thread_id = cl._uuid7()
    with cl.RolloutWriter.create(
        home, thread_id, {"originator": "codex_lite"}
    ) as writer:
        writer.append_items(items)
    return writer.path, thread_id


def history_texts(path: pathlib.Path) -> list[str]:
    return [
        "".join(getattr(p, "text", "") for p in i.content)
        for i in cl.read_rollout(path).items
        if isinstance(i, cl.Message)
    ]


def chatgpt_auth(home: pathlib.Path, token: str = "chatgpt-token") -> cl.ChatGptAuth:
    (home / "auth.json").write_text(
        json.dumps({"tokens": {"access_token": token, "account_id": "acct_1"}})
    )
    return cl.ChatGptAuth(home / "auth.json")


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.text()
    scalars |= st.floats(allow_nan=False, allow_infinity=False)
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
        ),
        max_leaves=12,
    )


def stream_retry_client(
    server: Loopback, home: pathlib.Path, retries: int = 2
) -> cl.Client:
    return local_client(
        server, home, retry_policy=dataclasses.replace(FAST, stream_max_retries=retries)
    )


def failed(code: str | None, message: str = "") -> dict[str, Any]:
    response: dict[str, Any] = {"id": "resp_f"}
    if code is not None or message:
        response["error"] = {"code": code, "message": message}
    return {"type": "response.failed", "response": response}


def provider_from(
    table: dict[str, Any], home: pathlib.Path, pid: str = "custom"
) -> cl.ModelProvider:
    return cl.ModelProvider(pid, cl.ProviderInfo.from_toml(table), home=home)


def bedrock_token(region: str, *, prefix: bool = True) -> str:
    url = (
        "bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential=AKIDEXAMPLE%2F20260101%2F{region}%2Fbedrock%2Faws4_request"
        "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=43200"
    )
    encoded = base64.b64encode(url.encode()).decode() + "&Version=1"
    return ("bedrock-api-key-" if prefix else "") + encoded


def bedrock(
    home: pathlib.Path,
    table: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> cl.ModelProvider:
    info = cl._built_in_providers({})["amazon-bedrock"]
    if table:
        override = cl.ProviderInfo.from_toml(table)
        info = dataclasses.replace(info, aws=override.aws, base_url=override.base_url)
    environ = {
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        **(env or {}),
    }
    return cl.ModelProvider("amazon-bedrock", info, environ=environ, home=home)


def cli(
    home: pathlib.Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 60,
    cwd: pathlib.Path = HERE,
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "CODEX_", "AWS_"))
    }
    base.update(CODEX_HOME=str(home), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "codex_lite", *args],
        check=False,
        env=base,
        input="" if stdin is None else stdin,  # a pipe, never the terminal's
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def openai_env(server: Served, key: str = "sk-cli-secret-1234") -> dict[str, str]:
    return {"OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": key}


def assistant(text: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}]
    return {"type": "message", "role": "assistant", "id": "msg_1", "content": content}


FAST_CONFIG = """# my settings
model = "gpt-5"   # keep this comment
service_tier = "flex"

[profiles.x]
service_tier = "flex"  # profiles keep theirs
"""


SDP_OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"


class Budget:
    """Asserts a block finishes within `seconds` (the policy's worst case plus slack)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> Budget:  # noqa: PYI034
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.monotonic() - self.started
        assert elapsed < self.seconds, f"took {elapsed:.2f}s, budget {self.seconds}s"


MEMORY_LIMIT = 3 << 29  # the address space a hostile case runs in: 1.5 GiB


def main_in_process(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """`codex-lite ARGV` in this process (stdout and stderr not terminals):
    its exit code, stdout and stderr; for `in_memory_limit`."""
    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cl.main(argv)
    return code, out.getvalue(), err.getvalue()


def _limited(fn: Callable[..., Any], args: tuple[Any, ...], conn: Any) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    outcome: tuple[str, Any]
    try:
        outcome = ("returned", fn(*args))
    except Exception as exc:  # noqa: BLE001  # sent to the parent
        outcome = ("raised", exc)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the process
    # that forked this interpreter (pytest), VmHWM starts afresh at exec.
    status = pathlib.Path("/proc/self/status").read_text()
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) * 1024  # type: ignore[index]
    try:
        conn.send((*outcome, peak))
    except Exception:  # noqa: BLE001  # an outcome that does not pickle
        kind, value = outcome
        conn.send(
            ("raised", RuntimeError(f"{kind} {type(value).__name__}: {value}"), peak)
        )


def in_memory_limit(fn: Callable[..., Any], *args: Any, peak: int) -> Any:
    """Run `fn(*args)` (a module-level function) in a fresh interpreter under
    a 1.5 GiB address-space limit and assert that its peak resident memory
    stays under `peak` bytes; return what it returned, or raise what it raised."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    child = context.Process(target=_limited, args=(fn, args, there))
    child.start()
    try:
        assert here.poll(120), "the child under the memory limit did not answer"
        kind, value, used = here.recv()
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    assert used < peak, f"peak resident memory {used >> 20} MiB, allowed {peak >> 20}"
    if kind == "raised":
        raise value
    return value


def one_try(server: Loopback, home: pathlib.Path, **kwargs: Any) -> cl.Client:
    policy = dataclasses.replace(FAST, stream_max_retries=0, request_max_retries=0)
    return local_client(server, home, retry_policy=policy, **kwargs)


def files_under(*roots: pathlib.Path) -> list[str]:
    return sorted(str(p) for root in roots for p in root.rglob("*"))


def item_like() -> st.SearchStrategy[Any]:
    tags = st.sampled_from(
        [*sorted(cl._ITEM_TYPES), "input_text", "output_text", "zzz"]
    )
    keys = st.sampled_from(
        [
            "id",
            "role",
            "content",
            "call_id",
            "name",
            "arguments",
            "output",
            "summary",
            "status",
            "phase",
            "action",
            "tools",
            "execution",
            "encrypted_content",
            "internal_chat_message_metadata_passthrough",
            "type",
            "text",
            "image_url",
            "result",
            "input",
            "author",
            "recipient",
            "reasoning",
            "extra",
            "kind",
        ]
    )
    return st.builds(
        lambda tag, fields: {"type": tag, **fields},
        tags,
        st.dictionaries(
            keys,
            json_values()
            | st.lists(st.dictionaries(keys, json_values(), max_size=4), max_size=3),
            max_size=8,
        ),
    )


SECRETS = {
    "OPENAI_API_KEY": "sk-SECRET-openai-1111",
    "MY_PROVIDER_KEY": "SECRET-custom-2222",
    "AWS_SECRET_ACCESS_KEY": "SECRET-aws-4444",
    "AWS_SESSION_TOKEN": "SECRET-awstoken-5555",
}
CONFIG_SECRETS = ("SECRET-bearer-6666", "SECRET-query-7777")
AWS_KEY_ID = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE3333"}  # an identifier, not a secret
CHATGPT_SECRETS = ("SECRET-chatgpt-8888", "SECRET-acct-9999", "SECRET-refresh-0000")
PLAN_SECRETS = (
    "SECRET-plan-access-1212",
    "SECRET-plan-refresh-3434",
    "SECRET-plan-id-5656",
)


def secret_home(home: pathlib.Path, server: Loopback) -> None:
    (home / "config.toml").write_text(
        f"""
[model_providers.custom]
base_url = "{server.url}"
env_key = "MY_PROVIDER_KEY"
query_params = {{ api-key = "{CONFIG_SECRETS[1]}" }}
request_max_retries = 1
stream_max_retries = 1

[model_providers.bearer]
base_url = "{server.url}"
experimental_bearer_token = "{CONFIG_SECRETS[0]}"
request_max_retries = 1

[model_providers.amazon-bedrock]
base_url = "{server.url}"
aws = {{ region = "us-east-1" }}

[model_providers.plan]
name = "ChatGPT plan"
base_url = "{server.url}"
request_max_retries = 1
"""
    )
    plan = dict(zip(("access_token", "refresh_token", "id_token"), PLAN_SECRETS))
    plan |= {"client_id": "oaiapp_1", "expires_in": 3600, "saved_at": cl._rfc3339_now()}
    plan["scopes"] = ["chatgpt.tokens.use.direct"]
    (home / "codex-lite-chatgpt-plan.json").write_text(json.dumps(plan))
    (home / "auth.json").write_text(
        json.dumps(
            {
                "tokens": {
                    "access_token": CHATGPT_SECRETS[0],
                    "account_id": CHATGPT_SECRETS[1],
                    "refresh_token": CHATGPT_SECRETS[2],
                }
            }
        )
    )


def assert_no_secret(text: str) -> None:
    for secret in [*SECRETS.values(), *CONFIG_SECRETS, *CHATGPT_SECRETS, *PLAN_SECRETS]:
        assert secret not in text, f"{secret} leaked"


# A server that quotes the key back in every string it chooses: headers, ids,
# codes, messages, close reasons, as they are or JSON-escaped: `\u00e9` as
# Python writes it, or `\u00E9` and `\/` as other servers do.
ECHO_KEY = "sk-SECRET-é/echo-4242"
ECHO_ESCAPED = json.dumps(ECHO_KEY)[1:-1].replace("/", "\\/").replace("e9", "E9")


def echo_headers() -> dict[str, str]:
    return {
        "x-request-id": f"req-{ECHO_KEY}",
        "openai-model": f"model-{ECHO_KEY}",
        "x-models-etag": ECHO_KEY,
        "x-codex-primary-used-percent": "5",
        "x-codex-limit-name": ECHO_KEY,
        "x-codex-credits-has-credits": "true",
        "x-codex-credits-unlimited": "false",
        "x-codex-credits-balance": ECHO_KEY,
    }


ECHO_FAILED = {"type": "response.failed", "response": {"error": {"code": ECHO_KEY}}}
ECHO_ERROR = {"error": {"message": f"bad key {ECHO_KEY}", "code": ECHO_KEY}}


def echo_stream() -> bytes:
    """An `error` event (logged as JSON), data that is not JSON (logged, its
    repr cut at 200 characters: 7 of the key's, unless scrubbed first), then
    a failure naming the key as its code."""
    return (
        sse({"type": "error", "message": ECHO_KEY})
        + f"data: {'x' * 192}{ECHO_KEY}\n\n".encode()
        + f'data: {{"cut": "{ECHO_ESCAPED}\n\n'.encode()
        + sse(ECHO_FAILED)
    )


def assert_no_echo(text: str) -> None:
    """Neither the key in any form nor a long part of it (a cut one)."""
    assert "<redacted>" in text
    for part in ("sk-SECR", "SECRET", "echo-4242"):
        assert part not in text, text


# `WsBackend` is the websockets library's server side: real frames, masked by
# the client and deflated when both agree.  `RawWebSocket` (in `Loopback`)
# shows what that library hides.  Expected headers and keys come from the
# frames Codex 0.169 sent (tests/codex-0.169.0/openai-websocket-*.json).


WsStep = Callable[[Any, dict[str, Any], int], None]


def ws_answer(text: str = "ok") -> WsStep:
    """A text stream; a prewarm (`generate: false`) gets a response without output."""

    def step(connection: Any, request: dict[str, Any], number: int) -> None:
        events = text_events(text, f"resp_{number}", f"msg_{number}")
        if request.get("generate") is False:
            events = [events[0], completed(f"resp_{number}")]
        for event in events:
            connection.send(json.dumps(event))

    return step


def ws_events(*events: dict[str, Any], close: bool = False) -> WsStep:
    def step(connection: Any, request: dict[str, Any], number: int) -> None:
        for event in events:
            connection.send(json.dumps(event))
        if close:
            connection.close()

    return step


class WsBackend:
    """A Responses WebSocket server on 127.0.0.1, answering from a script."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self.handshakes: list[Seen] = []
        self.frames: list[str] = []  # each response.create, as it arrived
        self.script: list[WsStep] = []
        self.answer_headers: list[tuple[str, str]] = []  # repeats allowed

        def process_request(connection: Any, request: Any) -> None:
            headers = list(request.headers.raw_items())
            self.handshakes.append(Seen("GET", request.path, headers, b""))

        def process_response(connection: Any, request: Any, response: Any) -> None:
            for name, value in self.answer_headers:
                response.headers[name] = value

        def handler(connection: Any) -> None:
            with contextlib.suppress(Exception):  # a client that hangs up
                for message in connection:
                    self.frames.append(message)
                    step = self.script.pop(0) if self.script else ws_answer()
                    step(connection, json.loads(message), len(self.frames))

        self.server = serve(
            handler,
            "127.0.0.1",
            0,
            process_request=process_request,
            process_response=process_response,
            max_size=None,
        )
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.socket.getsockname()[1]}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(frame) for frame in self.frames]

    def then(self, *steps: WsStep) -> WsBackend:
        self.script.extend(steps)
        return self


@pytest.fixture
def ws() -> Iterator[WsBackend]:
    backend = WsBackend()
    yield backend
    backend.server.shutdown()


def input_texts(request: dict[str, Any]) -> list[str]:
    return [i["content"][0]["text"] for i in request["input"]]


def ping_flood(
    *answers: list[dict[str, Any]], full: threading.Event | None = None
) -> Loopback:
    """A server that reads a frame, answers it with the next of `answers`
    (nothing once they run out), then sends pings (125 bytes, the most a ping
    holds) and never reads again: its receive buffer small, the client's
    pongs soon fill the buffers and the client's writes block.  `full` is set
    once the client has stopped reading: its pongs can no longer be written."""
    server = Loopback()
    server.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    waiting = list(answers)

    def websocket(raw: RawWebSocket) -> None:
        raw.read()
        raw.send_events(*(waiting.pop(0) if waiting else []))
        with contextlib.suppress(OSError):
            while True:
                if full and not select.select([], [raw.wfile], [], 0.1)[1]:
                    full.set()
                raw.write(0x9, b"?" * 125)

    server.websocket = websocket
    return server


def run_cli(home: pathlib.Path, *args: str) -> tuple[int, str, str, int]:
    """`cli` for `in_memory_limit`, the command under its address-space limit:
    exit code, stdout, stderr and the command's peak resident memory."""
    import resource

    done = cli(home, *args)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return done.returncode, done.stdout, done.stderr, peak


class RealtimeBackend:
    """A realtime WebSocket server on 127.0.0.1: it records the handshake and
    every client event, and answers `response.create` with `answer`."""

    def __init__(
        self, answer: list[dict[str, Any]], refuse: tuple[int, ...] = ()
    ) -> None:
        from websockets.sync.server import serve

        self.handshakes: list[Seen] = []
        self.received: list[dict[str, Any]] = []
        refusals = list(refuse)  # the statuses the first handshakes get

        def process_request(connection: Any, request: Any) -> Any:
            headers = list(request.headers.raw_items())
            self.handshakes.append(Seen("GET", request.path, headers, b""))
            if refusals:
                body = json.dumps({"error": {"message": "not now"}})
                return connection.respond(refusals.pop(0), body)
            return None

        def handler(connection: Any) -> None:
            connection.send(json.dumps({"type": "session.created", "session": {}}))
            with contextlib.suppress(Exception):
                for message in connection:
                    self.received.append(json.loads(message))
                    if self.received[-1]["type"] == "response.create":
                        for event in answer:
                            connection.send(json.dumps(event))

        self.server = serve(handler, "127.0.0.1", 0, process_request=process_request)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.socket.getsockname()[1]}/v1"


def calls_stream(*calls: dict[str, Any], response_id: str = "resp_c") -> bytes:
    """A response that only calls tools: (name, arguments or input, call id)."""
    items = []
    for n, call in enumerate(calls):
        if "input" in call:
            items.append(
                {"type": "custom_tool_call", "id": f"ctc_{response_id}_{n}", **call}
            )
        else:
            items.append(
                {"type": "function_call", "id": f"fc_{response_id}_{n}", **call}
            )
    return sse(
        {"type": "response.created", "response": {"id": response_id}},
        *({"type": "response.output_item.done", "item": i} for i in items),
        completed(response_id),
    )


def call(name: str, arguments: Any, call_id: str) -> dict[str, Any]:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"name": name, "arguments": text, "call_id": call_id}


def numbered(*events: dict[str, Any], start: int = 0) -> list[dict[str, Any]]:
    """Events with the `sequence_number` the API gives every event."""
    return [{**e, "sequence_number": start + n} for n, e in enumerate(events)]


def cut(*events: dict[str, Any]) -> Reply:
    """A stream a proxy cuts: the events, then the connection closes mid-body."""
    return reply(body=sse(*events), hang=0.01)


def background_answer(parts: int) -> list[dict[str, Any]]:
    """A background response: created (queued), `parts` deltas, the message, completed."""
    text = "".join(f"{n} " for n in range(parts))
    message = {
        "type": "message",
        "id": "msg_bg",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    return numbered(
        {"type": "response.created", "response": {"id": "resp_bg", "status": "queued"}},
        *[
            {
                "type": "response.output_text.delta",
                "delta": f"{n} ",
                "item_id": "msg_bg",
            }
            for n in range(parts)
        ],
        {"type": "response.output_item.done", "item": message},
        completed("resp_bg"),
    )


# --- Secrets and errors -----------------------------------------------------


def test_no_status_without_words(server: Loopback, home: pathlib.Path) -> None:
    def no_reason(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n")

    as_json = {"Content-Type": "application/json"}
    server.then(no_reason, reply(body=b'{"id":"resp_1","output":[]}', headers=as_json))
    policy = dataclasses.replace(FAST, request_max_retries=0, stream_max_retries=0)
    client = local_client(server, home, retry_policy=policy)
    with pytest.raises(
        cl.RetryLimitExceeded, match=r"1 attempts: 503: Service Unavailable$"
    ):
        run(client.new_turn())
    with pytest.raises(cl.StreamError) as caught:
        run(client.new_turn())
    assert str(caught.value) == (
        "expected an event stream ending in response.completed, got application/json"
    )


def test_secrets_are_scrubbed_before_text_is_cut_and_in_child_loggers(
    server: Loopback, home: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "SECRET-straddling-the-cut-1"
    body = ("x" * 190 + secret).encode()  # the first 200 bytes end inside it
    server.then(reply(400, body, {"Content-Type": "text/plain"}))
    client = local_client(server, home, info={"experimental_bearer_token": secret})
    with pytest.raises(cl.InvalidRequest) as caught:
        run(client.new_turn())
    assert "SECRET-strad" not in str(caught.value)
    with caplog.at_level(logging.WARNING):
        logging.getLogger("codex_lite.transport").warning("child: %s", secret)
    assert secret not in caplog.text and "<redacted>" in caplog.text


def test_no_secret_in_reprs_errors_or_log_records(
    server: Loopback,
    home: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret_home(home, server)
    for name, value in {**SECRETS, **AWS_KEY_ID, "OPENAI_BASE_URL": server.url}.items():
        monkeypatch.setenv(name, value)
    server.then(*[reply(500, b"boom")] * 4, *[reply(body=text_stream())] * 4)
    config = cl.load_config(home, overrides=["model_provider=custom"])
    objects: list[Any] = [config, *config.providers.values()]
    with caplog.at_level(cl.TRACE, logger="codex_lite"):
        for provider_id in ("custom", "bearer", "amazon-bedrock", "openai", "plan"):
            client = cl.Client.from_config(
                dataclasses.replace(config, model_provider=provider_id)
            )
            client.retry_policy = FAST
            turn = client.new_turn()
            prompt = cl.Prompt(input=[user("hi")])
            try:
                list(turn.stream(prompt))
            except cl.CodexError as exc:
                objects.append(exc)
            objects += [
                client,
                client.provider,
                client.auth,
                turn,
                turn.prepare(prompt),
            ]
        objects.append(cl.ChatGptAuth(home / "auth.json"))
        objects.append(cl.ChatGptPlanAuth(home / "codex-lite-chatgpt-plan.json"))
        objects.append(
            cl.AwsCredentials(
                "AKIDEXAMPLE3333",
                SECRETS["AWS_SECRET_ACCESS_KEY"],
                SECRETS["AWS_SESSION_TOKEN"],
            )
        )
        monkeypatch.delenv("MY_PROVIDER_KEY")
        with pytest.raises(cl.AuthError) as caught:
            _ = cl.Client.from_config(config).auth
        objects.append(caught.value)
    assert len(server.seen) >= 4
    text = "\n".join(repr(o) + str(o) for o in objects)
    text += "\n".join(r.getMessage() for r in caplog.records)
    assert_no_secret(text)


def test_credentials_a_server_echoes_are_scrubbed(
    server: Loopback, home: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every known secret is cut out of server text before it is shown or raised."""
    key, header, query = "SECRET-echo-key-1", "SECRET-echo-hdr-2", "SECRET-echo-q#3"
    info = {
        "env_key": "ECHO_KEY",
        "env_http_headers": {"Ocp-Apim-Subscription-Key": "ECHO_HEADER"},
        "query_params": {"api-key": query},
    }
    environ = {"ECHO_KEY": key, "ECHO_HEADER": header}
    provider = cl.ModelProvider(
        "echo",
        cl.ProviderInfo(name="echo", base_url=server.url, **info),
        environ=environ,
        home=home,
    )
    echo = f"got Authorization: Bearer {key}, {header} and ?api-key={query}".encode()
    failed = {
        "type": "response.failed",
        "response": {"error": {"message": echo.decode()}},
    }
    server.then(reply(500, echo), reply(body=sse(failed)), reply(401, echo))
    client = cl.Client(provider, model="m", retry_policy=FAST)
    events: list[Any] = []
    stream = client.new_turn().stream(cl.Prompt(input=[user("hi")]))
    with caplog.at_level(logging.DEBUG), pytest.raises(cl.ApiError) as caught:
        events.extend(stream)  # keeps what came before the error
    assert server.seen[0].path == "/v1/responses?api-key=SECRET-echo-q%233"
    assert server.seen[0].header("ocp-apim-subscription-key") == header
    retry = next(e for e in events if isinstance(e, cl.StreamRetry))
    shown = [str(caught.value), caught.value.message, str(retry.error)]
    shown += [r.getMessage() for r in caplog.records]
    assert any("<redacted>" in text for text in shown)
    for text in shown:
        for secret in (key, header, query, "SECRET-echo-q%233"):
            assert secret not in text, text


# --- Helpers used everywhere ------------------------------------------------


def test_urllib3_log_records_carry_no_query_secrets(
    server: Loopback, home: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.then(reply(body=text_stream()))
    client = local_client(
        server, home, info={"query_params": {"api-key": "SECRET-in-the-url-9"}}
    )
    with caplog.at_level(logging.DEBUG, logger="urllib3"):
        run(client.new_turn())
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any("/v1/responses?api-key=<redacted>" in line for line in lines), lines
    assert not any("SECRET-in-the-url-9" in line for line in lines)


# --- Items and ids ----------------------------------------------------------

ITEM_CASES = load_jsonl("items.jsonl")
LENIENT_CASES = load_jsonl("items_lenient.jsonl")


@pytest.mark.parametrize("case", ITEM_CASES, ids=[c["name"] for c in ITEM_CASES])
def test_item_round_trip_matches_spec_json(case: dict[str, Any]) -> None:
    item = cl.item_from_json(case["item"])
    assert cl.item_to_json(item) == case["item"]
    # key order is the wire order the spec lists
    assert list(cl.item_to_json(item)) == list(case["item"])


def test_every_item_type_is_covered_by_the_spec_cases() -> None:
    tags = {c["item"]["type"] for c in ITEM_CASES}
    modelled = {
        cls.type
        for cls in typing.get_args(cl.ResponseItem)
        if cls is not cl.UnknownItem
    }
    assert len(modelled) == 17  # wire-spec §1's item types
    assert modelled <= tags, modelled - tags
    assert tags - modelled, "an unknown item type is covered too"


def test_content_given_as_a_list_is_taken_as_a_tuple_or_refused() -> None:
    listed = cl.Message(role="user", content=[cl.InputText(text="hi")])
    assert listed == cl.Message.user("hi") and isinstance(listed.content, tuple)
    assert cl.Message.developer("be brief").role == "developer"
    output = cl.FunctionCallOutput(call_id="c", output=[cl.InputText(text="x")])
    assert cl.item_to_json(output)["output"] == [{"type": "input_text", "text": "x"}]
    with pytest.raises(TypeError, match="Message.content must be a tuple"):
        cl.Message(role="user", content=5)


@pytest.mark.parametrize("case", LENIENT_CASES, ids=[c["name"] for c in LENIENT_CASES])
def test_lenient_reading(case: dict[str, Any]) -> None:
    assert cl.item_to_json(cl.item_from_json(case["input"])) == case["expected"]


def test_unknown_item_round_trips_verbatim() -> None:
    raw = {"type": "future_item", "id": "fi_1", "nested": {"a": [1, None]}}
    item = cl.item_from_json(raw)
    assert isinstance(item, cl.UnknownItem)
    assert cl.item_to_json(item) == raw
    assert cl._item_id_prefix(item) is None


def test_unknown_content_part_round_trips() -> None:
    raw = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_file", "file_id": "file_1"}],
    }
    assert cl.item_to_json(cl.item_from_json(raw)) == raw


@pytest.mark.parametrize("phase", ["commentary", "partial_answer", "final_answer"])
def test_message_phase(phase: str) -> None:
    raw = {"type": "message", "role": "assistant", "content": [], "phase": phase}
    item = cl.item_from_json(raw)
    assert isinstance(item, cl.Message) and item.phase == phase


def test_unknown_phase_reads_as_none_and_is_kept() -> None:
    raw = {"type": "message", "role": "assistant", "content": [], "phase": "thinking"}
    item = cl.item_from_json(raw)
    assert isinstance(item, cl.Message) and item.phase is None
    assert cl.item_to_json(item) == raw


def test_reasoning_content_with_reasoning_text_is_not_replayed() -> None:
    raw = {
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": "raw thoughts"}],
        "encrypted_content": "enc",
    }
    out = cl.item_to_json(cl.item_from_json(raw))
    assert "content" not in out
    assert out["encrypted_content"] == "enc"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"type": "function_call", "name": "f", "arguments": "{}"},
            'function_call missing "call_id"',
        ),
        ({"type": "message", "role": "user"}, 'message missing "content"'),
        (
            {"type": "function_call", "name": "f", "arguments": {}, "call_id": "c"},
            'function_call field "arguments" must be a str',
        ),
        (
            {"type": "message", "role": "user", "content": [{"type": "input_text"}]},
            'missing "text"',
        ),
        ({"no": "type"}, 'missing "type"'),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_items_raise_value_errors_naming_the_field(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        cl.item_from_json(raw)


def test_metadata_output_only_keys_and_bad_kinds_are_dropped() -> None:
    raw = {
        "type": "message",
        "role": "user",
        "content": [],
        "internal_chat_message_metadata_passthrough": {
            "turn_id": "turn_1",
            "create_time": 1714000000.25,
            "content_item_kinds": "not-a-list",
            "cell_id": "c1",
            "executed_tool_calls": [],
            "tool_calls_complete": True,
        },
    }
    item = cl.item_from_json(raw)
    assert isinstance(item, cl.Message)
    assert item.metadata == cl.ItemMetadata(turn_id="turn_1", create_time=1714000000.25)
    assert cl.item_to_json(item)["internal_chat_message_metadata_passthrough"] == {
        "turn_id": "turn_1",
        "create_time": 1714000000.25,
    }


def test_stamped_sets_a_missing_turn_id() -> None:
    fresh = cl._stamped(user("a"), "turn_2", 0.0)
    assert isinstance(fresh, cl.Message) and fresh.metadata is not None
    assert fresh.metadata.turn_id == "turn_2"
    kept = cl._stamped(fresh, "turn_3", 0.0)
    assert isinstance(kept, cl.Message) and kept.metadata is not None
    assert kept.metadata.turn_id == "turn_2"
    empty = user("b", metadata=cl.ItemMetadata(turn_id=""))
    filled = cl._stamped(empty, "turn_4", 0.0)
    assert isinstance(filled, cl.Message) and filled.metadata is not None
    assert filled.metadata.turn_id == "turn_4"
    trigger = cl.CompactionTrigger()
    assert cl._stamped(trigger, "turn_5", 0.0) is trigger


def test_a_compaction_trigger_read_with_an_id_is_sent_without(
    server: Loopback, home: pathlib.Path
) -> None:
    raw = {"type": "compaction_trigger", "id": "ct_1"}
    trigger = cl.item_from_json(raw)
    assert isinstance(trigger, cl.CompactionTrigger) and trigger.id == "ct_1"
    assert cl.item_to_json(trigger) == raw
    server.then(reply(body=text_stream()))
    run(local_client(server, home).new_turn(), user("hi"), trigger)
    assert server.seen[0].json()["input"][1] == {"type": "compaction_trigger"}


@settings(max_examples=500, deadline=None)
@given(st.one_of(json_values(), item_like()))
def test_item_from_json_gives_an_item_or_a_value_error(obj: Any) -> None:
    try:
        item = cl.item_from_json(obj)
    except ValueError as exc:
        assert isinstance(exc, cl.ItemError)
        return
    out = cl.item_to_json(item)
    assert cl.item_to_json(cl.item_from_json(out)) == out


# ... ids ...


def test_item_ids_are_generated_with_type_prefixes() -> None:
    items = [
        user("hi"),
        cl.Reasoning(summary=()),
        cl.FunctionCall(name="f", arguments="{}", call_id="call_1"),
        cl.FunctionCallOutput(call_id="call_1", output="ok"),
        cl.CustomToolCall(call_id="c", name="n", input="x"),
        cl.CustomToolCallOutput(call_id="c", output="y"),
        cl.LocalShellCall(
            status="completed", action={"type": "exec", "command": ["ls"]}
        ),
        cl.ToolSearchCall(execution="client", arguments={}),
        cl.ToolSearchOutput(status="completed", execution="client", tools=[]),
        cl.WebSearchCall(),
        cl.ImageGenerationCall(status="completed", result="b64"),
        cl.Compaction(encrypted_content="e"),
        cl.ContextCompaction(),
        cl.AdditionalTools(role="developer", tools=[]),
        cl.AgentMessage(author="a", recipient="b", content=()),
        cl.Message(
            role="assistant", content=(cl.EncryptedContent(encrypted_content="x"),)
        ),
    ]
    expected = [
        "msg",
        "rs",
        "fc",
        "fco",
        "ctc",
        "ctco",
        "lsh",
        "tsc",
        "tso",
        "ws",
        "ig",
        "cmp",
        "cmp",
        "at",
        "amsg",
        "amsg",
    ]
    prepared = cl.prepare_conversation_items_for_history(items, item_ids=True)
    for item, prefix in zip(prepared, expected, strict=True):
        item_id = cl.item_to_json(item)["id"]
        head, _, tail = item_id.partition("_")
        assert head == prefix and UUID7.fullmatch(tail), item_id


def test_items_that_take_no_id_get_none() -> None:
    items: list[cl.ResponseItem] = [
        cl.CompactionTrigger(),
        cl.ConfigurationUpdate(reasoning={"effort": "high"}),
        cl.UnknownItem(data={"type": "future"}),
    ]
    prepared = cl.prepare_conversation_items_for_history(items, item_ids=True)
    assert [cl.item_to_json(i) for i in prepared] == [cl.item_to_json(i) for i in items]
    assert "id" not in cl.item_to_json(prepared[0])


def test_server_ids_are_kept_and_empty_ids_replaced() -> None:
    items = [user("a", id="msg_server"), user("b", id="")]
    kept, filled = cl.prepare_conversation_items_for_history(items, item_ids=True)
    assert cl.item_to_json(kept)["id"] == "msg_server"
    assert cl.item_to_json(filled)["id"].startswith("msg_")


def test_no_ids_when_the_feature_is_off() -> None:
    prepared = cl.prepare_conversation_items_for_history([user("a")], item_ids=False)
    assert "id" not in cl.item_to_json(prepared[0])


def test_uuid7_layout_and_order() -> None:
    before = time.time()
    ids = [cl._uuid7() for _ in range(5000)]
    after = time.time()
    assert all(UUID7.fullmatch(i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    millis = int(ids[0].replace("-", "")[:12], 16)
    assert before * 1000 - 1 <= millis <= after * 1000 + 1


# --- Images and history preparation -----------------------------------------


def image_file(
    tmp_path: pathlib.Path, size: tuple[int, int], kind: str = "PNG"
) -> pathlib.Path:
    from PIL import Image

    path = tmp_path / f"{size[0]}x{size[1]}.{kind.lower()}"
    Image.new("RGB", size, (200, 30, 30)).save(path, kind)
    return path


def sent_image(parts: list[cl.ContentItem]) -> tuple[str, bytes]:
    (image,) = [p for p in parts if isinstance(p, cl.InputImage)]
    header, _, payload = (image.image_url or "").partition(",")
    return header, base64.b64decode(payload)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, name, data, CRC (PNG spec section 5.3)."""
    crc = zlib.crc32(kind + data).to_bytes(4, "big")
    return len(data).to_bytes(4, "big") + kind + data + crc


def png_header(width: int, height: int) -> bytes:
    size = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", size + bytes([8, 2, 0, 0, 0]))


def broken_png() -> bytes:
    """93 bytes Pillow opens and then fails on with SyntaxError: after the
    first data chunk comes one whose name is not four letters."""
    rows = zlib.compress(b"\0" * (1 + 3000 * 3) * 10)
    return png_header(3000, 10) + png_chunk(b"IDAT", rows[:20]) + bytes(8) + b"x" * 20


def data_url(raw: bytes, kind: str = "png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(raw).decode()


def huge_png(side: int) -> bytes:
    """A black `side` x `side` RGB PNG: about 500 KB for 13000 declaring 507 MB of pixels."""
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + side * 3)
    rows = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return png_header(side, side) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def _turn_with_server_images(url: str, home: str) -> list[Any]:
    served = types.SimpleNamespace(url=url)
    with cl.Conversation(local_client(served, pathlib.Path(home))) as convo:  # type: ignore[arg-type]
        convo.run_turn("draw")
        return [cl.item_to_json(item) for item in convo.history]


def _fitted_size_of(path: str) -> tuple[int, int]:
    from PIL import Image

    _, raw = sent_image(cl.local_image_content(pathlib.Path(path), 1))
    return Image.open(io.BytesIO(raw)).size


def test_unprocessable_inline_image_becomes_placeholder_in_order() -> None:
    raw = {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": [
            {"type": "input_text", "text": "before"},
            {"type": "input_image", "image_url": "data:image/png;base64,%%%"},
            {"type": "input_image", "image_url": "https://example.com/image.png"},
        ],
    }
    (prepared,) = cl.prepare_conversation_items_for_history(
        [cl.item_from_json(raw)], item_ids=False
    )
    assert cl.item_to_json(prepared)["output"] == [
        {"type": "input_text", "text": "before"},
        {
            "type": "input_text",
            "text": "image content omitted because it could not be processed",
        },
        {"type": "input_image", "image_url": "https://example.com/image.png"},
    ]


def test_valid_inline_images_are_kept() -> None:
    good = "data:image/png;base64," + base64.b64encode(PNG_1PX).decode()
    not_an_image = "data:image/png;base64," + base64.b64encode(b"hello world").decode()
    message = cl.Message(
        role="user",
        content=(
            cl.InputImage(image_url=good, detail="high"),
            cl.InputImage(image_url=not_an_image),
            cl.InputImage(file_id="file_1"),
        ),
    )
    (prepared,) = cl.prepare_conversation_items_for_history([message], item_ids=False)
    assert isinstance(prepared, cl.Message)
    assert prepared.content[0] == message.content[0]
    assert prepared.content[1] == cl.InputText(text=cl.IMAGE_OMITTED_TEXT)
    assert prepared.content[2] == message.content[2]


def test_not_an_image_warns_and_says_so(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    fake = tmp_path / "notanimage.png"
    fake.write_text("hello")
    server.then(reply(body=text_stream()))
    done = cli(home, "exec", "-i", str(fake), "look", env=openai_env(server))
    assert done.returncode == 0, done.stderr
    assert "warning:" in done.stderr and "unsupported image format" in done.stderr
    content = server.seen[0].json()["input"][0]["content"]
    assert "unsupported image format" in content[0]["text"]


@pytest.mark.parametrize(
    ("size", "detail", "expected"),
    [
        ((2048, 32), "high", (2048, 32)),  # at the limit: the bytes as they are
        ((2049, 32), "high", (2048, 31)),
        ((1, 10000), "high", (1, 2048)),
        ((2048, 2048), "high", (1600, 1600)),  # 2,500 patches of 32x32
        ((1, 10000), "original", (1, 6000)),
        ((3200, 3200), "original", (3200, 3200)),  # 10,000 patches
    ],
)
def test_local_images_are_fitted_to_the_limits_with_pillow(
    tmp_path: pathlib.Path,
    size: tuple[int, int],
    detail: str,
    expected: tuple[int, int],
) -> None:
    from PIL import Image

    path = image_file(tmp_path, size)
    header, raw = sent_image(cl.local_image_content(path, 1, detail=detail))
    assert header == "data:image/png;base64"
    assert Image.open(io.BytesIO(raw)).size == expected
    if expected == size:
        assert raw == path.read_bytes()


def test_jpeg_stays_jpeg_and_gif_becomes_png(tmp_path: pathlib.Path) -> None:
    from PIL import Image

    header, raw = sent_image(
        cl.local_image_content(image_file(tmp_path, (4000, 100), "JPEG"), 1)
    )
    assert header == "data:image/jpeg;base64" and Image.open(io.BytesIO(raw)).size == (
        2048,
        51,
    )
    header, raw = sent_image(
        cl.local_image_content(image_file(tmp_path, (10, 10), "GIF"), 1)
    )
    assert header == "data:image/png;base64" and raw.startswith(b"\x89PNG")


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "GIF", "WEBP"])
def test_without_pillow_images_go_as_they_are_with_a_warning_when_over(
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    small, large = (
        image_file(tmp_path, (2048, 32), kind),
        image_file(tmp_path, (2049, 40), kind),
    )
    monkeypatch.setitem(sys.modules, "PIL", None)  # as if not installed
    for path in (small, large):
        assert sent_image(cl.local_image_content(path, 1))[1] == path.read_bytes()
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    over = "a 2049x40 image is over the 2048 px / 2500 patch limit; sent as it is"
    assert warnings == [f"{over} (install codex-lite[images] to downscale it)"]


def test_inline_images_in_history_are_fitted_too(tmp_path: pathlib.Path) -> None:
    from PIL import Image

    raw = image_file(tmp_path, (5000, 20)).read_bytes()
    url = "data:image/png;base64," + base64.b64encode(raw).decode()
    message = cl.Message(role="user", content=(cl.InputImage(image_url=url),))
    (prepared,) = cl.prepare_conversation_items_for_history([message], item_ids=False)
    _, fitted = sent_image(list(prepared.content))
    assert Image.open(io.BytesIO(fitted)).size == (2048, 8)


def test_images_pillow_fails_on_become_the_placeholder(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """For -i, for items entering history, and in a rollout being resumed."""
    bad = broken_png()
    assert len(bad) == 93
    path = tmp_path / "bad.png"
    path.write_bytes(bad)
    assert cl.local_image_content(path, 1) == [
        cl.InputText(
            text=f"Codex could not read the local image at `{path}`: "
            "cannot decode the image (SyntaxError)"
        )
    ]
    message = cl.Message(role="user", content=(cl.InputImage(image_url=data_url(bad)),))
    (prepared,) = cl.prepare_conversation_items_for_history([message], item_ids=False)
    assert prepared.content == (cl.InputText(text=cl.IMAGE_OMITTED_TEXT),)
    _, thread_id = write_rollout(home, [message])
    server.then(reply(body=text_stream()))
    done = cli(home, "exec", "resume", thread_id, "next", env=openai_env(server))
    assert done.returncode == 0, done.stderr
    sent = server.seen[-1].json()["input"][0]["content"]
    assert sent == [{"type": "input_text", "text": cl.IMAGE_OMITTED_TEXT}]


def test_images_a_server_sends_cost_nothing_to_decode(
    server: Loopback, home: pathlib.Path
) -> None:
    """13000 x 13000 declared: the model's own images are never decoded, and
    one in an item of another role is left out by its header alone."""
    url = data_url(huge_png(13000))
    assert len(url) < 1 << 20
    image = {"type": "input_image", "image_url": url}
    items = [
        {"type": "message", "role": "assistant", "id": "msg_a", "content": [image]},
        {"type": "message", "role": "user", "id": "msg_u", "content": [image]},
    ]
    events = [{"type": "response.output_item.done", "item": item} for item in items]
    server.then(reply(body=sse(*events, completed())))
    with Budget(10):
        history = in_memory_limit(
            _turn_with_server_images, server.url, str(home), peak=300 << 20
        )
    assert history[1]["content"] == [image]  # as it came
    assert history[2]["content"] == [
        {"type": "input_text", "text": cl.IMAGE_OMITTED_TEXT}
    ]


def test_images_decoded_in_one_turn_are_bounded(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cl, "_DECODED_PIXELS_PER_TURN", 700_000)
    url = data_url(image_file(tmp_path, (3000, 100)).read_bytes())
    parts = tuple(cl.InputImage(image_url=url) for _ in range(3))
    message = cl.Message(role="user", content=parts)
    (prepared,) = cl.prepare_conversation_items_for_history([message], item_ids=False)
    kinds = [type(part).__name__ for part in prepared.content]
    assert kinds == ["InputImage", "InputImage", "InputText"]  # 300,000 pixels each


def test_a_100_megapixel_jpeg_decodes_at_a_fraction(tmp_path: pathlib.Path) -> None:
    """Past the 64 MP a PNG may decode, a JPEG still fits: it decodes at 1/4."""
    from PIL import Image

    path = tmp_path / "camera.jpg"
    Image.new("RGB", (11648, 8736), (10, 200, 30)).save(path, "JPEG")
    size = in_memory_limit(_fitted_size_of, str(path), peak=200 << 20)
    assert max(size) <= 2048 and -(-size[0] // 32) * -(-size[1] // 32) <= 2500


def test_local_images_that_are_no_regular_files_are_refused_unread(
    home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    big = tmp_path / "big.png"
    with big.open("wb") as f:
        f.truncate(65 << 20)
    cases = [
        (fifo, "not a regular file"),
        (pathlib.Path("/dev/zero"), "not a regular file"),
        (big, "larger than 64 MiB"),
    ]
    for path, reason in cases:
        with Budget(2):
            told = cl.local_image_content(path, 1)
        assert told == [
            cl.InputText(
                text=f"Codex could not read the local image at `{path}`: {reason}"
            )
        ]
    with Budget(10):
        done = cli(home, "exec", "--dry-run", "-i", str(fifo), "hi")
    assert done.returncode == 0 and "not a regular file" in done.stdout


def test_a_rotated_jpeg_is_downscaled_the_right_way_up(tmp_path: pathlib.Path) -> None:
    from PIL import Image

    stored = Image.new("RGB", (3000, 1000), (255, 0, 0))
    stored.paste((0, 0, 255), (1500, 0, 3000, 1000))  # the right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF Orientation 6: row 0 is the right side, column 0 the top
    path = tmp_path / "rotated.jpg"
    stored.save(path, "JPEG", exif=exif)
    _, raw = sent_image(cl.local_image_content(path, 1))
    shown = Image.open(io.BytesIO(raw))
    assert shown.width < shown.height == 2048
    middle = shown.width // 2
    top, bottom = shown.getpixel((middle, 10)), shown.getpixel((middle, 2037))
    assert top[0] > 200 and top[2] < 60, top  # the stored left edge, red
    assert bottom[2] > 200 and bottom[0] < 60, bottom


# --- The request body -------------------------------------------------------

UA = re.compile(r"codex_lite/[\w.]+ \([^;]+; [^)]+\) \S+")


def test_body_fields_in_wire_order_for_openai(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream()))
    client = openai_client(
        server, home, reasoning_effort="high", reasoning_summary="auto"
    )
    turn = client.new_turn()
    run(
        turn,
        user("hi"),
        instructions="be brief",
        tools=[{"type": "function", "name": "f"}],
    )
    body = server.seen[0].json()
    assert list(body) == [
        "model",
        "input",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "store",
        "stream",
        "include",
        "prompt_cache_key",
        "client_metadata",
    ]
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert (
        body["store"] is False
        and body["stream"] is True
        and body["tool_choice"] == "auto"
    )
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["prompt_cache_key"] == client.session_id
    # Codex 0.169 sends the instructions as a leading developer message whose
    # id is uuid5(uuid5(OID, thread id), text) (wire-spec §11, captured).
    namespace = uuid.uuid5(uuid.NAMESPACE_OID, client.thread_id)
    assert body["input"][0] == {
        "type": "message",
        "id": f"msg_{uuid.uuid5(namespace, 'be brief')}",
        "role": "developer",
        "content": [{"type": "input_text", "text": "be brief"}],
        # what Codex 0.169 adds for OpenAI (interop suite)
        "internal_chat_message_metadata_passthrough": {
            "content_item_kinds": ["model.base_instructions"]
        },
    }
    installation_id = (home / "installation_id").read_text()
    header = server.seen[0].header("x-codex-turn-metadata") or ""
    assert header.isascii()
    assert body["client_metadata"] == {
        "x-codex-installation-id": installation_id,
        "session_id": client.session_id,
        "thread_id": client.thread_id,
        "x-codex-window-id": f"{client.thread_id}:0",
        "turn_id": turn.turn_id,
        "root_turn_id": turn.turn_id,  # as in the captured 0.169 requests
        "x-codex-turn-metadata": header,
    }
    metadata = json.loads(header)
    assert {
        k: metadata[k]
        for k in (
            "installation_id",
            "session_id",
            "thread_id",
            "turn_id",
            "window_id",
            "window_number",
            "request_kind",
            "model",
            "reasoning_effort",
        )
    } == {
        "installation_id": installation_id,
        "session_id": client.session_id,
        "thread_id": client.thread_id,
        "turn_id": turn.turn_id,
        "window_id": f"{client.thread_id}:0",
        "window_number": 0,
        "request_kind": "turn",
        "model": "gpt-test",
        "reasoning_effort": "high",
    }
    assert abs(metadata["turn_started_at_unix_ms"] / 1000 - time.time()) < 60
    assert server.seen[0].header("authorization") == "Bearer sk-test"
    assert server.seen[0].header("version") == cl.__version__


def test_custom_provider_gets_no_codex_only_fields(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream()))
    run(local_client(server, home).new_turn())
    body = server.seen[0].json()
    assert "client_metadata" not in body
    assert server.seen[0].header("x-codex-turn-metadata") is None
    assert body["reasoning"] is None
    assert not (home / "installation_id").exists()
    assert "authorization" not in server.seen[0].header_names()


def test_reasoning_is_sent_only_when_configured(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream()), reply(body=text_stream()))
    client = local_client(server, home)
    run(client.new_turn())
    run(client.new_turn(), user("x"), reasoning_effort="low")
    assert server.seen[0].json()["reasoning"] is None
    assert server.seen[1].json()["reasoning"] == {"effort": "low"}


def test_named_request_fields_go_in_codexs_places_and_after_its_own(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream()), reply(body=text_stream()))
    defaults = cl.RequestFields(
        include=["message.output_text.logprobs"],
        metadata={"job": "nightly"},
        safety_identifier="user-hash-1",
    )
    client = openai_client(server, home, fields=defaults)
    choice = {"type": "function", "name": "lookup"}
    run(
        client.new_turn(),
        tool_choice=choice,
        include=["reasoning.encrypted_content", "web_search_call.action.sources"],
        max_output_tokens=256,
        prompt_cache_key="shared-cache",
        truncation="auto",
    )
    run(client.new_turn(), metadata={})  # the client's, but for an empty metadata
    first, second = (seen.json() for seen in server.seen)
    assert list(first) == [
        "model",
        "input",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "store",
        "stream",
        "include",
        "prompt_cache_key",
        "max_output_tokens",
        "metadata",
        "safety_identifier",
        "truncation",
        "client_metadata",
    ]
    assert b'"tool_choice":{"type":"function","name":"lookup"}' in server.seen[0].body
    assert first["include"] == [
        "reasoning.encrypted_content",
        "web_search_call.action.sources",
    ]
    assert (first["max_output_tokens"], first["truncation"]) == (256, "auto")
    assert first["prompt_cache_key"] == "shared-cache"
    assert first["metadata"] == {"job": "nightly"}
    assert first["safety_identifier"] == "user-hash-1"
    assert second["tool_choice"] == "auto"
    assert second["include"] == [
        "reasoning.encrypted_content",
        "message.output_text.logprobs",
    ]
    assert second["prompt_cache_key"] == client.session_id
    assert second["metadata"] == {}
    assert second["safety_identifier"] == "user-hash-1"
    assert "max_output_tokens" not in second and "truncation" not in second


@pytest.mark.parametrize(
    "choice",
    [
        "required",
        "none",
        {
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "function", "name": "lookup"}],
        },
    ],
)
def test_tool_choice_is_sent_as_given(
    server: Loopback, home: pathlib.Path, choice: Any
) -> None:
    server.then(reply(body=text_stream()))
    run(local_client(server, home).new_turn(), tool_choice=choice)
    assert server.seen[0].json()["tool_choice"] == choice


def test_extra_body_adds_fields_and_override_body_replaces_codexs(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream()), reply(body=text_stream()))
    extra = {"top_logprobs": 3, "max_tool_calls": 2}
    client = local_client(server, home, fields=cl.RequestFields(extra_body=extra))
    override = {"store": True, "model": "other-model", "reasoning": {"effort": "low"}}
    run(client.new_turn(), override_body=override)
    run(client.new_turn(), extra_body={})  # a prompt's own, empty, for the client's
    first, second = (seen.json() for seen in server.seen)
    assert list(first) == [
        "model",
        "input",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "store",
        "stream",
        "include",
        "prompt_cache_key",
        "top_logprobs",
        "max_tool_calls",
    ]
    assert first["model"] == "other-model" and first["store"] is True
    assert server.seen[0].body.count(b'"model":') == 1  # replaced where it stands
    assert first["reasoning"] == {"effort": "low"}
    assert (first["top_logprobs"], first["max_tool_calls"]) == (3, 2)
    assert (second["model"], second["store"]) == ("test-model", False)
    assert "top_logprobs" not in second and "max_tool_calls" not in second


def test_input_tokens_are_counted_by_the_server(
    server: Loopback, home: pathlib.Path
) -> None:
    """`POST /responses/input_tokens`: the prompt's model, input and the
    fields that endpoint takes, with the turn's auth, headers and retries."""
    counted = {"object": "response.input_tokens", "input_tokens": 1234}
    as_json = {"Content-Type": "application/json"}
    server.then(reply(503, b""), reply(200, json.dumps(counted).encode(), as_json))
    token = {"experimental_bearer_token": "count-token-12345"}
    client = local_client(server, home, info=token)
    tool_json = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    prompt = cl.Prompt(
        input=[user("how long is this?")],
        tools=[tool_json],
        tool_choice="required",
        max_output_tokens=10,
    )
    assert client.new_turn().count_input_tokens(prompt) == 1234
    retried, seen = server.seen
    assert (seen.method, seen.path) == ("POST", "/v1/responses/input_tokens")
    assert seen.header("authorization") == "Bearer count-token-12345"
    assert seen.header("accept") == "application/json"
    assert seen.header("session-id") == client.session_id
    body = seen.json()
    assert body["model"] == "test-model" and body["tools"] == [tool_json]
    assert body["tool_choice"] == "required" and input_texts(body) == [
        "how long is this?"
    ]
    counted_fields = {"model", "input", "tools", "tool_choice", "parallel_tool_calls"}
    assert set(body) <= counted_fields | {"instructions", "reasoning", "text"}
    assert retried.body == seen.body  # the same bytes again
    server.then(reply(200, b'{"object": "response.input_tokens"}', as_json))
    with pytest.raises(cl.ApiError, match="no input_tokens count"):
        client.new_turn().count_input_tokens(prompt)
    server.then(reply(200, [b"[" * 65536] * 40, as_json))  # endless: read to 1 MiB
    with pytest.raises(cl.ApiError, match="no input_tokens count"):
        client.new_turn().count_input_tokens(prompt)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"extra_body": {"tool_choice": "none"}}, "extra_body.tool_choice"),
        ({"extra_body": {"store": True}}, "extra_body.store"),
        ({"extra_body": {"truncation": "auto"}}, "extra_body.truncation"),
        ({"extra_body": {"input": []}}, "extra_body.input"),
        ({"override_body": {"input": []}}, "override_body.input"),
        ({"override_body": {"previous_response_id": "r"}}, "previous_response_id"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": {"name": "lookup"}}, "tool_choice"),
        ({"truncation": "yes"}, "truncation"),
        ({"include": "file_search_call.results"}, "include"),
    ],
)
def test_request_fields_refused_name_the_field_and_send_nothing(
    server: Loopback, home: pathlib.Path, fields: dict[str, Any], named: str
) -> None:
    with pytest.raises(cl.ConfigError, match=re.escape(named)):
        run(local_client(server, home).new_turn(), **fields)
    with pytest.raises(cl.ConfigError, match=re.escape(named)):
        cl.RequestFields(**fields)
    assert server.seen == []


def test_text_verbosity_and_output_schema(server: Loopback, home: pathlib.Path) -> None:
    server.then(reply(body=text_stream()))
    schema = {"type": "object", "properties": {}, "additionalProperties": False}
    run(
        local_client(server, home, verbosity="low").new_turn(),
        user("x"),
        output_schema=schema,
    )
    assert server.seen[0].json()["text"] == {
        "verbosity": "low",
        "format": {
            "type": "json_schema",
            "strict": True,
            "schema": schema,
            "name": "codex_output_schema",
        },
    }


@pytest.mark.parametrize(
    ("tier", "sent"), [("fast", "priority"), ("flex", "flex"), (None, None)]
)
def test_service_tier(
    server: Loopback, home: pathlib.Path, tier: str | None, sent: str | None
) -> None:
    server.then(reply(body=text_stream()))
    run(openai_client(server, home, service_tier=tier).new_turn())
    assert server.seen[0].json().get("service_tier") == sent


def test_request_copy_of_items_for_non_openai_providers(
    server: Loopback, home: pathlib.Path
) -> None:
    metadata = cl.ItemMetadata(turn_id="turn_1")
    items: list[cl.ResponseItem] = [
        user("hi", id="0197c0de-0000-7000-8000-000000000000", metadata=metadata),
        cl.FunctionCall(
            id="fc_1",
            name="f",
            arguments="{}",
            call_id="call_1",
            encrypted_function_args=["e"],
            metadata=metadata,
        ),
    ]
    server.then(reply(body=text_stream()), reply(body=text_stream()))
    run(local_client(server, home).new_turn(), *items)
    run(openai_client(server, home).new_turn(), *items)
    custom, openai = server.seen[0].json()["input"], server.seen[1].json()["input"]
    assert (
        "id" not in custom[0] and "id" not in openai[0]
    )  # unprefixed legacy id dropped
    assert custom[1]["id"] == openai[1]["id"] == "fc_1"
    for obj in custom:
        assert "internal_chat_message_metadata_passthrough" not in obj
        assert "encrypted_function_args" not in obj
    assert openai[1]["encrypted_function_args"] == ["e"]
    assert openai[0]["internal_chat_message_metadata_passthrough"] == {
        "turn_id": "turn_1"
    }
    # history itself keeps everything
    assert cl.item_to_json(items[1])["encrypted_function_args"] == ["e"]


# ... headers and turn state ...


def test_session_headers_are_hyphenated_only(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream()))
    client = local_client(server, home, info={"http_headers": {"x-extra": "1"}})
    run(client.new_turn())
    (seen,) = server.seen
    assert seen.path == "/v1/responses"
    assert seen.header("session-id") == client.session_id == client.thread_id
    assert seen.header("thread-id") == client.thread_id
    assert seen.header("x-client-request-id") == client.thread_id
    assert seen.header("x-codex-window-id") == f"{client.thread_id}:0"
    assert seen.header("originator") == "codex_lite"
    assert seen.header("accept") == "text/event-stream"
    assert seen.header("content-type") == "application/json"
    assert seen.header("x-extra") == "1"
    assert UA.fullmatch(seen.header("user-agent") or "")
    names = seen.header_names()
    for legacy in ("session_id", "thread_id", "conversation_id", "x-openai-subagent"):
        assert legacy not in names


def test_subagent_shares_session_and_sends_label(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream()))
    root = local_client(server, home)
    child = root.subagent_client("review")
    run(child.new_turn())
    (seen,) = server.seen
    assert child.session_id == root.session_id != child.thread_id
    assert seen.header("session-id") == root.session_id
    assert seen.header("thread-id") == child.thread_id
    assert seen.header("x-openai-subagent") == "review"
    assert seen.header("x-codex-parent-thread-id") == root.thread_id


def test_env_http_headers_skip_blank_values(
    server: Loopback, home: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORG_FOR_TEST", "org-1")
    monkeypatch.setenv("BLANK_FOR_TEST", "  ")
    server.then(reply(body=text_stream()))
    info = {
        "env_http_headers": {
            "OpenAI-Organization": "ORG_FOR_TEST",
            "X-Blank": "BLANK_FOR_TEST",
        }
    }
    run(local_client(server, home, info=info).new_turn())
    assert server.seen[0].header("openai-organization") == "org-1"
    assert "x-blank" not in server.seen[0].header_names()


def test_turn_state_is_sticky_within_a_turn_and_reset_across_turns(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(
        reply(body=text_stream(), headers={"x-codex-turn-state": "ts-1"}),
        reply(body=text_stream(), headers={"x-codex-turn-state": "ts-2"}),
        reply(body=text_stream()),
    )
    client = local_client(server, home)
    turn = client.new_turn()
    run(turn)
    run(turn)  # a follow-up request in the same turn
    run(client.new_turn())
    assert [s.header("x-codex-turn-state") for s in server.seen] == [None, "ts-1", None]
    assert turn.turn_state == "ts-1"


def test_turn_state_is_sent_on_retries(server: Loopback, home: pathlib.Path) -> None:
    # A stream that breaks after its headers, a 503, then success: the state
    # the stream carried goes on both later requests.  An error response's
    # header is not a turn state (wire-spec §4: the header of an SSE response).
    server.then(
        reply(body=text_stream()[:40], headers={"x-codex-turn-state": "ts-retry"}),
        reply(503, b"busy", {"x-codex-turn-state": "ts-from-error"}),
        reply(body=text_stream()),
    )
    run(local_client(server, home).new_turn())
    assert [s.header("x-codex-turn-state") for s in server.seen] == [
        None,
        "ts-retry",
        "ts-retry",
    ]


def test_turn_state_is_not_taken_from_an_error_response(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(
        reply(503, b"busy", {"x-codex-turn-state": "ts-from-error"}),
        reply(body=text_stream()),
    )
    turn = local_client(server, home).new_turn()
    run(turn)
    assert [s.header("x-codex-turn-state") for s in server.seen] == [None, None]
    assert turn.turn_state is None


# ... Responses Lite (wire-spec §11) ...


def test_responses_lite_moves_tools_and_instructions_into_items(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream()), reply(body=text_stream()))
    tools = [{"type": "function", "name": "shell", "parameters": {"type": "object"}}]
    client = local_client(
        server, home, info={"responses_lite": True}, reasoning_effort="medium"
    )
    for _ in range(2):
        run(
            client.new_turn(),
            user("hi"),
            instructions="You are Codex.",
            tools=tools,
            parallel_tool_calls=True,
        )
    first, second = (s.json() for s in server.seen)
    assert "instructions" not in first and "tools" not in first
    assert first["parallel_tool_calls"] is False
    assert first["reasoning"] == {"effort": "medium", "context": "all_turns"}
    namespace = uuid.uuid5(uuid.NAMESPACE_OID, client.thread_id)
    tools_json = json.dumps(tools, separators=(",", ":"))
    assert first["input"][0] == {
        "type": "additional_tools",
        "id": f"at_{uuid.uuid5(namespace, tools_json)}",
        "role": "developer",
        "tools": tools,
    }
    assert first["input"][1] == {
        "type": "message",
        "id": f"msg_{uuid.uuid5(namespace, 'You are Codex.')}",
        "role": "developer",
        "content": [{"type": "input_text", "text": "You are Codex."}],
    }
    assert first["input"][:2] == second["input"][:2]
    assert server.seen[0].header("x-openai-internal-codex-responses-lite") == "true"


def test_responses_lite_without_tools_or_instructions(
    server: Loopback, home: pathlib.Path
) -> None:
    # wire-spec §11: the additional_tools item always leads; the instructions
    # message only when there are instructions; configuration_update dropped.
    server.then(reply(body=text_stream()))
    client = local_client(server, home, info={"responses_lite": True})
    update = cl.ConfigurationUpdate(reasoning={"effort": "high"})
    run(client.new_turn(), user("hi"), update)
    sent = server.seen[0].json()["input"]
    namespace = uuid.uuid5(uuid.NAMESPACE_OID, client.thread_id)
    assert sent[0] == {
        "type": "additional_tools",
        "id": f"at_{uuid.uuid5(namespace, '[]')}",
        "role": "developer",
        "tools": [],
    }
    assert [i["type"] for i in sent] == ["additional_tools", "message"]


def test_responses_lite_items_are_stored_and_sent_unchanged_on_resume(
    server: Loopback, home: pathlib.Path
) -> None:
    # As Codex 0.171 does (seen): `at_<uuid7>` and `msg_<uuid7>` ids, both
    # items written as response_item lines (the instructions with the full
    # passthrough) and replayed from there, never made again.
    (home / "config.toml").write_text(
        'model_provider = "lite"\n[model_providers.lite]\n'
        f'base_url = "{server.url}"\nresponses_lite = true\n'
    )
    server.then(*[reply(body=text_stream()) for _ in range(3)])
    config = cl.load_config(home)
    with cl.Conversation.start(config, instructions="You are Codex.") as first:
        first.run_turn("one")
        first.run_turn("two")
    thread_id = first.client.thread_id
    with cl.Conversation.resume(config, thread_id) as resumed:
        resumed.run_turn("three")
    sent = [s.json()["input"] for s in server.seen]
    tools, instructions = sent[0][:2]
    assert tools["type"] == "additional_tools" and tools["tools"] == []
    assert UUID7.fullmatch(tools["id"].removeprefix("at_"))
    assert instructions["content"] == [{"type": "input_text", "text": "You are Codex."}]
    assert UUID7.fullmatch(instructions["id"].removeprefix("msg_"))
    assert sent[1][:2] == sent[2][:2] == [tools, instructions]
    assert [i.get("role") for i in sent[2]].count("developer") == 2
    path = cl.find_rollout(home, thread_id)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    stored = [x["payload"] for x in lines if x["type"] == "response_item"][:2]
    assert stored[0] == tools
    passthrough = stored[1].pop("internal_chat_message_metadata_passthrough")
    assert stored[1] == instructions  # a custom provider gets no passthrough
    assert list(passthrough) == [
        "turn_id",
        "create_time",
        "content_item_kinds",
        "content_item_metadata",
    ]
    assert passthrough["content_item_kinds"] == ["model.base_instructions"]
    assert passthrough["content_item_metadata"] == [
        {"provenance": {"type": "harness", "hook": False}}
    ]


# ... encode once, compress once ...


def test_chatgpt_bodies_are_zstd_compressed_once(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(502, b"bad gateway"), reply(503, b""), reply(body=text_stream()))
    client = openai_client(server, home, auth=chatgpt_auth(home))
    run(client.new_turn(), user("x" * 5000))
    assert len(server.seen) == 3
    assert len({s.body for s in server.seen}) == 1
    first = server.seen[0]
    assert first.header("content-encoding") == "zstd"
    assert len(first.body) < 1000
    assert first.json()["input"][0]["content"][0]["text"] == "x" * 5000
    assert first.header("authorization") == "Bearer chatgpt-token"
    assert first.header("chatgpt-account-id") == "acct_1"
    assert first.header("x-codex-routing-hint") == "model=gpt-test"


def test_routing_hint_names_the_tier_the_body_asks_for(
    server: Loopback, home: pathlib.Path
) -> None:
    # wire-spec §10: `x-codex-routing-hint: model=…;tier=priority`, Fast sends "priority"
    server.then(reply(body=text_stream()))
    client = openai_client(server, home, auth=chatgpt_auth(home))
    run(client.new_turn(), service_tier="fast")
    (seen,) = server.seen
    assert seen.json()["service_tier"] == "priority"
    assert seen.header("x-codex-routing-hint") == "model=gpt-test;tier=priority"


def test_no_compression_without_chatgpt_auth_or_with_the_feature_off(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream()), reply(body=text_stream()))
    run(openai_client(server, home).new_turn())
    features = {"enable_request_compression": False}
    run(
        openai_client(
            server, home, auth=chatgpt_auth(home), features=features
        ).new_turn()
    )
    assert [s.header("content-encoding") for s in server.seen] == [None, None]


def test_compression_is_logged(
    server: Loopback, home: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.then(reply(body=text_stream()))
    with caplog.at_level(logging.INFO, logger="codex_lite.transport"):
        run(openai_client(server, home, auth=chatgpt_auth(home)).new_turn())
    assert re.search(
        r"Compressed request body with zstd pre_compression_bytes=\d+ "
        r"post_compression_bytes=\d+ compression_duration_ms=\d+",
        caplog.text,
    )


def test_trace_logs_the_json_with_redacted_url(
    server: Loopback, home: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.then(reply(body=text_stream()))
    info = {"query_params": {"api-key": "secret-in-query", "v": "1"}}
    with caplog.at_level(cl.TRACE, logger="codex_lite.transport"):
        run(local_client(server, home, info=info).new_turn(), user("traced"))
    assert "POST to " in caplog.text and '"text":"traced"' in caplog.text
    assert "secret-in-query" not in caplog.text
    assert server.seen[0].path == "/v1/responses?api-key=secret-in-query&v=1"


@settings(max_examples=200, deadline=None)
@given(
    head=st.dictionaries(
        st.sampled_from(["model", "instructions"]), st.text(), max_size=2
    ),
    items=st.lists(json_values(), max_size=6),
    tail=st.dictionaries(
        st.text(min_size=1).filter(lambda k: k != "input"), json_values(), max_size=5
    ),
)
def test_joined_request_is_byte_identical_to_one_shot_dumps(
    head: dict[str, Any], items: list[Any], tail: dict[str, Any]
) -> None:
    tail = {k: v for k, v in tail.items() if k not in head}
    fragments = [
        json.dumps(i, separators=(",", ":"), ensure_ascii=False).encode() for i in items
    ]
    expected = json.dumps(
        {**head, "input": items, **tail}, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert cl._join_request(head, fragments, tail) == expected


def test_turn_bodies_reuse_item_encodings_and_match_one_shot(
    server: Loopback, home: pathlib.Path
) -> None:
    client = local_client(server, home)
    history: list[cl.ResponseItem] = []
    for n in range(3):
        history.append(user(f"turn {n} ü"))
        server.then(reply(body=text_stream()))
        run(client.new_turn(), *history)
    body = server.seen[-1].body
    expected = dict(json.loads(body))
    assert (
        body == json.dumps(expected, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert [m["content"][0]["text"] for m in expected["input"]] == [
        "turn 0 ü",
        "turn 1 ü",
        "turn 2 ü",
    ]


def test_encoded_body_headers() -> None:
    parts = cl._RequestParts("https://x/responses", {}, {"model": "m"}, [], [], {}, 0)
    plain = cl._http_request(parts, compress=False)
    assert plain.body == b'{"model":"m","input":[]}' and plain.json is plain.body
    assert plain.headers == {"Content-Type": "application/json"}
    packed = cl._http_request(parts, compress=True)
    assert packed.headers["Content-Encoding"] == "zstd"
    assert zstandard.ZstdDecompressor().decompress(packed.body) == plain.body
    assert packed.json is None  # not kept without TRACE


# ... installation id (wire-spec §9) ...


def test_installation_id_is_created_and_reused(tmp_path: pathlib.Path) -> None:
    first = cl._resolve_installation_id(tmp_path)
    path = tmp_path / "installation_id"
    assert uuid.UUID(first).version == 4
    assert path.read_text() == first  # no trailing newline
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert cl._resolve_installation_id(tmp_path) == first


def test_installation_id_uppercase_is_accepted_without_rewrite(
    tmp_path: pathlib.Path,
) -> None:
    value = "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF"
    (tmp_path / "installation_id").write_text(value + "\n")
    assert cl._resolve_installation_id(tmp_path) == value.lower()
    assert (tmp_path / "installation_id").read_text() == value + "\n"


def test_installation_id_rewrites_corrupt_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "installation_id"
    path.write_text("not-a-uuid")
    path.chmod(0o600)
    fresh = cl._resolve_installation_id(tmp_path)
    assert path.read_text() == fresh and uuid.UUID(fresh)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # stricter than 0644: kept


def test_a_stricter_installation_id_mode_is_kept(home: pathlib.Path) -> None:
    path = home / "installation_id"
    path.write_text("4f5d3a43-93d9-4d5b-8b57-1b9a2a8e6c1e")
    path.chmod(0o600)
    assert cl._resolve_installation_id(home) == "4f5d3a43-93d9-4d5b-8b57-1b9a2a8e6c1e"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o666)
    cl._resolve_installation_id(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_concurrent_installation_id_creation(tmp_path: pathlib.Path) -> None:
    script = "import sys, pathlib, codex_lite as cl; print(cl._resolve_installation_id(pathlib.Path(sys.argv[1])))"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE,
        )
        for _ in range(8)
    ]
    ids = {p.communicate(timeout=30)[0].strip() for p in procs}
    assert len(ids) == 1
    assert (tmp_path / "installation_id").read_text() == ids.pop()


# --- SigV4 ------------------------------------------------------------------
#
# Both suites live in tests/vectors with their LICENSE and NOTICE.  Shared
# inputs (from their READMEs): AKIDEXAMPLE, us-east-1, service "service",
# 2015-08-30T12:36:00Z.


def reference_sigv4(seen: Seen, secret: str, region: str, service: str) -> str:
    """Recompute the Authorization value from the request as received (AWS SigV4 spec)."""
    import hashlib
    import hmac
    import urllib.parse

    auth = seen.header("authorization") or ""
    match = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=[0-9a-f]{64}",
        auth,
    )
    assert match, auth
    key_id, date, _, _, signed = match.groups()
    path, _, query = seen.path.partition("?")
    pairs = sorted(
        (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
    )
    lines = [
        seen.method,
        urllib.parse.quote(path, safe="/~"),
        "&".join(f"{k}={v}" for k, v in pairs),
    ]
    for name in signed.split(";"):
        values = [" ".join(v.split()) for k, v in seen.headers if k.lower() == name]
        lines.append(f"{name}:{','.join(values)}")
    lines += ["", signed, hashlib.sha256(seen.body).hexdigest()]
    canonical = "\n".join(lines)
    amz_date = seen.header("x-amz-date") or ""
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed}, Signature={signature}"


VECTORS = TESTS / "vectors"
SUITE = VECTORS / "aws-sig-v4-test-suite"
CAUTH = VECTORS / "aws-c-auth-sigv4" / "v4"
EXAMPLE_CREDENTIALS = cl.AwsCredentials(
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)
SUITE_TOKEN = (
    (SUITE / "post-sts-token" / "readme.txt").read_text().strip().splitlines()[-1]
)
SIGNING_TIME = datetime.datetime(2015, 8, 30, 12, 36, tzinfo=datetime.UTC)


def parse_vector_request(text: str) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """A raw request from a vector file: method, URL, header pairs, body."""
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    method, target = lines[0].split(" ", 1)
    path = target.rsplit(" ", 1)[0]
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[:1] in (" ", "\t"):  # a folded continuation of the previous value
            name, value = headers[-1]
            headers[-1] = (name, f"{value}\n{line}")
        else:
            name, _, value = line.partition(":")
            headers.append((name, value))
    host = next(v for k, v in headers if k.lower() == "host")
    return method, f"https://{host}{path}", headers, body.encode()


def suite_cases() -> list[pathlib.Path]:
    return sorted(p.parent for p in SUITE.rglob("*.req"))


def amz_date_of(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


# A slow canonical request written from the SigV4 spec text (IAM user guide,
# "Create a signed AWS API request"), to compare the signer against.

UNRESERVED = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
)


def spec_encode(text: str, *, keep_slash: bool) -> str:
    out = []
    for byte in text.encode():
        if byte in UNRESERVED or (keep_slash and byte == ord("/")):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def spec_decode(text: str) -> str:
    raw = bytearray()
    i = 0
    data = text.encode()
    while i < len(data):
        if data[i] == ord("%") and re.fullmatch(
            rb"[0-9A-Fa-f]{2}", data[i + 1 : i + 3]
        ):
            raw.append(int(data[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(data[i])
            i += 1
    return raw.decode("utf-8", "replace")


def spec_normalize(path: str) -> str:
    """Redundant ('//', '.') and relative ('..') segments removed; a trailing '/' kept."""
    stack: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            stack = stack[:-1]
        elif segment not in ("", "."):
            stack.append(segment)
    trailing = "/" if path.endswith("/") and stack else ""
    return "/" + "/".join(stack) + trailing


def spec_canonical_request(
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    payload_hash: str,
) -> str:
    uri = spec_encode(spec_normalize(path), keep_slash=True)
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append(
                (
                    spec_encode(spec_decode(key), keep_slash=False),
                    spec_encode(spec_decode(value), keep_slash=False),
                )
            )
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(re.sub(r"\s+", " ", value.strip()))
    names = sorted(values)
    block = "".join(f"{n}:{','.join(values[n])}\n" for n in names)
    return "\n".join(
        [method, uri, canonical_query, block, ";".join(names), payload_hash]
    )


path_segments = st.sampled_from(
    ["a", "b c", ".", "..", "", "%41", "é", "x:y", "$", "~t", "+", "%2F", "日本"]
)
query_parts = st.sampled_from(
    ["a", "a-b", "A", "b", "", "é", "%20", "+", "x y", "1", "a=b"]
)
header_names = st.sampled_from(
    ["Host", "X-Amz-Date", "x-custom", "X-Custom", "content-type", "a", "a-b"]
)
header_values = st.text(alphabet=st.sampled_from(list('ab "\t,:/é')), max_size=12)


@pytest.mark.parametrize("case", suite_cases(), ids=lambda p: p.name)
def test_sigv4_botocore_suite(case: pathlib.Path) -> None:
    # The signer's named steps composed as sigv4_sign composes them, at the
    # suite's signing time (botocore's SigV4Auth walks the same steps).
    name = case.name
    method, url, headers, body = parse_vector_request(
        (case / f"{name}.req").read_text()
    )
    # A token added after signing is not signed: signing without it gives
    # the same signature.
    signed_token = name.startswith("post-sts") and name != "post-sts-header-after"
    token = SUITE_TOKEN if signed_token else None
    if (
        name == "get-vanilla-with-session-token"
    ):  # the token is given in the c-auth copy's context
        token = json.loads((CAUTH / name / "context.json").read_text())["credentials"][
            "token"
        ]
    amz_date = amz_date_of(SIGNING_TIME)
    pairs = cl._sigv4_headers(url, headers, amz_date, token)
    canonical, signed_headers = cl._sigv4_canonical_request(
        method, url, pairs, hashlib.sha256(body).hexdigest()
    )
    assert canonical == (case / f"{name}.creq").read_text()
    scope = "20150830/us-east-1/service/aws4_request"
    assert (
        cl._sigv4_string_to_sign(amz_date, scope, canonical)
        == (case / f"{name}.sts").read_text()
    )
    credentials = dataclasses.replace(EXAMPLE_CREDENTIALS, session_token=token)
    authorization = cl._sigv4_authorization(
        credentials, amz_date, scope, canonical, signed_headers
    )
    assert authorization == (case / f"{name}.authz").read_text().strip()


@pytest.mark.parametrize("case", sorted(CAUTH.iterdir()), ids=lambda p: p.name)
def test_sigv4_aws_c_auth_suite(case: pathlib.Path) -> None:
    context = json.loads((case / "context.json").read_text())
    method, url, headers, body = parse_vector_request(
        (case / "request.txt").read_text()
    )
    region, service = context["region"], context["service"]
    creds = context["credentials"]
    # The vectors' options, as a caller of the steps gives them: a token
    # sent unsigned is left out, a signed body hash is a header, an
    # unnormalized path is not normalized.
    omit_token = context.get("omit_session_token", False)
    credentials = cl.AwsCredentials(
        creds["access_key_id"],
        creds["secret_access_key"],
        None if omit_token else creds.get("token"),
    )
    payload_hash = hashlib.sha256(body).hexdigest()
    if context["sign_body"]:
        headers.append(("x-amz-content-sha256", payload_hash))
    signature = (case / "header-signature.txt").read_text().strip()
    signed_request = (case / "header-signed-request.txt").read_text()
    _, _, expected_pairs, _ = parse_vector_request(signed_request)
    expected = dict(expected_pairs)
    amz_date = amz_date_of(datetime.datetime.fromisoformat(context["timestamp"]))
    pairs = cl._sigv4_headers(url, headers, amz_date, credentials.session_token)
    sent = dict(pairs)
    for name in ("X-Amz-Date", "X-Amz-Security-Token", "x-amz-content-sha256"):
        if name in expected and not (omit_token and name == "X-Amz-Security-Token"):
            assert sent[name.lower()] == expected[name]
    canonical, signed_headers = cl._sigv4_canonical_request(
        method, url, pairs, payload_hash, normalize=context["normalize"]
    )
    assert canonical == (case / "header-canonical-request.txt").read_text()
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = cl._sigv4_string_to_sign(amz_date, scope, canonical)
    assert string_to_sign == (case / "header-string-to-sign.txt").read_text()
    authorization = cl._sigv4_authorization(
        credentials, amz_date, scope, canonical, signed_headers
    )
    assert authorization.endswith(f", Signature={signature}")
    assert authorization == expected["Authorization"]


def test_sigv4_bedrock_like_request() -> None:
    body = zstandard.ZstdCompressor().compress(
        b'{"model":"openai.gpt-oss-120b","input":[]}'
    )
    url = "https://bedrock-mantle.us-west-2.api.aws/openai/v1/model/x-v1:0/responses"
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "zstd",
        "User-Agent": "ua",
    }
    creds = dataclasses.replace(EXAMPLE_CREDENTIALS, session_token="tok/en+=")
    signed = cl.sigv4_sign(
        "POST",
        url,
        headers,
        body,
        credentials=creds,
        region="us-west-2",
        service="bedrock-mantle",
    )
    assert "x-amz-content-sha256" not in {k.lower() for k in signed}
    assert signed["x-amz-security-token"] == "tok/en+="
    assert signed["host"] == "bedrock-mantle.us-west-2.api.aws"
    match = re.search(r"SignedHeaders=([^,]+)", signed["authorization"])
    assert (
        match
        and match.group(1)
        == "content-encoding;content-type;host;x-amz-date;x-amz-security-token"
    )
    canonical, _ = cl._sigv4_canonical_request(
        "POST", url, list(signed.items())[:-1], hashlib.sha256(body).hexdigest()
    )
    assert canonical.split("\n")[1] == "/openai/v1/model/x-v1%3A0/responses"
    wire = url.replace(
        ":0", "%3A0"
    )  # the same path percent-encoded on the wire is encoded again
    assert (
        cl._sigv4_canonical_request("POST", wire, [], "x")[0].split("\n")[1]
        == "/openai/v1/model/x-v1%253A0/responses"
    )


@settings(max_examples=400, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT"]),
    segments=st.lists(path_segments, max_size=6),
    trailing=st.booleans(),
    query=st.lists(st.tuples(query_parts, query_parts), max_size=5),
    headers=st.lists(st.tuples(header_names, header_values), max_size=6),
)
def test_sigv4_canonical_request_matches_the_spec(
    method: str,
    segments: list[str],
    trailing: bool,
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
) -> None:
    path = "/" + "/".join(segments) + ("/" if trailing else "")
    raw_query = "&".join(f"{k}={v}" for k, v in query)
    url = (
        "https://example.amazonaws.com" + path + ("?" + raw_query if raw_query else "")
    )
    canonical, _ = cl._sigv4_canonical_request(method, url, headers, "0" * 64)
    parts = urllib.parse.urlsplit(url)
    assert canonical == spec_canonical_request(
        method, parts.path, parts.query, headers, "0" * 64
    )


def test_sigv4_query_sorting_and_repeated_headers() -> None:
    url = "https://h.example/?a-b=2&a=1&a=0&b="
    canonical, signed = cl._sigv4_canonical_request(
        "GET",
        url,
        [
            ("X-A", "  two  words "),
            ("x-a", "b"),
            ("Host", "h.example"),
            ("User-Agent", "u"),
        ],
        "h",
    )
    assert canonical.split("\n")[2] == "a=0&a=1&a-b=2&b="
    assert "x-a:two words,b\n" in canonical and signed == "host;x-a"


# ... signed requests on the wire ...


def test_aws_credentials_from_files_and_process(home: pathlib.Path) -> None:
    (home / "aws-credentials").write_text(
        "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = filesecret\n"
        "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = devsecret\naws_session_token = devtoken\n"
    )
    script = home / "creds.py"
    script.write_text(
        "import json; print(json.dumps({'Version': 1, 'AccessKeyId': 'AKIDPROC', "
        "'SecretAccessKey': 'procsecret', 'SessionToken': 'proctoken'}))"
    )
    (home / "aws-config").write_text(
        f"[profile proc]\ncredential_process = {sys.executable} {script}\n"
    )
    env = {
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
    }
    assert cl.aws_credentials_resolver(None, env)()[0] == cl.AwsCredentials(
        "AKIDFILE", "filesecret"
    )
    assert cl.aws_credentials_resolver("dev", env)()[0] == cl.AwsCredentials(
        "AKIDDEV", "devsecret", "devtoken"
    )
    assert cl.aws_credentials_resolver(None, {**env, "AWS_PROFILE": "proc"})()[
        0
    ] == cl.AwsCredentials("AKIDPROC", "procsecret", "proctoken")
    env_creds = {
        **env,
        "AWS_ACCESS_KEY_ID": "AKIDENV",
        "AWS_SECRET_ACCESS_KEY": "envsecret",
        "AWS_SESSION_TOKEN": "envtoken",
    }
    assert cl.aws_credentials_resolver("dev", env_creds)()[0] == cl.AwsCredentials(
        "AKIDENV", "envsecret", "envtoken"
    )


def test_bedrock_sigv4_requests_verify_on_the_server(
    server: Loopback, home: pathlib.Path
) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "AWS_SESSION_TOKEN": "session-token-1",
    }
    provider = bedrock(
        home, {"base_url": server.url, "aws": {"region": "us-west-2"}}, env
    )
    client = cl.Client(
        provider, model="openai.gpt-oss-120b", retry_policy=FAST, service_tier="fast"
    )
    server.then(reply(503, b""), reply(body=text_stream()))
    run(client.new_turn(), user("hi", metadata=cl.ItemMetadata(turn_id="t1")))
    assert len(server.seen) == 2
    for seen in server.seen:
        assert seen.header("authorization") == reference_sigv4(
            seen, env["AWS_SECRET_ACCESS_KEY"], "us-west-2", "bedrock-mantle"
        )
        assert seen.header("x-amz-security-token") == "session-token-1"
        assert "x-amz-content-sha256" not in seen.header_names()
        signed = re.search(r"SignedHeaders=([^,]+)", seen.header("authorization") or "")
        assert signed and "x-amz-security-token" in signed.group(1).split(";")
        assert "session-id" in signed.group(1).split(";")
        body = seen.json()
        assert "service_tier" not in body and "client_metadata" not in body
        assert "internal_chat_message_metadata_passthrough" not in body["input"][0]
        assert seen.header("content-encoding") is None
    assert server.seen[0].body == server.seen[1].body


def test_sigv4_auth_drops_the_legacy_session_id_header() -> None:
    auth = cl.SigV4Auth(
        lambda: (cl.AwsCredentials("AKID", "secret"), None), region="us-east-1"
    )
    request = cl.PreparedRequest(
        "POST",
        "https://bedrock-mantle.us-east-1.api.aws/openai/v1/responses",
        {"session_id": "legacy", "session-id": "s"},
        b"{}",
    )
    signed = auth.apply_auth(request)
    assert "session_id" not in signed.headers and signed.headers["session-id"] == "s"
    assert signed.headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKID/"
    )


def test_custom_provider_with_aws_block_is_signed(
    server: Loopback, home: pathlib.Path
) -> None:
    info = cl.ProviderInfo.from_toml(
        {"name": "gateway", "base_url": server.url, "aws": {"region": "eu-west-1"}}
    )
    env = {"AWS_ACCESS_KEY_ID": "AKIDGATEWAY", "AWS_SECRET_ACCESS_KEY": "gw-secret"}
    provider = cl.ModelProvider("gateway", info, environ=env, home=home)
    server.then(reply(body=text_stream()))
    run(cl.Client(provider, model="m", retry_policy=FAST).new_turn())
    (seen,) = server.seen
    assert seen.header("authorization") == reference_sigv4(
        seen, "gw-secret", "eu-west-1", "bedrock-mantle"
    )


# --- Auth -------------------------------------------------------------------


def login_elsewhere_then_401(home: pathlib.Path, token: str, account: str) -> Reply:
    """Another process writes a fresh auth.json; this request still gets a 401."""

    def send(handler: http.server.BaseHTTPRequestHandler) -> None:
        tokens = {"access_token": token, "account_id": account}
        (home / "auth.json").write_text(json.dumps({"tokens": tokens}))
        reply(401, b'{"error":{"message":"token expired"}}')(handler)

    return send


def jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT, as the captures use (Codex reads claims unverified)."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


def chatgpt_login(
    home: pathlib.Path,
    *,
    expires_in: float,
    refresh_token: str = "rt-1",
    last_refresh: str = "2026-11-01T00:00:00Z",
) -> dict[str, Any]:
    """An auth.json as codex-interop.md describes it, plus a key from a newer Codex."""
    claims = {"https://api.openai.com/auth": {"chatgpt_account_id": "acc-1"}}
    data = {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": jwt({"email": "me@example.com", **claims}),
            "access_token": jwt({"exp": int(time.time() + expires_in), **claims}),
            "refresh_token": refresh_token,
            "account_id": "acc-1",
        },
        "last_refresh": last_refresh,
        "agent_identity": {"from": "a newer Codex"},
    }
    (home / "auth.json").write_text(json.dumps(data))
    return data


def token_url(server: Loopback) -> str:
    return server.url.removesuffix("/v1") + "/oauth/token"


def new_tokens(tag: str = "new", refresh_token: str = "rt-2") -> Reply:
    body = {"access_token": jwt({"exp": int(time.time()) + 3600, "tag": tag})}
    body["refresh_token"] = refresh_token
    return reply(
        body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )


def endless_json(handler: http.server.BaseHTTPRequestHandler) -> None:
    """A 200 whose JSON never ends: whitespace, 64 KiB a chunk, until the
    client hangs up (or half a minute passes)."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk, stop = b"\n" * 65536, time.monotonic() + 30
    with contextlib.suppress(OSError):
        while time.monotonic() < stop:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def device_login_at(issuer: str, path: pathlib.Path) -> None:
    os.environ["CODEX_LITE_AUTH_ISSUER"] = issuer
    cl._device_login(path)


def refresh_at(url: str, path: pathlib.Path) -> None:
    cl.ChatGptAuth(path, refresh_url=url).refresh_if_stale()


DEVICE_START = reply(
    body=b'{"device_auth_id":"dev-9","user_code":"WXYZ-0001","interval":"1"}',
    headers={"Content-Type": "application/json"},
)
DEVICE_CODE = reply(
    body=b'{"authorization_code":"code-9","code_verifier":"ver-9"}',
    headers={"Content-Type": "application/json"},
)


# ... API keys ...


def test_env_key_precedence_and_errors(
    home: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = {
        "name": "x",
        "base_url": "http://127.0.0.1:1/v1",
        "env_key": "MY_KEY",
        "env_key_instructions": "Get one at example.com.",
    }
    with pytest.raises(
        cl.AuthError,
        match=r"environment variable MY_KEY is not set\. Get one at example\.com\.",
    ):
        provider_from(table, home).auth()
    monkeypatch.setenv("MY_KEY", "   ")
    with pytest.raises(cl.AuthError, match="MY_KEY"):
        provider_from(table, home).auth()
    monkeypatch.setenv("MY_KEY", "  key-1  ")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    headers: dict[str, str] = {}
    provider_from(table, home).auth().add_auth_headers(headers)
    assert headers == {"Authorization": "Bearer key-1"}


def test_openai_keys_never_go_to_other_providers(
    home: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    (home / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": "sk-file"}))
    headers: dict[str, str] = {}
    provider_from({"base_url": "http://127.0.0.1:1/v1"}, home).auth().add_auth_headers(
        headers
    )
    assert headers == {}
    bearer = provider_from(
        {"base_url": "http://x/v1", "experimental_bearer_token": "tok"}, home
    ).auth()
    bearer.add_auth_headers(headers)
    assert headers == {"Authorization": "Bearer tok"}


def test_openai_token_precedence(
    home: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai = cl.ModelProvider("openai", cl._built_in_providers({})["openai"], home=home)

    def bearer() -> str:
        headers: dict[str, str] = {}
        openai.auth().add_auth_headers(headers)
        return headers.get("Authorization", "")

    with pytest.raises(cl.AuthError, match="OPENAI_API_KEY"):
        openai.auth()
    (home / "auth.json").write_text(
        json.dumps({"tokens": {"access_token": "chat-tok", "account_id": "acct"}})
    )
    auth = openai.auth()
    assert auth.kind == "chatgpt" and bearer() == "Bearer chat-tok"
    assert openai.base_url(auth) == "https://chatgpt.com/backend-api/codex"
    (home / "auth.json").write_text(
        json.dumps({"OPENAI_API_KEY": "sk-file", "tokens": None})
    )
    assert bearer() == "Bearer sk-file"
    assert openai.base_url(openai.auth()) == "https://api.openai.com/v1"
    monkeypatch.setenv("OPENAI_API_KEY", " sk-env ")
    assert bearer() == "Bearer sk-env"
    monkeypatch.setenv("CODEX_API_KEY", "sk-codex")
    assert bearer() == "Bearer sk-codex"


# ... sign in with ChatGPT that stays signed in ...


def test_chatgpt_auth_rereads_auth_json_after_401(
    server: Loopback, home: pathlib.Path
) -> None:
    auth = chatgpt_auth(home, "stale-token")
    server.then(
        login_elsewhere_then_401(home, "fresh-token", "acct_1"),
        reply(body=text_stream()),
    )
    events = run(openai_client(server, home, auth=auth).new_turn())
    assert isinstance(events[-1], cl.Completed)
    assert [s.header("authorization") for s in server.seen] == [
        "Bearer stale-token",
        "Bearer fresh-token",
    ]
    assert server.seen[0].body == server.seen[1].body


def test_a_new_auth_owner_clears_the_turn_state(
    server: Loopback, home: pathlib.Path
) -> None:
    # wire-spec §4: "A change of auth owner also clears it."
    auth = chatgpt_auth(home, "token-a")
    server.then(
        reply(body=text_stream()[:40], headers={"x-codex-turn-state": "ts-a"}),
        login_elsewhere_then_401(home, "token-b", "acct_2"),
        reply(body=text_stream()),
    )
    run(openai_client(server, home, auth=auth).new_turn())
    sent = [
        (s.header("chatgpt-account-id"), s.header("x-codex-turn-state"))
        for s in server.seen
    ]
    assert sent == [("acct_1", None), ("acct_1", "ts-a"), ("acct_2", None)]


def test_401_without_fresher_credentials_is_reported(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(
        reply(401, b'{"error":{"message":"bad key"}}', {"x-request-id": "req_401"})
    )
    with pytest.raises(cl.ApiError, match=r"401: bad key \(request id req_401\)"):
        run(openai_client(server, home).new_turn())
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    ("expires_in", "last_refresh_days", "stale"),
    [
        (600, None, False),  # exp more than 5 minutes away
        (240, None, True),  # within 5 minutes
        (-60, None, True),  # already expired
        (None, 9, True),  # no readable exp: last_refresh over 8 days old
        (None, 7, False),
        (None, None, False),  # neither: nothing tells it is stale
    ],
)
def test_refresh_decision(
    home: pathlib.Path,
    expires_in: float | None,
    last_refresh_days: float | None,
    stale: bool,
) -> None:
    when = datetime.datetime.now(datetime.UTC) - datetime.timedelta(
        days=last_refresh_days or 0
    )
    tokens = {
        "access_token": "opaque"
        if expires_in is None
        else jwt({"exp": time.time() + expires_in}),
        "account_id": "acc-1",
    }
    data: dict[str, Any] = {"tokens": tokens}
    if last_refresh_days is not None:  # nanoseconds and Z, as Codex writes it
        data["last_refresh"] = when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
    (home / "auth.json").write_text(json.dumps(data))
    assert cl.ChatGptAuth(home / "auth.json")._stale() is stale


def test_chatgpt_tokens_refreshed_before_a_request(
    server: Loopback, home: pathlib.Path
) -> None:
    before = chatgpt_login(home, expires_in=120)
    server.then(new_tokens(), reply(body=text_stream()))
    auth = cl.ChatGptAuth(home / "auth.json", refresh_url=token_url(server))
    run(openai_client(server, home, auth=auth).new_turn())
    refresh, request = server.seen
    assert (refresh.method, refresh.path) == ("POST", "/oauth/token")
    assert refresh.header("content-type") == "application/json"
    assert refresh.header("originator") == "codex_lite"
    assert refresh.json() == {  # the captured Codex 0.169 body
        "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
        "grant_type": "refresh_token",
        "refresh_token": "rt-1",
        "refresh_reason": "proactive_expiry",
    }
    after = json.loads((home / "auth.json").read_text())
    assert (
        request.header("authorization") == f"Bearer {after['tokens']['access_token']}"
    )
    assert after["tokens"]["access_token"] != before["tokens"]["access_token"]
    assert after["tokens"]["refresh_token"] == "rt-2"
    assert after["tokens"]["id_token"] == before["tokens"]["id_token"]  # not sent back
    assert {k: v for k, v in after.items() if k not in ("tokens", "last_refresh")} == {
        k: v for k, v in before.items() if k not in ("tokens", "last_refresh")
    }
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", after["last_refresh"]
    )
    assert stat.S_IMODE((home / "auth.json").stat().st_mode) == 0o600


def test_a_401_rereads_then_refreshes_then_resends_once(
    server: Loopback, home: pathlib.Path
) -> None:
    chatgpt_login(home, expires_in=3600)
    server.then(
        reply(401, b'{"error":{"message":"token revoked"}}'),
        new_tokens(),
        reply(body=text_stream()),
    )
    auth = cl.ChatGptAuth(home / "auth.json", refresh_url=token_url(server))
    run(openai_client(server, home, auth=auth).new_turn())
    first, refresh, second = server.seen
    assert refresh.json()["refresh_reason"] == "unauthorized"
    assert first.header("authorization") != second.header("authorization")
    assert first.body == second.body
    server.then(reply(401, b"{}"), reply(401, b"{}"))  # a second 401 is final
    with pytest.raises(cl.ApiError, match="401"):
        run(openai_client(server, home, auth=auth).new_turn())


@pytest.mark.parametrize(
    "error",
    [
        {"error": {"code": "refresh_token_expired", "message": "expired"}},
        {"error": {"code": "refresh_token_reused"}},
        {"error": {"code": "refresh_token_invalidated"}},
        {"error": "invalid_grant"},
    ],
)
def test_a_dead_refresh_token_asks_to_sign_in_again(
    server: Loopback, home: pathlib.Path, error: dict[str, Any]
) -> None:
    chatgpt_login(home, expires_in=-10)
    before = (home / "auth.json").read_bytes()
    server.then(reply(400, json.dumps(error).encode()))
    env = {
        "OPENAI_BASE_URL": server.url,
        "CODEX_REFRESH_TOKEN_URL_OVERRIDE": token_url(server),
    }
    done = cli(home, "exec", "hi", env=env)
    assert done.returncode == 3, done.stderr  # sign-in needed
    assert "sign in again" in done.stderr
    assert [s.path for s in server.seen] == ["/oauth/token"]  # nothing sent with it
    assert (home / "auth.json").read_bytes() == before
    assert "rt-1" not in done.stderr + done.stdout
    assert before.decode().split('"access_token": "')[1][:20] not in done.stderr


def test_two_processes_refreshing_at_once_refresh_once(
    server: Loopback, home: pathlib.Path
) -> None:
    """The second waits on the lock, then finds the fresh tokens the first
    wrote; the server would refuse the rotated refresh token a second time."""
    chatgpt_login(home, expires_in=-10)
    used: list[str] = []

    asking, asked = os.pipe()  # each process writes a line as it asks for the lock

    def rotate(handler: http.server.BaseHTTPRequestHandler) -> None:
        token = json.loads(server.seen[-1].body)["refresh_token"]
        if token in used:
            reply(400, b'{"error":{"code":"refresh_token_reused"}}')(handler)
            return
        used.append(token)
        lines = b""
        while lines.count(b"\n") < 2:  # until the other process is waiting too
            lines += os.read(asking, 64) or b"\n\n"  # (or both are gone)
        new_tokens(refresh_token=f"{token}-next")(handler)

    server.then(rotate, rotate)
    code = (
        "import fcntl, os, sys, codex_lite as cl\n"
        "flock = fcntl.flock\n"
        "def asking(fd, operation):\n"
        "    if operation == fcntl.LOCK_EX:\n"
        "        os.write(int(sys.argv[2]), b'lock\\n')\n"
        "    flock(fd, operation)\n"
        "fcntl.flock = asking\n"
        "auth = cl.ChatGptAuth(cl.default_codex_home() / 'auth.json', refresh_url=sys.argv[1])\n"
        "headers = {}\n"
        "auth.refresh_if_stale()\n"
        "auth.add_auth_headers(headers)\n"
        "print(headers['Authorization'])\n"
    )
    env = {**os.environ, "CODEX_HOME": str(home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, token_url(server), str(asked)],
            env=env,
            pass_fds=(asked,),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    os.close(asked)
    outs = [p.communicate(timeout=30) for p in procs]
    os.close(asking)
    assert [p.returncode for p in procs] == [0, 0], outs
    assert used == ["rt-1"] and len(server.seen) == 1
    stored = json.loads((home / "auth.json").read_text())
    assert stored["tokens"]["refresh_token"] == "rt-1-next"
    bearer = f"Bearer {stored['tokens']['access_token']}\n"
    assert [out for out, _ in outs] == [bearer, bearer]


def test_login_with_api_key_status_and_logout(home: pathlib.Path) -> None:
    key = "sk-proj-abcdefghijklmnopABCDE"
    done = cli(home, "login", "--with-api-key", stdin=key + "\n")
    assert done.returncode == 0, done.stderr
    assert json.loads((home / "auth.json").read_text()) == {
        "auth_mode": "apikey",
        "OPENAI_API_KEY": key,
    }
    assert stat.S_IMODE((home / "auth.json").stat().st_mode) == 0o600
    status = cli(home, "login", "status")
    assert (status.returncode, status.stderr) == (  # Codex 0.169's words
        0,
        (
            "API key configured - sk-proj-***ABCDE\n"
            "Authentication is checked when you send a request.\n"
        ),
    )
    empty = cli(home, "login", "--with-api-key", stdin="\n")
    assert empty.returncode == 1 and "No API key provided via stdin." in empty.stderr
    assert "sk-proj" in (home / "auth.json").read_text()  # left as it was
    assert cli(home, "logout").returncode == 0
    assert not (home / "auth.json").exists()
    status = cli(home, "login", "status")
    assert (status.returncode, status.stderr) == (1, "Not logged in\n")
    chatgpt_login(home, expires_in=3600)
    assert cli(home, "login", "status").stderr == "Logged in using ChatGPT\n"


def test_a_dry_run_never_refreshes_the_sign_in(
    server: Loopback, home: pathlib.Path
) -> None:
    chatgpt_login(home, expires_in=-10)
    before = (home / "auth.json").read_bytes()
    env = {"CODEX_REFRESH_TOKEN_URL_OVERRIDE": token_url(server)}
    done = cli(home, "exec", "--dry-run", "hi", env=env)
    assert done.returncode == 0, done.stderr
    assert server.seen == [] and (home / "auth.json").read_bytes() == before


def test_a_refresh_that_cannot_lock_goes_on_with_the_token(
    server: Loopback, home: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    chatgpt_login(home, expires_in=120)  # stale, but not yet expired
    (home / "auth.json.lock").mkdir()
    server.then(reply(body=text_stream()))
    auth = cl.ChatGptAuth(home / "auth.json", refresh_url=token_url(server))
    with caplog.at_level(logging.WARNING, logger="codex_lite"):
        events = run(openai_client(server, home, auth=auth).new_turn())
    assert isinstance(events[-1], cl.Completed)
    assert "cannot refresh the sign-in" in caplog.text


def test_a_corrupt_auth_json_can_still_be_replaced_or_removed(
    home: pathlib.Path,
) -> None:
    (home / "auth.json").write_text("{bad")
    done = cli(home, "login", "--with-api-key", stdin="sk-proj-replacement-key\n")
    assert done.returncode == 0, done.stderr
    assert json.loads((home / "auth.json").read_text())["OPENAI_API_KEY"].startswith(
        "sk-proj"
    )
    (home / "auth.json").write_text("{bad")
    assert cli(home, "logout").returncode == 0 and not (home / "auth.json").exists()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OPENAI_API_KEY": "sk-line\r\nX-Evil: 1"}, "OPENAI_API_KEY"),
        ({"CODEX_API_KEY": "sk-\u2603-snowman-key"}, "CODEX_API_KEY"),
        (
            {"OPENAI_ORGANIZATION": "org\nsecret-part", "OPENAI_API_KEY": "sk-ok-1234"},
            "OPENAI_ORGANIZATION",
        ),
    ],
)
def test_a_credential_a_header_cannot_carry_is_named_not_shown(
    server: Loopback, home: pathlib.Path, env: dict[str, str], named: str
) -> None:
    done = cli(home, "exec", "hi", env={"OPENAI_BASE_URL": server.url, **env})
    assert done.returncode == 2, done.stderr
    assert f"environment variable {named}" in done.stderr
    assert "Traceback" not in done.stderr
    for value in env.values():
        for part in re.split(r"[\r\n]", value):
            assert len(part) < 8 or part not in done.stderr + done.stdout
    assert server.seen == []


# ... device sign-in ...


def test_login_with_a_device_code(server: Loopback, home: pathlib.Path) -> None:
    as_json = {"Content-Type": "application/json"}
    id_token = jwt({"https://api.openai.com/auth": {"chatgpt_account_id": "acc-dev"}})
    server.then(
        reply(
            body=b'{"device_auth_id":"dev-1","user_code":"ABCD-1234","interval":"1"}',
            headers=as_json,
        ),
        reply(403, b"{}"),  # the user has not typed the code yet
        reply(
            body=b'{"authorization_code":"code-1","code_verifier":"ver-1"}',
            headers=as_json,
        ),
        reply(
            body=json.dumps(
                {"id_token": id_token, "access_token": "at-1", "refresh_token": "rt-1"}
            ).encode(),
            headers=as_json,
        ),
    )
    issuer = server.url.removesuffix("/v1")
    done = cli(home, "login", "--device-auth", env={"CODEX_LITE_AUTH_ISSUER": issuer})
    assert done.returncode == 0, done.stderr
    assert "ABCD-1234" in done.stderr and f"{issuer}/codex/device" in done.stderr
    paths = [s.path for s in server.seen]
    assert paths == [
        "/api/accounts/deviceauth/usercode",
        "/api/accounts/deviceauth/token",
        "/api/accounts/deviceauth/token",
        "/oauth/token",
    ]
    assert server.seen[0].json() == {"client_id": "app_EMoamEEZ73f0CkXaXp7hrann"}
    assert server.seen[1].json() == {
        "device_auth_id": "dev-1",
        "user_code": "ABCD-1234",
    }
    form = urllib.parse.parse_qs(server.seen[3].body.decode())
    assert form == {
        "grant_type": ["authorization_code"],
        "code": ["code-1"],
        "redirect_uri": [f"{issuer}/deviceauth/callback"],
        "client_id": ["app_EMoamEEZ73f0CkXaXp7hrann"],
        "code_verifier": ["ver-1"],
    }
    stored = json.loads((home / "auth.json").read_text())
    assert stored["auth_mode"] == "chatgpt" and stored["OPENAI_API_KEY"] is None
    assert stored["tokens"] == {
        "id_token": id_token,
        "access_token": "at-1",
        "refresh_token": "rt-1",
        "account_id": "acc-dev",
    }


@pytest.mark.parametrize("where", ["usercode", "token", "oauth/token", "refresh"])
def test_an_endless_sign_in_answer_is_an_auth_error_in_bounded_memory(
    server: Loopback, home: pathlib.Path, where: str
) -> None:
    """Each answer of a device sign-in in turn, then a refresh's."""
    sane = {"token": [DEVICE_START], "oauth/token": [DEVICE_START, DEVICE_CODE]}
    server.then(*sane.get(where, []), endless_json)
    auth = home / "auth.json"
    if where == "refresh":
        chatgpt_login(home, expires_in=-10)
        call = (refresh_at, token_url(server), auth)
    else:
        call = (device_login_at, server.url.removesuffix("/v1"), auth)
    before = auth.read_bytes() if auth.exists() else None
    with Budget(30), pytest.raises(cl.AuthError, match="over 1 MiB"):
        in_memory_limit(*call, peak=200 << 20)
    assert (auth.read_bytes() if auth.exists() else None) == before
    assert server.seen[-1].path.endswith(where.replace("refresh", "oauth/token"))


@pytest.mark.parametrize("interval", [b"1" + b"0" * 400, b"1e308", b'"NaN"', b"900"])
def test_a_device_sign_in_interval_too_long_to_wait_is_an_auth_error(
    server: Loopback, home: pathlib.Path, interval: bytes
) -> None:
    start = b'{"device_auth_id":"dev-9","user_code":"WXYZ-0001","interval":%s}'
    server.then(reply(body=start % interval))
    issuer = server.url.removesuffix("/v1")
    with Budget(30), pytest.raises(cl.AuthError, match="polling interval"):
        in_memory_limit(device_login_at, issuer, home / "auth.json", peak=200 << 20)
    assert len(server.seen) == 1 and not (home / "auth.json").exists()


@pytest.mark.parametrize("token", ["at-\r\nX-Injected: 1", "at-\u20ac-9"])
@pytest.mark.parametrize("where", ["refresh", "device"])
def test_a_token_no_header_can_carry_is_blamed_on_the_sign_in_service(
    server: Loopback, home: pathlib.Path, token: str, where: str
) -> None:
    answer = {"id_token": jwt({}), "access_token": token, "refresh_token": "rt-9"}
    auth = home / "auth.json"
    if where == "refresh":
        chatgpt_login(home, expires_in=-10)
        call = (refresh_at, token_url(server), auth)
    else:
        server.then(DEVICE_START, DEVICE_CODE)
        call = (device_login_at, server.url.removesuffix("/v1"), auth)
    before = auth.read_bytes() if auth.exists() else None
    server.then(reply(body=json.dumps(answer).encode()))
    with pytest.raises(cl.AuthError, match="sign-in service at http") as raised:
        in_memory_limit(*call, peak=200 << 20)
    assert "auth.json" not in str(raised.value) and token not in str(raised.value)
    assert (auth.read_bytes() if auth.exists() else None) == before
    assert server.seen[-1].path == "/oauth/token"


def test_device_sign_in_says_what_it_expected_and_what_came(
    server: Loopback, home: pathlib.Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    done = cli(home, "login", "--device-auth", env={"CODEX_LITE_AUTH_ISSUER": dead})
    assert done.returncode == 2 and done.stderr.endswith(
        f"error: device sign-in could not start at {dead}: "
        "expected HTTP 200 with a user code, got no answer\n"
    )
    server.then(reply(body=b"{}", headers={"Content-Type": "application/json"}))
    issuer = server.url.removesuffix("/v1")
    done = cli(home, "login", "--device-auth", env={"CODEX_LITE_AUTH_ISSUER": issuer})
    assert done.stderr == (
        f"error: device sign-in could not start at {issuer}: "
        "expected HTTP 200 with a user code, got HTTP 200 without a user code\n"
    )
    assert not (home / "auth.json").exists()


# ... Amazon Bedrock tokens ...


def test_bedrock_token_region_decoding() -> None:
    assert cl._bedrock_token_region(bedrock_token("eu-west-1")) == "eu-west-1"
    assert (
        cl._bedrock_token_region(bedrock_token("us-west-2", prefix=False))
        == "us-west-2"
    )
    with pytest.raises(cl.AuthError, match="Amazon Bedrock bearer token is invalid: "):
        cl._bedrock_token_region("bedrock-api-key-!!!not base64!!!")
    no_credential = base64.b64encode(b"bedrock.amazonaws.com/?Action=x").decode()
    with pytest.raises(cl.AuthError, match="missing X-Amz-Credential"):
        cl._bedrock_token_region("bedrock-api-key-" + no_credential)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_bedrock_token_decoder_never_crashes(token: str) -> None:
    try:
        assert isinstance(cl._bedrock_token_region(token), str)
    except cl.AuthError as exc:
        assert str(exc).startswith("Amazon Bedrock bearer token is invalid: ")


def test_bedrock_region_resolution_and_refusal(home: pathlib.Path) -> None:
    creds = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"}
    unresolved = bedrock(home, env=creds)
    with pytest.raises(cl.ConfigError, match="AWS SDK config did not resolve a region"):
        unresolved.base_url(unresolved.auth())
    env = {**creds, "AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-west-1"}
    assert "us-west-2" in bedrock(home, env=env).url_for_path(
        "responses", cl.AuthProvider()
    )
    env = {**creds, "AWS_DEFAULT_REGION": "eu-west-1"}
    assert "eu-west-1" in bedrock(home, env=env).url_for_path(
        "responses", cl.AuthProvider()
    )
    (home / "aws-config").write_text("[profile dev]\nregion = ap-south-1\n")
    env = {**creds, "AWS_PROFILE": "dev"}
    assert "ap-south-1" in bedrock(home, env=env).url_for_path(
        "responses", cl.AuthProvider()
    )
    table = {"aws": {"region": "sa-east-1"}}
    assert "sa-east-1" in bedrock(home, table, env).url_for_path(
        "responses", cl.AuthProvider()
    )
    with pytest.raises(
        cl.ConfigError,
        match="Amazon Bedrock Mantle does not support region `us-west-1`",
    ):
        bedrock(home, {"aws": {"region": "us-west-1"}}, creds).url_for_path(
            "responses", cl.AuthProvider()
        )
    gateway = bedrock(
        home,
        {"base_url": "https://gw.example.com/v1", "aws": {"region": "us-west-1"}},
        creds,
    )
    assert (
        gateway.url_for_path("responses", cl.AuthProvider())
        == "https://gw.example.com/v1/responses"
    )


# Sign in with ChatGPT (plan usage): a fake of the auth and API sides built
# from the SIWC notes (section 11), the test acting as the browser.

RSA_KEYS = json.loads((TESTS / "siwc_rsa_keys.json").read_text())
PLAN_SCOPES = (
    "openid profile email offline_access resource.invoke chatgpt.tokens.use.direct"
)
PLAN_CODES = {  # the structured errors, their statuses (SIWC errors table)
    "subscription_sharing_user_not_eligible": 403,
    "subscription_sharing_usage_limit_exceeded": 429,
    "subscription_sharing_usage_unavailable": 503,
    "subscription_sharing_unsupported_capability": 400,
    "subscription_sharing_route_not_supported": 403,
    "subscription_sharing_invalid_user": 401,
    "subscription_sharing_user_unavailable": 503,
}
TERMINAL_REFRESH = (
    "invalid_grant",
    "invalid_refresh_token",
    "token_expired",
    "refresh_token_expired",
    "refresh_token_invalidated",
    "refresh_token_reused",
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rs256(claims: dict[str, Any], key: str = "signing") -> str:
    """A JWT signed RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2.1)."""
    head = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64url(json.dumps(claims).encode())
    n, d = int(RSA_KEYS[key]["n"], 16), int(RSA_KEYS[key]["d"], 16)
    info = bytes.fromhex("3031300d060960864801650304020105000420")  # RFC 8017 §9.2
    digest = info + hashlib.sha256(f"{head}.{body}".encode()).digest()
    padded = b"\x00\x01" + b"\xff" * (256 - len(digest) - 3) + b"\x00" + digest
    signature = pow(int.from_bytes(padded, "big"), d, n).to_bytes(256, "big")
    return f"{head}.{body}.{b64url(signature)}"


class SiwcFake:
    """auth.openai.com and api.openai.com on one loopback server."""

    def __init__(self) -> None:
        self.authorize_mode = "ok"  # decline, identity, no_client, swap, wrong_state
        self.bad_signature = False
        self.refresh_error: tuple[int, Any] | None = None
        self.refresh_pause = 0.0
        self.revoke_statuses: list[int] = []
        self.api_errors: list[tuple[int, Any]] = []
        self.authorizes: list[dict[str, str]] = []
        self.token_forms: list[dict[str, str]] = []
        self.revokes: list[dict[str, str]] = []
        self.api_seen: list[Seen] = []
        self.problems: list[str] = []  # what the client got wrong
        self.clients: dict[str, str] = {}  # issued id -> redirect path part
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, str] = {}  # live ones -> client id
        self.access_tokens: set[str] = set()
        self.refreshes = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.handle(self, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                outer.handle(self, self.rfile.read(length))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(
        self,
        handler: Any,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        handler.send_response(status)
        for name, value in {"x-request-id": "req-siwc", **(headers or {})}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(raw) if body is not None else 0))
        handler.end_headers()
        handler.wfile.write(raw if body is not None else b"")

    def handle(self, handler: Any, body: bytes) -> None:
        path, _, query = handler.path.partition("?")
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if path == "/.well-known/openid-configuration":
            api = f"{self.base}/api/accounts"
            return self.answer(handler, 200, {
                "issuer": self.base,
                "authorization_endpoint": f"{api}/authorize",
                "token_endpoint": f"{api}/oauth/token",
                "revocation_endpoint": f"{api}/oauth/revoke",
                "jwks_uri": f"{self.base}/.well-known/jwks.json",
            })  # fmt: skip
        if path == "/.well-known/jwks.json":
            key = RSA_KEYS["signing"]
            n, e = int(key["n"], 16), int(key["e"], 16)
            jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1"}
            jwk |= {
                "n": b64url(n.to_bytes(256, "big")),
                "e": b64url(e.to_bytes(3, "big")),
            }
            return self.answer(handler, 200, {"keys": [jwk]})
        if path == "/api/accounts/authorize":
            return self.authorize(handler, dict(urllib.parse.parse_qsl(query)))
        if path == "/api/accounts/oauth/token":
            if handler.headers["Content-Type"] != "application/x-www-form-urlencoded":
                self.problems.append("token request not form-encoded")
            if "client_secret" in form or handler.headers.get("Authorization"):
                self.problems.append("a client secret was sent")
            self.token_forms.append(form)
            return self.token(handler, form)
        if path == "/api/accounts/oauth/revoke":
            self.revokes.append(form)
            status = self.revoke_statuses.pop(0) if self.revoke_statuses else 200
            if status == 200:
                self.refresh_tokens.pop(form.get("token", ""), None)
            return self.answer(handler, status, b"")
        return self.api(handler, path, body)

    def authorize(self, handler: Any, q: dict[str, str]) -> None:
        self.authorizes.append(q)
        want = {"response_type": "code", "code_challenge_method": "S256"}
        want["resource"] = "https://api.openai.com/v1"
        for name, value in want.items():
            if q.get(name) != value:
                self.problems.append(f"authorize {name}={q.get(name)!r}")
        if not re.fullmatch(r"[A-Za-z0-9_-]{43}", q.get("code_challenge", "")):
            self.problems.append("code_challenge")
        if set(q.get("scope", "").split()) != set(PLAN_SCOPES.split()):
            self.problems.append("scope")
        if not q.get("ext_agent_host_id", "").startswith("urn:uuid:"):
            self.problems.append("ext_agent_host_id")
        redirect = q.get("redirect_uri", "")
        if not re.fullmatch(r"http://127\.0\.0\.1:\d+/auth/callback", redirect):
            self.problems.append(f"redirect_uri {redirect}")
        new = q.get("client_id") == "dynamic_agent_client"
        if new != ("agent_name_hint" in q) or not (
            new or q.get("client_id") in self.clients
        ):
            self.problems.append("client_id and agent_name_hint")
        if not (q.get("state") and q.get("nonce")):
            self.problems.append("state or nonce missing")
        client = f"oaiapp_{uuid.uuid4().hex}" if new else q["client_id"]
        self.clients[client] = redirect
        granted = PLAN_SCOPES
        if self.authorize_mode == "identity":
            granted = "openid profile email offline_access"
        code = uuid.uuid4().hex
        self.codes[code] = {
            "client_id": client,
            "redirect_uri": redirect,
            "challenge": q.get("code_challenge"),
            "nonce": q.get("nonce"),
            "scope": granted,
        }
        back = {"code": code, "scope": granted, "state": q.get("state", "")}
        if self.authorize_mode == "decline":
            back = {"error": "access_denied", "state": q.get("state", "")}
        if self.authorize_mode == "wrong_state":
            back["state"] += "x"
        if new and self.authorize_mode != "no_client":
            back["client_id"] = client
        if self.authorize_mode == "swap":
            back["client_id"] = "oaiapp_someone_else"
        location = f"{redirect}?{urllib.parse.urlencode(back)}"
        self.answer(handler, 302, b"", {"Location": location})

    def issue(self, client: str, scope: str, nonce: str | None) -> dict[str, Any]:
        now = int(time.time())
        access = f"plan-access-{uuid.uuid4().hex}"
        refresh = f"plan-refresh-{uuid.uuid4().hex}"
        self.access_tokens.add(access)
        self.refresh_tokens[refresh] = client
        out = {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": scope,
            "earliest_refresh_at": None,
        }
        if nonce is not None:
            claims = {"iss": self.base, "aud": client, "sub": "user-1", "iat": now}
            claims |= {"exp": now + 3600, "nonce": nonce, "email": "user@example.com"}
            out["id_token"] = rs256(
                claims, "other" if self.bad_signature else "signing"
            )
        return out

    def token(self, handler: Any, form: dict[str, str]) -> None:
        if form.get("resource") != "https://api.openai.com/v1":
            self.problems.append("token request without resource")
        if form.get("grant_type") == "authorization_code":
            stored = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "").encode()
            if form.get("client_id") == "dynamic_agent_client":
                return self.answer(handler, 400, {"error": "invalid_client"})
            if (
                stored is None
                or stored["client_id"] != form.get("client_id")
                or stored["redirect_uri"] != form.get("redirect_uri")
                or stored["challenge"] != b64url(hashlib.sha256(verifier).digest())
            ):
                return self.answer(handler, 400, {"error": "invalid_grant"})
            issued = self.issue(stored["client_id"], stored["scope"], stored["nonce"])
            return self.answer(handler, 200, issued)
        if "scope" in form:
            self.problems.append("scope sent on refresh")
        time.sleep(self.refresh_pause)
        if self.refresh_error is not None:
            return self.answer(handler, *self.refresh_error)
        with self.lock:
            client = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if client is None or client != form.get("client_id"):
                return self.answer(handler, 400, {"error": "refresh_token_reused"})
            self.refreshes += 1
            fresh = self.issue(client, PLAN_SCOPES, None)
        del fresh["scope"]  # a refresh may leave it out
        self.answer(handler, 200, fresh)

    def api(self, handler: Any, path: str, body: bytes) -> None:
        seen = Seen(handler.command, path, list(handler.headers.items()), body)
        self.api_seen.append(seen)
        bad = [n for n in seen.header_names() if n.startswith("x-codex-")]
        bad += [
            n for n in ("chatgpt-account-id", "openai-organization") if seen.header(n)
        ]
        if bad:
            self.problems.append(f"headers {bad}")
        token = (seen.header("Authorization") or "").removeprefix("Bearer ")
        if token not in self.access_tokens:
            return self.answer(handler, 401, {"detail": "not a valid token"})
        if self.api_errors:
            return self.answer(handler, *self.api_errors.pop(0))
        if path == "/v1/models":
            models = [
                {"slug": "gpt-a", "display_name": "A", "visibility": "list"},
                {"slug": "hidden-x", "display_name": "X", "visibility": "hide"},
                {"slug": "gpt-b", "display_name": "B", "visibility": "list"},
            ]
            return self.answer(handler, 200, {"models": models})
        if path != "/v1/responses":
            error = {
                "code": "subscription_sharing_route_not_supported",
                "message": "no",
            }
            return self.answer(handler, 403, {"error": error})
        request = json.loads(body)
        if request.get("store") is not False or request.get("stream") is not True:
            self.problems.append("store or stream")
        if "client_metadata" in request or "previous_response_id" in request:
            self.problems.append("Codex-only fields")
        self.answer(handler, 200, text_stream("plan answer"))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def siwc(home: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SiwcFake]:
    fake = SiwcFake()
    monkeypatch.setenv("CODEX_LITE_AUTH_ISSUER", fake.base)
    (home / "config.toml").write_text(
        f'[model_providers.plan]\nname = "ChatGPT plan"\nbase_url = "{fake.base}/v1"\n'
        "request_max_retries = 1\n"
    )
    yield fake
    fake.close()


def browser(fake: SiwcFake, statuses: list[int]) -> Callable[[str], None]:
    """A browser in a thread: the authorize page, then its redirect."""

    def browse(url: str) -> None:
        import http.client

        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.netloc, timeout=5)
        connection.request("GET", f"{parts.path}?{parts.query}")
        location = connection.getresponse().headers["Location"]
        back = urllib.parse.urlsplit(location)
        connection = http.client.HTTPConnection(back.netloc, timeout=5)
        connection.request("GET", f"{back.path}?{back.query}")
        statuses.append(connection.getresponse().status)

    return lambda url: threading.Thread(target=browse, args=(url,)).start()


def plan_sign_in(
    home: pathlib.Path, fake: SiwcFake, statuses: list[int] | None = None, **kwargs: Any
) -> dict[str, Any]:
    opener = browser(fake, statuses if statuses is not None else [])
    return cl.sign_in_with_chatgpt(home, open_url=opener, port=0, **kwargs)


def plan_record(home: pathlib.Path) -> dict[str, Any]:
    return json.loads((home / "codex-lite-chatgpt-plan.json").read_text())


def plan_client(home: pathlib.Path) -> cl.Client:
    config = cl.load_config(home, overrides=['model_provider="plan"'])
    client = cl.Client.from_config(config)
    client.retry_policy = dataclasses.replace(FAST, request_max_retries=1)
    return client


def test_plan_first_registration_then_the_issued_client_id(
    home: pathlib.Path,
    siwc: SiwcFake,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        statuses: list[int] = []
        account = plan_sign_in(home, siwc, statuses)
        first = plan_record(home)
        again = plan_sign_in(home, siwc, statuses)
        client = plan_client(home)
        result = run(client.new_turn(), user("hi"))
        models = cl.ChatGptPlanAuth(home / "codex-lite-chatgpt-plan.json").models(
            f"{siwc.base}/v1"
        )
    assert siwc.problems == [] and statuses == [200, 200]
    one, two = siwc.authorizes
    assert one["client_id"] == "dynamic_agent_client"
    assert one["agent_name_hint"] == "codex-lite"
    issued = first["client_id"]
    assert issued.startswith("oaiapp_") and account["client_id"] == issued
    assert (
        account
        == again
        == {
            "email": "user@example.com",
            "subject": "user-1",
            "client_id": issued,
            "plan_usage": True,
        }
    )
    assert two["client_id"] == issued and "agent_name_hint" not in two
    assert two["login_hint"] == "user@example.com" and "prompt" not in two
    assert one["ext_agent_host_id"] == two["ext_agent_host_id"]
    assert [f["client_id"] for f in siwc.token_forms] == [issued, issued]
    assert siwc.token_forms[0]["redirect_uri"] == one["redirect_uri"]
    path = home / "codex-lite-chatgpt-plan.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = plan_record(home)
    assert record["scopes"] == PLAN_SCOPES.split()
    assert record["access_token"] in siwc.access_tokens
    assert "ext_agent_host_id" not in record  # it stays with this host
    assert "plan answer" in str(result)
    (sent,) = siwc.api_seen[:1]
    assert sent.header("Authorization") == f"Bearer {record['access_token']}"
    assert [m["slug"] for m in models] == ["gpt-a", "gpt-b"]
    out = capsys.readouterr()
    text = out.out + out.err + "\n".join(r.getMessage() for r in caplog.records)
    for token in (*first.values(), *record.values()):
        if isinstance(token, str) and token.startswith(("plan-", "eyJ")):
            assert token not in text


@pytest.mark.parametrize("mode", ["decline", "no_client", "swap", "bad_signature"])
def test_plan_sign_in_refusals_save_no_tokens(
    home: pathlib.Path, siwc: SiwcFake, mode: str
) -> None:
    if mode == "swap":
        plan_sign_in(home, siwc)
    siwc.authorize_mode = mode
    siwc.bad_signature = mode == "bad_signature"
    before = plan_record(home) if mode == "swap" else None
    with pytest.raises(cl.AuthError) as caught:
        plan_sign_in(home, siwc)
    assert mode != "bad_signature" or "signature" in str(caught.value)
    path = home / "codex-lite-chatgpt-plan.json"
    if mode == "swap":
        assert plan_record(home) == before
    elif path.exists():  # the issued id is kept before the exchange
        assert "access_token" not in plan_record(home)


def test_plan_sign_in_at_another_issuer_keeps_the_old_tokens_until_it_succeeds(
    home: pathlib.Path, siwc: SiwcFake
) -> None:
    plan_sign_in(home, siwc)
    elsewhere = plan_record(home) | {"issuer": "https://elsewhere.example"}
    (home / "codex-lite-chatgpt-plan.json").write_text(json.dumps(elsewhere))
    siwc.bad_signature = True
    with pytest.raises(cl.AuthError, match="signature"):
        plan_sign_in(home, siwc)
    assert plan_record(home) == elsewhere
    assert siwc.authorizes[-1]["client_id"] == "dynamic_agent_client"


def test_plan_callback_with_a_wrong_state_is_refused_and_waited_past(
    home: pathlib.Path, siwc: SiwcFake
) -> None:
    siwc.authorize_mode = "wrong_state"
    statuses: list[int] = []
    with pytest.raises(cl.AuthError, match="in time"):
        plan_sign_in(home, siwc, statuses, timeout=1.5)
    assert statuses == [400] and siwc.token_forms == []


def test_plan_without_the_plan_scope_sends_nothing_and_asks_consent_again(
    home: pathlib.Path, siwc: SiwcFake
) -> None:
    siwc.authorize_mode = "identity"
    assert plan_sign_in(home, siwc)["plan_usage"] is False
    with pytest.raises(cl.AuthError, match="not granted"):
        run(plan_client(home).new_turn(), user("hi"))
    assert siwc.api_seen == []
    siwc.authorize_mode = "ok"
    assert plan_sign_in(home, siwc)["plan_usage"] is True
    assert siwc.authorizes[-1]["prompt"] == "consent"


def make_stale(home: pathlib.Path) -> None:
    record = plan_record(home) | {"saved_at": "2020-01-01T00:00:00Z"}
    (home / "codex-lite-chatgpt-plan.json").write_text(json.dumps(record))


def test_plan_refresh_rotates_once_for_two_processes(
    home: pathlib.Path, siwc: SiwcFake
) -> None:
    plan_sign_in(home, siwc)
    make_stale(home)
    old = plan_record(home)
    siwc.refresh_pause = 0.5
    code = (
        "import codex_lite as cl, hashlib, pathlib, sys\n"
        "auth = cl.ChatGptPlanAuth(pathlib.Path(sys.argv[1]))\n"
        "auth.refresh_if_stale()\n"
        "print(hashlib.sha256(auth._token.encode()).hexdigest())\n"
    )
    path = str(home / "codex-lite-chatgpt-plan.json")
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, path],
            stdout=subprocess.PIPE,
            env=env,
            cwd=HERE,
        )
        for _ in range(2)
    ]
    outs = {p.communicate(timeout=60)[0] for p in procs}
    assert [p.returncode for p in procs] == [0, 0] and len(outs) == 1
    assert siwc.refreshes == 1 and siwc.problems == []
    new = plan_record(home)
    assert new["refresh_token"] != old["refresh_token"]
    assert new["access_token"] != old["access_token"]
    assert new["scopes"] == old["scopes"] and new["id_token"] == old["id_token"]


@pytest.mark.parametrize("code", [*TERMINAL_REFRESH, "invalid_client"])
def test_plan_terminal_refresh_errors_sign_out_and_ask_to_sign_in(
    home: pathlib.Path, siwc: SiwcFake, code: str
) -> None:
    plan_sign_in(home, siwc)
    make_stale(home)
    before = plan_record(home)
    shape = {"error": code} if len(code) % 2 else {"error": {"code": code}}
    siwc.refresh_error = (400, shape)
    auth = cl.ChatGptPlanAuth(home / "codex-lite-chatgpt-plan.json")
    with pytest.raises(cl.AuthError, match="sign in again") as caught:
        auth.refresh_if_stale()
    assert before["refresh_token"] not in str(caught.value)
    after = plan_record(home)
    if code == "invalid_client":
        assert after == before  # no loop, nothing thrown away
    else:
        assert "refresh_token" not in after and "access_token" not in after
        assert after["client_id"] == before["client_id"]
        assert after["subject"] == "user-1"


@pytest.mark.parametrize("code", sorted(PLAN_CODES))
def test_plan_errors_are_typed_with_their_meaning_and_the_usage_page(
    home: pathlib.Path, siwc: SiwcFake, code: str
) -> None:
    plan_sign_in(home, siwc)
    status = PLAN_CODES[code]
    error = {"message": "refused", "type": "invalid_request_error", "code": code}
    siwc.api_errors = [(status, {"error": error})] * 2
    with pytest.raises(cl.CodexError) as caught:
        run(plan_client(home).new_turn(), user("hi"))
    exc = caught.value
    cause = exc.last_error if isinstance(exc, cl.RetryLimitExceeded) else exc
    assert isinstance(cause, cl.PlanUsageError) and cause.code == code
    assert "https://chatgpt.com/settings/usage" in str(exc)
    # a 503 is retried; a 401 refreshed once and sent again
    assert len(siwc.api_seen) == (2 if status in (401, 503) else 1)
    assert plan_record(home).get("access_token")  # credentials kept


def test_plan_usage_limit_in_the_stream_fails_the_turn(
    home: pathlib.Path, siwc: SiwcFake
) -> None:
    plan_sign_in(home, siwc)
    failed_event = {
        "type": "response.failed",
        "response": {"error": {"code": "subscription_sharing_usage_limit_exceeded"}},
    }
    siwc.api_errors = [(200, sse(*text_events("par")[:2], failed_event))]
    with pytest.raises(cl.PlanUsageError, match="settings/usage"):
        run(plan_client(home).new_turn(), user("hi"))
    assert len(siwc.api_seen) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"max_output_tokens": 100},
        {"extra_body": {"temperature": 0.2}},
        {"store": True},
        {"input": [cl.Message(role="system", content=(cl.InputText(text="x"),))]},
        {"tools": [{"type": "image_generation"}]},
    ],
)
def test_plan_refuses_what_it_cannot_take_before_sending(
    home: pathlib.Path, siwc: SiwcFake, fields: dict[str, Any]
) -> None:
    plan_sign_in(home, siwc)
    prompt = cl.Prompt(**{"input": [user("hi")], **fields})
    with pytest.raises(cl.ConfigError, match="ChatGPT plan usage does not take"):
        list(plan_client(home).new_turn().stream(prompt))
    assert siwc.api_seen == []


@pytest.mark.parametrize("statuses", [[], [503, 503, 503]])
def test_plan_logout_revokes_and_says_whether_it_was_confirmed(
    home: pathlib.Path, siwc: SiwcFake, statuses: list[int]
) -> None:
    plan_sign_in(home, siwc)
    record = plan_record(home)
    host = json.loads((home / "codex-lite-host-id.json").read_text())
    siwc.revoke_statuses = list(statuses)
    code, _, err = main_in_process(["login", "--chatgpt-plan", "status"], {})
    assert code == 0 and "user@example.com" in err and record["client_id"] in err
    assert "not the plan" in err  # the config selects the openai provider
    code, _, err = main_in_process(["logout", "--chatgpt-plan"], {})
    assert code == 0
    assert ("not confirmed" in err) == bool(statuses)
    assert len(siwc.revokes) == (3 if statuses else 1)
    assert siwc.revokes[0] == {
        "token": record["refresh_token"],
        "token_type_hint": "refresh_token",
        "client_id": record["client_id"],
    }
    after = plan_record(home)
    assert "refresh_token" not in after and after["client_id"] == record["client_id"]
    code, _, err = main_in_process(["login", "--chatgpt-plan", "status"], {})
    assert code == 1 and "signed out" in err
    plan_sign_in(home, siwc)
    assert siwc.authorizes[-1]["client_id"] == record["client_id"]
    assert json.loads((home / "codex-lite-host-id.json").read_text()) == host


# --- Providers --------------------------------------------------------------


def test_url_for_path_with_query_params(home: pathlib.Path) -> None:
    provider = provider_from(
        {
            "name": "azure",
            "base_url": "https://x.openai.azure.com/openai/",
            "query_params": {"api-version": "2025-04-01-preview"},
        },
        home,
    )
    assert (
        provider.url_for_path("/responses", cl.AuthProvider())
        == "https://x.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
    )


@pytest.mark.parametrize(
    ("name", "base_url", "azure"),
    [
        ("Azure", "https://example.com/v1", True),
        ("x", "https://foo.openai.azure.com/openai", True),
        ("x", "https://foo.cognitiveservices.azure.com/openai", True),
        ("x", "https://foo.aoai.azure.com/v1", True),
        ("x", "https://foo.azure-api.net/v1", True),
        ("x", "https://foo.azurefd.net/v1", True),
        ("x", "https://foo.blob.core.windows.net/openai/v1", True),
        ("x", "https://api.openai.com/v1", False),
    ],
)
def test_azure_detection(
    home: pathlib.Path, name: str, base_url: str, azure: bool
) -> None:
    assert provider_from({"name": name, "base_url": base_url}, home).is_azure is azure


def test_azure_default_store_attaches_ids_and_headers(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream()))
    info = {"name": "azure", "http_headers": {"x-test-header": "present"}}
    client = local_client(
        server,
        home,
        info=info,
        thread_id="thread_123",
        session_id="sess_123",
        subagent="review",
    )
    run(client.new_turn(), user("hi", id="msg_1"))
    (seen,) = server.seen
    assert seen.header("session-id") == "sess_123"
    assert seen.header("thread-id") == "thread_123"
    assert seen.header("x-client-request-id") == "thread_123"
    assert seen.header("x-openai-subagent") == "review"
    assert seen.header("x-test-header") == "present"
    body = seen.json()
    assert body["store"] is True and body["input"][0]["id"] == "msg_1"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"wire_api": "chat"}, '`wire_api = "chat"` is no longer supported'),
        ({"wire_api": "other"}, 'wire_api must be "responses"'),
        (
            {"aws": {"region": "us-east-1"}, "env_key": "K"},
            "provider aws cannot be combined with env_key",
        ),
        (
            {"aws": {}, "experimental_bearer_token": "t", "requires_openai_auth": True},
            "provider aws cannot be combined with experimental_bearer_token, requires_openai_auth",
        ),
        (
            {"request_max_retries": "4"},
            "model_provider.request_max_retries must be an integer",
        ),
        (
            {"http_headers": {"x": "a\r\nInjected: 1"}},
            "http_headers.x must not contain CR or LF",
        ),
        ({"base_url": 5}, "model_provider.base_url must be a string"),
        (
            {"env_http_headers": {"Bad Header": "ORG"}},
            "model_provider.env_http_headers: 'Bad Header' is not a header name",
        ),
        (
            {"auth": {"command": "print-token"}},
            "model_provider.auth: command-backed auth is not supported",
        ),
    ],
)
def test_provider_validation_names_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(cl.ConfigError, match=re.escape(message)):
        cl.ProviderInfo.from_toml(table)


def test_retry_settings_are_capped(home: pathlib.Path) -> None:
    provider = provider_from(
        {
            "request_max_retries": 500,
            "stream_max_retries": 7,
            "stream_idle_timeout_ms": 1500,
        },
        home,
    )
    policy = provider.retry_policy()
    assert (policy.request_max_retries, policy.stream_max_retries) == (100, 7)
    assert policy.stream_idle_timeout == 1.5


def test_openai_base_url_and_org_headers_from_env(home: pathlib.Path) -> None:
    env = {
        "OPENAI_BASE_URL": "http://proxy.local/v1",
        "OPENAI_ORGANIZATION": "org-1",
        "OPENAI_PROJECT": " ",
    }
    info = cl._built_in_providers(env)["openai"]
    provider = cl.ModelProvider("openai", info, environ=env, home=home)
    assert provider.base_url(cl.BearerAuth("k")) == "http://proxy.local/v1"
    assert provider.headers() == {
        "version": cl.__version__,
        "OpenAI-Organization": "org-1",
    }


def test_bedrock_bearer_token_wins_and_sets_region(home: pathlib.Path) -> None:
    provider = bedrock(
        home,
        env={
            "AWS_BEARER_TOKEN_BEDROCK": bedrock_token("eu-central-1"),
            "AWS_ACCESS_KEY_ID": "AKID",
            "AWS_SECRET_ACCESS_KEY": "s",
        },
    )
    auth = provider.auth()
    assert auth.kind == "bedrock_bearer"
    assert (
        provider.url_for_path("responses", auth)
        == "https://bedrock-mantle.eu-central-1.api.aws/openai/v1/responses"
    )


def test_bedrock_bearer_requests(server: Loopback, home: pathlib.Path) -> None:
    token = bedrock_token("us-east-1")
    provider = bedrock(
        home, {"base_url": server.url}, {"AWS_BEARER_TOKEN_BEDROCK": token}
    )
    server.then(reply(body=text_stream()))
    run(cl.Client(provider, model="m", retry_policy=FAST).new_turn())
    assert server.seen[0].header("authorization") == f"Bearer {token}"
    assert "x-amz-date" not in server.seen[0].header_names()


@pytest.mark.parametrize("idle", [0, -5, 10**12])
def test_idle_timeouts_out_of_range_are_refused(idle: int) -> None:
    with pytest.raises(cl.ConfigError, match="stream_idle_timeout_ms must be from 1"):
        cl.ProviderInfo.from_toml({"stream_idle_timeout_ms": idle})


# --- Config -----------------------------------------------------------------

CONFIG = """
model = "gpt-top"
model_reasoning_effort = "low"
some_codex_key_we_do_not_use = { nested = true }
approval_policy = "never"

[features]
item_ids = true

[model_providers.mine]
name = "Mine"
base_url = "http://127.0.0.1:9/v1"
env_key = "MINE_KEY"

[model_providers.openai]
name = "Not OpenAI"
base_url = "http://evil.example/v1"

[model_providers.amazon-bedrock]
base_url = "https://gw.example.com/openai/v1"
name = "ignored"
aws = { profile = "bedrock", region = "eu-west-1" }
"""


# Codex 0.169+'s profiles, as docs/codex-exec-and-profiles.md (section 3)
# says Codex 0.171 and 0.169 treat them (upstream/*/exec-json/profiles.json).
PROFILE_BASE = """model = "m-base"
openai_base_url = "http://127.0.0.1:1/v1"
model_reasoning_effort = "low"
"""
PROFILE_WORK = """model = "m-profile"
openai_base_url = "http://127.0.0.1:2/v1"
model_reasoning_effort = "high"
service_tier = "flex"
"""


def dry_run(home: pathlib.Path, *args: str) -> tuple[str, Any]:
    """The URL and body `exec --dry-run` shows."""
    done = cli(home, "exec", "--dry-run", *args, "hi")
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition("\n\n")
    return head.split()[1], json.loads(body)


NOBODY = 65534


def as_nobody(
    *args: str, env: dict[str, str], user: int = NOBODY
) -> subprocess.CompletedProcess[str]:
    """`python ARGS` as the user nobody (or `user`), with only `env` and PATH.

    File modes bind it (they do not bind root), but it may read and search
    any folder (CAP_DAC_READ_SEARCH): the interpreter, this checkout and
    pytest's folders are root's own.  So it can read anything, and write
    only where the modes let it.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("runs codex-lite as the user nobody: needs root and setpriv")
    ids = [f"--reuid={user}", f"--regid={user}", "--clear-groups"]
    caps = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return subprocess.run(
        ["setpriv", *ids, *caps, sys.executable, *args],
        check=False,
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=HERE,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )


LIBRARY_STEPS = """
import pathlib, sys
import codex_lite as cl

home = pathlib.Path(sys.argv[1])
steps = {
    "config": lambda: cl.load_config(home / "other"),
    "auth": lambda: cl.load_config(home).provider().auth(),
    "sign-in": lambda: cl.ChatGptAuth(home / "auth.json"),
    "rollout": lambda: cl.Conversation.start(
        cl.load_config(home), auth=cl.BearerAuth("sk-nobody-1234")
    ),
    "fast": lambda: cl.set_fast_mode(home, True),
    "read rollout": lambda: cl.read_rollout(home / "rollout.jsonl"),
}
for name, step in steps.items():
    try:
        step()
    except cl.CodexError as exc:
        print(f"{name}: {type(exc).__name__}: {exc}")
"""


def test_openai_base_url_config_key(server: Loopback, home: pathlib.Path) -> None:
    (home / "config.toml").write_text(f'openai_base_url = "{server.url}"\n')
    assert cl.load_config(home).provider().base_url(cl.BearerAuth("k")) == server.url
    server.then(reply(body=text_stream("via config")))
    done = cli(home, "exec", "hi", env={"OPENAI_API_KEY": "sk-x"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "via config\n"
    wrong = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}  # Codex reads the key only
    assert (
        cl.load_config(home, environ=wrong).provider(wrong).base_url(cl.BearerAuth("k"))
        == server.url
    )


def test_fast_edits_only_the_setting_line(
    home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    real = tmp_path / "dotfiles" / "codex.toml"
    real.parent.mkdir()
    text = (
        'notes = """\nservice_tier = "flex"\n"""\n'  # a look-alike inside a string
        'service_tier = "flex"  # mine\n'
        "[profiles.x]\n"
        'service_tier = "flex"\n'
    )
    real.write_text(text)
    real.chmod(0o600)
    (home / "config.toml").symlink_to(real)
    assert cli(home, "fast", "on").returncode == 0
    assert (home / "config.toml").is_symlink()
    assert real.read_text() == text.replace('"flex"  # mine', '"fast"  # mine')
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert cli(home, "fast", "off").returncode == 0
    assert real.read_text() == text.replace('service_tier = "flex"  # mine\n', "")
    assert cli(home, "fast", "on").returncode == 0  # no line left: added on top
    assert real.read_text().startswith('service_tier = "fast"\nnotes = """')
    assert cl.load_config(home).service_tier == "fast"


def test_config_precedence(home: pathlib.Path) -> None:
    (home / "config.toml").write_text(CONFIG)
    config = cl.load_config(home)
    assert (config.model, config.reasoning_effort, config.features) == (
        "gpt-top",
        "low",
        {"item_ids": True},
    )
    (home / "work.config.toml").write_text(
        'model = "gpt-work"\nmodel_reasoning_summary = "detailed"\n'
    )
    config = cl.load_config(home, profile="work")
    assert (config.model, config.reasoning_summary, config.reasoning_effort) == (
        "gpt-work",
        "detailed",
        "low",
    )
    config = cl.load_config(
        home, profile="work", overrides=["model=gpt-cli", "model_reasoning_effort=high"]
    )
    assert (config.model, config.reasoning_effort) == ("gpt-cli", "high")


def test_config_overrides_parse_as_toml_else_string(home: pathlib.Path) -> None:
    config = cl.load_config(
        home,
        overrides=[
            "model=plain words",
            "features.item_ids=true",
            'model_providers.x={ name = "X", base_url = "http://h/v1" }',
        ],
    )
    assert config.model == "plain words"
    assert config.features["item_ids"] is True
    assert config.providers["x"].base_url == "http://h/v1"
    with pytest.raises(cl.ConfigError, match="expected key=value"):
        cl.load_config(home, overrides=["novalue"])


def test_config_providers_merge(home: pathlib.Path) -> None:
    (home / "config.toml").write_text(CONFIG)
    providers = cl.load_config(home).providers
    assert providers["openai"] == cl._built_in_providers()["openai"]
    assert providers["mine"].env_key == "MINE_KEY"
    assert providers["amazon-bedrock"].name == "Amazon Bedrock"
    assert providers["amazon-bedrock"].base_url == "https://gw.example.com/openai/v1"
    assert providers["amazon-bedrock"].aws == cl.AwsAuthInfo(
        profile="bedrock", region="eu-west-1"
    )
    assert {"ollama", "lmstudio"} <= set(providers)


def test_config_errors_name_file_and_key(home: pathlib.Path) -> None:
    path = home / "config.toml"
    for text, message in [
        ("model = 5\n", "config.model must be a string, not int"),
        ('service_tier = "turbo"\n', 'config.service_tier must be "fast" or "flex"'),
        (
            "[features]\nitem_ids = 1\n",
            "config.features.item_ids must be true or false",
        ),
        ("model_providers = 3\n", "config.model_providers must be a table"),
        ('profile = "nope"\n', 'legacy profile = "nope" is no longer supported'),
        (
            "[model_providers.m]\nrequest_max_retries = true\n",
            "model_providers.m.request_max_retries must be an integer",
        ),
        ("= broken", "Invalid statement"),
    ]:
        path.write_text(text)
        with pytest.raises(cl.ConfigError) as caught:
            cl.load_config(home)
        assert str(path) in str(caught.value) and message in str(caught.value), (
            caught.value
        )


def test_cli_profile_is_a_file_layered_over_config_toml(home: pathlib.Path) -> None:
    (home / "config.toml").write_text(PROFILE_BASE)
    (home / "work.config.toml").write_text(PROFILE_WORK + "[profiles.other]\nx = 1\n")
    (home / "part.config.toml").write_text('model = "m-profile"\n')
    (home / "own.config.toml").write_text(
        'model_provider = "prof"\n[model_providers.prof]\nname = "prof"\n'
        'base_url = "http://127.0.0.1:3/v1"\nenv_key = "PROF_KEY"\n'
    )
    base = "http://127.0.0.1:1/v1/responses"
    work = "http://127.0.0.1:2/v1/responses"
    for args, url, model, effort, tier in [
        ((), base, "m-base", "low", None),  # the file is there, unused
        (("-p", "work"), work, "m-profile", "high", "flex"),
        (("--profile", "work"), work, "m-profile", "high", "flex"),
        (("-p", "work", "-c", 'model="m-cli"'), work, "m-cli", "high", "flex"),
        (("-p", "work", "-m", "m-flag"), work, "m-flag", "high", "flex"),
        (("-p", "part"), base, "m-profile", "low", None),
        (("-p", "nosuch"), base, "m-base", "low", None),  # no file: config.toml
        (("-p", "own"), "http://127.0.0.1:3/v1/responses", "m-base", "low", None),
    ]:
        sent_to, body = dry_run(home, *args)
        got = (sent_to, body["model"], body["reasoning"]["effort"])
        assert got == (url, model, effort), args
        assert body.get("service_tier") == tier, args
    for name in ("../work", "a.b"):
        done = cli(home, "exec", "--dry-run", "-p", name, "hi")
        assert done.returncode == 2 and f"invalid profile {name!r}" in done.stderr


def test_legacy_profile_forms_are_refused_as_codex_refuses_them(
    home: pathlib.Path,
) -> None:
    config, work = home / "config.toml", home / "work.config.toml"
    # config.toml alone is not needed
    work.write_text(PROFILE_WORK)
    assert cl.load_config(home, profile="work").model == "m-profile"
    # [profiles.NAME] without -p: accepted and ignored
    config.write_text(PROFILE_BASE + '[profiles.work]\nmodel = "m-legacy"\n')
    assert cl.load_config(home).model == "m-base"
    # ... with -p NAME: refused, with or without NAME.config.toml; and a
    # table of another name is no hindrance (seen with Codex 0.171)
    for text in (
        PROFILE_BASE + '[profiles.work]\nmodel = "m-legacy"\n',
        'profile = "work"\n' + PROFILE_BASE,
    ):
        config.write_text(text)
        for present in (True, False):
            if present:
                work.write_text(PROFILE_WORK)
            else:
                work.unlink()
            with pytest.raises(cl.ConfigError) as caught:
                cl.load_config(home, profile="work")
            message = str(caught.value)
            assert message.startswith(f"{config}: -p work cannot be used"), message
            assert f"move those settings into {work}" in message
    config.write_text(PROFILE_BASE + '[profiles.other]\nmodel = "m-other"\n')
    assert cl.load_config(home, profile="work").model == "m-base"
    # a `profile = ...` key selects nothing: in config.toml, by -c, in a profile
    work.write_text(PROFILE_WORK + 'profile = "other"\n')
    for text, overrides, profile, at_fault, named in [
        ('profile = "work"\n', [], None, str(config), "work"),
        (PROFILE_BASE, ['profile="work"'], None, "-c", "work"),
        (PROFILE_BASE, [], "work", str(work), "other"),
    ]:
        config.write_text(text)
        with pytest.raises(cl.ConfigError) as caught:
            cl.load_config(home, profile=profile, overrides=overrides)
        message = str(caught.value)
        assert message.startswith(
            f'{at_fault}: legacy profile = "{named}" is no longer supported'
        ), message
        assert f"{home / f'{named}.config.toml'} and pass -p {named}" in message
    # a wrong key is the profile file's when it came from there
    work.write_text("model = 5\n")
    with pytest.raises(cl.ConfigError, match=re.escape(f"{work}: config.model must")):
        cl.load_config(home, profile="work")


def test_client_from_config(home: pathlib.Path) -> None:
    (home / "config.toml").write_text(
        'model = "m1"\nmodel_provider = "mine"\nservice_tier = "fast"\n[model_providers.mine]\nbase_url = "http://127.0.0.1:9/v1"\n'
    )
    client = cl.Client.from_config(
        cl.load_config(home), thread_id="t-1", session_id="s-1"
    )
    assert (client.model, client.thread_id, client.session_id, client.service_tier) == (
        "m1",
        "t-1",
        "s-1",
        "fast",
    )
    assert client.provider.id == "mine"
    with pytest.raises(cl.ConfigError, match="model_provider 'nope' is not defined"):
        cl.Client.from_config(cl.load_config(home, overrides=["model_provider=nope"]))


@pytest.mark.parametrize("case", ["read-only HOME", "no HOME", "HOME missing"])
def test_a_run_needs_no_writable_home(
    server: Loopback, tmp_path: pathlib.Path, case: str
) -> None:
    home = tmp_path / "home"  # root's: nobody cannot write under tmp_path
    known = "4f5d3a43-93d9-4d5b-8b57-1b9a2a8e6c1e"
    env = {"OPENAI_API_KEY": "sk-nobody-1234", "OPENAI_BASE_URL": server.url}
    if case == "read-only HOME":  # with the id Codex made there: read, not made
        (home / ".codex").mkdir(parents=True)
        (home / ".codex" / "installation_id").write_text(known)
        env["HOME"] = str(home)
    elif case == "HOME missing":
        env["HOME"] = str(home)
    before = files_under(tmp_path)
    dry = as_nobody("-m", "codex_lite", "exec", "--dry-run", "hi", env=env)
    assert dry.returncode == 0, dry.stderr
    server.then(reply(body=text_stream("made it")))
    args = ("-m", "codex_lite", "exec", "--ephemeral", "--debug", "hi")
    done = as_nobody(*args, env=env)
    assert (done.returncode, done.stdout) == (0, "made it\n"), done.stderr
    sent = server.seen[0].json()["client_metadata"]["x-codex-installation-id"]
    if case == "read-only HOME":
        assert sent == known and f'"x-codex-installation-id": "{known}"' in dry.stdout
        assert "for this process only" not in done.stderr
    else:
        assert uuid.UUID(sent or "").version == 4
        assert done.stderr.count("an installation id for this process only") == 1
    assert files_under(tmp_path) == before


def test_file_system_failures_are_config_errors_naming_the_path(
    tmp_path: pathlib.Path,
) -> None:
    home = tmp_path / "codex-home"  # root's: nobody cannot write in it
    for path in ("other/config.toml", "auth.json", "rollout.jsonl"):
        (home / path).mkdir(parents=True)  # what cannot be read as a file
    (home / "config.toml").write_text('model = "m"\n')
    before = files_under(home)
    done = as_nobody("-c", LIBRARY_STEPS, str(home), env={})
    assert "Traceback" not in done.stderr and done.returncode == 0, done.stderr
    said = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert said == {
        "config": f"ConfigError: {home / 'other/config.toml'}: Is a directory; "
        "make it readable, or set CODEX_HOME",
        "auth": f"ConfigError: {home / 'auth.json'}: Is a directory; "
        "make it readable, or set OPENAI_API_KEY",
        "sign-in": said["auth"],
        "rollout": said["rollout"],
        "fast": f"ConfigError: {home / 'config.toml'}: Permission denied; "
        "make it writable, or set CODEX_HOME",
        "read rollout": f"ConfigError: {home / 'rollout.jsonl'}: Is a directory; "
        "make it readable",
    }
    rollout = re.fullmatch(r"ConfigError: (\S+): (.*)", said["rollout"])
    assert rollout and rollout[1].startswith(f"{home / 'sessions'}/")
    assert rollout[2] == (
        f"Permission denied ({home / 'sessions'}); set CODEX_HOME to a writable "
        "folder with room, or run ephemeral (--ephemeral, ephemeral=True)"
    )
    assert files_under(home) == before


def test_a_user_without_a_home_is_told_to_set_codex_home(
    tmp_path: pathlib.Path,
) -> None:
    import pwd

    stranger = 54321
    with pytest.raises(KeyError):
        pwd.getpwuid(stranger)
    args = ("-m", "codex_lite", "exec", "--dry-run", "hi")
    done = as_nobody(*args, env={"OPENAI_API_KEY": "k"}, user=stranger)
    assert (done.returncode, done.stderr) == (
        2,
        "error: no home directory: set CODEX_HOME (or HOME)\n",
    )
    env = {"CODEX_HOME": str(tmp_path / "nowhere"), "OPENAI_API_KEY": "k"}
    assert as_nobody(*args, env=env, user=stranger).returncode == 0
    assert not (tmp_path / "nowhere").exists()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_config_text_fuzz(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        pathlib.Path(folder, "config.toml").write_text(text, encoding="utf-8")
        try:
            cl.load_config(folder)
        except cl.ConfigError:
            pass


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(
                st.sampled_from(
                    [
                        "model",
                        "profile",
                        "profiles",
                        "features",
                        "model_providers",
                        "x",
                        "aws",
                        "service_tier",
                        "base_url",
                        "query_params",
                    ]
                ),
                min_size=1,
                max_size=4,
            ),
            st.sampled_from(
                [
                    "1",
                    "true",
                    '"s"',
                    "[1,2]",
                    "{ a = 1 }",
                    "{ name = 3 }",
                    "plain",
                    '"fast"',
                    "1.5",
                ]
            ),
        ),
        max_size=5,
    )
)
def test_config_override_fuzz(overrides: list[tuple[list[str], str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        try:
            config = cl.load_config(
                folder, overrides=[f"{'.'.join(k)}={v}" for k, v in overrides]
            )
        except cl.ConfigError:
            return
        try:
            config.provider()
        except cl.ConfigError:
            pass


def test_fast_mode_edits_are_atomic_for_readers(tmp_path: pathlib.Path) -> None:
    import tomllib

    config = tmp_path / "config.toml"
    config.write_text(FAST_CONFIG)
    stop = threading.Event()
    seen: list[Any] = []

    def reader() -> None:
        while not stop.is_set():
            doc = tomllib.loads(config.read_text())
            seen.append(doc.get("service_tier"))
            assert (
                doc["model"] == "gpt-5"
                and doc["profiles"]["x"]["service_tier"] == "flex"
            )

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(60):
            cl.set_fast_mode(tmp_path, n % 2 == 0)
    finally:
        stop.set()
        thread.join()
    assert set(seen) <= {"fast", None, "flex"} and len(seen) > 10
    assert config.read_text() == FAST_CONFIG.replace('service_tier = "flex"\n', "", 1)


# --- Reading responses ------------------------------------------------------


HTML_502 = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>"
)


def ev(data, event="message", id=None, retry=None):
    return cl.ServerSentEvent(event=event, data=data, id=id, retry=retry)


BOM = b"\xef\xbb\xbf"

# (name, input bytes, expected events)
CASES = [
    # --- basic field parsing -------------------------------------------------------
    ("single_data", b"data: hello\n\n", [ev("hello")]),
    ("no_space_after_colon", b"data:hello\n\n", [ev("hello")]),
    ("only_one_space_stripped", b"data:  two\n\n", [ev(" two")]),
    ("tab_not_stripped", b"data:\tx\n\n", [ev("\tx")]),
    ("trailing_space_kept", b"data: x \n\n", [ev("x ")]),
    ("value_keeps_later_colons", b"data: a: b:c\n\n", [ev("a: b:c")]),
    ("multi_line_data", b"data: a\ndata: b\ndata: c\n\n", [ev("a\nb\nc")]),
    ("empty_data_value_dispatches", b"data:\n\n", [ev("")]),
    ("data_without_colon_dispatches", b"data\n\n", [ev("")]),
    ("two_empty_data_lines", b"data\ndata\n\n", [ev("\n")]),
    ("only_one_trailing_lf_stripped", b"data: a\ndata:\n\n", [ev("a\n")]),
    ("spec_example_data_fields", b"data\n\ndata\ndata\n\ndata:", [ev(""), ev("\n")]),
    ("spec_example_space", b"data:test\n\ndata: test\n\n", [ev("test"), ev("test")]),
    ("nul_in_data_kept", b"data: a\x00b\n\n", [ev("a\x00b")]),
    (
        "several_events",
        b"data: 1\n\ndata: 2\n\ndata: 3\n\n",
        [ev("1"), ev("2"), ev("3")],
    ),
    ("extra_blank_lines", b"\n\ndata: 1\n\n\n\n\ndata: 2\n\n\n", [ev("1"), ev("2")]),
    ("blank_lines_only", b"\n\n\n\r\n\r\r", []),
    ("empty_stream", b"", []),
    # --- event type ----------------------------------------------------------------
    ("event_type", b"event: add\ndata: 1\n\n", [ev("1", event="add")]),
    ("event_type_after_data", b"data: 1\nevent: add\n\n", [ev("1", event="add")]),
    (
        "event_type_resets_after_dispatch",
        b"event: add\ndata: 1\n\ndata: 2\n\n",
        [ev("1", event="add"), ev("2")],
    ),
    ("empty_event_is_message", b"event:\ndata: x\n\n", [ev("x")]),
    ("event_no_colon_is_message", b"event\ndata: x\n\n", [ev("x")]),
    ("event_last_one_wins", b"event: a\nevent: b\ndata: x\n\n", [ev("x", event="b")]),
    (
        "event_value_verbatim",
        b"event:  sp ace \ndata: x\n\n",
        [ev("x", event=" sp ace ")],
    ),
    ("event_without_data_dispatches_nothing", b"event: ping\n\n", []),
    (
        "event_type_of_dataless_block_discarded",
        b"event: ping\n\ndata: x\n\n",
        [ev("x")],
    ),
    # --- comments, unknown fields, case ---------------------------------------------
    ("comment_ignored", b": hello\ndata: x\n: mid\n\n", [ev("x")]),
    ("comment_that_looks_like_field", b":data: x\n\n", []),
    ("comment_only_block", b": only a comment\n\n", []),
    ("bare_colon_comment", b":\ndata: x\n:\n\n", [ev("x")]),
    ("unknown_fields_ignored", b"foo: bar\ndata: x\nbaz\n\n", [ev("x")]),
    ("names_case_sensitive_data", b"Data: x\nDATA: y\n\n", []),
    (
        "names_case_sensitive_event_id_retry",
        b"EVENT: e\nId: 3\nRetry: 5\ndata: x\n\n",
        [ev("x")],
    ),
    ("space_before_colon_is_other_name", b"data : x\n\n", []),
    ("leading_space_is_other_name", b" data: x\n\n", []),
    ("whitespace_line_is_not_blank", b"data: a\n \ndata: b\n\n", [ev("a\nb")]),
    # --- id ------------------------------------------------------------------------
    ("id_only_dispatches_nothing", b"id: 1\n\n", []),
    ("id_persists_from_dataless_block", b"id: 1\n\ndata: x\n\n", [ev("x", id="1")]),
    (
        "id_persists_across_events",
        b"id: 1\ndata: a\n\ndata: b\n\n",
        [ev("a", id="1"), ev("b", id="1")],
    ),
    (
        "id_changes",
        b"id: 1\ndata: a\n\nid: 2\ndata: b\n\n",
        [ev("a", id="1"), ev("b", id="2")],
    ),
    ("id_after_data_in_same_block", b"data: x\nid: 9\n\n", [ev("x", id="9")]),
    (
        "id_empty_value_resets",
        b"id: 1\ndata: a\n\nid:\ndata: b\n\n",
        [ev("a", id="1"), ev("b", id="")],
    ),
    (
        "id_no_colon_resets",
        b"id: 1\ndata: a\n\nid\ndata: b\n\n",
        [ev("a", id="1"), ev("b", id="")],
    ),
    (
        "id_with_nul_ignored",
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [ev("a", id="1"), ev("b", id="1")],
    ),
    ("id_with_nul_first_stays_none", b"id: \x00\ndata: x\n\n", [ev("x")]),
    ("id_value_verbatim", b"id:  7 \ndata: x\n\n", [ev("x", id=" 7 ")]),
    ("id_non_ascii", "id: ид-1\ndata: x\n\n".encode(), [ev("x", id="ид-1")]),
    (
        "keepalive_after_id_dispatches_nothing",
        b"id: 1\ndata: a\n\n: keepalive\n\n: keepalive\n\n\n",
        [ev("a", id="1")],
    ),
    (
        "spec_example_ids",
        b"data: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
        [ev("first event", id="1"), ev("second event", id="")],
    ),
    # --- retry ---------------------------------------------------------------------
    ("retry_only_dispatches_nothing", b"retry: 10\n\n", []),
    ("retry_valid", b"retry: 1500\ndata: x\n\n", [ev("x", retry=1500)]),
    ("retry_no_space", b"retry:7\ndata: x\n\n", [ev("x", retry=7)]),
    ("retry_leading_zeros", b"retry: 0050\ndata: x\n\n", [ev("x", retry=50)]),
    ("retry_zero", b"retry: 0\ndata: x\n\n", [ev("x", retry=0)]),
    (
        "retry_huge",
        b"retry: 99999999999999999999\ndata: x\n\n",
        [ev("x", retry=99999999999999999999)],
    ),
    ("retry_plus_sign_ignored", b"retry: +5\ndata: x\n\n", [ev("x")]),
    ("retry_underscore_ignored", b"retry: 1_0\ndata: x\n\n", [ev("x")]),
    ("retry_two_spaces_ignored", b"retry:  5\ndata: x\n\n", [ev("x")]),
    ("retry_trailing_space_ignored", b"retry: 5 \ndata: x\n\n", [ev("x")]),
    ("retry_suffix_ignored", b"retry: 5s\ndata: x\n\n", [ev("x")]),
    ("retry_negative_ignored", b"retry: -1\ndata: x\n\n", [ev("x")]),
    ("retry_decimal_ignored", b"retry: 1.5\ndata: x\n\n", [ev("x")]),
    (
        "retry_arabic_indic_digit_ignored",
        "retry: \u0663\ndata: x\n\n".encode(),
        [ev("x")],
    ),
    ("retry_fullwidth_digit_ignored", "retry: \uff15\ndata: x\n\n".encode(), [ev("x")]),
    ("retry_empty_ignored", b"retry:\ndata: x\n\n", [ev("x")]),
    ("retry_no_colon_ignored", b"retry\ndata: x\n\n", [ev("x")]),
    (
        "retry_invalid_keeps_earlier_valid",
        b"retry: 5\nretry: x\ndata: a\n\n",
        [ev("a", retry=5)],
    ),
    ("retry_last_valid_wins", b"retry: 5\nretry: 6\ndata: a\n\n", [ev("a", retry=6)]),
    (
        "retry_is_per_block",
        b"retry: 5\ndata: a\n\ndata: b\n\n",
        [ev("a", retry=5), ev("b")],
    ),
    ("retry_of_dataless_block_not_carried", b"retry: 5\n\ndata: b\n\n", [ev("b")]),
    (
        "all_fields",
        b'retry: 250\nid: abc\nevent: upd\n: c\ndata: {"a": 1}\ndata: ]\n\n',
        [ev('{"a": 1}\n]', event="upd", id="abc", retry=250)],
    ),
    # --- line endings --------------------------------------------------------------
    ("crlf", b"data: a\r\ndata: b\r\n\r\n", [ev("a\nb")]),
    ("cr", b"data: a\rdata: b\r\r", [ev("a\nb")]),
    ("mixed_line_endings", b"data: a\rdata: b\ndata: c\r\n\n", [ev("a\nb\nc")]),
    ("crlf_blank_after_cr", b"data: a\r\r\ndata: b\n\n", [ev("a"), ev("b")]),
    ("lf_then_cr_is_two_breaks", b"data: a\n\rdata: b\n\n", [ev("a"), ev("b")]),
    ("crlf_crlf_one_event", b"data: a\r\n\r\n", [ev("a")]),
    ("cr_cr_lf_lf", b"data: a\r\r\n\ndata: b\r\n\r\n", [ev("a"), ev("b")]),
    ("pending_cr_at_eof_ends_blank_line", b"data: a\r\n\r", [ev("a")]),
    ("pending_cr_at_eof_without_blank", b"data: a\r", []),
    ("unterminated_event_discarded", b"data: a\n\ndata: b\n", [ev("a")]),
    ("unterminated_line_discarded", b"data: b", []),
    (
        "unterminated_after_id_discarded",
        b"id: 1\ndata: a\n\nid: 2\ndata: b\r\n",
        [ev("a", id="1")],
    ),
    # --- BOM -----------------------------------------------------------------------
    ("bom_stripped", BOM + b"data: x\n\n", [ev("x")]),
    ("bom_then_blank_line", BOM + b"\ndata: x\n\n", [ev("x")]),
    ("bom_then_comment", BOM + b": c\ndata: x\n\n", [ev("x")]),
    ("second_bom_is_part_of_name", BOM + BOM + b"data: x\n\ndata: y\n\n", [ev("y")]),
    ("bom_not_at_start_kept", b"data: a\n\n" + BOM + b"data: b\n\n", [ev("a")]),
    ("bom_in_value_kept", b"data: " + BOM + b"x\n\n", [ev("\ufeffx")]),
    ("partial_bom_is_not_bom", b"\xef\xbbdata: x\n\ndata: y\n\n", [ev("y")]),
    # --- UTF-8 ---------------------------------------------------------------------
    ("utf8_multibyte", "data: héllo € 😀 日本\n\n".encode(), [ev("héllo € 😀 日本")]),
    ("utf8_event_name", "event: ünï😀\ndata: x\n\n".encode(), [ev("x", event="ünï😀")]),
    ("invalid_byte_replaced", b"data: a\xffb\n\n", [ev("a\ufffdb")]),
    ("truncated_sequence_before_lf", b"data: \xe2\x82\n\n", [ev("\ufffd")]),
    ("truncated_4byte_then_ascii", b"data: \xf0\x9f\x98x\n\n", [ev("\ufffdx")]),
    ("lone_continuation_bytes", b"data: \x80\x80\n\n", [ev("\ufffd\ufffd")]),
    ("encoded_surrogate", b"data: \xed\xa0\x80\n\n", [ev("\ufffd\ufffd\ufffd")]),
    ("overlong_encoding", b"data: \xc0\xaf\n\n", [ev("\ufffd\ufffd")]),
    ("invalid_byte_in_field_name", b"dat\xff: x\n\ndata: y\n\n", [ev("y")]),
    ("truncated_sequence_at_eof", b"data: x\n\n\xe2\x82", [ev("x")]),
]

CASE_IDS = [c[0] for c in CASES]
SEEDS = range(8)


def decode_chunks(chunks):
    dec = cl.SSEDecoder()
    out = []
    for chunk in chunks:
        got = dec.feed(chunk)
        assert isinstance(got, list)
        out.extend(got)
    assert dec.flush() is None
    for e in out:
        assert isinstance(e, cl.ServerSentEvent)
    return out


def split_at(blob, cuts):
    cuts = sorted(cuts)
    bounds = [0, *cuts, len(blob)]
    return [blob[a:b] for a, b in itertools.pairwise(bounds)]


def random_split(blob, rng):
    cuts = [rng.randint(0, len(blob)) for _ in range(rng.randint(0, 12))]
    return split_at(
        blob, cuts
    )  # repeated cuts give empty chunks, which must be harmless


def bytewise(blob):
    return [blob[i : i + 1] for i in range(len(blob))]


_NAMES = [
    b"data",
    b"data",
    b"data",
    b"event",
    b"id",
    b"retry",
    b"Data",
    b"",
    b"\xef\xbb\xbfdata",
    b"x",
]
_SEPS = [b"", b":", b": ", b":  "]
_VALUE_TOKENS = [
    b"x",
    b"5",
    b"+",
    b" ",
    b":",
    b"\x00",
    BOM,
    b"\xef",
    b"\xbb",
    b"\xbf",
    b"\xff",
    b"\xe2\x82",
    b"\xac",
    b"\xf0\x9f\x98",
    b"\x80",
    "\u00e9".encode(),
    "\u0663".encode(),
]
_ENDS = [b"\n", b"\r", b"\r\n", b"\n\n", b"\r\r", b"\r\n\r\n", b""]

sse_ish_line = st.tuples(
    st.sampled_from(_NAMES),
    st.sampled_from(_SEPS),
    st.lists(st.sampled_from(_VALUE_TOKENS), max_size=4).map(b"".join),
    st.sampled_from(_ENDS),
).map(b"".join)
sse_ish_bytes = st.tuples(
    st.sampled_from([b"", BOM, b"\xef\xbb"]),
    st.lists(sse_ish_line, max_size=12).map(b"".join),
).map(b"".join)


@st.composite
def blob_and_chunks(draw, blobs):
    blob = draw(blobs)
    cuts = draw(st.lists(st.integers(0, len(blob)), max_size=12))
    return blob, split_at(blob, cuts)


_line_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12
)
_id_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=8
)


def _field(rnd, name, value):
    if value == "":
        return rnd.choice([name, name + ":", name + ": "])
    if value.startswith(" "):
        return name + ": " + value
    return rnd.choice([name + ":", name + ": "]) + value


@st.composite
def well_formed_streams(draw):
    """Returns (bytes, expected events)."""
    rnd = draw(st.randoms(use_true_random=False))
    n = draw(st.integers(0, 6))
    lines = []
    expected = []
    last_id = None
    for _ in range(n):
        # optional data-less block (only comments / unknown fields / an id), dispatches nothing
        if draw(st.booleans()):
            block = []
            if draw(st.booleans()):
                block.append(":" + draw(_line_text))
            if draw(st.booleans()):
                block.append(_field(rnd, "event", draw(_line_text)))
            if draw(st.booleans()):
                last_id = draw(_id_text)
                block.append(_field(rnd, "id", last_id))
            lines += block + [""]
        name = draw(st.one_of(st.none(), _line_text))
        data_lines = draw(st.lists(_line_text, min_size=1, max_size=4))
        ident = draw(st.one_of(st.none(), _id_text))
        retry = draw(st.one_of(st.none(), st.integers(0, 10**12)))
        extras = []
        if name is not None:
            extras.append(_field(rnd, "event", name))
        if ident is not None:
            extras.append(_field(rnd, "id", ident))
            last_id = ident
        if retry is not None:
            extras.append(rnd.choice(["retry:", "retry: "]) + str(retry))
        for _ in range(draw(st.integers(0, 2))):
            extras.append(":" + draw(_line_text))
        if draw(st.booleans()):
            extras.append(rnd.choice(["foo: bar", "Data: no", "ID: 9", "x"]))
        block = [_field(rnd, "data", d) for d in data_lines]
        for extra in extras:  # event/id/retry/comments may appear anywhere in the block
            block.insert(rnd.randint(0, len(block)), extra)
        lines += block + [""] * draw(st.integers(1, 3))
        expected.append(
            ev("\n".join(data_lines), event=name or "message", id=last_id, retry=retry)
        )
    text = []
    prev_end = ""
    for line in lines:
        choices = ["\n", "\r", "\r\n"]
        if prev_end == "\r" and line == "":
            choices.remove("\n")  # "\r" + "\n" would be a single CRLF break
        prev_end = rnd.choice(choices)
        text.append(line + prev_end)
    blob = "".join(text).encode("utf-8")
    if draw(st.booleans()):
        blob = BOM + blob
    return blob, expected


def _responses_stream(nl):
    payloads = [
        {
            "type": "response.created",
            "sequence_number": 0,
            "response": {
                "id": "resp_1",
                "object": "response",
                "status": "in_progress",
                "output": [],
            },
        },
        {
            "type": "response.output_item.added",
            "sequence_number": 1,
            "output_index": 0,
            "item": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "content": [],
            },
        },
        {
            "type": "response.output_text.delta",
            "sequence_number": 2,
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "Héllo",
        },
        {
            "type": "response.output_text.delta",
            "sequence_number": 3,
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "delta": ", wörld 😀\n",
        },
        {
            "type": "response.output_text.done",
            "sequence_number": 4,
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "text": "Héllo, wörld 😀\n",
        },
        {
            "type": "response.completed",
            "sequence_number": 5,
            "response": {
                "id": "resp_1",
                "status": "completed",
                "usage": {"input_tokens": 5, "output_tokens": 4, "total_tokens": 9},
            },
        },
    ]
    parts = []
    for p in payloads:
        parts.append(
            f"event: {p['type']}{nl}data: {json.dumps(p, ensure_ascii=False)}{nl}{nl}"
        )
    return "".join(parts).encode(), payloads


def _feed_in_chunks(blob, size):
    return decode_chunks(blob[i : i + size] for i in range(0, len(blob), size))


# ... status errors ...


def test_400_is_an_invalid_request_error(server: Loopback, home: pathlib.Path) -> None:
    body = {"error": {"message": "Unknown parameter", "type": "invalid_request_error"}}
    server.then(
        reply(400, json.dumps(body).encode(), {"Content-Type": "application/json"})
    )
    with pytest.raises(cl.InvalidRequest, match="Unknown parameter"):
        run(local_client(server, home).new_turn())


def test_context_window_error_over_http(server: Loopback, home: pathlib.Path) -> None:
    body = {"error": {"message": "too long", "code": "context_length_exceeded"}}
    server.then(reply(400, json.dumps(body).encode()))
    with pytest.raises(cl.ContextWindowExceeded):
        run(local_client(server, home).new_turn())


def test_fault_html_error_page(server: Loopback, home: pathlib.Path) -> None:
    page = {"Content-Type": "text/html"}
    server.then(reply(502, HTML_502, page), reply(body=text_stream()))
    assert isinstance(run(local_client(server, home).new_turn())[-1], cl.Completed)
    server.then(*[reply(502, HTML_502, page)] * 5)
    with Budget(5), pytest.raises(cl.RetryLimitExceeded) as caught:
        run(local_client(server, home).new_turn())
    assert str(caught.value.last_error) == "502: Bad Gateway"


# ... events, errors and the reader ...


def test_stream_events_and_header_events(server: Loopback, home: pathlib.Path) -> None:
    headers = {
        "openai-model": "gpt-served",
        "x-codex-primary-used-percent": "12.5",
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-at": "1760000000",
        "x-codex-secondary-used-percent": "0",
        "x-codex-limit-name": "plus",
        "x-codex-credits-has-credits": "true",
        "x-codex-credits-unlimited": "0",
        "x-codex-credits-balance": " 10 ",
        "x-codex-secondary-primary-used-percent": "1.0",
        "X-Models-Etag": "etag-1",
        "x-reasoning-included": "true",
        "x-request-id": "req_1",
    }
    body = sse(
        {"type": "response.created", "response": {"id": "resp_9"}},
        {
            "type": "response.output_item.added",
            "item": {"type": "reasoning", "id": "rs_1", "summary": []},
        },
        {"type": "response.reasoning_summary_part.added", "summary_index": 0},
        {
            "type": "response.reasoning_summary_text.delta",
            "delta": "plan",
            "summary_index": 0,
        },
        {"type": "response.reasoning_text.delta", "delta": "think", "content_index": 0},
        {
            "type": "response.custom_tool_call_input.delta",
            "call_id": "call_1",
            "delta": "patch",
        },
        {"type": "response.output_text.delta", "delta": "Hi", "item_id": "msg_1"},
        {"type": "response.something_new", "x": 1},
        completed(
            "resp_9",
            end_turn=True,
            usage={
                "input_tokens": 10,
                "input_tokens_details": {"cached_tokens": 4},
                "output_tokens": 5,
                "output_tokens_details": {"reasoning_tokens": 2},
                "total_tokens": 15,
            },
        ),
    )
    server.then(reply(body=body, headers=headers))
    events = run(local_client(server, home).new_turn())
    assert events[0] == cl.ServerModel("gpt-served")
    assert events[1] == cl.RateLimits(
        limit_id="codex",
        primary=cl.RateLimitWindow(12.5, 300, 1760000000),
        secondary=None,
        limit_name="plus",
        credits={"has_credits": True, "unlimited": False, "balance": "10"},
    )
    assert events[2] == cl.RateLimits(
        limit_id="codex_secondary",
        primary=cl.RateLimitWindow(1.0, None, None),
        credits={"has_credits": True, "unlimited": False, "balance": "10"},
    )
    assert events[3:5] == [cl.ModelsEtag("etag-1"), cl.ServerReasoningIncluded()]
    assert events[5:] == [
        cl.Created("resp_9"),
        cl.OutputItemAdded(cl.Reasoning(id="rs_1", summary=())),
        cl.ReasoningSummaryPartAdded(0),
        cl.ReasoningSummaryDelta("plan", 0),
        cl.ReasoningContentDelta("think", 0),
        cl.ToolCallInputDelta("call_1", "call_1", "patch"),
        cl.OutputTextDelta("Hi", "msg_1"),
        cl.Completed("resp_9", cl.TokenUsage(10, 4, 5, 2, 15), True),
    ]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # upstream parse_rate_limit_updates_includes_default_codex_snapshot
        ({}, [cl.RateLimits(limit_id="codex")]),
        # the codex family first, then the others by name
        (
            {
                "x-zeta-primary-used-percent": "5",
                "x-acme-primary-used-percent": "7",
                "x-codex-primary-used-percent": "12.5",
            },
            [
                cl.RateLimits("codex", cl.RateLimitWindow(12.5, None, None)),
                cl.RateLimits("acme", cl.RateLimitWindow(7.0, None, None)),
                cl.RateLimits("zeta", cl.RateLimitWindow(5.0, None, None)),
            ],
        ),
        # a family with nothing to say is left out; codex never is
        (
            {"x-acme-primary-used-percent": "0", "x-codex-limit-name": "  "},
            [cl.RateLimits(limit_id="codex")],
        ),
        # numbers Rust would not parse, and credits missing one of the two flags
        (
            {
                "x-codex-primary-used-percent": "nan",
                "x-codex-secondary-used-percent": "1_0",
                "x-codex-credits-has-credits": "true",
                "x-codex-credits-unlimited": "yes",
            },
            [cl.RateLimits(limit_id="codex")],
        ),
    ],
)
def test_rate_limit_headers(
    headers: dict[str, str], expected: list[cl.RateLimits]
) -> None:
    assert cl._rate_limits_from_headers(headers) == expected


def test_completed_ends_reading_without_waiting_for_the_stream(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=[text_stream()], hang=30))
    started = time.monotonic()
    events = run(local_client(server, home).new_turn())
    assert isinstance(events[-1], cl.Completed)
    assert time.monotonic() - started < 5


def test_litellm_style_stream_without_event_names(
    server: Loopback, home: pathlib.Path
) -> None:
    body = (
        sse(
            {
                "type": "response.output_text.delta",
                "delta": "ok",
                "model": "extra-field",
            },
            completed(),
            named=False,
        )
        + b"data: [DONE]\n\n"
    )
    server.then(reply(body=body))
    events = run(local_client(server, home).new_turn())
    assert events == [
        cl.RateLimits("codex"),
        cl.OutputTextDelta("ok"),
        cl.Completed("resp_1", None, None),
    ]


def test_idle_timeout(server: Loopback, home: pathlib.Path) -> None:
    server.then(reply(body=[b": keepalive\n\n"], hang=3))
    policy = dataclasses.replace(FAST, stream_idle_timeout=0.3, stream_max_retries=0)
    started = time.monotonic()
    with pytest.raises(cl.StreamError, match="idle timeout waiting for SSE"):
        run(local_client(server, home, retry_policy=policy).new_turn())
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize(
    ("code", "message", "error", "text"),
    [
        ("context_length_exceeded", "too long", cl.ContextWindowExceeded, "too long"),
        ("insufficient_quota", "no quota", cl.QuotaExceeded, "no quota"),
        ("usage_not_included", "plan", cl.UsageNotIncluded, "plan"),
        ("cyber_policy", "", cl.CyberPolicy, "flagged for possible cybersecurity risk"),
        ("invalid_prompt", "", cl.InvalidRequest, "Invalid request."),
        ("server_is_overloaded", "busy", cl.ServerOverloaded, "busy"),
        ("slow_down", "slow", cl.ServerOverloaded, "slow"),
    ],
)
def test_response_failed_fatal_codes(
    server: Loopback,
    home: pathlib.Path,
    code: str,
    message: str,
    error: type[Exception],
    text: str,
) -> None:
    server.then(
        reply(body=sse(failed(code, message)), headers={"x-request-id": "req_f"})
    )
    with pytest.raises(error, match=re.escape(text)) as caught:
        run(stream_retry_client(server, home).new_turn())
    assert getattr(caught.value, "request_id", None) == "req_f"
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    ("message", "delay"),
    [("Try again in 11.054s", 11.054), ("try again in 28ms", 0.028)],
)
def test_retry_delay_parsing(message: str, delay: float) -> None:
    error = cl._failed_error(
        {"error": {"code": "rate_limit_exceeded", "message": message}}, None
    )
    assert isinstance(error, cl.StreamError) and error.delay == pytest.approx(delay)


def test_response_failed_without_error_and_incomplete(
    server: Loopback, home: pathlib.Path
) -> None:
    incomplete = {
        "type": "response.incomplete",
        "response": {"id": "r", "incomplete_details": {"reason": "max_output_tokens"}},
    }
    server.then(reply(body=sse(failed(None))), reply(body=sse(incomplete)))
    with pytest.raises(
        cl.StreamError, match="Incomplete response returned, reason: max_output_tokens"
    ):
        run(stream_retry_client(server, home, retries=1).new_turn())
    assert len(server.seen) == 2


def test_error_event_and_bad_json_are_skipped(
    server: Loopback, home: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = (
        b"data: {not json\n\n"
        + sse({"type": "error", "code": "x", "message": "transient"})
        + b"data: \n\n"
        + text_stream()
    )
    server.then(reply(body=body))
    with caplog.at_level(logging.WARNING, logger="codex_lite"):
        events = run(local_client(server, home).new_turn())
    assert isinstance(events[-1], cl.Completed)
    assert "error event" in caplog.text


def test_malformed_output_item_is_skipped(server: Loopback, home: pathlib.Path) -> None:
    bad = {"type": "response.output_item.done", "item": {"type": "function_call"}}
    server.then(reply(body=sse(bad) + text_stream()))
    events = run(local_client(server, home).new_turn())
    assert not any(
        isinstance(e, cl.OutputItemDone) and isinstance(e.item, cl.FunctionCall)
        for e in events
    )


def test_events_with_mistyped_fields_are_skipped(
    server: Loopback, home: pathlib.Path
) -> None:
    # upstream's event struct has `delta: Option<String>`, `summary_index: Option<i64>`
    bad = [
        {"type": "response.output_text.delta", "delta": 5},
        {
            "type": "response.reasoning_summary_text.delta",
            "delta": "x",
            "summary_index": "0",
        },
        {"type": "response.reasoning_text.delta", "delta": "x", "content_index": True},
    ]
    server.then(reply(body=sse(*bad) + text_stream("ok")))
    events = run(local_client(server, home).new_turn())
    assert [e for e in events if not isinstance(e, (cl.RateLimits, cl.Created))][
        :1
    ] == [cl.OutputTextDelta("ok", "msg_1")]
    assert not any(
        isinstance(e, (cl.ReasoningSummaryDelta, cl.ReasoningContentDelta))
        for e in events
    )


def test_fault_5mb_single_event(server: Loopback, home: pathlib.Path) -> None:
    delta = "x" * (5 << 20)
    raw = sse({"type": "response.output_text.delta", "delta": delta}) + sse(completed())
    server.then(reply(body=[raw[i : i + 65536] for i in range(0, len(raw), 65536)]))
    with Budget(10):
        events = run(local_client(server, home).new_turn())
    assert events[1] == cl.OutputTextDelta(delta) and isinstance(
        events[2], cl.Completed
    )
    assert len(server.seen) == 1


def test_fault_bom_and_cr_only_line_endings(
    server: Loopback, home: pathlib.Path
) -> None:
    raw = b"\xef\xbb\xbf" + text_stream("cr only").replace(b"\n", b"\r")
    server.then(reply(body=[raw[i : i + 3] for i in range(0, len(raw), 3)]))
    events = run(local_client(server, home).new_turn())
    assert cl.OutputTextDelta("cr only", "msg_1") in events
    assert isinstance(events[-1], cl.Completed) and len(server.seen) == 1


def test_hostile_json_is_skipped(server: Loopback, home: pathlib.Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    surrogate = '{"type":"response.output_text.delta","delta":"a\\ud800b\\udfffc"}'
    body = (
        f"data: {deep}\n\n".encode()
        + f"data: {surrogate}\n\n".encode()
        + b"retry: "
        + b"9" * 5000
        + b"\n\n"
        + sse(completed())
    )
    server.then(reply(body=body, headers={"x-codex-primary-used-percent": "1e999"}))
    events = run(one_try(server, home).new_turn())
    assert cl.OutputTextDelta("a\ud800b\udfffc") in events  # as sent; see below
    (limits,) = [e for e in events if isinstance(e, cl.RateLimits)]
    assert limits.primary is None  # infinity is no percentage
    assert isinstance(events[-1], cl.Completed)
    huge = {"x-codex-primary-used-percent": "5", "x-codex-primary-reset-at": "9" * 5000}
    window = cl._rate_limit_window(huge, "x-codex-primary")
    assert window is not None and window.resets_at is None


@pytest.mark.parametrize("split", [False, True])
def test_lines_and_events_over_the_cap_are_stream_errors(
    server: Loopback, home: pathlib.Path, split: bool
) -> None:
    """One endless line, or one event of many lines: bounded either way."""
    endless = b"data: " + b"x" * (3 << 20)
    many = b"data: " + b"y" * 1000 + b"\n"
    chunks = [endless[i : i + 65536] for i in range(0, len(endless), 65536)]
    body = chunks if not split else [many * 64] * 50
    server.then(reply(body=body))
    client = one_try(server, home, max_event_bytes=1 << 20)
    with pytest.raises(cl.StreamError, match="longer than|larger than"):
        run(client.new_turn())
    decoder = cl.SSEDecoder()
    assert decoder.max_size == 64 << 20


def test_empty_data_lines_count_toward_the_event_cap() -> None:
    decoder = cl.SSEDecoder(max_size=1000)
    with pytest.raises(cl.StreamError, match="larger than"):
        for _ in range(10):
            decoder.feed(b"data:\n" * 200)


# ... the SSE decoder: WHATWG event-stream rules, cases written from the spec ...


def test_case_table_is_big_and_unique():
    assert len(CASES) >= 30
    assert len(set(CASE_IDS)) == len(CASE_IDS)


@pytest.mark.parametrize(("name", "blob", "expected"), CASES, ids=CASE_IDS)
def test_one_chunk(name, blob, expected):
    assert decode_chunks([blob]) == expected


@pytest.mark.parametrize(("name", "blob", "expected"), CASES, ids=CASE_IDS)
def test_byte_at_a_time(name, blob, expected):
    assert decode_chunks(bytewise(blob)) == expected


@pytest.mark.parametrize(("name", "blob", "expected"), CASES, ids=CASE_IDS)
def test_random_splits(name, blob, expected):
    for seed in SEEDS:
        chunks = random_split(blob, random.Random(seed))
        assert decode_chunks(chunks) == expected, (seed, chunks)


@pytest.mark.parametrize(("name", "blob", "expected"), CASES, ids=CASE_IDS)
def test_every_two_way_split(name, blob, expected):
    for i in range(len(blob) + 1):
        assert decode_chunks([blob[:i], blob[i:]]) == expected, i


# ... the SSE decoder: explicit chunk-boundary cases ...


@pytest.mark.parametrize(
    "chunks, expected",
    [
        ([b"data: a\r", b"\ndata: b\n\n"], [ev("a\nb")]),  # CR|LF is one break
        ([b"data: a\r", b"\n", b"\r", b"\n"], [ev("a")]),
        ([b"data: a\r\n\r", b"\n"], [ev("a")]),
        ([b"data: a\r", b"", b"\n\n"], [ev("a")]),  # empty chunk between CR and LF
        ([b"\xef", b"\xbb", b"\xbfdata: x\n\n"], [ev("x")]),  # BOM split
        ([b"", BOM, b"data: x\n\n"], [ev("x")]),  # empty first chunk
        ([b"\xef\xbb", b"\xbf" + BOM + b"data: x\n\n"], []),  # second BOM kept
        ([BOM, BOM + b"data: x\n\n"], []),
        ([b"data: \xf0\x9f", b"\x98\x80\n\n"], [ev("😀")]),  # char split across chunks
        ([b"data: \xe2", b"\x82", b"\xac\n\n"], [ev("€")]),
        ([b"data: \xe2\x82", b"\n\n"], [ev("\ufffd")]),
    ],
    ids=[
        "cr|lf",
        "cr|lf|cr|lf",
        "crlfcr|lf",
        "cr|empty|lf",
        "bom_split_3",
        "empty_then_bom",
        "bom_split_then_second_bom",
        "bom|bom",
        "emoji_split",
        "euro_split_3",
        "truncated|lf",
    ],
)
def test_chunk_boundaries(chunks, expected):
    assert decode_chunks(chunks) == expected


def test_events_are_returned_as_soon_as_complete():
    dec = cl.SSEDecoder()
    assert dec.feed(b"data: a\n\n") == [ev("a")]
    assert dec.feed(b"data: b\n") == []
    assert dec.feed(b"\n") == [ev("b")]
    assert dec.feed(b"data: c\r\n\r\n") == [ev("c")]
    assert dec.feed(b"data: d\r\n") == []
    assert dec.feed(b"\r\n") == [ev("d")]
    assert dec.flush() is None


def test_flush_dispatches_on_pending_cr_only_once():
    dec = cl.SSEDecoder()
    assert dec.feed(b"data: a\r\r") == [ev("a")]
    dec.flush()
    assert dec.feed(b"\n") == []  # the CR's LF ends nothing more


def test_flush_discards_unterminated_event():
    dec = cl.SSEDecoder()
    assert dec.feed(b"event: e\nid: 1\ndata: a\n") == []
    dec.flush()
    assert dec.feed(b"\n") == []  # the event was discarded


def test_server_sent_event_record():
    e = cl.ServerSentEvent()
    assert (e.event, e.data, e.id, e.retry) == ("message", "", None, None)
    with pytest.raises(AttributeError):
        e.data = "x"  # type: ignore[misc]
    assert cl.ServerSentEvent("m", "d", "1", 5) == ev("d", event="m", id="1", retry=5)


# ... the SSE decoder: hypothesis ...


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob_and_chunks(st.binary(max_size=300)))
def test_arbitrary_bytes_chunking_invariant(bc):
    blob, chunks = bc
    whole = decode_chunks([blob])
    assert decode_chunks(chunks) == whole
    assert decode_chunks(bytewise(blob)) == whole


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob_and_chunks(sse_ish_bytes))
def test_sse_like_bytes_chunking_invariant(bc):
    blob, chunks = bc
    whole = decode_chunks([blob])
    assert decode_chunks(chunks) == whole
    assert decode_chunks(bytewise(blob)) == whole
    for e in whole:
        assert isinstance(e.event, str) and e.event
        assert isinstance(e.data, str)
        assert e.id is None or (isinstance(e.id, str) and "\x00" not in e.id)
        assert e.retry is None or (type(e.retry) is int and e.retry >= 0)
        assert "\r" not in e.data and "\r" not in e.event


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(well_formed_streams(), st.data())
def test_well_formed_stream_round_trip(stream, data):
    blob, expected = stream
    assert decode_chunks([blob]) == expected
    cuts = data.draw(st.lists(st.integers(0, len(blob)), max_size=12))
    assert decode_chunks(split_at(blob, cuts)) == expected


# ... the SSE decoder: realistic streams ...


@pytest.mark.parametrize("nl", ["\n", "\r\n", "\r"])
def test_responses_api_stream(nl):
    blob, payloads = _responses_stream(nl)
    expected = [
        ev(json.dumps(p, ensure_ascii=False), event=p["type"]) for p in payloads
    ]
    splits = [[blob], bytewise(blob)] + [
        random_split(blob, random.Random(s)) for s in SEEDS
    ]
    for chunks in splits:
        got = decode_chunks(chunks)
        assert got == expected
        assert [json.loads(e.data) for e in got] == payloads
        assert all(json.loads(e.data)["type"] == e.event for e in got)


def test_litellm_style_stream():
    chunks_json = [
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
        },
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": "Hi"}}],
        },
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        },
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks_json)
    blob = (": keep-alive\n\n" + body + "data: [DONE]\n\n").encode()
    expected = [ev(json.dumps(c)) for c in chunks_json] + [ev("[DONE]")]
    splits = [[blob], bytewise(blob)] + [
        random_split(blob, random.Random(s)) for s in SEEDS
    ]
    for chunks in splits:
        got = decode_chunks(chunks)
        assert got == expected
        assert all(
            e.event == "message" and e.id is None and e.retry is None for e in got
        )
        assert got[-1].data == "[DONE]"


# ... the SSE decoder: size ...


def test_large_single_line_event_in_64k_chunks():
    payload = "abcdefghé" * (5 * 1024 * 1024 // 10 + 1)
    blob = b"event: big\ndata: " + payload.encode() + b"\n\n"
    assert len(blob) > 5 * 1024 * 1024
    got = _feed_in_chunks(blob, 64 * 1024)
    assert len(got) == 1
    assert got[0].event == "big"
    assert got[0].data == payload


def test_large_multi_line_event_in_64k_chunks():
    lines = [f"{i:08d}" + "x" * 90 for i in range(55_000)]  # ~5.4 MB of data lines
    blob = ("".join(f"data: {s}\r\n" for s in lines) + "\r\n").encode()
    got = _feed_in_chunks(blob, 64 * 1024)
    assert got == [ev("\n".join(lines))]


# --- Responses over HTTP ----------------------------------------------------


def test_a_request_requests_refuses_is_not_retried(
    server: Loopback, home: pathlib.Path
) -> None:
    # Only the connection is worth another attempt; a malformed URL is not.
    cases = [
        ("http://[::1/v1", "base_url is not a valid URL"),
        (
            "ftp://h/v1",
            "the request could not be made (InvalidSchema); check its base_url and headers",
        ),
    ]
    for base_url, message in cases:
        client = local_client(server, home, info={"base_url": base_url})
        with Budget(2), pytest.raises(cl.ConfigError) as caught:
            run(client.new_turn())
        assert str(caught.value) == f"model provider 'local': {message}"
    assert server.seen == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_fault_compressed_response_body(
    server: Loopback, home: pathlib.Path, encoding: str
) -> None:
    import gzip

    raw = text_stream("compressed")
    packed = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    chunks = [packed[i : i + 7] for i in range(0, len(packed), 7)]
    server.then(reply(body=chunks, headers={"Content-Encoding": encoding}))
    events = run(local_client(server, home).new_turn())
    assert cl.OutputTextDelta("compressed", "msg_1") in events
    assert isinstance(events[-1], cl.Completed) and len(server.seen) == 1


def test_tls_verification_is_on_by_default(
    home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    import ssl

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    loop = Loopback()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    loop.server.socket = context.wrap_socket(loop.server.socket, server_side=True)
    loop.then(reply(body=text_stream()))
    try:
        provider = cl.ModelProvider(
            "tls",
            cl.ProviderInfo(base_url=loop.url.replace("http:", "https:")),
            home=home,
        )
        client = cl.Client(
            provider,
            model="m",
            retry_policy=dataclasses.replace(FAST, request_max_retries=0),
        )
        with pytest.raises(cl.RetryLimitExceeded, match="TLS error"):
            run(client.new_turn())
        assert client.http.verify is True
    finally:
        loop.close()


def test_decompression_is_bounded_and_unasked_encodings_refused(
    server: Loopback, home: pathlib.Path
) -> None:
    import gzip
    import tracemalloc

    bomb = gzip.compress(b"\0" * (200 << 20), compresslevel=1)  # about 200 KB
    assert len(bomb) < 1 << 20
    server.then(reply(body=bomb, headers={"Content-Encoding": "gzip"}))
    client = one_try(server, home, max_event_bytes=1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(cl.StreamError, match="longer than"):
            run(client.new_turn())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak  # the body inflates to 200 MiB
    packed = zstandard.ZstdCompressor().compress(text_stream())
    corrupt = gzip.compress(text_stream())[:-12] + b"\xff" * 12
    for encoding, body in (("zstd", packed), ("gzip", corrupt)):
        server.then(reply(body=body, headers={"Content-Encoding": encoding}))
        with pytest.raises(cl.StreamError):
            run(one_try(server, home).new_turn())
    assert "accept-encoding" in server.seen[-1].header_names()
    assert "zstd" not in (server.seen[-1].header("accept-encoding") or "")


def test_a_server_echoing_the_key_over_http_gets_it_nowhere(
    server: Loopback, home: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    truncated = f'{{"error": {{"message": "bad key {ECHO_ESCAPED}'  # not JSON
    server.then(
        reply(body=echo_stream(), headers=echo_headers()),
        reply(body=text_stream(), headers=echo_headers()),
        reply(400, json.dumps(ECHO_ERROR).encode(), echo_headers()),
        reply(400, truncated.encode(), echo_headers()),
        reply(400, f"bad key {ECHO_KEY[:-6]}...".encode(), echo_headers()),  # cut
    )
    client = openai_client(server, home, auth=cl.BearerAuth(ECHO_KEY))
    shown: list[Any] = []
    with caplog.at_level(logging.DEBUG):
        shown += run(client.new_turn())
        for _ in range(3):
            with pytest.raises(cl.InvalidRequest) as caught:
                run(client.new_turn())
            shown += [caught.value, caught.value.code, caught.value.request_id]
    assert server.seen[0].header("authorization") == f"Bearer {ECHO_KEY}"
    assert cl.ServerModel("model-<redacted>") in shown
    assert any(isinstance(e, cl.StreamRetry) for e in shown)
    assert "cut" in caplog.text and "server sent an error event" in caplog.text
    assert_no_echo("\n".join(map(repr, shown)) + "\n".join(map(str, shown)))
    assert_no_echo(caplog.text)


# --- Responses over WebSocket -----------------------------------------------


CODEX_WS = json.loads(
    (TESTS / "codex-0.169.0" / "openai-websocket-two-turns.requests.json").read_text()
)


def ws_stall(connection: Any, request: dict[str, Any], number: int) -> None:
    """Read the request and answer nothing."""


def ws_ping_flood_turn(home: pathlib.Path) -> tuple[list[str], list[str], int]:
    """A turn against `ping_flood`, then HTTP: the retries' errors, the text,
    the handshakes (a module-level function: it runs under a memory limit)."""
    server = ping_flood()
    server.then(reply(body=text_stream("after the flood")))
    policy = dataclasses.replace(FAST, stream_idle_timeout=0.4, stream_max_retries=1)
    try:
        with openai_client(server, home, retry_policy=policy) as client:
            events = run(client.new_turn())
    finally:
        server.close()
    retries = [str(e.error) for e in events if isinstance(e, cl.StreamRetry)]
    texts = [e.delta for e in events if isinstance(e, cl.OutputTextDelta)]
    return retries, texts, len(server.upgrades)


IDLE_WS = "idle timeout waiting for WebSocket events"


def ws_ping_flood_between_turns(home: pathlib.Path) -> tuple[list[str], str, int]:
    """Two turns; after answering each, the server floods pings and stops
    reading: the retries' errors, the second text, the handshakes."""
    full = threading.Event()
    answers = text_events("one", "resp_1"), text_events("two", "resp_2")
    server = ping_flood(*answers, full=full)
    policy = dataclasses.replace(FAST, stream_idle_timeout=0.4)
    try:
        with cl.Conversation(openai_client(server, home, retry_policy=policy)) as convo:
            assert convo.run_turn("first").text == "one"
            assert full.wait(5)  # the pongs fill the buffers
            events = list(convo.stream_turn("second"))
    finally:
        server.close()
    retries = [str(e.error) for e in events if isinstance(e, cl.StreamRetry)]
    return retries, convo.last_result.text, len(server.upgrades)


def deflated_zeros(size: int) -> bytes:
    """`size` zero bytes as one permessage-deflate payload (RFC 7692 7.2.1:
    raw DEFLATE, the sync flush's 00 00 ff ff left off), made a MiB at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib = bytes(1 << 20)
    packed = b"".join(packer.compress(mib) for _ in range(size >> 20))
    return (packed + packer.flush(zlib.Z_SYNC_FLUSH))[:-4]


def deflate_bomb_server(closes: list[bytes]) -> Loopback:
    """A server that agrees to permessage-deflate, answers each request with
    one small compressed frame inflating to 300 MiB, records the client's
    close frame, then never hangs up; HTTP answers a text stream."""
    bomb = deflated_zeros(300 << 20)
    assert len(bomb) < 1 << 20

    def websocket(raw: RawWebSocket) -> None:
        raw.read()  # response.create
        raw.write(0x40 | 0x1, bomb)  # RSV1 on a text frame: compressed
        opcode, _, _, data = raw.read()
        closes.append(bytes([opcode]) + data)
        raw.rfile.read()  # until the client hangs up

    server = Loopback()
    server.websocket = websocket
    server.websocket_headers = {"Sec-WebSocket-Extensions": "permessage-deflate"}
    server.then(reply(body=text_stream("small again")))
    return server


def ws_deflate_bomb_turn(
    home: pathlib.Path,
) -> tuple[list[str], list[str], list[bytes]]:
    """A turn against `deflate_bomb_server`: the retries' errors, the text,
    the close frames the server got (module level: it runs under a limit)."""
    closes: list[bytes] = []
    server = deflate_bomb_server(closes)
    policy = dataclasses.replace(FAST, stream_idle_timeout=30, stream_max_retries=2)
    try:
        with openai_client(server, home, retry_policy=policy) as client:
            events = run(client.new_turn())
    finally:
        server.close()
    retries = [str(e.error) for e in events if isinstance(e, cl.StreamRetry)]
    texts = [e.delta for e in events if isinstance(e, cl.OutputTextDelta)]
    return retries, texts, closes


def connect_proxy() -> tuple[int, list[str], Callable[[], None]]:
    """An HTTP CONNECT proxy on 127.0.0.1: its port, the requests it saw, a stop."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[str] = []

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                head = b""
                while b"\r\n\r\n" not in head:
                    head += conn.recv(4096)
                line = head.split(b"\r\n")[0].decode()
                seen.append(line)
                host, port = line.split()[1].rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)))
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                for a, b in ((conn, upstream), (upstream, conn)):
                    threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], seen, listener.close


def rollout_shape(home: pathlib.Path) -> list[Any]:
    """A thread's rollout lines without what differs per run: ids, times."""
    (path,) = (home / "sessions").rglob("rollout-*.jsonl")
    volatile = {"id", "timestamp", "turn_id", "root_turn_id", "metadata", "cwd"}
    shape = []
    uuid_text = re.compile(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    )
    for line in path.read_text().splitlines():
        line = re.sub(r'"create_time":[0-9.]+', '"create_time":0', line)
        record = json.loads(uuid_text.sub("<uuid>", line))
        payload = record["payload"]
        if record["type"] == "session_meta":
            continue
        kept = {k: v for k, v in payload.items() if k not in volatile}
        kept = {k: v for k, v in kept.items() if not k.endswith(("_at", "_ms"))}
        shape.append((record["type"], kept))
    return shape


def test_a_websocket_server_echoing_the_key_gets_it_nowhere(
    ws: WsBackend, home: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws.answer_headers = list(echo_headers().items())
    # websockets logs a long frame's first 48 and last 24 characters: the key
    # crosses the first cut, and the second
    padded = {"type": "x", "a": "p" * 15 + ECHO_KEY, "b": ECHO_KEY}
    frame = {
        "type": "error",
        "status": 400,
        "headers": {"x-request-id": f"req-{ECHO_KEY}"},
        **ECHO_ERROR,
    }

    def hang_up(connection: Any, request: dict[str, Any], number: int) -> None:
        connection.close(1011, ECHO_KEY)

    ws.then(ws_events(padded, ECHO_FAILED), hang_up, ws_events(frame))
    client = openai_client(ws, home, auth=cl.BearerAuth(ECHO_KEY))
    shown: list[Any] = []
    stream = client.new_turn().stream(cl.Prompt(input=[user("hi")]))
    with caplog.at_level(logging.DEBUG), pytest.raises(cl.InvalidRequest) as caught:
        shown.extend(stream)
    shown += [caught.value, caught.value.code, caught.value.request_id]
    assert ws.handshakes[0].header("authorization") == f"Bearer {ECHO_KEY}"
    assert cl.ServerModel("model-<redacted>") in shown
    assert len([e for e in shown if isinstance(e, cl.StreamRetry)]) == 2
    assert_no_echo("\n".join(map(repr, shown)) + "\n".join(map(str, shown)))
    ours = [r for r in caplog.records if not r.name.startswith("websockets.server")]
    assert any("CLOSE 1011" in r.getMessage() for r in ours)
    assert_no_echo("\n".join(r.getMessage() for r in ours))


def test_ws_handshake_headers_and_frame_keys_are_codexs(
    ws: WsBackend, home: pathlib.Path
) -> None:
    client = openai_client(ws, home, prewarm=True)
    with client:
        events = run(client.new_turn(), instructions="Be brief.")
    assert isinstance(events[-1], cl.Completed)
    (shake,) = ws.handshakes
    codex_open, codex_prewarm, codex_turn = CODEX_WS["records"][:3]
    assert shake.path == codex_open["path"] == "/v1/responses"
    # x-codex-beta-features names Codex's own features
    codex_names = {k.lower() for k, _ in codex_open["headers"]}
    assert set(shake.header_names()) == codex_names - {"x-codex-beta-features"}
    assert shake.header("openai-beta") == "responses_websockets=2026-02-06"
    assert "permessage-deflate" in (shake.header("sec-websocket-extensions") or "")
    assert shake.header("authorization") == "Bearer sk-test"
    assert shake.header("x-client-request-id") == client.thread_id
    prewarm, turn = ws.requests
    assert set(prewarm) == set(codex_prewarm["json"]) - {"tools", "text"}
    assert set(turn) == set(codex_turn["json"]) - {"tools", "text"}
    assert prewarm["generate"] is False and prewarm["type"] == "response.create"
    assert input_texts(prewarm) == ["Be brief."]
    assert turn["previous_response_id"] == "resp_1"
    assert input_texts(turn) == ["hi"]
    codex_metadata = set(codex_turn["json"]["client_metadata"]) - {"mcp_attribution"}
    assert set(turn["client_metadata"]) == codex_metadata


def test_ws_later_turns_send_only_the_new_items(
    ws: WsBackend, home: pathlib.Path
) -> None:
    with cl.Conversation(openai_client(ws, home), instructions="Be brief.") as convo:
        for n in range(1, 4):
            assert convo.run_turn(f"question {n}").text == "ok"
    first, second, third = ws.requests
    assert "previous_response_id" not in first
    assert input_texts(first) == ["Be brief.", "question 1"]
    assert second["previous_response_id"] == "resp_1"
    assert input_texts(second) == ["question 2"]
    assert third["previous_response_id"] == "resp_2"
    assert input_texts(third) == ["question 3"]
    assert len(ws.handshakes) == 1
    assistant = [m.id for m in convo.history if getattr(m, "role", "") == "assistant"]
    assert assistant == ["msg_1", "msg_2", "msg_3"]


def test_ws_changed_settings_or_history_send_the_full_request(
    ws: WsBackend, home: pathlib.Path
) -> None:
    with cl.Conversation(openai_client(ws, home)) as convo:
        convo.run_turn("one")
        convo.run_turn("two", parallel_tool_calls=True)
        del convo.history[-1]  # history that does not extend the last request
        convo.run_turn("three", parallel_tool_calls=True)
    _, second, third = ws.requests
    assert "previous_response_id" not in second
    assert input_texts(second) == ["one", "ok", "two"]
    assert "previous_response_id" not in third
    assert input_texts(third) == ["one", "ok", "two", "three"]


def test_ws_request_fields_in_the_frame_and_a_change_sends_it_in_full(
    ws: WsBackend, home: pathlib.Path
) -> None:
    fields = cl.RequestFields(
        tool_choice="none",
        include=["message.output_text.logprobs"],
        max_output_tokens=64,
        extra_body={"top_logprobs": 2},
    )
    with cl.Conversation(openai_client(ws, home, fields=fields)) as convo:
        convo.run_turn("one")
        convo.run_turn("two")
        convo.client.fields = dataclasses.replace(
            fields, extra_body={"top_logprobs": 5}
        )
        convo.run_turn("three")
    first, second, third = ws.requests
    for frame in first, second, third:
        assert frame["tool_choice"] == "none"
        assert frame["include"] == [
            "reasoning.encrypted_content",
            "message.output_text.logprobs",
        ]
        assert frame["max_output_tokens"] == 64
    assert list(first)[-3:] == ["max_output_tokens", "top_logprobs", "client_metadata"]
    assert (first["top_logprobs"], third["top_logprobs"]) == (2, 5)
    assert second["previous_response_id"] == "resp_1"
    assert input_texts(second) == ["two"]
    assert "previous_response_id" not in third
    assert input_texts(third) == ["one", "ok", "two", "ok", "three"]


def test_ws_turn_state_from_the_handshake_travels_in_client_metadata(
    ws: WsBackend, home: pathlib.Path
) -> None:
    ws.answer_headers = [("x-codex-turn-state", "ts-1")]
    with cl.Conversation(openai_client(ws, home)) as convo:
        convo.run_turn("one")
        convo.run_turn("two")
    first, second = ws.requests
    assert first["client_metadata"]["x-codex-turn-state"] == "ts-1"
    assert "x-codex-turn-state" not in second["client_metadata"]  # a new turn
    assert ws.handshakes[0].header("x-codex-turn-state") is None


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (429, "insufficient_quota", cl.QuotaExceeded),
        (400, "invalid_request_error", cl.InvalidRequest),
        (400, "context_length_exceeded", cl.ContextWindowExceeded),
    ],
)
def test_ws_error_frames_are_the_errors_of_their_status(
    ws: WsBackend, home: pathlib.Path, status: int, code: str, error: type[Exception]
) -> None:
    frame = {
        "type": "error",
        "status": status,
        "error": {"type": code, "code": code, "message": f"it says {code}"},
    }
    ws.then(ws_events(frame))
    with pytest.raises(error, match=f"it says {code}") as raised:
        run(openai_client(ws, home).new_turn())
    assert getattr(raised.value, "status", None) == status
    assert len(ws.frames) == 1


def test_ws_server_errors_stalls_and_closes_are_retried_on_a_fresh_connection(
    ws: WsBackend, home: pathlib.Path
) -> None:
    busy = {"type": "error", "status": 503, "error": {"message": "busy"}}
    started = {"type": "response.created", "response": {"id": "resp_x"}}
    ws.then(ws_events(busy), ws_stall, ws_events(started, close=True))
    policy = dataclasses.replace(FAST, stream_idle_timeout=0.5)
    with cl.Conversation(openai_client(ws, home, retry_policy=policy)) as convo:
        events = list(convo.stream_turn("hi"))
    retries = [e for e in events if isinstance(e, cl.StreamRetry)]
    assert [str(r.error) for r in retries] == [
        "503: busy",
        "idle timeout waiting for WebSocket events",
        "WebSocket closed before response.completed (close code 1000)",
    ]
    assert convo.last_result.text == "ok"
    assert len(ws.handshakes) == 4
    assert all("previous_response_id" not in r for r in ws.requests)


@pytest.mark.parametrize(
    "code",
    # the server forgot; the API ends a socket open for 60 minutes (its docs:
    # open a new connection and continue)
    ["previous_response_not_found", "websocket_connection_limit_reached"],
)
def test_ws_a_forgotten_response_or_an_old_socket_is_sent_again_in_full(
    ws: WsBackend, home: pathlib.Path, code: str
) -> None:
    forgot = {
        "type": "error",
        "status": 400,
        "error": {"type": "invalid_request_error", "code": code, "message": "again"},
    }
    ws.then(ws_answer(), ws_events(forgot))
    with cl.Conversation(openai_client(ws, home)) as convo:
        convo.run_turn("one")
        events = list(convo.stream_turn("two"))
        assert convo.last_result.text == "ok"
    assert input_texts(ws.requests[1]) == ["two"]
    assert input_texts(ws.requests[2]) == ["one", "ok", "two"]
    assert "previous_response_id" not in ws.requests[2] and len(ws.handshakes) == 2
    (retry,) = [e for e in events if isinstance(e, cl.StreamRetry)]
    assert retry.delay == 0.0  # at once: nothing failed on the server's side


def test_ws_events_of_20_mb_arrive_and_over_the_cap_are_stream_errors(
    ws: WsBackend, home: pathlib.Path
) -> None:
    big = "x" * (20 << 20)
    events = text_events(big, "resp_big", "msg_big")
    ws.then(ws_events(*events), ws_events(*events))
    with cl.Conversation(openai_client(ws, home)) as convo:
        assert convo.run_turn("big").text == big
    policy = dataclasses.replace(FAST, stream_max_retries=0)
    small = openai_client(ws, home, retry_policy=policy, max_event_bytes=1 << 20)
    stream = small.new_turn().stream(cl.Prompt(input=[user("big")]))
    retry = next(e for e in stream if isinstance(e, cl.StreamRetry))
    assert "close code 1009" in str(retry.error)  # message too big


def test_ws_426_switches_the_client_to_http_for_good(
    server: Loopback, home: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.then(reply(body=text_stream("one")), reply(body=text_stream("two")))
    caplog.set_level(logging.INFO, logger="codex_lite")
    with cl.Conversation(openai_client(server, home)) as convo:
        assert convo.run_turn("a").text == "one"
        assert convo.run_turn("b").text == "two"
    assert len(server.upgrades) == 1 and len(server.seen) == 2
    switched = [r for r in caplog.records if "over HTTP from now on" in r.message]
    assert len(switched) == 1 and switched[0].levelno == logging.INFO
    # what the captured Codex did: the same request, over HTTP
    codex = json.loads(
        (
            TESTS / "codex-0.169.0/openai-websocket-426-fallback.requests.json"
        ).read_text()
    )
    assert codex["records"][0]["kind"] == "ws-open"
    assert codex["records"][1]["method"] == server.seen[0].method == "POST"


@pytest.mark.parametrize("status", [200, 404])
def test_ws_a_server_that_never_upgrades_gets_http(
    server: Loopback, home: pathlib.Path, status: int
) -> None:
    server.upgrade_status = status
    server.then(reply(body=text_stream("plain")))
    events = run(openai_client(server, home).new_turn())
    assert [e.delta for e in events if isinstance(e, cl.OutputTextDelta)] == ["plain"]
    assert len(server.upgrades) == 1 and server.seen[0].method == "POST"


def test_ws_401_on_the_handshake_reloads_the_credentials(
    server: Loopback, home: pathlib.Path
) -> None:
    server.upgrade_status = 401
    server.then(reply(body=text_stream()))
    # a 401 is not "no WebSockets here": the handshake is sent again after a
    # reload, then the 401 is the error (BearerAuth cannot reload)
    with pytest.raises(cl.ApiError) as raised:
        run(openai_client(server, home).new_turn())
    assert raised.value.status == 401 and len(server.upgrades) == 1


def test_ws_client_frames_are_masked_and_fragments_and_pings_are_handled(
    server: Loopback, home: pathlib.Path
) -> None:
    seen: list[tuple[int, bool, bool, bytes]] = []

    def websocket(raw: RawWebSocket) -> None:
        seen.append(raw.read())  # response.create
        created, delta, done, end = text_events("split", "resp_f", "msg_f")
        raw.send_events(created)
        text = json.dumps(delta).encode()
        raw.write(0x1, text[:10], fin=False)  # a text message in three frames,
        raw.write(0x9, b"are you there", fin=True)  # a ping between them
        raw.write(0x0, text[10:20], fin=False)
        raw.write(0x0, text[20:], fin=True)
        seen.append(raw.read())  # the pong
        raw.send_events(done, end)

    server.websocket = websocket
    events = run(openai_client(server, home).new_turn())
    assert [e.delta for e in events if isinstance(e, cl.OutputTextDelta)] == ["split"]
    (opcode, fin, masked, data), pong = seen
    assert (opcode, fin, masked) == (0x1, True, True)
    assert json.loads(data)["type"] == "response.create"
    assert pong == (0xA, True, True, b"are you there")


def test_ws_failures_past_the_stream_budget_switch_to_http(
    server: Loopback, home: pathlib.Path
) -> None:
    def hang_up(raw: RawWebSocket) -> None:
        raw.read()
        raw.write(0x8, (1011).to_bytes(2, "big"))  # close: internal error

    server.websocket = hang_up
    cut_short = reply(body=sse({"type": "response.created", "response": {"id": "r"}}))
    server.then(cut_short, reply(body=text_stream("over http")))
    server.then(reply(body=text_stream("again")))
    policy = dataclasses.replace(FAST, stream_max_retries=1)
    with cl.Conversation(openai_client(server, home, retry_policy=policy)) as convo:
        events = list(convo.stream_turn("hi"))
        assert convo.last_result.text == "over http"
        assert convo.run_turn("more").text == "again"
    assert len(server.upgrades) == 2  # the budget: one try and one retry
    assert [s.method for s in server.seen] == ["POST", "POST", "POST"]
    # a retry on the socket, the switch, a retry over HTTP: one count, out of
    # both budgets and the switch
    retries = [e for e in events if isinstance(e, cl.StreamRetry)]
    assert [(e.attempt, e.max_attempts) for e in retries] == [(1, 3), (2, 3), (3, 3)]
    assert retries[1].delay == 0.0  # the switch waits for nothing
    # the command line says the same
    server.upgrades.clear()
    server.then(cut_short, cut_short)
    (home / "config.toml").write_text(
        "model_provider = 'mine'\n[model_providers.mine]\nname = 'mine'\n"
        f"base_url = '{server.url}'\nsupports_websockets = true\n"
        "stream_max_retries = 1\n"
    )
    done = cli(home, "exec", "hi")
    told = [line.split(" in ")[0] for line in done.stderr.splitlines() if line]
    assert told == [
        "reconnecting 1/3",
        "reconnecting 2/3",
        "reconnecting 3/3",
        "error: stream closed before response.completed",
    ]
    assert done.returncode == 6 and len(server.upgrades) == 2  # a stream failure


def test_ws_a_ping_flood_that_stops_reading_is_a_stall_then_http(
    home: pathlib.Path,
) -> None:
    with Budget(10):
        retries, texts, shakes = in_memory_limit(
            ws_ping_flood_turn, home, peak=100 << 20
        )
    assert retries == [IDLE_WS] * 2
    assert texts == ["after the flood"] and shakes == 2


def test_ws_a_ping_flood_between_turns_does_not_block_the_next_send(
    home: pathlib.Path,
) -> None:
    with Budget(10):
        retries, text, shakes = in_memory_limit(
            ws_ping_flood_between_turns, home, peak=100 << 20
        )
    # the request could not be written, or its answer never came (which of
    # the two depends on how full the buffers were): a new socket answers
    stalls = {"WebSocket closed before response.completed", IDLE_WS}
    assert len(retries) == 1 and retries[0] in stalls, retries
    assert text == "two" and shakes == 2


def test_ws_a_deflate_bomb_is_refused_1009_retried_then_http(
    home: pathlib.Path,
) -> None:
    with Budget(15):
        retries, texts, closes = in_memory_limit(
            ws_deflate_bomb_turn, home, peak=300 << 20
        )
    assert (
        retries == ["WebSocket closed before response.completed (close code 1009)"] * 3
    )
    assert texts == ["small again"]
    # what the client sent: close, 1009 (message too big), on each connection
    assert [c[:3] for c in closes] == [b"\x08" + (1009).to_bytes(2, "big")] * 3


def test_ws_a_deflate_bomb_on_the_command_line_prints_no_traceback(
    home: pathlib.Path,
) -> None:
    closes: list[bytes] = []
    server = deflate_bomb_server(closes)
    (home / "config.toml").write_text(
        "model_provider = 'mine'\n[model_providers.mine]\nname = 'mine'\n"
        f"base_url = '{server.url}'\nsupports_websockets = true\n"
        "stream_max_retries = 1\nstream_idle_timeout_ms = 30000\n"
    )
    try:
        with Budget(15):
            code, out, err, used = in_memory_limit(
                run_cli, home, "exec", "hi", peak=100 << 20
            )
    finally:
        server.close()
    assert (code, out) == (0, "small again\n"), err
    assert used < 250 << 20, f"the command's peak: {used >> 20} MiB"
    assert "Traceback" not in err and len(closes) == 2
    assert err.count("(close code 1009)") == 2  # a retry and the switch


def test_ws_goes_through_the_proxy_the_environment_names(
    ws: WsBackend, home: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, seen, stop = connect_proxy()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        assert cl.Conversation(openai_client(ws, home)).run_turn("hi").text == "ok"
    finally:
        stop()
    ws_port = ws.url.split(":")[2].split("/")[0]
    assert seen == [f"CONNECT 127.0.0.1:{ws_port} HTTP/1.1"]


def test_ws_rollouts_are_the_same_whichever_transport_ran(
    ws: WsBackend, server: Loopback, tmp_path: pathlib.Path
) -> None:
    server.then(reply(body=text_stream("ok")), reply(body=text_stream("ok")))
    homes = []
    for backend in (ws, server):
        home = tmp_path / f"home-{len(homes)}"
        home.mkdir()
        for args in (("exec", "first"), ("exec", "resume", "--last", "second")):
            done = cli(home, *args, env=openai_env(backend))
            assert done.returncode == 0, done.stderr
        homes.append(home)
    assert len(ws.frames) == 2 and len(server.seen) == 2
    assert rollout_shape(homes[0]) == rollout_shape(homes[1])


def test_ws_off_by_feature_or_without_the_package_and_on_by_provider_key(
    ws: WsBackend, server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream()), reply(body=text_stream()))
    off = ("-c", "features.responses_websockets=false")
    done = cli(home, "exec", *off, "hi", env=openai_env(server))
    assert done.returncode == 0, done.stderr
    hidden = "import sys; sys.modules['websockets'] = None; import codex_lite; "
    done = subprocess.run(
        [sys.executable, "-c", hidden + "sys.exit(codex_lite.main(['exec', 'hi']))"],
        env={**os.environ, "CODEX_HOME": str(home), **openai_env(server)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=HERE,
    )
    assert done.returncode == 0, done.stderr
    assert server.upgrades == [] and len(server.seen) == 2
    (home / "config.toml").write_text(
        "model_provider = 'mine'\n[model_providers.mine]\nname = 'mine'\n"
        f"base_url = '{ws.url}'\nsupports_websockets = true\n"
    )
    done = cli(home, "exec", "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n" and len(ws.frames) == 1


def test_ws_a_silent_handshake_times_out_by_the_provider_key_then_http(
    home: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    table = {
        "name": "silent",
        "base_url": f"http://127.0.0.1:{silent.getsockname()[1]}/v1",
        "supports_websockets": True,
        "websocket_connect_timeout_ms": 200,
        "stream_idle_timeout_ms": 200,
        "request_max_retries": 0,
        "stream_max_retries": 0,
        "experimental_bearer_token": "sk-silent",
    }
    provider = cl.ModelProvider("silent", cl.ProviderInfo.from_toml(table), home=home)
    assert provider.retry_policy().websocket_connect_timeout == 0.2
    caplog.set_level(logging.INFO, logger="codex_lite")
    try:
        with pytest.raises((cl.StreamError, cl.RetryLimitExceeded, cl.TransportError)):
            run(cl.Client(provider, model="m").new_turn())
    finally:
        silent.close()
    assert any(
        re.search(
            r"over HTTP from now on: WebSocket connect to 127\.0\.0\.1:\d+ "
            "failed: TimeoutError",
            r.message,
        )
        for r in caplog.records
    )
    with pytest.raises(cl.ConfigError, match="websocket_connect_timeout_ms must be"):
        cl.ProviderInfo.from_toml({"websocket_connect_timeout_ms": 0})


def test_ws_a_stream_left_unread_is_not_read_by_the_next_turn(
    ws: WsBackend, home: pathlib.Path
) -> None:
    ws.then(ws_answer("first"), ws_answer("second"))
    client = openai_client(ws, home)
    left = client.new_turn().stream(cl.Prompt(input=[user("a")]))
    while not isinstance(next(left), cl.OutputTextDelta):
        pass  # the first answer is still coming when the next turn starts
    events = run(client.new_turn(), user("b"))
    assert [e.delta for e in events if isinstance(e, cl.OutputTextDelta)] == ["second"]
    assert len(ws.handshakes) == 2  # on a fresh connection
    # a consumer that stops at Completed keeps the connection
    for event in client.new_turn().stream(cl.Prompt(input=[user("c")])):
        if isinstance(event, cl.Completed):
            break
    run(client.new_turn(), user("d"))
    assert len(ws.handshakes) == 2


def test_ws_error_frames_follow_their_headers_and_a_401_is_not_resent(
    ws: WsBackend, home: pathlib.Path
) -> None:
    slow = {
        "type": "error",
        "status": 429,
        "error": {"code": "rate_limit_exceeded", "message": "slow down"},
        "headers": {"Retry-After": "0.01"},
    }
    unauthorized = {"type": "error", "status": 401, "error": {"message": "bad key"}}
    ws.then(ws_events(slow), ws_answer("ok"), ws_events(unauthorized))
    events = run(openai_client(ws, home).new_turn())
    (retry,) = [e for e in events if isinstance(e, cl.StreamRetry)]
    assert retry.delay == 0.01 and isinstance(events[-1], cl.Completed)
    with pytest.raises(cl.ApiError) as raised:  # an API key cannot be reloaded
        run(openai_client(ws, home).new_turn())
    assert raised.value.status == 401 and len(ws.frames) == 3


def test_ws_repeated_handshake_headers_are_joined(
    ws: WsBackend, home: pathlib.Path
) -> None:
    ws.answer_headers = [("x-request-id", "req_1"), ("x-request-id", "req_2")]
    ws.then(ws_events({"type": "error", "status": 400, "error": {"message": "no"}}))
    with pytest.raises(cl.InvalidRequest, match="no") as raised:
        run(openai_client(ws, home).new_turn())
    assert raised.value.request_id is None or "req_1" in raised.value.request_id


def test_ws_a_socks_proxy_without_its_package_is_a_config_error(
    ws: WsBackend, home: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "python_socks", None)
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(cl.ConfigError, match="HTTPS_PROXY"):
        run(openai_client(ws, home).new_turn())


def test_ws_a_deadline_in_the_handshake_keeps_websockets_for_the_next_turn(
    home: pathlib.Path,
) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    table = {
        "name": "silent",
        "base_url": f"http://127.0.0.1:{silent.getsockname()[1]}/v1",
        "supports_websockets": True,
        "websocket_connect_timeout_ms": 100,
        "request_max_retries": 50,
        "experimental_bearer_token": "sk-silent",
    }
    provider = cl.ModelProvider("silent", cl.ProviderInfo.from_toml(table), home=home)
    policy = dataclasses.replace(
        provider.retry_policy(), turn_timeout=0.5, base_delay=0.01
    )
    client = cl.Client(provider, model="m", retry_policy=policy)
    try:
        with pytest.raises(cl.RetryLimitExceeded, match="deadline"):
            run(client.new_turn())
    finally:
        silent.close()
    assert not client._over_http  # not switched to HTTP by the deadline


# --- Retry and the turn -----------------------------------------------------


POLICY = cl.RetryPolicy(request_max_retries=2, base_delay=1.0)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_retryable_statuses_then_success(
    server: Loopback, home: pathlib.Path, status: int
) -> None:
    server.then(
        reply(status, b"oops"), reply(status, b"oops"), reply(body=text_stream())
    )
    events = run(local_client(server, home).new_turn())
    assert isinstance(events[-1], cl.Completed)
    assert len(server.seen) == 3
    assert len({s.body for s in server.seen}) == 1


def test_retry_limit_exceeded(server: Loopback, home: pathlib.Path) -> None:
    server.then(*[reply(500, b"down")] * 5)
    with pytest.raises(cl.RetryLimitExceeded) as caught:
        run(local_client(server, home).new_turn())
    assert len(server.seen) == 5  # 1 + request_max_retries (4)
    assert isinstance(caught.value.last_error, cl.ApiError)
    assert caught.value.last_error.status == 500


def test_429_without_retry_after_is_not_retried(
    server: Loopback, home: pathlib.Path
) -> None:
    body = json.dumps(
        {"error": {"message": "slow down", "code": "rate_limit_exceeded"}}
    )
    server.then(reply(429, body.encode(), {"x-request-id": "req_429"}))
    with pytest.raises(cl.ApiError) as caught:
        run(local_client(server, home).new_turn())
    assert len(server.seen) == 1
    assert caught.value.status == 429 and caught.value.request_id == "req_429"
    assert "req_429" in str(caught.value)


@pytest.mark.parametrize(
    "headers",
    [{"retry-after-ms": "5"}, {"Retry-After": "0.01"}, {"x-should-retry": "true"}],
)
def test_429_is_retried_when_the_server_says_when(
    server: Loopback, home: pathlib.Path, headers: dict[str, str]
) -> None:
    server.then(reply(429, b"{}", headers), reply(body=text_stream()))
    assert isinstance(run(local_client(server, home).new_turn())[-1], cl.Completed)
    assert len(server.seen) == 2


def test_retry_after_http_date_in_the_past_retries_at_once(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(
        reply(409, b"{}", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        reply(body=text_stream()),
    )
    run(local_client(server, home).new_turn())
    assert len(server.seen) == 2


def test_retry_after_over_120_seconds_raises_at_once(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(503, b"{}", {"Retry-After": "121"}))
    started = time.monotonic()
    with pytest.raises(cl.ApiError):
        run(local_client(server, home).new_turn())
    assert len(server.seen) == 1 and time.monotonic() - started < 5


def test_x_should_retry_false_stops_retries(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(500, b"{}", {"x-should-retry": "false"}))
    with pytest.raises(cl.ApiError):
        run(local_client(server, home).new_turn())
    assert len(server.seen) == 1


def test_insufficient_quota_is_never_retried(
    server: Loopback, home: pathlib.Path
) -> None:
    body = {
        "error": {"message": "You exceeded your quota", "code": "insufficient_quota"}
    }
    server.then(reply(429, json.dumps(body).encode(), {"Retry-After": "1"}))
    with pytest.raises(cl.QuotaExceeded, match="exceeded your quota"):
        run(local_client(server, home).new_turn())
    assert len(server.seen) == 1


def test_connection_refused_is_retried_then_reported(home: pathlib.Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = cl.ModelProvider(
        "local",
        cl.ProviderInfo(name="local", base_url=f"http://127.0.0.1:{port}/v1"),
        home=home,
    )
    client = cl.Client(
        provider,
        model="m",
        retry_policy=dataclasses.replace(FAST, request_max_retries=2),
    )
    with pytest.raises(
        cl.RetryLimitExceeded,
        match=f"after 3 attempts: request to 127.0.0.1:{port} failed: connection error",
    ) as caught:
        run(client.new_turn())
    assert isinstance(caught.value.last_error, cl.TransportError)
    assert not isinstance(caught.value.last_error, cl.ApiError)  # nothing answered


@pytest.mark.parametrize(
    ("status", "headers", "attempt", "reloaded", "step"),
    [
        (None, {}, 1, False, "backoff"),  # no answer: the connection is retried
        (None, {}, 3, False, "exhausted"),
        (503, {}, 1, False, "backoff"),
        (503, {}, 3, False, "exhausted"),
        (408, {}, 2, False, "backoff"),
        (401, {}, 1, False, "reload"),
        (401, {}, 1, True, "raise"),  # a second 401 is final
        (400, {}, 1, False, "raise"),
        (429, {}, 1, False, "raise"),  # 429 only when the server says when
        (429, {"retry-after": "7"}, 1, False, 7.0),
        (409, {"retry-after-ms": "250"}, 1, False, 0.25),
        (429, {"retry-after": "121"}, 1, False, "raise"),  # over max_retry_after
        (503, {"x-should-retry": "false"}, 1, False, "raise"),
        (400, {"x-should-retry": "true"}, 1, False, "backoff"),
        (503, {"retry-after": "nan"}, 1, False, "backoff"),
    ],
)
def test_next_step_is_decided_from_the_outcome_alone(
    status: int | None,
    headers: dict[str, str],
    attempt: int,
    reloaded: bool,
    step: Any,
) -> None:
    error = cl.ApiError("x", status=status)
    got = cl._next_step(error, status, headers, attempt, reloaded, POLICY)
    if step == "backoff":  # base_delay doubling, ±10%
        assert isinstance(got, float)
        assert 0.9 * 2 ** (attempt - 1) <= got <= 1.1 * 2 ** (attempt - 1)
    else:
        assert got == step
    quota = cl.QuotaExceeded("q", status=429, code="insufficient_quota")
    assert cl._next_step(quota, 429, {"retry-after": "1"}, 1, False, POLICY) == "raise"


def test_reset_before_headers_is_retried(server: Loopback, home: pathlib.Path) -> None:
    server.then(reset_connection, reply(body=text_stream()))
    assert isinstance(run(local_client(server, home).new_turn())[-1], cl.Completed)
    assert len(server.seen) == 2


# ... stream retries and budgets ...


def test_stream_closed_before_completed_is_retried(
    server: Loopback, home: pathlib.Path
) -> None:
    partial = sse({"type": "response.output_text.delta", "delta": "Hel"})
    server.then(reply(body=partial), reply(body=text_stream("Hello")))
    events = run(stream_retry_client(server, home).new_turn())
    retry = next(e for e in events if isinstance(e, cl.StreamRetry))
    assert (retry.attempt, retry.max_attempts) == (1, 2)
    assert str(retry.error) == "stream closed before response.completed"
    assert isinstance(events[-1], cl.Completed)
    assert len(server.seen) == 2 and server.seen[0].body == server.seen[1].body


def test_stream_retries_run_out(server: Loopback, home: pathlib.Path) -> None:
    partial = sse({"type": "response.created", "response": {"id": "r"}})
    server.then(*[reply(body=partial, headers={"x-request-id": "req_s"})] * 3)
    with pytest.raises(
        cl.StreamError,
        match=r"stream closed before response.completed \(request id req_s\)",
    ):
        run(stream_retry_client(server, home).new_turn())
    assert len(server.seen) == 3


def test_disconnect_mid_stream_is_retried(server: Loopback, home: pathlib.Path) -> None:
    def cut(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = sse({"type": "response.output_text.delta", "delta": "par"})
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        handler.wfile.write(b"ff\r\npartial chunk")
        handler.wfile.flush()
        reset_connection(handler)

    server.then(cut, reply(body=text_stream()))
    events = run(stream_retry_client(server, home).new_turn())
    retry = next(e for e in events if isinstance(e, cl.StreamRetry))
    assert "stream disconnected before completion" in str(retry.error)
    assert isinstance(events[-1], cl.Completed)


def test_rate_limited_response_failed_is_retried_after_the_delay(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(
        reply(body=sse(failed("rate_limit_exceeded", "Please try again in 28ms."))),
        reply(body=text_stream()),
    )
    events = run(stream_retry_client(server, home).new_turn())
    retry = next(e for e in events if isinstance(e, cl.StreamRetry))
    assert retry.delay == pytest.approx(0.028)
    assert isinstance(events[-1], cl.Completed)


def test_fault_retry_after_budget(server: Loopback, home: pathlib.Path) -> None:
    server.then(*[reply(503, b"", {"retry-after-ms": "150"})] * 3)
    policy = dataclasses.replace(FAST, request_max_retries=2)
    with Budget(0.45 + 2), pytest.raises(cl.RetryLimitExceeded):
        run(local_client(server, home, retry_policy=policy).new_turn())
    assert len(server.seen) == 3
    assert len({s.body for s in server.seen}) == 1


def test_fault_stall_with_stream_retries_stays_in_budget(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(*[reply(body=[b": ping\n\n"], hang=5)] * 3)
    policy = dataclasses.replace(FAST, stream_idle_timeout=0.25, stream_max_retries=2)
    with Budget(3 * 0.25 + 2), pytest.raises(cl.StreamError, match="idle timeout"):
        run(local_client(server, home, retry_policy=policy).new_turn())
    assert len(server.seen) == 3 and len({s.body for s in server.seen}) == 1


def test_fault_reset_after_headers_every_time(
    server: Loopback, home: pathlib.Path
) -> None:
    def headers_then_reset(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.flush()
        reset_connection(handler)

    server.then(*[headers_then_reset] * 3)
    with (
        Budget(5),
        pytest.raises(cl.StreamError, match="stream disconnected before completion"),
    ):
        run(stream_retry_client(server, home).new_turn())
    assert len(server.seen) == 3


def test_hostile_waits_are_bounded(server: Loopback, home: pathlib.Path) -> None:
    server.then(reply(503, b"", {"Retry-After": "Tue, 01 Dec 2026 00:00:00 -0000"}))
    server.then(reply(body=text_stream()))
    with Budget(3):
        assert isinstance(run(local_client(server, home).new_turn())[-1], cl.Completed)
    server.then(reply(body=sse(failed("rate_limit_exceeded", "Try again in 1e20s."))))
    server.then(reply(body=text_stream()))  # not a delay it gives: retried as usual
    with Budget(3):
        assert isinstance(run(local_client(server, home).new_turn())[-1], cl.Completed)
    for delay in ("86400s", "100000000000000000000s"):
        server.then(
            reply(body=sse(failed("rate_limit_exceeded", f"Try again in {delay}.")))
        )
        with Budget(3), pytest.raises(cl.StreamError):
            run(local_client(server, home).new_turn())
    policy = dataclasses.replace(FAST, turn_timeout=1.0, base_delay=0.4)
    server.then(*[reply(503, b"")] * 10)
    with Budget(3), pytest.raises(cl.RetryLimitExceeded, match="deadline"):
        run(local_client(server, home, retry_policy=policy).new_turn())
    server.then(reply(body=[b": keep-alive\n"] * 40, pause=0.1))
    with Budget(3), pytest.raises(cl.RetryLimitExceeded, match="deadline"):
        run(local_client(server, home, retry_policy=policy).new_turn())


# ... the turn's deadline ...


def test_turn_timeout_bounds_every_round_of_a_turn(
    server: Loopback, home: pathlib.Path
) -> None:
    def slow() -> str:
        time.sleep(0.6)
        return "late"

    server.then(
        reply(body=calls_stream(call("slow", {}, "c1"))), reply(body=text_stream())
    )
    policy = dataclasses.replace(FAST, turn_timeout=0.5)
    convo = cl.Conversation(openai_client(server, home, retry_policy=policy))
    with pytest.raises(cl.RetryLimitExceeded, match=r"deadline.*turn_timeout \(0.5s\)"):
        convo.run_turn("go", tools=[slow])
    assert len(server.seen) == 1  # nothing sent once the deadline passed


def test_turn_timeout_is_checked_before_a_request_on_an_open_websocket(
    ws: WsBackend, home: pathlib.Path
) -> None:
    def slow() -> str:
        time.sleep(0.4)
        return "late"

    item = {"type": "function_call", **call("slow", {}, "w1")}
    ws.then(ws_events({"type": "response.output_item.done", "item": item}, completed()))
    policy = dataclasses.replace(FAST, turn_timeout=0.3)
    convo = cl.Conversation(openai_client(ws, home, retry_policy=policy))
    with convo, pytest.raises(cl.RetryLimitExceeded, match="turn_timeout"):
        convo.run_turn("go", tools=[slow])
    assert len(ws.frames) == 1 and len(ws.handshakes) == 1


# ... server-side state: store over HTTP, background mode ...


def test_background_stream_cut_every_minute_resumes_where_it_stopped(
    server: Loopback, home: pathlib.Path
) -> None:
    """A 30-minute answer behind a proxy that cuts idle connections every 60 s:
    each cut is resumed from the last event seen, never started again."""
    events = background_answer(30)
    server.then(
        cut(*events[:2]), *[cut(e) for e in events[2:31]], reply(body=sse(*events[31:]))
    )
    turn = openai_client(server, home).new_turn()
    got = list(turn.stream(cl.Prompt(input=[user("go")], background=True)))
    assert not any(isinstance(e, cl.StreamRetry) for e in got)  # nothing to take back
    deltas = [e.delta for e in got if isinstance(e, cl.OutputTextDelta)]
    assert deltas == [f"{n} " for n in range(30)]  # each once
    assert isinstance(got[-1], cl.Completed) and got[-1].response_id == "resp_bg"
    first, *resumed = server.seen
    body = first.json()
    assert (first.method, body["background"], body["store"], body["stream"]) == (
        "POST",
        True,
        True,
        True,
    )
    assert [(s.method, s.path) for s in resumed] == [
        ("GET", f"/v1/responses/resp_bg?stream=true&starting_after={n}")
        for n in range(1, 31)
    ]
    assert {s.header("authorization") for s in resumed} == {"Bearer sk-test"}
    assert {s.header("accept") for s in resumed} == {"text/event-stream"}
    assert server.upgrades == []  # background mode is HTTP's


def test_background_response_cancelled_when_the_caller_stops_or_time_runs_out(
    server: Loopback, home: pathlib.Path
) -> None:
    events = background_answer(3)
    cancelled = reply(
        200,
        b'{"id":"resp_bg","status":"cancelled"}',
        {"Content-Type": "application/json"},
    )
    server.then(reply(body=sse(*events[:2]), hang=3), cancelled)
    turn = openai_client(server, home).new_turn()
    stream = turn.stream(cl.Prompt(input=[user("go")], background=True))
    assert isinstance(
        next(e for e in stream if isinstance(e, cl.OutputTextDelta)), cl.OutputTextDelta
    )
    stream.close()  # the caller stops
    assert [(s.method, s.path) for s in server.seen] == [
        ("POST", "/v1/responses"),
        ("POST", "/v1/responses/resp_bg/cancel"),
    ]
    assert server.seen[1].header("authorization") == "Bearer sk-test"
    server.seen.clear()
    server.then(reply(body=sse(*events[:2]), hang=3), cancelled)
    policy = dataclasses.replace(FAST, turn_timeout=0.5)
    turn = openai_client(server, home, retry_policy=policy).new_turn()
    with pytest.raises(cl.RetryLimitExceeded, match="deadline"):
        list(turn.stream(cl.Prompt(input=[user("go")], background=True)))
    assert [s.path for s in server.seen] == [
        "/v1/responses",
        "/v1/responses/resp_bg/cancel",
    ]


def test_background_response_that_failed_is_sent_again_not_resumed_or_cancelled(
    server: Loopback, home: pathlib.Path
) -> None:
    """A background response that ended in `response.failed` is over: the
    request goes again as any failed stream does, with nothing to resume
    and nothing left to cancel."""
    events = background_answer(3)
    failed = {
        "type": "response.failed",
        "response": {
            "id": "resp_bg",
            "error": {"code": "server_error", "message": "boom"},
        },
        "sequence_number": 3,
    }
    server.then(reply(body=sse(*events[:3], failed)), reply(body=sse(*events)))
    turn = openai_client(server, home).new_turn()
    got = list(turn.stream(cl.Prompt(input=[user("go")], background=True)))
    (retry,) = [e for e in got if isinstance(e, cl.StreamRetry)]
    assert "boom" in str(retry.error)  # the deltas before it are to be dropped
    assert isinstance(got[-1], cl.Completed)
    assert [(s.method, s.path) for s in server.seen] == [("POST", "/v1/responses")] * 2


def test_background_stream_without_sequence_numbers_is_cancelled_and_sent_again(
    server: Loopback, home: pathlib.Path
) -> None:
    """Without `sequence_number`s a cut stream cannot be resumed: the
    response is cancelled, not left running, and the request sent again."""
    events = [
        {k: v for k, v in e.items() if k != "sequence_number"}
        for e in background_answer(2)
    ]
    cancelled = reply(
        200,
        b'{"id":"resp_bg","status":"cancelled"}',
        {"Content-Type": "application/json"},
    )
    server.then(cut(*events[:2]), cancelled, reply(body=sse(*events)))
    turn = openai_client(server, home).new_turn()
    got = list(turn.stream(cl.Prompt(input=[user("go")], background=True)))
    assert any(isinstance(e, cl.StreamRetry) for e in got)
    assert isinstance(got[-1], cl.Completed)
    assert [(s.method, s.path) for s in server.seen] == [
        ("POST", "/v1/responses"),
        ("POST", "/v1/responses/resp_bg/cancel"),
        ("POST", "/v1/responses"),
    ]


def test_store_over_http_sends_what_is_new_and_all_of_it_once_forgotten(
    server: Loopback, home: pathlib.Path
) -> None:
    forgotten = json.dumps(
        {
            "error": {
                "code": "previous_response_not_found",
                "message": "Previous response not found.",
            }
        }
    )
    server.then(
        reply(body=text_stream("one", "resp_1")),
        reply(body=text_stream("two", "resp_2")),
        reply(400, forgotten.encode(), {"Content-Type": "application/json"}),
        reply(body=text_stream("three", "resp_3")),
    )
    client = openai_client(server, home, fields=cl.RequestFields(store=True))
    convo = cl.Conversation(client)
    assert [convo.run_turn(t).text for t in ("first", "second", "third")] == [
        "one",
        "two",
        "three",
    ]
    bodies = [s.json() for s in server.seen]
    assert {b["store"] for b in bodies} == {True}
    assert [b.get("previous_response_id") for b in bodies] == [
        None,
        "resp_1",
        "resp_2",
        None,
    ]
    assert [input_texts(b) for b in bodies] == [
        ["first"],
        ["second"],
        ["third"],
        ["first", "one", "second", "two", "third"],  # forgotten: all of it, at once
    ]
    assert server.upgrades  # WebSockets were tried first, as ever


def test_store_prepare_shows_what_the_next_request_sends_and_subagents_start_anew(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream("one", "resp_1")))
    client = openai_client(server, home, fields=cl.RequestFields(store=True))
    first = [user("first")]
    events = list(client.new_turn().stream(cl.Prompt(input=first)))
    answer = [e.item for e in events if isinstance(e, cl.OutputItemDone)]
    following = cl.Prompt(input=[*first, *answer, user("second")])
    body = json.loads(client.new_turn().prepare(following).json or b"")
    assert (body["previous_response_id"], input_texts(body)) == ("resp_1", ["second"])
    child = client.subagent_client("review")  # its own thread: nothing stored yet
    body = json.loads(child.new_turn().prepare(following).json or b"")
    assert "previous_response_id" not in body
    assert input_texts(body) == ["first", "one", "second"]


def test_store_over_http_is_opt_in_azure_keeps_sending_in_full(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream("one", "resp_1")), reply(body=text_stream()))
    client = local_client(server, home, info={"name": "azure"})
    convo = cl.Conversation(client)
    convo.run_turn("first")
    convo.run_turn("second")
    second = server.seen[1].json()
    assert second["store"] is True  # Azure's default, as Codex sends it
    assert "previous_response_id" not in second
    assert input_texts(second) == ["first", "one", "second"]


# --- Tools and structured output --------------------------------------------


def outputs(request: Seen) -> list[tuple[str, str]]:
    return [
        (i["call_id"], i["output"])
        for i in request.json()["input"]
        if i["type"] in ("function_call_output", "custom_tool_call_output")
    ]


class Unsayable(Exception):
    def __str__(self) -> str:
        raise LookupError("no words for it")


class Halt(BaseException):
    """Neither an Exception nor SystemExit or KeyboardInterrupt."""


@dataclasses.dataclass
class Verdict:
    ok: bool
    reasons: list[str]
    score: int | None


class Point(typing.TypedDict):
    x: float
    y: float


def tally(count: int, weight: float, limit: int | None = None) -> str:
    """Says the types its arguments arrived as."""
    return " ".join(type(v).__name__ for v in (count, weight, limit))


def turn_at(url: str, home: pathlib.Path, kwargs: dict[str, Any]) -> Any:
    """A turn against the server at `url`: the parsed reply, or what the
    OutputParseError said (its two arguments do not unpickle)."""
    client = openai_client(types.SimpleNamespace(url=url), home)
    try:
        return cl.Conversation(client).run_turn("go", **kwargs).parsed
    except cl.OutputParseError as exc:
        return str(exc), exc.text


def run_example(
    name: str, home: pathlib.Path, server: Loopback, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))
    }
    return subprocess.run(
        [sys.executable, str(HERE / "examples" / name), *args],
        env={
            **env,
            "CODEX_HOME": str(home),
            "PYTHONPATH": str(HERE),
            **openai_env(server),
        },
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclasses.dataclass
class Spot:
    x: int
    y: int
    label: typing.ClassVar[str] = "spot"
    seen: bool = dataclasses.field(default=False, init=False)


@dataclasses.dataclass
class Route:
    start: Spot
    stop: Spot | None
    hops: list[Spot]


@dataclasses.dataclass
class Tree:
    children: list[Tree]


@pytest.mark.parametrize(
    ("hint", "schema"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (list[str], {"type": "array", "items": {"type": "string"}}),
        (
            dict[str, float],
            {"type": "object", "additionalProperties": {"type": "number"}},
        ),
        (typing.Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (typing.Literal[1, 2], {"type": "integer", "enum": [1, 2]}),
        (
            typing.Optional[int],  # noqa: UP045 - the spelling under test
            {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        ),
        (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (
            typing.Annotated[str, "the file to read"],
            {"type": "string", "description": "the file to read"},
        ),
        (
            list[typing.Annotated[int, "a line number"]],
            {
                "type": "array",
                "items": {"type": "integer", "description": "a line number"},
            },
        ),
    ],
)
def test_parameter_schemas(hint: Any, schema: dict[str, Any]) -> None:
    def fn(x: hint) -> None:  # type: ignore[valid-type]
        pass

    fn.__annotations__["x"] = hint
    parameters = cl.tool(fn).definition["parameters"]
    assert parameters["properties"]["x"] == schema


@pytest.mark.parametrize(
    "hint",
    [set[int], tuple[int, int], bytes, dict[int, str], typing.Literal["a", 1], object],
)
def test_types_without_a_schema_fail_when_the_tool_is_made(hint: Any) -> None:
    def lookup(key: str, value: Any = None) -> None:
        pass

    lookup.__annotations__["value"] = hint
    with pytest.raises(TypeError, match="tool lookup: parameter value: no JSON Schema"):
        cl.tool(lookup)


def test_a_function_tool_definition() -> None:
    def read_file(
        path: typing.Annotated[str, "relative to the work tree"],
        limit: int = 100,
        *,
        encoding: typing.Literal["utf-8", "latin-1"] = "utf-8",
    ) -> str:
        """Read a file of the
        work tree.

        Longer notes stay out of the description.
        """
        return ""

    assert cl.tool(read_file).definition == {
        "type": "function",
        "name": "read_file",
        "description": "Read a file of the work tree.",
        "parameters": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "relative to the work tree"},
                "limit": {"type": "integer"},
                "encoding": {"type": "string", "enum": ["utf-8", "latin-1"]},
            },
            "required": ["path"],
            "additionalProperties": False,
        },
        "strict": False,
    }
    with pytest.raises(TypeError, match="has no type annotation"):
        cl.tool(lambda x: x)
    with pytest.raises(TypeError, match="custom tool shell: it must take one str"):

        def shell(command: str, cwd: str) -> str:
            return ""

        cl.tool(shell, custom=True)


def test_two_rounds_of_tool_calls_then_the_answer(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "notes.txt").write_text("alpha beta gamma")

    def read_file(path: str) -> str:
        """Read a text file."""
        return (tmp_path / path).read_text()

    def count_words(text: str) -> dict[str, int]:
        return {"words": len(text.split())}

    server.then(
        reply(
            body=calls_stream(
                call("read_file", {"path": "notes.txt"}, "c1"), response_id="r1"
            )
        ),
        reply(
            body=calls_stream(
                call("count_words", {"text": "alpha beta gamma"}, "c2"),
                response_id="r2",
            )
        ),
        reply(body=text_stream("Three words.", "r3")),
    )
    path = tmp_path / "rollout.jsonl"
    writer = cl.RolloutWriter.create(home, str(uuid.uuid4()), {"cwd": str(tmp_path)})
    with cl.Conversation(openai_client(server, home), rollout=writer) as convo:
        result = convo.run_turn(
            "How many words in notes.txt?", tools=[read_file, count_words]
        )
        path = writer.path
    assert result.text == "Three words."
    assert [type(i).__name__ for i in result.items] == [
        "FunctionCall", "FunctionCallOutput", "FunctionCall", "FunctionCallOutput", "Message",
    ]  # fmt: skip
    first, second, third = server.seen
    assert [t["name"] for t in first.json()["tools"]] == ["read_file", "count_words"]
    assert first.json()["tools"][0]["description"] == "Read a text file."
    assert outputs(second) == [("c1", "alpha beta gamma")]
    assert outputs(third) == [("c1", "alpha beta gamma"), ("c2", '{"words": 3}')]
    # one turn: the same turn id on every request
    turn_ids = {
        json.loads(s.header("x-codex-turn-metadata") or "")["turn_id"]
        for s in server.seen
    }
    assert len(turn_ids) == 1
    kinds = [
        json.loads(line)["payload"].get("type")
        for line in path.read_text().splitlines()
        if json.loads(line)["type"] == "response_item"
    ]
    assert kinds == ["message", "function_call", "function_call_output"] * 1 + [
        "function_call", "function_call_output", "message",
    ]  # fmt: skip


def test_a_parallel_round_runs_together_and_answers_in_call_order(
    server: Loopback, home: pathlib.Path
) -> None:
    both_running = threading.Barrier(2, timeout=10)
    second_done = threading.Event()

    def slow(n: int) -> str:
        both_running.wait()  # only returns if the other call runs meanwhile
        if n == 0:  # the first call finishes last
            assert second_done.wait(timeout=10)
        else:
            second_done.set()
        return f"done {n}"

    server.then(
        reply(
            body=calls_stream(call("slow", {"n": 0}, "a"), call("slow", {"n": 1}, "b"))
        ),
        reply(body=text_stream("ok")),
    )
    convo = cl.Conversation(openai_client(server, home))
    convo.run_turn("go", tools=[slow], parallel_tool_calls=True)
    assert server.seen[0].json()["parallel_tool_calls"] is True
    assert outputs(server.seen[1]) == [("a", "done 0"), ("b", "done 1")]


def test_raising_tools_bad_arguments_and_unknown_tools_are_told_to_the_model(
    server: Loopback, home: pathlib.Path
) -> None:
    def divide(a: int, b: int) -> float:
        return a / b

    server.then(
        reply(
            body=calls_stream(
                call("divide", {"a": 1, "b": 0}, "c1"),
                call("divide", "{not json", "c2"),
                call("divide", {"a": "one", "b": 2}, "c3"),
                call("divide", {"a": 1}, "c4"),
                call("divide", {"a": 1, "b": 2, "c": 3}, "c5"),
                call("multiply", {"a": 1}, "c6"),
                {"name": "shell", "input": "ls", "call_id": "c7"},
            )
        ),
        reply(body=text_stream("sorry")),
    )
    convo = cl.Conversation(openai_client(server, home))
    assert convo.run_turn("divide", tools=[divide]).text == "sorry"
    told = dict(outputs(server.seen[1]))
    assert told["c1"] == "error: ZeroDivisionError: division by zero"
    assert told["c2"].startswith("error: the arguments are not JSON: ")
    assert told["c3"] == "error: arguments.a: must be of type integer"
    assert told["c4"] == "error: arguments: 'b' is missing"
    assert told["c5"] == "error: arguments: 'c' is not a parameter"
    assert told["c6"] == "error: no tool named 'multiply'"
    assert told["c7"] == "error: no tool named 'shell'"
    assert "Traceback" not in json.dumps(told)


def test_failures_no_message_or_json_can_show_are_told_to_the_model(
    server: Loopback, home: pathlib.Path
) -> None:
    def fail(how: str) -> Any:
        if how == "deep":
            deep: list[Any] = []
            for _ in range(100_000):
                deep = [deep]
            return deep
        raise {"unsayable": Unsayable(), "halt": Halt("halted")}.get(how, SystemExit(3))

    server.then(
        reply(
            body=calls_stream(
                call("fail", {"how": "unsayable"}, "c1"),
                call("fail", {"how": "deep"}, "c2"),
                call("fail", {"how": "halt"}, "c3"),
            )
        ),
        reply(body=text_stream("noted")),
        reply(body=calls_stream(call("fail", {"how": "exit"}, "c4"))),
    )
    convo = cl.Conversation(openai_client(server, home))
    assert convo.run_turn("try", tools=[fail]).text == "noted"
    told = dict(outputs(server.seen[1]))
    assert told["c1"] == "error: Unsayable (its message cannot be shown)"
    assert told["c2"].startswith("error: RecursionError: ")
    assert told["c3"] == "error: Halt: halted"
    with pytest.raises(SystemExit):
        convo.run_turn("again", tools=[fail])
    assert len(server.seen) == 3


def test_custom_tools_take_the_free_form_input(
    server: Loopback, home: pathlib.Path
) -> None:
    def shell(command: str) -> str:
        """Run a shell command."""
        return f"ran {command}"

    server.then(
        reply(body=calls_stream({"name": "shell", "input": "ls -l", "call_id": "k1"})),
        reply(body=text_stream("listed")),
    )
    convo = cl.Conversation(openai_client(server, home))
    convo.run_turn("list", tools=[cl.tool(shell, custom=True)])
    assert server.seen[0].json()["tools"] == [
        {"type": "custom", "name": "shell", "description": "Run a shell command."}
    ]
    (answer,) = [
        i
        for i in server.seen[1].json()["input"]
        if i["type"] == "custom_tool_call_output"
    ]
    assert (answer["call_id"], answer["output"]) == ("k1", "ran ls -l")


def test_the_round_limit_is_a_typed_error_that_keeps_the_history(
    server: Loopback, home: pathlib.Path
) -> None:
    def again() -> str:
        return "once more"

    server.then(
        *(reply(body=calls_stream(call("again", {}, f"c{n}"))) for n in range(3))
    )
    convo = cl.Conversation(openai_client(server, home))
    with pytest.raises(cl.ToolRoundsExceeded, match="after 2 rounds"):
        convo.run_turn("loop", tools=[again], max_tool_rounds=2)
    assert len(server.seen) == 3
    kinds = [type(i).__name__ for i in convo.history]
    assert kinds.count("FunctionCall") == 3 and kinds.count("FunctionCallOutput") == 2


def test_calls_past_the_bound_of_a_response_are_answered_not_run(
    server: Loopback, home: pathlib.Path
) -> None:
    many = [call("tally", {"count": n, "weight": 0.5}, f"c{n}") for n in range(500)]
    server.then(reply(body=calls_stream(*many)), reply(body=text_stream("done")))
    in_memory_limit(turn_at, server.url, home, {"tools": [tally]}, peak=200 << 20)
    told = outputs(server.seen[1])
    assert [call_id for call_id, _ in told] == [f"c{n}" for n in range(500)]
    assert {text for _, text in told[:64]} == {"int float NoneType"}
    assert {text for _, text in told[64:]} == {
        "error: not run: at most 64 tool calls are run at once"
    }


def test_ctrl_c_in_a_tool_keeps_the_rollout_and_resume_goes_on_mid_loop(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    answers = iter([KeyboardInterrupt, "42"])

    def ask() -> str:
        answer = next(answers)
        if answer is KeyboardInterrupt:
            raise KeyboardInterrupt
        return str(answer)

    server.then(
        reply(body=calls_stream(call("ask", {}, "c1"))),
        reply(body=text_stream("It is 42.")),
    )
    thread_id = str(uuid.uuid4())
    writer = cl.RolloutWriter.create(
        home, thread_id, {"id": thread_id, "cwd": str(tmp_path)}
    )
    convo = cl.Conversation(
        openai_client(server, home, thread_id=thread_id), rollout=writer
    )
    with pytest.raises(KeyboardInterrupt):
        convo.run_turn("what is it?", tools=[ask])
    convo.close()
    rollout = cl.read_rollout(writer.path)
    assert [type(i).__name__ for i in rollout.items] == ["Message", "FunctionCall"]
    client = openai_client(server, home, thread_id=thread_id)
    resumed = cl.Conversation(
        client, history=rollout.items, rollout=cl.RolloutWriter(writer.path)
    )
    assert resumed.run_turn([], tools=[ask]).text == "It is 42."
    assert outputs(server.seen[1]) == [("c1", "42")]
    kinds = [type(i).__name__ for i in cl.read_rollout(writer.path).items]
    assert kinds == ["Message", "FunctionCall", "FunctionCallOutput", "Message"]


def test_structured_output_from_a_dataclass_or_typeddict(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(
        reply(
            body=text_stream('{"ok": true, "reasons": ["tests pass"], "score": null}')
        ),
        reply(body=text_stream('{"x": 1.5, "y": -2}')),
        reply(body=text_stream("not JSON at all")),
    )
    convo = cl.Conversation(openai_client(server, home))
    result = convo.run_turn("review", output_schema=Verdict)
    assert result.parsed == Verdict(ok=True, reasons=["tests pass"], score=None)
    assert server.seen[0].json()["text"]["format"] == {
        "type": "json_schema",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "ok": {"type": "boolean"},
                "reasons": {"type": "array", "items": {"type": "string"}},
                "score": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            },
            "required": ["ok", "reasons", "score"],
            "additionalProperties": False,
        },
        "name": "codex_output_schema",
    }
    assert convo.run_turn("where", output_schema=Point).parsed == {"x": 1.5, "y": -2}
    with pytest.raises(cl.OutputParseError) as raised:
        convo.run_turn("again", output_schema=Verdict)
    assert raised.value.text == "not JSON at all"
    assert convo.last_result.text == "not JSON at all"  # the reply is kept


def test_replies_and_arguments_are_checked_against_their_schemas(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(
        reply(
            body=calls_stream(
                call("tally", '{"count": 3.0, "weight": 2.5, "limit": 7.0}', "c1"),
                call("tally", '{"count": 1, "weight": 1e999}', "c2"),
                call("tally", '{"count": 1, "weight": -Infinity}', "c3"),
                call("tally", '{"count": 2.5, "weight": 1}', "c4"),
            )
        ),
        reply(body=text_stream('{"ok": true, "reasons": ["fine"], "score": 4.0}')),
    )
    kwargs = {"tools": [tally], "output_schema": Verdict}
    parsed = in_memory_limit(turn_at, server.url, home, kwargs, peak=200 << 20)
    assert parsed == Verdict(ok=True, reasons=["fine"], score=4)
    assert type(parsed.score) is int
    assert dict(outputs(server.seen[1])) == {
        "c1": "int float int",
        "c2": "error: arguments.weight: must be of type number",
        "c3": "error: arguments.weight: must be of type number",
        "c4": "error: arguments.count: must be of type integer",
    }
    for bad, problem in (
        ('{"ok": "yes", "reasons": 5, "score": null}', "reply.ok: must be of type"),
        ('{"ok": true, "reasons": [], "score": 1e999}', "reply.score: matches none"),
        ('{"ok": true, "reasons": [7], "score": 1}', "reply.reasons[0]: must be"),
    ):
        server.then(reply(body=text_stream(bad)))
        kwargs = {"output_schema": Verdict}
        message, text = in_memory_limit(
            turn_at, server.url, home, kwargs, peak=200 << 20
        )
        assert problem in message and text == bad


# ... the examples ...


def test_example_file_tools(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("intro\nTODO: tests\nmiddle\nTODO: docs\n")
    server.then(
        reply(
            body=calls_stream(call("search", {"word": "TODO"}, "s1"), response_id="r1")
        ),
        reply(
            body=calls_stream(
                call("read_lines", {"start": 2, "count": 3}, "s2"), response_id="r2"
            )
        ),
        reply(body=text_stream("Lines 2 and 4 mention TODO.", "r3")),
    )
    done = run_example(
        "file_tools.py", home, server, str(notes), "Which lines mention TODO?"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Lines 2 and 4 mention TODO.\n"
    assert outputs(server.seen[1]) == [("s1", "[2, 4]")]
    assert outputs(server.seen[2])[1] == (
        "s2",
        "2: TODO: tests\n3: middle\n4: TODO: docs",
    )
    assert not (home / "sessions").exists()  # ephemeral


def test_example_structured_review(server: Loopback, home: pathlib.Path) -> None:
    verdict = {"verdict": "request_changes", "issues": ["no test for the new branch"]}
    server.then(reply(body=text_stream(json.dumps(verdict))))
    done = run_example(
        "structured_review.py", home, server, stdin="+ if x:\n+     y()\n"
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == "request_changes\n- no test for the new branch\n"
    schema = server.seen[0].json()["text"]["format"]["schema"]
    assert schema["properties"]["verdict"] == {
        "type": "string",
        "enum": ["approve", "request_changes"],
    }


def test_records_in_tools_and_structured_output(
    server: Loopback, home: pathlib.Path
) -> None:
    got: list[Any] = []

    def walk(route: Route, steps: int) -> str:
        got.append((route, steps))
        return "walked"

    definition = cl.tool(walk).definition["parameters"]["properties"]["route"]
    assert definition["properties"]["start"] == {
        "type": "object",
        "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
        "required": ["x", "y"],
        "additionalProperties": False,
    }
    spot = {"x": 1, "y": 2}
    route = {"start": spot, "stop": spot, "hops": [spot]}
    huge = 10**400  # JSON allows it; it is an integer
    server.then(
        reply(body=calls_stream(call("walk", {"route": route, "steps": huge}, "c1"))),
        reply(body=text_stream(json.dumps(route))),
    )
    convo = cl.Conversation(openai_client(server, home))
    result = convo.run_turn("go", tools=[walk], output_schema=Route)
    expected = Route(Spot(1, 2), Spot(1, 2), [Spot(1, 2)])
    assert got == [(expected, huge)] and result.parsed == expected
    with pytest.raises(TypeError, match="Tree contains itself"):
        walk.__annotations__["route"] = Tree
        cl.tool(walk)
    with pytest.raises(TypeError, match="output_schema"):
        convo.run_turn("list", output_schema=list[int])


# --- Rollouts ---------------------------------------------------------------


CODEX_ROLLOUT = TESTS / "codex-0.169.0" / "custom-provider-two-turns.rollout.jsonl"
CODEX_REQUESTS = "custom-provider-http-two-turns.requests.json"


def ordinals(path: pathlib.Path) -> list[int | None]:
    return [json.loads(line).get("ordinal") for line in path.read_text().splitlines()]


DANGLING = json.loads(
    (TESTS / "codex-0.171.0" / "dangling-call-resume.json").read_text()
)


def user_turns(*texts: str) -> list[cl.ResponseItem]:
    items: list[cl.ResponseItem] = [
        user("<environment_context>here</environment_context>")
    ]
    for text in texts:
        items.append(user(text))
        items.append(
            cl.Message(role="assistant", content=(cl.OutputText(text=f"re {text}"),))
        )
    return items


def rollout_line() -> st.SearchStrategy[bytes]:
    kinds = st.sampled_from(
        ["session_meta", "response_item", "compacted", "event_msg", "turn_context", "x"]
    )
    payload = st.one_of(
        item_like(),
        json_values(),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["thread_rolled_back", "token_count"])},
            optional={"num_turns": json_values(), "info": json_values()},
        ),
        st.fixed_dictionaries(
            {"message": json_values()},
            optional={"replacement_history": st.lists(item_like(), max_size=3)},
        ),
    )
    line = st.builds(
        lambda kind, body, ordinal: json.dumps(
            {"timestamp": "t", "ordinal": ordinal, "type": kind, "payload": body}
        ).encode(),
        kinds,
        payload,
        json_values(),
    )
    return line | st.binary(max_size=40)


def big_line(ordinal: int | None, size: int) -> bytes:
    line: dict[str, Any] = {"timestamp": "2026-12-04T10:00:00.000Z"}
    if ordinal is not None:
        line["ordinal"] = ordinal
    line["type"] = "response_item"
    line["payload"] = cl.item_to_json(user("z" * size))
    return json.dumps(line).encode() + b"\n"


def _list_and_resume(home: str) -> tuple[int, str, str]:
    listed, out, err = main_in_process(["sessions"], {"CODEX_HOME": home})
    argv = ["exec", "resume", "--last", "--all", "--dry-run", "next"]
    resumed, more, err = main_in_process(argv, {"CODEX_HOME": home})
    return listed + resumed * 10, out + more, err


def test_rollout_write_then_resume_keeps_history_and_ids(home: pathlib.Path) -> None:
    items = cl.prepare_conversation_items_for_history(
        [user("hello"), user("server", id="msg_server")], item_ids=True
    )
    path, thread_id = write_rollout(home, items)
    assert re.fullmatch(
        rf"sessions/\d{{4}}/\d\d/\d\d/rollout-\d{{4}}-\d\d-\d\dT\d\d-\d\d-\d\d-{thread_id}\.jsonl",
        path.relative_to(home).as_posix(),
    )
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["type"] for line in lines] == [
        "session_meta",
        "response_item",
        "response_item",
    ]
    for ordinal, line in enumerate(lines):
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"]
        )
        assert list(line) == ["timestamp", "ordinal", "type", "payload"]
        assert line["ordinal"] == ordinal
    assert lines[0]["payload"]["id"] == thread_id
    rollout = cl.read_rollout(cl.find_rollout(home, thread_id))
    assert rollout.thread_id == thread_id
    assert rollout.items == items
    assert cl.find_rollout(home) == path


def test_rollout_torn_tail_is_ignored_and_kept_on_append(
    home: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A line without its newline may be another program's write still
    going: never cut; the next line starts on a line of its own."""
    path, _ = write_rollout(home, [user("one"), user("two")])
    torn = b'{"timestamp":"2026-01-01T00:00:00.000Z","type":"response_it'
    with path.open("ab") as f:
        f.write(torn)
    with caplog.at_level(logging.WARNING, logger="codex_lite"):
        rollout = cl.read_rollout(path)
    assert [cl.item_to_json(i)["content"][0]["text"] for i in rollout.items] == [
        "one",
        "two",
    ]
    assert "torn last line" in caplog.text
    with cl.RolloutWriter(path) as writer:
        writer.append_items([user("three")])
    assert len(cl.read_rollout(path).items) == 3
    lines = path.read_bytes().split(b"\n")
    assert lines[-3:] == [torn, lines[-2], b""]
    assert json.loads(lines[-2])["payload"]["content"][0]["text"] == "three"


def test_rollout_corrupt_line_is_reported_with_its_number(
    home: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, _ = write_rollout(home, [user("one")])
    with path.open("a") as f:
        f.write("not json at all\n")
        f.write(
            json.dumps({"timestamp": "t", "type": "response_item", "payload": {"x": 1}})
            + "\n"
        )
    with cl.RolloutWriter(path) as writer:
        writer.append_items([user("after")])
    with caplog.at_level(logging.WARNING, logger="codex_lite"):
        rollout = cl.read_rollout(path)
    assert len(rollout.items) == 2
    assert f"{path}:3:" in caplog.text and f"{path}:4:" in caplog.text


def test_rollout_compacted_replacement_history(home: pathlib.Path) -> None:
    path, _ = write_rollout(home, [user("old 1"), user("old 2")])
    with cl.RolloutWriter(path) as writer:
        writer.append(
            "compacted",
            {
                "message": "summary",
                "replacement_history": [cl.item_to_json(user("kept"))],
            },
        )
        writer.append_items([user("new")])
    texts = [
        cl.item_to_json(i)["content"][0]["text"] for i in cl.read_rollout(path).items
    ]
    assert texts == ["kept", "new"]


def test_rollout_resume_prepares_images_again(home: pathlib.Path) -> None:
    bad = cl.Message(
        role="user", content=(cl.InputImage(image_url="data:image/png;base64,%%%"),)
    )
    path, _ = write_rollout(home, [bad])
    (item,) = cl.read_rollout(path).items
    assert isinstance(item, cl.Message)
    assert item.content == (cl.InputText(text=cl.IMAGE_OMITTED_TEXT),)


# ... as Codex writes and reads them ...


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(min_value=1, max_value=24), torn=st.integers(0, 300))
def test_appends_continue_codex_ordinals_at_any_cut(cut: int, torn: int) -> None:
    """A Codex file cut after any line, with or without a partial line after
    it, takes appended lines numbered on from the last line: the partial one
    counts when its ordinal is there (it may be a write still under way), as
    Codex 0.171 counts it; not a byte is removed."""
    lines = CODEX_ROLLOUT.read_bytes().splitlines(keepends=True)
    kept = b"".join(lines[:cut])
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "rollout.jsonl"
        tail = lines[cut][: torn % len(lines[cut])] if cut < len(lines) else b""
        partial = tail.rstrip(b"\n")
        path.write_bytes(kept + partial)
        with cl.RolloutWriter(path) as writer:
            writer.append_items([user("appended")])
            writer.append("event_msg", {"type": "task_complete"})
        data = path.read_bytes()
        assert data.startswith(kept + partial + (b"\n" if partial else b""))
        first = cut + 1 if b'"ordinal":%d,' % cut in partial else cut
        ours = [json.loads(line)["ordinal"] for line in data.splitlines()[-2:]]
        assert ours == [first, first + 1]
        assert len(data.splitlines()) == cut + bool(partial) + 2


def test_appends_to_an_old_file_without_ordinals_add_none(home: pathlib.Path) -> None:
    path = home / "old.jsonl"
    old = [{"timestamp": "t", "type": "session_meta", "payload": {"id": "x"}}] * 2
    path.write_text("".join(json.dumps(line) + "\n" for line in old))
    with cl.RolloutWriter(path) as writer:
        writer.append_items([user("new")])
    assert ordinals(path) == [None, None, None]


def test_ordinals_resume_after_lines_an_older_writer_left_unnumbered(
    home: pathlib.Path,
) -> None:
    """Lines without ordinals after numbered ones still count as lines."""
    path = home / "mixed.jsonl"
    lines = CODEX_ROLLOUT.read_text().splitlines(keepends=True)[:3]
    path.write_text("".join(lines) + '{"timestamp":"t","type":"x","payload":{}}\n')
    with cl.RolloutWriter(path) as writer:
        writer.append("event_msg", {"type": "task_started"})
    assert ordinals(path) == [0, 1, 2, None, 4]


def test_two_writers_on_one_rollout_share_no_ordinal(home: pathlib.Path) -> None:
    path, _ = write_rollout(home, [])
    first, second = cl.RolloutWriter(path), cl.RolloutWriter(path)
    for index in range(6):
        (first if index % 2 else second).append_items([user(f"line {index}")])
    first.close()
    second.close()
    assert ordinals(path) == list(range(7))


def test_reading_the_captured_codex_rollout() -> None:
    rollout = cl.read_rollout(CODEX_ROLLOUT)
    assert rollout.thread_id == "01a23356-b23d-7353-bcdb-66b1f8a1e893"
    assert rollout.base_instructions.startswith("You are a coding agent running in")
    texts = [
        "".join(getattr(p, "text", "") for p in i.content)
        for i in rollout.items
        if isinstance(i, cl.Message)
    ]
    assert texts[2:] == ["hello", "hello from capture", "again", "hello from capture"]
    assert rollout.token_usage is not None
    assert rollout.token_usage["total_tokens"] == 28


def test_resume_sends_the_stored_base_instructions_first(
    server: Loopback, home: pathlib.Path
) -> None:
    thread_id = "01a23356-b23d-7353-bcdb-66b1f8a1e893"
    folder = home / "sessions" / "2026" / "12" / "01"
    folder.mkdir(parents=True)
    path = folder / f"rollout-2026-12-01T20-40-49-{thread_id}.jsonl"
    path.write_bytes(CODEX_ROLLOUT.read_bytes())
    (home / "config.toml").write_text(
        f'model_provider = "local"\n[model_providers.local]\nbase_url = "{server.url}"\n'
    )
    server.then(reply(body=text_stream("third answer")))
    conversation = cl.Conversation.resume(cl.load_config(home), thread_id)
    conversation.client.retry_policy = FAST
    with contextlib.closing(conversation):
        conversation.run_turn("third")
    body = server.seen[0].json()
    assert "instructions" not in body
    # What Codex 0.169 itself sent for this thread (captured): the stored base
    # instructions as a developer message with a UUIDv5 id, less the
    # sections on the update_plan tool it did not offer.
    capture = json.loads((TESTS / "codex-0.169.0" / CODEX_REQUESTS).read_text())
    codex_first = capture["records"][1]["json"]["input"][0]
    assert body["input"][0] == codex_first
    assert codex_first["id"].startswith("msg_")
    assert body["input"][-1]["content"][0]["text"] == "third"
    assert ordinals(path) == list(range(len(ordinals(path))))
    usage = cl.read_rollout(path).token_usage or {}
    assert usage["total_tokens"] == 28 + 4  # the thread's running total


@pytest.mark.parametrize("case", DANGLING["cases"])
def test_resume_answers_a_call_left_alone_as_codex_does(
    server: Loopback, home: pathlib.Path, case: dict[str, Any]
) -> None:
    # What Codex 0.171 sent resuming the same rollout (tests/interop/test_parity.py):
    # an "aborted" output after the call, its id the same on every resume, and
    # nothing written back.
    stored = cl.item_from_json(case["stored"])
    path, thread_id = write_rollout(home, [user("hello"), stored])
    (home / "config.toml").write_text(
        f'model_provider = "local"\n[model_providers.local]\nbase_url = "{server.url}"\n'
    )
    for text in ("first resume", "second resume"):
        server.then(reply(body=text_stream()))
        conversation = cl.Conversation.resume(cl.load_config(home), thread_id)
        with contextlib.closing(conversation):
            conversation.run_turn(text)
    for seen in server.seen:
        sent = seen.json()["input"]
        assert sent[1:3] == case["sent"]
    assert "aborted" not in path.read_text()


@pytest.mark.parametrize(
    ("num_turns", "left"),
    [(0, ["one", "two", "three"]), (1, ["one", "two"]), (2, ["one"]), (9, [])],
)
def test_thread_rolled_back_drops_the_last_user_turns(
    home: pathlib.Path, num_turns: int, left: list[str]
) -> None:
    path, _ = write_rollout(home, user_turns("one", "two", "three"))
    with cl.RolloutWriter(path) as writer:
        writer.append(
            "event_msg", {"type": "thread_rolled_back", "num_turns": num_turns}
        )
    expected = ["<environment_context>here</environment_context>"]
    for text in left:
        expected += [text, f"re {text}"]
    assert history_texts(path) == expected


def test_compacted_without_replacement_history(home: pathlib.Path) -> None:
    """Recent user messages within 20,000 tokens (4 bytes each), the oldest
    kept cut in the middle, then the summary; context messages are left out."""
    big = "a" * 40_000 + "b" * 40_000  # 20,000 tokens: more than is left
    path, _ = write_rollout(home, user_turns("old", big, "recent " * 2000))
    with cl.RolloutWriter(path) as writer:
        writer.append("compacted", {"message": "the summary"})
        writer.append_items([user("after")])
    texts = history_texts(path)
    assert texts[1] == "recent " * 2000 and texts[2:] == ["the summary", "after"]
    cut = texts[0]  # 20,000 - 3,500 tokens left for the older message
    assert cut.startswith("a" * 33_000) and cut.endswith("b" * 33_000)
    assert "tokens truncated" in cut and len(cut) < 67_000
    with cl.RolloutWriter(
        path
    ) as writer:  # a second compaction skips the first summary
        writer.append("compacted", {"message": "second summary"})
    assert history_texts(path)[-2:] == ["after", "second summary"]
    assert "the summary" not in history_texts(path)


def test_zstd_rollouts_are_read_and_unpacked_before_appending(
    server: Loopback, home: pathlib.Path
) -> None:
    path, thread_id = write_rollout(home, [user("packed question")])
    packed = path.with_name(path.name + ".zst")
    packed.write_bytes(zstandard.ZstdCompressor().compress(path.read_bytes()))
    path.unlink()
    assert history_texts(packed) == ["packed question"]
    assert cl.find_rollout(home, thread_id) == packed
    server.then(reply(body=text_stream("answer")))
    done = cli(home, "exec", "resume", thread_id, "next", env=openai_env(server))
    assert done.returncode == 0, done.stderr
    assert not packed.exists() and path.exists()
    assert history_texts(path) == ["packed question", "next", "answer"]
    assert ordinals(path) == list(range(len(ordinals(path))))
    packed.write_bytes(b"stale copy")  # the plain file wins when both exist
    assert cl.find_rollout(home, thread_id) == path


@pytest.mark.parametrize(
    "bad", ["*", "**", "../x", "0199a213-81c0-7800-8aa1-bbab2a035a5?"]
)
def test_a_thread_id_is_not_a_pattern(home: pathlib.Path, bad: str) -> None:
    write_rollout(home, [user("x")])
    with pytest.raises(cl.ConfigError, match="not a thread id"):
        cl.find_rollout(home, bad)
    assert cli(home, "exec", "resume", bad, "hi").returncode == 2


# ... damaged files, crashes and concurrent writers ...


def test_concurrent_appenders_never_tear_or_share_a_line(home: pathlib.Path) -> None:
    path, _ = write_rollout(home, [])
    code = (
        "import sys, codex_lite as cl\n"
        "w = cl.RolloutWriter(cl.Path(sys.argv[1]))\n"
        "for i in range(150):\n"
        "    w.append('event_msg', {'type': 'x', 'pad': sys.argv[2] * 20000})\n"
        "w.close()\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path), tag]) for tag in "ab"
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 301
    assert [line["ordinal"] for line in lines] == list(range(301))


def test_damaged_rollouts_do_not_stop_resume_or_sessions(
    server: Loopback, home: pathlib.Path
) -> None:
    path, thread_id = write_rollout(home, [user("kept question")])
    with path.open("a") as f:
        f.write(
            '{"type":"response_item","payload":' + "[" * 50_000 + "]" * 50_000 + "}\n"
        )
    folder = path.parent
    os.mkfifo(folder / f"rollout-2099-01-01T00-00-00-{uuid.uuid4()}.jsonl")
    (folder / f"rollout-2099-01-02T00-00-00-{uuid.uuid4()}.jsonl").mkdir()
    sparse = folder / f"rollout-2026-01-01T00-00-00-{uuid.uuid4()}.jsonl"
    with sparse.open("wb") as f:  # a huge rollout: listing reads only its head
        f.write(
            json.dumps({"type": "session_meta", "payload": {"id": "big"}}).encode()
            + b"\n"
        )
        f.truncate(8 << 30)
    with Budget(20):
        listed = cli(home, "sessions")
        assert listed.returncode == 0, listed.stderr
        assert "kept question" in listed.stdout and "big" in listed.stdout
        server.then(reply(body=text_stream()))
        done = cli(home, "exec", "resume", thread_id, "next", env=openai_env(server))
    assert done.returncode == 0, done.stderr
    texts = [i["content"][0]["text"] for i in server.seen[0].json()["input"]]
    assert texts == ["kept question", "next"]


def test_a_cut_or_multi_frame_zstd_rollout_is_read_whole_or_refused(
    server: Loopback, home: pathlib.Path
) -> None:
    path, thread_id = write_rollout(home, [user("first"), user("second")])
    raw = path.read_bytes()
    half = len(raw) // 2
    packed = path.with_name(path.name + ".zst")
    frames = zstandard.ZstdCompressor().compress(raw[:half])
    frames += zstandard.ZstdCompressor().compress(raw[half:])
    packed.write_bytes(frames)
    path.unlink()
    assert history_texts(packed) == ["first", "second"]  # both frames
    packed.write_bytes(zstandard.ZstdCompressor().compress(raw)[:-10])
    done = cli(home, "exec", "resume", thread_id, "x", env=openai_env(server))
    assert done.returncode == 2 and "truncated zstd data" in done.stderr
    assert packed.exists() and not path.exists()  # nothing destroyed
    assert server.seen == []


def test_appends_after_a_foreign_partial_line_keep_it(home: pathlib.Path) -> None:
    path, _ = write_rollout(home, [user("one")])
    writer = cl.RolloutWriter(path)
    partial = b'{"timestamp":"t","ordinal":2,"type":"resp'
    with path.open("ab") as f:  # another program, mid-line (or killed there)
        f.write(partial)
    writer.append_items([user("two")])
    writer.close()
    lines = path.read_bytes().splitlines()
    assert lines[2] == partial
    assert [json.loads(line)["ordinal"] for line in lines[:2] + lines[3:]] == [0, 1, 3]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rollout_line(), max_size=12), st.booleans())
def test_rollout_reading_and_appending_never_crash(
    lines: list[bytes], torn: bool
) -> None:
    """Any file under sessions/ reads as some history and takes appends."""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "rollout.jsonl"
        path.write_bytes(b"\n".join(lines) + (b"" if torn else b"\n"))
        logging.getLogger("codex_lite").disabled = True
        try:
            cl.read_rollout(path)
            with cl.RolloutWriter(path) as writer:
                writer.append_items([user("more")])
            rollout = cl.read_rollout(path)
        finally:
            logging.getLogger("codex_lite").disabled = False
        assert rollout.items[-1] == user("more")
        cl._rollout_summary(path)  # what `sessions` reads: no exception either


def test_rollout_survives_sigkill_mid_append(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "rollout.jsonl"
    script = (
        "import sys, pathlib, codex_lite as cl\n"
        "path = pathlib.Path(sys.argv[1])\n"
        "n = len(cl.read_rollout(path).items) if path.exists() else 0\n"
        "writer = cl.RolloutWriter(path)\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    text = f'{n} ' + 'x' * (n % 7 * 1000)\n"
        "    writer.append_items([cl.Message(role='user', content=(cl.InputText(text=text),))])\n"
        "    n += 1\n"
    )
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, cwd=HERE
        )
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(random.uniform(0.05, 0.3))
        before = path.read_bytes()
        proc.kill()
        proc.wait()
        assert path.read_bytes().startswith(before)  # nothing was ever cut
        whole = [line for line in path.read_bytes().split(b"\n")[:-1] if line]
        items = cl.read_rollout(path).items
        assert 0 < len(items) <= len(whole)
        numbers = [
            int(cl.item_to_json(i)["content"][0]["text"].split()[0]) for i in items
        ]
        assert numbers == list(range(len(numbers)))
    torn = [line for line in whole if not line.endswith(b"}")]
    assert len(torn) <= 3  # a kill leaves at most the line it cut


def test_another_programs_long_line_is_never_cut(home: pathlib.Path) -> None:
    """Codex appends one line with one unlocked `write`; codex-lite opening
    the file meanwhile sees a partial line and must leave it whole."""
    path, _ = write_rollout(home, [user("one")])
    before = path.read_bytes()
    script = (
        "import json, os, sys\n"
        "item = {'type': 'message', 'role': 'user',\n"
        "        'content': [{'type': 'input_text', 'text': 'big ' + 'y' * (200 << 20)}]}\n"
        "line = {'timestamp': '2026-12-04T00:00:00.000Z', 'ordinal': 2,\n"
        "        'type': 'response_item', 'payload': item}\n"
        "data = json.dumps(line, separators=(',', ':')).encode() + b'\\n'\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "os.write(fd, data)\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert other.stdin and other.stdout and other.stdout.readline() == b"ready\n"
    other.stdin.write(b"go\n")
    other.stdin.flush()
    while path.stat().st_size == len(before) and other.poll() is None:
        pass
    with cl.RolloutWriter(path) as writer:  # most often while the write goes on
        writer.append_items([user("two")])
    assert other.wait(30) == 0
    data = path.read_bytes()
    assert data.startswith(before)
    texts = [t[:4] for t in history_texts(path)]
    assert texts == ["one", "big ", "two"]
    lines = [json.loads(line) for line in data.splitlines() if line]
    assert [line["ordinal"] for line in lines] == [0, 1, 2, 3]


@pytest.mark.parametrize("where", ["last", "first"])
def test_opening_a_rollout_whose_line_is_100_mb_is_linear(
    tmp_path: pathlib.Path, where: str
) -> None:
    """Finding the ordinal reads a long line once, never again per block (it
    took 31 s for a 64 MiB line); the first line is read when the last one
    has no ordinal (a line an older writer added)."""
    path = tmp_path / "rollout.jsonl"
    meta = b'{"timestamp":"2026-12-04T10:00:00.000Z","ordinal":0,"type":"session_meta","payload":{"id":"t"}}\n'
    if where == "last":
        path.write_bytes(meta + big_line(1, 100 << 20))
    else:
        path.write_bytes(big_line(0, 100 << 20) + big_line(None, 10))
    with Budget(1.5), cl.RolloutWriter(path) as writer:
        writer.append("event_msg", {"type": "task_complete"})
    last = json.loads(path.read_bytes().rsplit(b"\n", 2)[1])
    assert last["ordinal"] == 2


def test_a_compressed_rollout_that_inflates_to_gigabytes(home: pathlib.Path) -> None:
    """Listing streams the first lines; resuming stops at the cap with an
    error naming the file, under a 1.5 GiB address-space limit."""
    folder = home / "sessions" / "2026" / "12" / "04"
    folder.mkdir(parents=True)
    thread_id = str(uuid.uuid4())
    path = folder / f"rollout-2026-12-04T10-00-00-{thread_id}.jsonl.zst"
    meta = {"type": "session_meta", "payload": {"id": thread_id, "cwd": "/x"}}
    ask = {"type": "response_item", "payload": cl.item_to_json(user("bomb question"))}
    head = (json.dumps(meta) + "\n" + json.dumps(ask) + "\n").encode()
    frame = zstandard.ZstdCompressor(level=19).compress(b" " * (64 << 20))
    packed = zstandard.ZstdCompressor().compress(head) + frame * 48  # 3 GiB
    assert len(packed) < 1 << 20
    path.write_bytes(packed)
    code, out, err = in_memory_limit(_list_and_resume, str(home), peak=700 << 20)
    assert thread_id in out and "bomb question" in out
    assert code == 20 and str(path) in err and "256 MiB" in err, err
    assert path.read_bytes() == packed


def test_a_plain_rollout_over_the_cap_names_the_file(
    server: Loopback, home: pathlib.Path
) -> None:
    path, thread_id = write_rollout(home, [user("huge thread")])
    with path.open("ab") as f:
        f.truncate(1 << 30)  # a gigabyte, sparse
    done = cli(home, "exec", "resume", thread_id, "next", env=openai_env(server))
    assert done.returncode == 2 and str(path) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not server.seen
    assert path.stat().st_size == 1 << 30


# --- Conversation -----------------------------------------------------------


def test_client_and_conversation_close_what_they_open(
    server: Loopback, home: pathlib.Path
) -> None:
    (home / "config.toml").write_text(
        f'model_provider = "local"\n[model_providers.local]\nbase_url = "{server.url}"\n'
    )
    server.then(reply(body=text_stream("closed")))
    with cl.Conversation.start(cl.load_config(home)) as conversation:
        assert conversation.run_turn("hi").text == "closed"
        rollout = conversation.rollout
    assert rollout is not None and rollout._fd == -1  # flushed and closed
    server.then(reply(body=text_stream()))
    with cl.Client.from_config(cl.load_config(home)) as client:
        run(client.new_turn())
        pools = client.http.get_adapter(server.url).poolmanager.pools  # type: ignore[attr-defined]
        assert len(pools) == 1  # a pooled connection to close
    assert len(pools) == 0


def test_conversation_run_turn_records_history(
    server: Loopback, home: pathlib.Path
) -> None:
    # Codex 0.169+ has item ids always on; `features.item_ids = false` is ours.
    (home / "config.toml").write_text(
        f'model_provider = "loop"\n[model_providers.loop]\nbase_url = "{server.url}"\n'
    )
    server.then(reply(body=text_stream("first")), reply(body=text_stream("second")))
    conversation = cl.Conversation.start(cl.load_config(home))
    result = conversation.run_turn("one")
    assert (result.text, result.usage) == ("first", cl.TokenUsage(3, 0, 1, 0, 4))
    conversation.run_turn("two")
    conversation.close()
    sent = server.seen[1].json()["input"]
    assert [i["id"].split("_")[0] for i in sent] == ["msg", "msg", "msg"]
    assert UUID7.fullmatch(sent[0]["id"].removeprefix("msg_"))
    assert sent[1]["id"] == "msg_1"  # the server's id is kept
    server.then(reply(body=text_stream()))
    config = cl.load_config(home, overrides=["features.item_ids=false"])
    with cl.Conversation.start(config, ephemeral=True) as off:
        off.run_turn("three")
    assert "id" not in server.seen[2].json()["input"][0]
    resumed = cl.Conversation.resume(cl.load_config(home), last=True)
    assert resumed.history == conversation.history
    assert resumed.client.thread_id == conversation.client.thread_id
    resumed.close()


def test_conversation_stamps_turn_id_and_create_time(
    server: Loopback, home: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # wire-spec §1: create_time (fractional Unix seconds) only on user/developer
    # messages, agent messages and *_output items; turn_id on every item.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    server.then(reply(body=text_stream("first")))
    conversation = cl.Conversation.start(cl.load_config(home), ephemeral=True)
    before = time.time()
    conversation.run_turn(
        [user("one"), cl.FunctionCallOutput(call_id="call_1", output="done")]
    )
    key = "internal_chat_message_metadata_passthrough"
    sent = server.seen[0].json()["input"]
    turn_id = sent[0][key]["turn_id"]
    for item in sent:
        assert item[key]["turn_id"] == turn_id
        assert isinstance(item[key]["create_time"], float)
        assert before <= item[key]["create_time"] <= time.time()
    answer = cl.item_to_json(conversation.history[-1])
    assert answer["role"] == "assistant"
    assert answer[key] == {"turn_id": turn_id}


# ... compaction (remote compaction v2, as Codex 0.171 sends it) ...
#
# Data from the Codex 0.171 captures of docs/codex-compaction.md: the limit
# 2000, turns of 5000 input and 4 output tokens, compactions of 300 and 60
# answered with one `compaction` item (cmp_resp_N / enc-compaction-resp_N).

AUTO = {
    "trigger": "auto",
    "reason": "context_limit",
    "implementation": "responses_compaction_v2",
    "strategy": "memento",
}


def usage(input_tokens: int = 5000, output_tokens: int = 4) -> dict[str, int]:
    total = input_tokens + output_tokens
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": total,
    }


def answer_events(
    text: str, n: int, used: dict[str, int] | None = None
) -> list[dict[str, Any]]:
    """A turn's answer `ANSWER-…` as response resp_N, with its usage."""
    events = text_events(text, f"resp_{n}", f"msg_resp_{n}")
    return [*events[:-1], completed(f"resp_{n}", usage=used or usage())]


def compaction_events(n: int) -> list[dict[str, Any]]:
    item = {
        "type": "compaction",
        "id": f"cmp_resp_{n}",
        "encrypted_content": f"enc-compaction-resp_{n}",
    }
    return [
        {"type": "response.created", "response": {"id": f"resp_{n}"}},
        {"type": "response.output_item.done", "item": item},
        completed(f"resp_{n}", usage=usage(300, 60)),
    ]


def call_events(n: int) -> list[dict[str, Any]]:
    """An `echo` call as response resp_N, over the limit."""
    item = {
        "type": "function_call",
        "id": f"fc_resp_{n}",
        **call("echo", {"text": "hi"}, "call_1"),
    }
    return [
        {"type": "response.created", "response": {"id": f"resp_{n}"}},
        {"type": "response.output_item.done", "item": item},
        completed(f"resp_{n}", usage=usage()),
    ]


def turn_metadata(body: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(body["client_metadata"]["x-codex-turn-metadata"]))


def summary(body: dict[str, Any]) -> list[str]:
    """Each input item as its text, or its type, with a compaction's id."""
    out = []
    for item in body["input"]:
        if item["type"] == "message":
            out.append(item["content"][0]["text"])
        elif item["type"] == "compaction":
            out.append(f"compaction {item['id']}")
        else:
            out.append(item["type"])
    return out


def test_compaction_before_a_turn_after_resume_on_the_command_line(
    server: Loopback, home: pathlib.Path
) -> None:
    """openai-http-426.json: three runs; each resume compacts first."""
    (home / "config.toml").write_text("model_auto_compact_token_limit = 2000\n")
    server.then(
        reply(body=sse(*answer_events("ANSWER-1", 1))),
        reply(body=sse(*compaction_events(2))),
        reply(body=sse(*answer_events("ANSWER-2", 3))),
        reply(body=sse(*compaction_events(4))),
        reply(body=sse(*answer_events("ANSWER-3", 5))),
    )
    env = openai_env(server)
    runs = [
        cli(home, "exec", "--json", "first prompt", env=env),
        cli(home, "exec", "--json", "resume", "--last", "second prompt", env=env),
        cli(home, "exec", "--json", "resume", "--last", "third prompt", env=env),
    ]
    for done in runs:
        assert done.returncode == 0, done.stderr
    # exec --json prints nothing of a compaction; its usage is not counted
    second = [json.loads(line) for line in runs[1].stdout.splitlines()]
    assert [line["type"] for line in second] == [
        "thread.started", "turn.started", "item.completed", "turn.completed",
    ]  # fmt: skip
    assert second[-1]["usage"]["input_tokens"] == 10000
    bodies = [seen.json() for seen in server.seen]
    assert [summary(b) for b in bodies] == [
        ["first prompt"],
        ["first prompt", "ANSWER-1", "compaction_trigger"],
        ["first prompt", "compaction cmp_resp_2", "second prompt"],
        ["first prompt", "compaction cmp_resp_2", "second prompt", "ANSWER-2", "compaction_trigger"],
        ["first prompt", "second prompt", "compaction cmp_resp_4", "third prompt"],
    ]  # fmt: skip
    # the trigger goes without an id, the compaction item comes back unchanged
    assert bodies[1]["input"][-1] == {"type": "compaction_trigger"}
    assert bodies[2]["input"][1] == compaction_events(2)[1]["item"]
    assert (
        bodies[2]["input"][0] == bodies[0]["input"][0]
    )  # the user message kept as it was
    for turn, compaction in ((bodies[0], bodies[1]), (bodies[2], bodies[3])):
        # the same request but the input: tools, settings, headers' names
        same = {k: v for k, v in turn.items() if k not in ("input", "client_metadata")}
        assert same == {
            k: v for k, v in compaction.items() if k not in ("input", "client_metadata")
        }
    thread = json.loads(runs[0].stdout.splitlines()[0])["thread_id"]
    kinds = []
    for seen, body in zip(server.seen, bodies, strict=True):
        metadata = turn_metadata(body)
        assert (
            seen.header("x-codex-turn-metadata")
            == body["client_metadata"]["x-codex-turn-metadata"]
        )
        window = f"{thread}:{metadata['window_number']}"
        assert metadata["window_id"] == seen.header("x-codex-window-id") == window
        assert body["client_metadata"]["x-codex-window-id"] == window
        kinds.append(
            (
                metadata["request_kind"],
                metadata["window_number"],
                metadata.get("compaction"),
            )
        )
        # a compaction request names how it compacts instead of the model
        assert ("model" in metadata) == (metadata["request_kind"] == "turn")
        beta = seen.header("x-codex-beta-features")
        assert (beta == "remote_compaction_v2") == ("compaction" in metadata)
    assert kinds == [
        ("turn", 0, None),
        ("compaction", 0, {**AUTO, "phase": "pre_turn"}),
        ("turn", 1, None),
        ("compaction", 1, {**AUTO, "phase": "pre_turn"}),
        ("turn", 2, None),
    ]
    (path,) = (home / "sessions").rglob("rollout-*.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    compacted = [line["payload"] for line in lines if line["type"] == "compacted"]
    assert [c["message"] for c in compacted] == ["", ""]
    assert [c["window_number"] for c in compacted] == [1, 2]
    last = compacted[-1]["replacement_history"]
    assert [i["type"] for i in last] == ["message", "message", "compaction"]
    assert last[-1] == compaction_events(4)[1]["item"]
    at = next(n for n, line in enumerate(lines) if line["type"] == "compacted")
    count, done = (line["payload"] for line in lines[at + 1 : at + 3])
    # the total stays; the last usage is the new history's estimated size
    assert count["type"] == "token_count"
    assert count["info"]["total_token_usage"]["total_tokens"] == 5004
    estimate = count["info"]["last_token_usage"]
    assert estimate["total_tokens"] > 0 and estimate["input_tokens"] == 0
    assert done["type"] == "item_completed"
    assert done["item"]["type"] == "ContextCompaction"
    assert done["completed_at_ms"] >= done["started_at_ms"]
    history = cl.read_rollout(path)
    assert history.window_number == 2
    assert [cl.item_to_json(i)["type"] for i in history.items] == [
        "message", "message", "compaction", "message", "message",
    ]  # fmt: skip


@pytest.mark.parametrize("transport", ["http", "websocket"])
def test_compaction_after_tool_calls_before_the_follow_up(
    transport: str, server: Loopback, ws: WsBackend, home: pathlib.Path
) -> None:
    """openai-mid-turn.json: the call's usage reached the limit, so the tool's
    output goes to a compaction first; on a WebSocket incrementally, and the
    follow-up in full."""
    answers = [call_events(1), compaction_events(2), answer_events("ANSWER-2", 3)]
    if transport == "http":
        server.then(*(reply(body=sse(*events)) for events in answers))
        backend: Served = server
    else:
        ws.then(*(ws_events(*events) for events in answers))
        backend = ws

    def echo(text: str) -> str:
        return text

    client = openai_client(backend, home)
    with cl.Conversation(client, auto_compact_token_limit=2000) as convo:
        assert convo.run_turn("run echo hi", tools=[echo]).text == "ANSWER-2"
    if transport == "http":
        bodies = [seen.json() for seen in server.seen]
        assert [summary(b) for b in bodies] == [
            ["run echo hi"],
            ["run echo hi", "function_call", "function_call_output", "compaction_trigger"],
            ["run echo hi", "compaction cmp_resp_2"],
        ]  # fmt: skip
    else:
        bodies = ws.requests
        assert [summary(b) for b in bodies] == [
            ["run echo hi"],
            ["function_call_output", "compaction_trigger"],
            ["run echo hi", "compaction cmp_resp_2"],
        ]
        assert bodies[1]["previous_response_id"] == "resp_1"
        assert "previous_response_id" not in bodies[2]
        assert len(ws.handshakes) == 1
    assert bodies[1]["tools"] == bodies[0]["tools"] == bodies[2]["tools"]
    metadata = [turn_metadata(b) for b in bodies]
    assert [m.get("compaction") for m in metadata] == [
        None,
        {**AUTO, "phase": "mid_turn"},
        None,
    ]
    assert [m["turn_id"] for m in metadata] == [metadata[0]["turn_id"]] * 3
    assert [m["window_number"] for m in metadata] == [0, 0, 1]
    assert convo.history[-1].id == "msg_resp_3"


def test_compaction_before_a_turn_over_websocket_continues_the_last_response(
    ws: WsBackend, home: pathlib.Path
) -> None:
    """openai-websocket.json: the compaction request sends only the trigger
    after the last response; the turn after it starts over, in full."""
    ws.then(
        ws_events(*answer_events("ANSWER-1", 1)),
        ws_events(*compaction_events(2)),
        ws_events(*answer_events("ANSWER-2", 3)),
    )
    client = openai_client(ws, home)
    with cl.Conversation(
        client, instructions="Be brief.", auto_compact_token_limit=2000
    ) as convo:
        convo.run_turn("first prompt")
        convo.run_turn("second prompt")
    _, compaction, second = ws.requests
    assert summary(compaction) == ["compaction_trigger"]
    assert compaction["previous_response_id"] == "resp_1"
    assert turn_metadata(compaction)["compaction"] == {**AUTO, "phase": "pre_turn"}
    assert "previous_response_id" not in second
    assert summary(second) == [
        "Be brief.",
        "first prompt",
        "compaction cmp_resp_2",
        "second prompt",
    ]
    assert second["client_metadata"]["x-codex-window-id"] == f"{client.thread_id}:1"


@pytest.mark.parametrize(
    ("input_tokens", "output_tokens", "compacts"),
    [(1999, 0, False), (2000, 0, True), (1990, 20, True), (2001, 0, True)],
)
def test_compaction_when_the_last_responses_total_reached_the_limit(
    server: Loopback,
    home: pathlib.Path,
    input_tokens: int,
    output_tokens: int,
    compacts: bool,
) -> None:
    """custom-threshold-*.json: total tokens at or over the limit compact."""
    used = usage(input_tokens, output_tokens)
    server.then(reply(body=sse(*answer_events("ANSWER-1", 1, used))))
    if compacts:
        server.then(reply(body=sse(*compaction_events(2))))
    server.then(reply(body=sse(*answer_events("ANSWER-2", 3))))
    with cl.Conversation(
        openai_client(server, home), auto_compact_token_limit=2000
    ) as convo:
        convo.run_turn("first prompt")
        convo.run_turn("second prompt")
    kinds = [turn_metadata(seen.json())["request_kind"] for seen in server.seen]
    assert kinds == ["turn", "compaction", "turn"] if compacts else ["turn", "turn"]


def test_no_compaction_without_a_limit(server: Loopback, home: pathlib.Path) -> None:
    """custom-no-limit-configured.json"""
    server.then(*(reply(body=sse(*answer_events("ok", n))) for n in range(4)))
    for client in (openai_client(server, home), local_client(server, home)):
        with cl.Conversation(client) as convo:
            convo.run_turn("one")
            convo.run_turn("two")
    assert [len(seen.json()["input"]) for seen in server.seen] == [1, 3, 1, 3]


def test_compact_now_and_resume_from_the_compacted_line(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(
        reply(body=sse(*answer_events("ANSWER-1", 1))),
        reply(body=sse(*compaction_events(2))),
        reply(body=sse(*answer_events("ANSWER-2", 3))),
    )
    config = cl.load_config(home)
    config = dataclasses.replace(
        config,
        providers={
            **config.providers,
            "openai": dataclasses.replace(
                config.providers["openai"], base_url=server.url
            ),
        },
    )
    auth = cl.BearerAuth("sk-test")
    with cl.Conversation.start(config, auth=auth) as convo:
        convo.run_turn("first prompt")
        convo.compact()
    manual = turn_metadata(server.seen[1].json())
    assert manual["compaction"] == {
        "trigger": "manual",
        "reason": "user_requested",
        "implementation": "responses_compaction_v2",
        "phase": "standalone_turn",
        "strategy": "memento",
    }
    assert manual["turn_id"] != turn_metadata(server.seen[0].json())["turn_id"]
    with cl.Conversation.resume(config, last=True, auth=auth) as resumed:
        assert resumed.client.window_number == 1
        assert resumed.last_token_usage["total_tokens"] > 0  # the estimate
        assert resumed.auto_compact_token_limit is None
        resumed.run_turn("second prompt")
    assert summary(server.seen[2].json()) == [
        "first prompt",
        "compaction cmp_resp_2",
        "second prompt",
    ]
    assert turn_metadata(server.seen[2].json())["window_number"] == 1


@pytest.mark.parametrize(
    ("answer", "message", "cause"),
    [
        # openai-compaction-answered-with-text.json
        (
            reply(body=sse(*answer_events("summary", 2))),
            "expected exactly one compaction output item, got 0 from 1 output items",
            None,
        ),
        # openai-compaction-fails-400.json
        (
            reply(
                400,
                b'{"error": {"message": "bad"}}',
                {"Content-Type": "application/json"},
            ),
            "bad",
            cl.InvalidRequest,
        ),
    ],
)
def test_a_failed_compaction_fails_the_turn_and_keeps_its_prompt(
    server: Loopback,
    home: pathlib.Path,
    answer: Reply,
    message: str,
    cause: type[Exception] | None,
) -> None:
    server.then(reply(body=sse(*answer_events("ANSWER-1", 1))), answer)
    with cl.Conversation(
        openai_client(server, home), auto_compact_token_limit=2000
    ) as convo:
        convo.run_turn("first prompt")
        with pytest.raises(cl.CompactionFailed, match=message) as failed:
            convo.run_turn("second prompt")
    assert failed.value.args[0].startswith("Error running remote compact task: ")
    assert (
        type(failed.value.__cause__) is cause
        if cause
        else failed.value.__cause__ is None
    )
    assert len(server.seen) == 2  # the prompt is not sent, but kept, as Codex keeps it
    assert _texts(convo.history) == ["first prompt", "ANSWER-1", "second prompt"]


def _texts(items: list[cl.ResponseItem]) -> list[str]:
    return [cl.item_to_json(i)["content"][0]["text"] for i in items]


# ... compaction by other providers (local, as Codex 0.171 does it) ...
#
# Data from custom-*.json: the summarization prompt and the summary's prefix
# word for word, summaries SUMMARY-N answered with 300 and 60 tokens.

SUMMARIZE = (
    "You are performing a CONTEXT CHECKPOINT COMPACTION. Create a handoff summary"
    " for another LLM that will resume the task.\n\nInclude:\n"
    "- Current progress and key decisions made\n"
    "- Important context, constraints, or user preferences\n"
    "- What remains to be done (clear next steps)\n"
    "- Any critical data, examples, or references needed to continue\n\n"
    "Be concise, structured, and focused on helping the next LLM seamlessly"
    " continue the work.\n"
)
SUMMARY_PREFIX = (
    "Another language model started to solve this problem and produced a summary"
    " of its thinking process. You also have access to the state of the tools"
    " that were used by that language model. Use this to build on the work that"
    " has already been done and avoid duplicating work. Here is the summary"
    " produced by the other language model, use the information in this summary"
    " to assist with your own analysis:\n"
)
OUT_OF_ROOM = (
    "Codex ran out of room in the model's context window. Start a new thread or"
    " clear earlier history before retrying."
)
CAPTURE_CONFIG = """model_provider = "capture"
model_auto_compact_token_limit = 2000

[model_providers.capture]
name = "capture"
base_url = "{url}"
env_key = "CAPTURE_KEY"
wire_api = "responses"
"""


def summary_events(k: int, n: int) -> list[dict[str, Any]]:
    """The summary `SUMMARY-k` as response resp_N."""
    return answer_events(f"SUMMARY-{k}", n, usage(300, 60))


def test_local_compaction_before_a_turn_after_resume_on_the_command_line(
    server: Loopback, home: pathlib.Path
) -> None:
    """custom-auto-pre-turn.json: the turn's request without tools and with the
    summarization prompt last; the summary follows the kept user messages."""
    (home / "config.toml").write_text(CAPTURE_CONFIG.format(url=server.url))
    server.then(
        reply(body=sse(*answer_events("ANSWER-1", 1))),
        reply(body=sse(*summary_events(1, 2))),
        reply(body=sse(*answer_events("ANSWER-2", 3))),
        reply(body=sse(*summary_events(2, 4))),
        reply(body=sse(*answer_events("ANSWER-3", 5))),
    )
    env = {"CAPTURE_KEY": "sk-fake"}
    runs = [
        cli(home, "exec", "--json", "first prompt", env=env),
        cli(home, "exec", "--json", "resume", "--last", "second prompt", env=env),
        cli(home, "exec", "--json", "resume", "--last", "third prompt", env=env),
    ]
    for done in runs:
        assert done.returncode == 0, done.stderr
    # the compaction's usage counts here, unlike a remote one's
    second = json.loads(runs[1].stdout.splitlines()[-1])
    assert second["usage"]["input_tokens"] == 10300
    bodies = [seen.json() for seen in server.seen]
    one, two = (f"{SUMMARY_PREFIX}SUMMARY-{k}" for k in (1, 2))
    assert [summary(b) for b in bodies] == [
        ["first prompt"],
        ["first prompt", "ANSWER-1", SUMMARIZE],
        ["first prompt", one, "second prompt"],
        ["first prompt", one, "second prompt", "ANSWER-2", SUMMARIZE],
        ["first prompt", "second prompt", two, "third prompt"],
    ]
    # the prompt goes without an id, the summary with one like other messages
    assert "id" not in bodies[1]["input"][-1]
    assert re.fullmatch(r"msg_[0-9a-f-]{36}", bodies[2]["input"][1]["id"])
    for turn, compaction in ((bodies[0], bodies[1]), (bodies[2], bodies[3])):
        assert compaction["tools"] == [] and compaction["parallel_tool_calls"] is False
        rest = ("input", "tools", "parallel_tool_calls")
        same = {k: v for k, v in turn.items() if k not in rest}
        assert same == {k: v for k, v in compaction.items() if k not in rest}
    beta = [seen.header("x-codex-beta-features") for seen in server.seen]
    assert beta == [None, "remote_compaction_v2", None, "remote_compaction_v2", None]
    (path,) = (home / "sessions").rglob("rollout-*.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    at = next(n for n, line in enumerate(lines) if line["type"] == "compacted")
    answer, used, compacted, count, done = (
        line["payload"] for line in lines[at - 2 : at + 3]
    )
    # the summary as the model sent it, and its usage, come first
    assert answer["id"] == "msg_resp_2" and answer["role"] == "assistant"
    assert used["type"] == "token_count"
    assert used["info"]["total_token_usage"]["total_tokens"] == 5364
    assert used["info"]["last_token_usage"]["total_tokens"] == 360
    assert compacted["message"] == one and compacted["window_number"] == 1
    assert _texts([cl.item_from_json(i) for i in compacted["replacement_history"]]) == [
        "first prompt",
        one,
    ]
    assert count["type"] == "token_count"
    assert count["info"]["last_token_usage"]["input_tokens"] == 0
    assert done["item"]["type"] == "ContextCompaction"
    assert _texts(cl.read_rollout(path).items) == [
        "first prompt", "second prompt", two, "third prompt", "ANSWER-3",
    ]  # fmt: skip


@pytest.mark.parametrize("transport", ["http", "websocket"])
def test_local_compaction_after_tool_calls_before_the_follow_up(
    transport: str, server: Loopback, ws: WsBackend, home: pathlib.Path
) -> None:
    """custom-mid-turn.json: the call and its output are summarised away."""
    answers = [call_events(1), summary_events(1, 2), answer_events("ANSWER-2", 3)]
    if transport == "http":
        server.then(*(reply(body=sse(*events)) for events in answers))
        client = local_client(server, home)
    else:
        ws.then(*(ws_events(*events) for events in answers))
        client = local_client(ws, home, info={"supports_websockets": True})

    def echo(text: str) -> str:
        return text

    with cl.Conversation(client, auto_compact_token_limit=2000) as convo:
        assert convo.run_turn("run echo hi", tools=[echo]).text == "ANSWER-2"
    bodies = [s.json() for s in server.seen] if transport == "http" else ws.requests
    assert [summary(b) for b in bodies] == [
        ["run echo hi"],
        ["run echo hi", "function_call", "function_call_output", SUMMARIZE],
        ["run echo hi", f"{SUMMARY_PREFIX}SUMMARY-1"],
    ]
    assert bodies[1]["tools"] == [] != bodies[0]["tools"] == bodies[2]["tools"]
    assert all("previous_response_id" not in b for b in bodies)
    assert client.window_number == 1
    assert convo.history[-1].id == "msg_resp_3"


def test_local_compact_now_and_resume_from_the_compacted_line(
    server: Loopback, home: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / "config.toml").write_text(
        CAPTURE_CONFIG.format(url=server.url).replace(
            "model_auto_compact_token_limit = 2000\n", ""
        )
    )
    monkeypatch.setenv("CAPTURE_KEY", "sk-fake")
    server.then(
        reply(body=sse(*answer_events("ANSWER-1", 1))),
        reply(body=sse(*summary_events(1, 2))),
        reply(body=sse(*answer_events("ANSWER-2", 3))),
    )
    config = cl.load_config(home)
    with cl.Conversation.start(config, instructions="Be brief.") as convo:
        convo.run_turn("first prompt")
        convo.compact()
    with cl.Conversation.resume(config, last=True) as resumed:
        assert resumed.client.window_number == 1
        resumed.run_turn("second prompt")
    one = f"{SUMMARY_PREFIX}SUMMARY-1"
    assert [summary(seen.json()) for seen in server.seen] == [
        ["Be brief.", "first prompt"],
        ["Be brief.", "first prompt", "ANSWER-1", SUMMARIZE],
        ["Be brief.", "first prompt", one, "second prompt"],
    ]


CONTEXT_TOO_LONG = reply(
    body=sse(
        {
            "type": "response.failed",
            "response": {
                "id": "resp_2",
                "error": {"code": "context_length_exceeded", "message": "too long"},
            },
        }
    )
)


@pytest.mark.parametrize(
    ("provider", "answer", "inputs", "message", "cause"),
    [
        # custom-compaction-fails-400.json: the server's error, no retry
        (
            "local",
            reply(
                400,
                b'{"error": {"message": "capture rejects the compaction request"}}',
                {"Content-Type": "application/json"},
            ),
            [4],
            "400: capture rejects the compaction request",
            cl.InvalidRequest,
        ),
        # custom-compaction-fails-500.json: retried as a turn's request is
        (
            "local",
            reply(500, b"overloaded"),
            [4] * 5,
            "request failed after 5 attempts: 500: Internal Server Error: overloaded",
            cl.RetryLimitExceeded,
        ),
        # custom-compaction-fails-ctx.json: tried again without the oldest
        # item of the history, down to none
        ("local", CONTEXT_TOO_LONG, [4, 3, 2], OUT_OF_ROOM, cl.ContextWindowExceeded),
        # openai-compaction-fails-ctx.json: no retry
        (
            "openai",
            CONTEXT_TOO_LONG,
            [4],
            f"Error running remote compact task: {OUT_OF_ROOM}",
            cl.ContextWindowExceeded,
        ),
    ],
)
def test_a_failed_compaction_as_codex_fails_it(
    server: Loopback,
    home: pathlib.Path,
    provider: str,
    answer: Reply,
    inputs: list[int],
    message: str,
    cause: type[Exception],
) -> None:
    server.then(reply(body=sse(*answer_events("ANSWER-1", 1))))
    server.then(*[answer] * len(inputs))
    make = openai_client if provider == "openai" else local_client
    with cl.Conversation(
        make(server, home), instructions="Be brief.", auto_compact_token_limit=2000
    ) as convo:
        convo.run_turn("first prompt")
        with pytest.raises(cl.CompactionFailed) as failed:
            convo.run_turn("second prompt")
    assert str(failed.value) == message
    assert type(failed.value.__cause__) is cause
    sent = [seen.json()["input"] for seen in server.seen[1:]]
    assert [len(i) for i in sent] == inputs
    assert all(i[0]["content"][0]["text"] == "Be brief." for i in sent)
    assert _texts(convo.history) == ["first prompt", "ANSWER-1", "second prompt"]


def test_a_local_compaction_too_long_drops_a_call_with_its_output(
    server: Loopback, home: pathlib.Path
) -> None:
    """As Codex drops the oldest item: a call goes with its output."""
    call_item = cl.item_from_json({"type": "function_call", **call("echo", {}, "c1")})
    output = cl.item_from_json(
        {"type": "function_call_output", "call_id": "c1", "output": "hi"}
    )
    server.then(CONTEXT_TOO_LONG, reply(body=sse(*summary_events(1, 2))))
    history = [call_item, output, user("run echo hi")]
    with cl.Conversation(local_client(server, home), history=history) as convo:
        convo.compact()
    assert [summary(seen.json()) for seen in server.seen] == [
        ["function_call", "function_call_output", "run echo hi", SUMMARIZE],
        ["run echo hi", SUMMARIZE],
    ]
    assert _texts(convo.history) == ["run echo hi", f"{SUMMARY_PREFIX}SUMMARY-1"]


def test_the_limit_is_read_from_config_as_codex_reads_it(home: pathlib.Path) -> None:
    path = home / "config.toml"
    path.write_text("model_auto_compact_token_limit = 2000\n")
    assert cl.load_config(home).model_auto_compact_token_limit == 2000
    assert (
        cl.load_config(
            home, overrides=["model_auto_compact_token_limit=10"]
        ).model_auto_compact_token_limit
        == 10
    )
    path.write_text('model_auto_compact_token_limit = "2000"\n')
    with pytest.raises(
        cl.ConfigError,
        match=f"{re.escape(str(path))}: config.model_auto_compact_token_limit must be",
    ):
        cl.load_config(home)


# --- Realtime ---------------------------------------------------------------


REALTIME_ANSWER = [
    {"type": "response.created", "response": {"id": "resp_rt"}},
    {"type": "response.output_text.delta", "delta": "Hel"},
    {"type": "rate_limits.updated", "rate_limits": []},
    {"type": "response.output_audio_transcript.delta", "delta": "lo"},
    {"type": "response.done", "response": {"id": "resp_rt", "status": "completed"}},
]


def realtime_ping_flood(home: pathlib.Path) -> None:
    """A realtime session against `ping_flood` (module level: it runs under
    a memory limit); what it raises is the outcome."""
    server = ping_flood()
    policy = dataclasses.replace(FAST, stream_idle_timeout=0.4)
    try:
        client = openai_client(server, home, retry_policy=policy)
        with cl.RealtimeSession(client) as realtime:
            realtime.send_text("hello")
            list(realtime.events())
    finally:
        server.close()


# ... calls over HTTP (wire-spec §14) ...


def test_realtime_call_sends_raw_sdp(server: Loopback, home: pathlib.Path) -> None:
    server.then(
        reply(
            201,
            b"v=0\r\nanswer",
            {
                "Location": "/v1/realtime/calls/rtc_test",
                "Content-Type": "application/sdp",
            },
        )
    )
    call = cl.create_realtime_call(openai_client(server, home), SDP_OFFER)
    assert call == cl.RealtimeCall("v=0\r\nanswer", "rtc_test")
    (seen,) = server.seen
    assert seen.path == "/v1/realtime/calls"
    assert seen.header("content-type") == "application/sdp"
    assert seen.body == SDP_OFFER.encode()
    assert seen.header("authorization") == "Bearer sk-test"


def test_realtime_call_with_session_is_multipart(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(
        reply(
            201,
            b"answer",
            {"Location": "https://api.example.com/v1/realtime/calls/rtc_abc?x=1"},
        )
    )
    session = {
        "id": "sess_drop",
        "type": "realtime",
        "model": "gpt-realtime",
        "instructions": "Réponds en français",
    }
    call = cl.create_realtime_call(
        openai_client(server, home), SDP_OFFER, session=session
    )
    assert call.call_id == "rtc_abc"
    seen = server.seen[0]
    assert (
        seen.header("content-type")
        == "multipart/form-data; boundary=codex-realtime-call-boundary"
    )
    expected = (
        "--codex-realtime-call-boundary\r\n"
        'Content-Disposition: form-data; name="sdp"\r\n'
        "Content-Type: application/sdp\r\n\r\n"
        f"{SDP_OFFER}\r\n"
        "--codex-realtime-call-boundary\r\n"
        'Content-Disposition: form-data; name="session"\r\n'
        "Content-Type: application/json\r\n\r\n"
        '{"type":"realtime","model":"gpt-realtime",'
        '"instructions":"Réponds en français"}\r\n'  # UTF-8, as serde_json writes it
        "--codex-realtime-call-boundary--\r\n"
    )
    assert seen.body == expected.encode()


def test_realtime_call_errors(server: Loopback, home: pathlib.Path) -> None:
    server.then(
        reply(201, b"answer"),
        reply(201, b"answer", {"Location": "/v1/realtime/calls/nope"}),
        reply(201, b"answer", {"Location": "/v1/realtime/calls/rtc_"}),
        reply(201, b"answer", {"Location": "/backend-api/realtime/calls/rtc_fw/sdp"}),
    )
    client = openai_client(server, home)
    with pytest.raises(cl.ApiError, match="realtime call response missing Location"):
        cl.create_realtime_call(client, SDP_OFFER)
    with pytest.raises(
        cl.ApiError,
        match="Location does not contain a call id: /v1/realtime/calls/nope",
    ):
        cl.create_realtime_call(client, SDP_OFFER)
    with pytest.raises(cl.ApiError, match="does not contain a call id"):
        cl.create_realtime_call(client, SDP_OFFER)
    # the last segment that starts with rtc_, not merely the last segment
    assert cl.create_realtime_call(client, SDP_OFFER).call_id == "rtc_fw"


def test_realtime_cli(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    offer = tmp_path / "offer.sdp"
    offer.write_text(SDP_OFFER)
    server.then(reply(201, b"v=0 answer", {"Location": "/v1/realtime/calls/rtc_cli"}))
    done = cli(home, "realtime", "--sdp-offer", str(offer), env=openai_env(server))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "v=0 answer" and "rtc_cli" in done.stderr


def test_realtime_start_params() -> None:
    start = cl.RealtimeStart(
        thread_id="t1", transport=cl.RealtimeTransport.WEBRTC, sdp="offer"
    )
    assert start.to_json() == {
        "threadId": "t1",
        "transport": {"type": "webrtc", "sdp": "offer"},
    }
    assert cl.RealtimeStart(thread_id="t1").to_json()["transport"] == {
        "type": "websocket"
    }


# ... sessions over WebSocket ...


def test_realtime_a_server_echoing_the_key_gets_it_nowhere(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    error = {"type": "error", **ECHO_ERROR}
    backend = RealtimeBackend([error])
    try:
        client = openai_client(backend, home, auth=cl.BearerAuth(ECHO_KEY))
        with cl.RealtimeSession(client) as realtime:
            realtime.send_text("hello")
            with pytest.raises(cl.ApiError) as caught:
                list(realtime.events())
        args = ("realtime", "--text", "hello")
        done = cli(home, *args, env=openai_env(backend, ECHO_KEY))
    finally:
        backend.server.shutdown()
    offer = tmp_path / "offer.sdp"
    offer.write_text(SDP_OFFER)
    location = {"Location": f"/v1/realtime/calls/rtc_{ECHO_KEY}"}
    server.then(reply(201, f"v=0 {ECHO_KEY}".encode(), location))
    env = openai_env(server, ECHO_KEY)
    call = cli(home, "realtime", "--sdp-offer", str(offer), env=env)
    assert done.returncode == 1 and call.returncode == 0, call.stderr
    assert_no_echo(str(caught.value) + repr(caught.value) + str(caught.value.code))
    assert_no_echo(done.stdout + done.stderr + call.stdout + call.stderr)


def test_realtime_over_websocket_sends_session_and_text_and_types_events(
    home: pathlib.Path,
) -> None:
    backend = RealtimeBackend(REALTIME_ANSWER)
    client = openai_client(backend, home)
    session = {"id": "sess_1", "type": "realtime", "output_modalities": ["text"]}
    try:
        with cl.RealtimeSession(client, session=session) as realtime:
            realtime.send_text("hello")
            events = list(realtime.events())
    finally:
        backend.server.shutdown()
    (shake,) = backend.handshakes
    assert shake.path == "/v1/realtime?model=gpt-test"
    assert shake.header("authorization") == "Bearer sk-test"
    assert shake.header("originator") == "codex_lite"
    assert backend.received == [
        {
            "type": "session.update",
            "session": {"type": "realtime", "output_modalities": ["text"]},
        },
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hello"}],
            },
        },
        {"type": "response.create"},
    ]
    assert events == [
        cl.RealtimeServerEvent(
            "session.created", {"type": "session.created", "session": {}}
        ),
        cl.RealtimeServerEvent("response.created", REALTIME_ANSWER[0]),
        cl.RealtimeTextDelta("Hel"),
        cl.RealtimeServerEvent("rate_limits.updated", REALTIME_ANSWER[2]),
        cl.RealtimeTextDelta("lo", transcript=True),
        cl.RealtimeDone({"id": "resp_rt", "status": "completed"}),
    ]


def test_realtime_handshake_is_retried_and_a_refusal_typed_as_a_turns(
    home: pathlib.Path,
) -> None:
    backend = RealtimeBackend(REALTIME_ANSWER, refuse=(503, 502))
    try:
        client = openai_client(backend, home, retry_policy=FAST)
        with cl.RealtimeSession(client) as realtime:
            realtime.send_text("hello")
            events = list(realtime.events())
    finally:
        backend.server.shutdown()
    assert len(backend.handshakes) == 3  # each 5xx waited for and tried again
    assert events[-1] == cl.RealtimeDone({"id": "resp_rt", "status": "completed"})
    for status, error in ((404, cl.InvalidRequest), (401, cl.ApiError)):
        backend = RealtimeBackend([], refuse=(status,))
        try:
            with pytest.raises(error, match="not now") as raised:
                cl.RealtimeSession(openai_client(backend, home, retry_policy=FAST))
        finally:
            backend.server.shutdown()
        assert raised.value.status == status
        # no retry cures these: an API key cannot be reloaded
        assert len(backend.handshakes) == 1


def test_realtime_error_events_are_raised_typed(home: pathlib.Path) -> None:
    error = {"type": "error", "error": {"code": "invalid_prompt", "message": "no"}}
    backend = RealtimeBackend([error])
    try:
        with cl.RealtimeSession(openai_client(backend, home)) as realtime:
            realtime.send_text("hello")
            with pytest.raises(cl.InvalidRequest, match="no"):
                list(realtime.events())
    finally:
        backend.server.shutdown()


def test_realtime_cli_over_websocket_prints_the_streamed_text(
    home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    backend = RealtimeBackend(REALTIME_ANSWER)
    session = tmp_path / "session.json"
    session.write_text('{"type": "realtime", "output_modalities": ["audio"]}')
    try:
        done = cli(home, "realtime", "--text", "hello", env=openai_env(backend))
        args = ("realtime", "--text", "hello", "--session-json", str(session))
        audio = cli(home, *args, env=openai_env(backend))
        refused = cli(
            home, "realtime", "--transport", "webrtc", env=openai_env(backend)
        )
    finally:
        backend.server.shutdown()
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello\n"
    updates = [e["session"] for e in backend.received if e["type"] == "session.update"]
    assert updates == [  # --text prints text: it asks for it, unless told otherwise
        {"type": "realtime", "output_modalities": ["text"]},
        {"type": "realtime", "output_modalities": ["audio"]},
    ]
    assert audio.returncode == 0, audio.stderr
    assert refused.returncode == 2 and "--sdp-offer" in refused.stderr


def test_realtime_a_ping_flood_that_stops_reading_is_a_typed_stall(
    home: pathlib.Path,
) -> None:
    with (
        Budget(10),
        pytest.raises(cl.StreamError, match="idle timeout waiting for realtime"),
    ):
        in_memory_limit(realtime_ping_flood, home, peak=100 << 20)
    server = ping_flood()
    (home / "config.toml").write_text(
        "model_provider = 'mine'\n[model_providers.mine]\nname = 'mine'\n"
        f"base_url = '{server.url}'\nstream_idle_timeout_ms = 400\n"
    )
    try:
        with Budget(10):
            code, out, err, used = in_memory_limit(
                run_cli, home, "realtime", "--text", "hello", peak=100 << 20
            )
    finally:
        server.close()
    assert (code, out) == (1, "")
    assert err == "error: idle timeout waiting for realtime events\n"
    assert used < 100 << 20, f"the command's peak: {used >> 20} MiB"


@pytest.mark.parametrize("base_url", ["ftp://127.0.0.1/v1", "file:///v1", "no url"])
def test_realtime_a_base_url_that_is_not_http_is_a_config_error(
    home: pathlib.Path, base_url: str
) -> None:
    provider = cl.ModelProvider("odd", cl.ProviderInfo(base_url=base_url), home=home)
    client = cl.Client(provider, model="m", retry_policy=FAST)
    with pytest.raises(cl.ConfigError, match="model provider 'odd'.*base_url"):
        cl.RealtimeSession(client)
    (home / "config.toml").write_text(
        "model_provider = 'odd'\n[model_providers.odd]\nname = 'odd'\n"
        f"base_url = '{base_url}'\n"
    )
    done = cli(home, "realtime", "--text", "hello")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: model provider 'odd'"), done.stderr


def test_realtime_a_closed_session_is_a_stream_error(home: pathlib.Path) -> None:
    backend = RealtimeBackend([])
    session = cl.RealtimeSession(openai_client(backend, home))
    backend.server.shutdown()
    session.connection.close()
    with pytest.raises(cl.StreamError, match="closed"):
        session.send_text("hi")


# --- Command line -----------------------------------------------------------


CODEX_EXEC_JSON = TESTS / "codex-0.171.0" / "exec-json"


def capture_answer(
    *items: dict[str, Any], output: int = 4, reasoning: int = 0
) -> Reply:
    """The answer the capture server gave (codex-exec-and-profiles.md §1:
    usage 10 in, 3 cached, `output` out with `reasoning`)."""
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 3},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": 10 + output,
    }
    events = [{"type": "response.output_item.done", "item": i} for i in items]
    return reply(body=sse(*events, completed(usage=usage)))


def error_body(message: str, kind: str, code: str | None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": kind, "code": code}}
    ).encode()


FAIL_HEADERS = {"Content-Type": "application/json", "x-request-id": "req_capture_fail"}
HELLO = capture_answer(assistant("hello from capture"))
# Each scenario of the capture: what the server answered, codex-lite's exit
# code (Codex exits 1 on every failed turn), and the typed fields of the error.
CAPTURE_SCENARIOS: dict[str, tuple[list[Reply], int, dict[str, Any]]] = {
    "plain-text": ([HELLO], 0, {}),
    "reasoning": (
        [
            capture_answer(
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [
                        {
                            "type": "summary_text",
                            "text": "**Thinking**\n\nI considered the question.",
                        }
                    ],
                },
                assistant("the answer is 4"),
                output=11,
                reasoning=7,
            )
        ],
        0,
        {},
    ),
    "stream-cut-then-ok": (
        [
            reply(body=sse({"type": "response.output_text.delta", "delta": "hel"})),
            HELLO,
        ],
        0,
        {},
    ),
    "failed-context-length-exceeded": (
        [
            reply(
                body=sse(
                    {
                        "type": "response.failed",
                        "response": {
                            "id": "resp_1",
                            "error": {
                                "code": "context_length_exceeded",
                                "message": "Your input exceeds the context window.",
                            },
                        },
                    }
                )
            )
        ],
        1,
        {"kind": "other", "http_status": None, "code": "context_length_exceeded"},
    ),
    "http-429-insufficient-quota": (
        [
            reply(
                429,
                error_body(
                    "You exceeded your quota.",
                    "insufficient_quota",
                    "insufficient_quota",
                ),
                FAIL_HEADERS,
            )
        ],
        4,
        {"kind": "usage_limit", "http_status": 429, "code": "insufficient_quota"},
    ),
    "http-429-no-retry-after": (
        [
            reply(
                429,
                error_body("Rate limit reached.", "requests", "rate_limit_exceeded"),
                FAIL_HEADERS,
            )
        ],
        5,
        {"kind": "rate_limit", "http_status": 429, "code": "rate_limit_exceeded"},
    ),
    "http-400": (
        [
            reply(
                400,
                error_body(
                    "Invalid value for 'model'.",
                    "invalid_request_error",
                    "invalid_value",
                ),
                FAIL_HEADERS,
            )
        ],
        1,
        {"kind": "other", "http_status": 400, "code": "invalid_value"},
    ),
}


def codex_view(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`--json` lines as a Codex consumer reads them: Codex's keys only, the
    thread id and error texts (wording differs, an error's shape does not)
    set aside."""
    view = []
    for line in lines:
        line = dict(line)
        if line["type"] == "thread.started":
            assert isinstance(line.pop("thread_id"), str)
        elif line["type"] == "error":
            assert isinstance(line.pop("message"), str)
            line = {"type": "error"}
        elif line["type"] == "turn.failed":
            assert isinstance(line.pop("error")["message"], str)
        view.append(line)
    return view


def read_terminal(fd: int, *, until: bytes, seconds: float = 20) -> bytes:
    """What a program wrote to the pseudo-terminal `fd`, up to `until`."""
    import select

    seen = b""
    deadline = time.monotonic() + seconds
    while (
        until not in seen
        and select.select([fd], [], [], deadline - time.monotonic())[0]
    ):
        try:
            seen += os.read(fd, 65536)
        except OSError:  # the program closed its end
            break
    return seen.replace(b"\r\n", b"\n")


def cut_mid_answer(handler: http.server.BaseHTTPRequestHandler) -> None:
    """Part of the answer, then the connection reset mid-body."""
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = sse({"type": "response.output_text.delta", "delta": "hel"})
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    handler.wfile.flush()
    reset_connection(handler)


def socket_cut_mid_answer(raw: RawWebSocket) -> None:
    raw.read()
    raw.send_events({"type": "response.output_text.delta", "delta": "hel"})
    raw.write(0x8, (1011).to_bytes(2, "big"))  # close: internal error


def raw_cli(
    home: pathlib.Path, *args: str, env: dict[str, str], **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    """The command line with bytes in and out, and `subprocess.run` options."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))
    }
    kwargs.setdefault("cwd", HERE)
    return subprocess.run(
        [sys.executable, "-m", "codex_lite", *args],
        check=False,
        env={**base, "CODEX_HOME": str(home), **env},
        capture_output=True,
        timeout=60,
        **kwargs,
    )


# ... exec ...


def test_cli_exec_streams_text_and_usage(server: Loopback, home: pathlib.Path) -> None:
    server.then(reply(body=text_stream("Hello from the model")))
    done = cli(home, "exec", "say hi", env=openai_env(server))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello from the model\n"
    assert (
        "tokens used: input 3 (cached 0), output 1 (reasoning 0), total 4"
        in done.stderr
    )
    body = server.seen[0].json()
    assert body["input"][0]["content"] == [{"type": "input_text", "text": "say hi"}]
    (rollout,) = (home / "sessions").glob("*/*/*/rollout-*.jsonl")
    lines = [json.loads(line) for line in rollout.read_text().splitlines()]
    kinds = [(line["type"], line["payload"].get("type")) for line in lines]
    assert kinds == [
        ("session_meta", None),
        ("event_msg", "task_started"),
        ("response_item", "message"),
        ("response_item", "message"),
        ("event_msg", "token_count"),
        ("event_msg", "task_complete"),
    ]
    assert [line["ordinal"] for line in lines] == list(range(6))
    started, count, complete = lines[1]["payload"], lines[4], lines[5]["payload"]
    usage = {
        "input_tokens": 3,
        "cached_input_tokens": 0,
        "cache_write_input_tokens": 0,
        "output_tokens": 1,
        "reasoning_output_tokens": 0,
        "total_tokens": 4,
    }
    assert count["payload"]["info"]["last_token_usage"] == usage
    assert count["payload"]["info"]["total_token_usage"] == usage
    assert complete["turn_id"] == started["turn_id"]
    assert complete["last_agent_message"] == "Hello from the model"
    assert complete["duration_ms"] >= complete["time_to_first_token_ms"] >= 0


def test_cli_exec_prompt_from_stdin_and_ephemeral(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream()))
    done = cli(
        home, "exec", "--ephemeral", "-", env=openai_env(server), stdin="from stdin\n"
    )
    assert done.returncode == 0, done.stderr
    assert server.seen[0].json()["input"][0]["content"][0]["text"] == "from stdin\n"
    assert not (home / "sessions").exists()


def test_cli_raw_events_come_after_codex_lines_under_their_own_types(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream("ok"), headers={"openai-model": "gpt-x"}))
    args = ("exec", "--json", "--raw-events", "hi")
    done = cli(home, *args, env=openai_env(server))
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["type"] for e in events] == [
        "thread.started",
        "turn.started",
        "lite.server_model",
        "lite.rate_limits",  # the codex snapshot comes with every response
        "lite.created",
        "lite.output_text_delta",
        "lite.output_item_done",
        "lite.completed",
        "item.completed",
        "turn.completed",
    ]
    assert events[3] == {
        "type": "lite.rate_limits",
        "limit_id": "codex",
        "primary": None,
        "secondary": None,
        "limit_name": None,
        "credits": None,
    }
    assert events[5]["delta"] == "ok"
    assert events[6]["item"]["content"][0]["text"] == "ok"
    assert events[7]["usage"]["total_tokens"] == 4
    assert events[8]["item"] == {"id": "item_0", "type": "agent_message", "text": "ok"}
    plain = cli(
        home,
        "exec",
        "--json",
        "hi",
        env=openai_env(server.then(reply(body=text_stream("ok")))),
    )
    assert [json.loads(line)["type"] for line in plain.stdout.splitlines()] == [
        "thread.started",
        "turn.started",
        "item.completed",
        "turn.completed",
    ]


@pytest.mark.parametrize("scenario", sorted(CAPTURE_SCENARIOS))
def test_cli_json_is_what_codex_exec_json_prints(
    server: Loopback, home: pathlib.Path, scenario: str
) -> None:
    replies, exit_code, typed = CAPTURE_SCENARIOS[scenario]
    (run,) = json.loads((CODEX_EXEC_JSON / f"{scenario}.json").read_text())["runs"][:1]
    server.then(*replies)
    done = cli(home, "exec", "--json", "say hello", env=openai_env(server))
    assert done.returncode == exit_code, done.stderr
    assert (run["exit_code"] == 0) == (exit_code == 0)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert codex_view(lines) == codex_view(run["stdout_lines"])
    assert uuid.UUID(lines[0]["thread_id"])
    if typed:
        error, failed = lines[-2:]
        retryable = typed["kind"] == "rate_limit"  # a later run may do
        expected = {**typed, "request_id": error["request_id"], "retryable": retryable}
        assert {k: error[k] for k in expected} == expected
        assert error["will_retry"] is False and failed["error"] == {
            k: v for k, v in error.items() if k not in ("type", "will_retry")
        }
        assert error["message"] in done.stderr
    if "http" in scenario:
        assert error["request_id"] == "req_capture_fail"


def test_cli_json_usage_is_the_threads_total_after_resume(
    server: Loopback, home: pathlib.Path
) -> None:
    capture = json.loads((CODEX_EXEC_JSON / "resume-last.json").read_text())["runs"]
    server.then(HELLO, HELLO, HELLO)
    env = openai_env(server)
    first = cli(home, "exec", "--json", "first prompt", env=env)
    second = cli(home, "exec", "--json", "resume", "--last", "second prompt", env=env)
    third = cli(home, "exec", "resume", "--last", "--json", "third prompt", env=env)
    for done, codex in zip((first, second, third), capture, strict=False):
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        assert codex_view(lines) == codex_view(codex["stdout_lines"])
    thread_ids = {
        json.loads(d.stdout.splitlines()[0])["thread_id"]
        for d in (first, second, third)
    }
    assert len(thread_ids) == 1


def test_cli_failed_turns_exit_by_kind(server: Loopback, home: pathlib.Path) -> None:
    provider = (
        f'model_providers.t={{name="t", base_url="{server.url}", env_key="T_KEY", '
        "request_max_retries=1, stream_max_retries=1}"
    )
    args = ("-c", provider, "--provider", "t", "hi")
    env = {"T_KEY": "sk-test-key-1234"}
    key = error_body("Incorrect API key.", "invalid_request_error", "invalid_api_key")
    plan = error_body("Plan limit.", "usage_limit_reached", "usage_limit_reached")
    cut = reply(body=sse({"type": "response.output_text.delta", "delta": "hel"}))
    cases = [  # server answer, exit code, kind, HTTP status, requests, notices
        (reply(401, key, FAIL_HEADERS), 3, "unauthorized", 401, 1, 0),
        (reply(429, plan, FAIL_HEADERS), 4, "usage_limit", 429, 1, 0),
        (reply(503, b"busy"), 6, "server", 503, 2, 0),  # request retries: silent
        (reset_connection, 6, "server", None, 2, 0),
        (cut, 6, "server", None, 2, 1),  # a stream retry: a notice
    ]
    for step, code, kind, status, requests, notices in cases:
        before = len(server.seen)
        server.then(*[step] * requests)
        done = cli(home, "exec", "--json", *args, env=env)
        assert done.returncode == code, (kind, done.stderr)
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        types = [line["type"] for line in lines]
        assert types == [
            "thread.started",
            "turn.started",
            *["error"] * notices,
            "error",
            "turn.failed",
        ]
        assert len(server.seen) - before == requests
        error = lines[-1]["error"]
        assert (error["kind"], error["http_status"]) == (kind, status)
        assert error["retryable"] is (kind == "server")
        if notices:
            notice = lines[2]
            assert notice["message"].startswith("Reconnecting... 1/1 (")
            assert (notice["kind"], notice["will_retry"]) == ("server", True)
    server.then(reply(400, b"bad"))
    plain = cli(home, "exec", *args, env=env)
    assert (plain.returncode, plain.stdout) == (1, "")
    assert "error: 400: Bad Request: bad" in plain.stderr
    missing = cli(home, "exec", "--json", *args)
    assert (missing.returncode, missing.stdout) == (2, "")  # nothing sent
    assert "T_KEY" in missing.stderr


def test_cli_version_and_exec_help_for_ci(home: pathlib.Path) -> None:
    for flag in ("--version", "-V"):
        done = cli(home, flag)
        assert (done.returncode, done.stdout) == (0, f"codex-lite {cl.__version__}\n")
    shown = cli(home, "exec", "--help").stdout
    examples, environment, codes = (
        shown.index("\nexamples:\n"),
        shown.index("\nenvironment:\n"),
        shown.index("\nexit codes:\n"),
    )
    assert shown.index("--output-last-message") < examples < environment < codes
    table = dict(
        line.split(maxsplit=1) for line in shown[codes:].splitlines()[2:] if line
    )
    assert sorted(map(int, table)) == [0, 1, 2, 3, 4, 5, 6, 130]
    readme = (HERE / "README.md").read_text()
    for code, meaning in table.items():
        assert f"| `{code}` | {meaning} |" in readme


def test_cli_resume_continues_the_thread(server: Loopback, home: pathlib.Path) -> None:
    server.then(
        reply(body=text_stream("first answer")),
        reply(body=text_stream("second answer")),
    )
    env = openai_env(server)
    assert cli(home, "exec", "first question", env=env).returncode == 0
    done = cli(home, "exec", "resume", "--last", "second question", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "second answer\n"
    first, second = server.seen
    assert first.header("thread-id") == second.header("thread-id")
    assert first.header("session-id") == second.header("session-id")
    texts = [i["content"][0]["text"] for i in second.json()["input"]]
    assert texts == ["first question", "first answer", "second question"]
    thread_id = first.header("thread-id") or ""
    server.then(reply(body=text_stream("third")))
    done = cli(home, "exec", "--json", "resume", thread_id, "third question", env=env)
    assert done.returncode == 0, done.stderr
    assert len(server.seen[2].json()["input"]) == 5


def test_cli_resume_last_is_the_newest_thread_of_this_directory(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    server.then(*[reply(body=text_stream()) for _ in range(4)])
    env = openai_env(server)
    assert cli(home, "exec", "asked here", env=env, cwd=here).returncode == 0
    assert cli(home, "exec", "asked there", env=env, cwd=there).returncode == 0
    done = cli(home, "exec", "resume", "--last", "again here", env=env, cwd=here)
    assert done.returncode == 0, done.stderr
    texts = [i["content"][0]["text"] for i in server.seen[2].json()["input"]]
    assert texts[0] == "asked here"
    done = cli(home, "exec", "resume", "--last", "--all", "newest", env=env, cwd=there)
    assert done.returncode == 0, done.stderr
    texts = [i["content"][0]["text"] for i in server.seen[3].json()["input"]]
    assert texts[0] == "asked here"  # the thread updated last, wherever it started
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = cli(home, "exec", "resume", "--last", "x", env=env, cwd=elsewhere)
    assert done.returncode == 2 and "no rollouts for" in done.stderr


def test_cli_resumes_an_upstream_codex_rollout(
    server: Loopback, home: pathlib.Path
) -> None:
    thread_id = "0199a213-81c0-7800-8aa1-bbab2a035a53"
    folder = home / "sessions" / "2026" / "05" / "05"
    folder.mkdir(parents=True)
    lines = [
        {
            "timestamp": "2026-05-05T10:32:18.680Z",
            "type": "session_meta",
            "payload": {
                "id": thread_id,
                "timestamp": "2026-05-05T10:32:18.680Z",
                "cwd": "/w",
                "originator": "codex_cli_rs",
                "cli_version": "0.50.0",
                "source": "exec",
                "model_provider": "openai",
            },
        },
        {
            "timestamp": "2026-05-05T10:32:18.700Z",
            "type": "turn_context",
            "payload": {"cwd": "/w"},
        },
        {
            "timestamp": "2026-05-05T10:32:18.710Z",
            "type": "response_item",
            "payload": {
                "type": "message",
                "id": "9b2f5a4e-legacy-id",
                "role": "user",
                "content": [{"type": "input_text", "text": "old question"}],
            },
        },
        {
            "timestamp": "2026-05-05T10:32:19.100Z",
            "type": "response_item",
            "payload": {
                "type": "reasoning",
                "id": "rs_abc",
                "summary": [],
                "encrypted_content": "gAAAA",
            },
        },
        {
            "timestamp": "2026-05-05T10:32:19.200Z",
            "type": "event_msg",
            "payload": {"type": "token_count", "info": None},
        },
        {
            "timestamp": "2026-05-05T10:32:19.300Z",
            "type": "response_item",
            "payload": {
                "type": "message",
                "id": "msg_def",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": "old answer", "annotations": []}
                ],
                "phase": "final_answer",
            },
        },
    ]
    path = folder / f"rollout-2026-05-05T10-32-18-{thread_id}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    server.then(reply(body=text_stream("new answer")))
    done = cli(
        home, "exec", "resume", thread_id, "new question", env=openai_env(server)
    )
    assert done.returncode == 0, done.stderr
    sent = server.seen[0].json()["input"]
    assert "id" not in sent[0]  # legacy unprefixed id dropped from the request copy
    assert [i.get("id") for i in sent[1:3]] == ["rs_abc", "msg_def"]
    assert sent[3]["content"][0]["text"] == "new question"
    assert server.seen[0].header("thread-id") == thread_id
    assert path.read_text().startswith(json.dumps(lines[0]))  # appended, not rewritten


def test_cli_fast_toggle_round_trips_the_config(
    server: Loopback, home: pathlib.Path
) -> None:
    config = home / "config.toml"
    config.write_text(FAST_CONFIG)
    done = cli(home, "fast", "on")
    assert (done.returncode, done.stdout) == (0, "fast mode is on\n")
    # the value changes where it stands; nothing else does
    assert config.read_text() == FAST_CONFIG.replace(
        'service_tier = "flex"\n', 'service_tier = "fast"\n', 1
    )
    assert cli(home, "fast", "status").stdout == "fast mode is on\n"
    server.then(reply(body=text_stream()))
    assert cli(home, "exec", "hi", env=openai_env(server)).returncode == 0
    assert server.seen[0].json()["service_tier"] == "priority"
    assert cli(home, "fast", "off").stdout == "fast mode is off\n"
    assert config.read_text() == FAST_CONFIG.replace('service_tier = "flex"\n', "", 1)
    server.then(reply(body=text_stream()), reply(body=text_stream()))
    assert cli(home, "exec", "--fast", "hi", env=openai_env(server)).returncode == 0
    (home / "y.config.toml").write_text('service_tier = "flex"\n')
    assert (
        cli(
            home, "exec", "--no-fast", "-p", "y", "hi", env=openai_env(server)
        ).returncode
        == 0
    )
    assert server.seen[1].json()["service_tier"] == "priority"
    assert "service_tier" not in server.seen[2].json()


def test_cli_sessions_lists_newest_first(server: Loopback, home: pathlib.Path) -> None:
    server.then(reply(body=text_stream()), reply(body=text_stream()))
    cli(home, "exec", "first thread", env=openai_env(server))
    (first,) = (home / "sessions").rglob("rollout-*.jsonl")
    an_hour_ago = time.time() - 3600
    os.utime(first, (an_hour_ago, an_hour_ago))  # ordered by mtime, not by wait
    cli(home, "exec", "second thread", env=openai_env(server))
    done = cli(home, "sessions")
    rows = done.stdout.splitlines()
    assert (
        len(rows) == 2
        and rows[0].endswith("second thread")
        and rows[1].endswith("first thread")
    )
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d  [0-9a-f-]{36}  ", rows[0])


def test_cli_ctrl_c_exits_130_and_keeps_the_rollout(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(
        reply(
            body=[sse({"type": "response.output_text.delta", "delta": "partial"})],
            hang=20,
        )
    )
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))
    }
    # A shell starts background jobs with SIGINT ignored and children inherit
    # that; give the command line the disposition a terminal would.
    run_cli = (
        "import signal, sys, codex_lite; "
        "signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.exit(codex_lite.main(['exec', 'long task']))"
    )
    terminal, stdout = os.openpty()  # streamed text is shown on a terminal only
    proc = subprocess.Popen(
        [sys.executable, "-c", run_cli],
        env={**base, "CODEX_HOME": str(home), **openai_env(server)},
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(stdout)
    assert read_terminal(terminal, until=b"partial").endswith(b"partial")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130 and "Traceback" not in err
    (rollout,) = (home / "sessions").glob("*/*/*/rollout-*.jsonl")
    (item,) = cl.read_rollout(rollout).items
    assert isinstance(item, cl.Message) and item.content == (
        cl.InputText(text="long task"),
    )


@pytest.mark.parametrize("way", ["http", "websocket", "websocket then http"])
@pytest.mark.parametrize("terminal", [False, True])
def test_a_retried_answer_reaches_stdout_once(
    server: Loopback, home: pathlib.Path, way: str, terminal: bool
) -> None:
    """A pipe gets the answer once; a terminal sees the retry marked."""
    (home / "config.toml").write_text(
        f"""model_provider = "local"
[model_providers.local]
base_url = "{server.url}"
env_key = "LOCAL_KEY"
supports_websockets = true
stream_max_retries = 1
"""
    )
    answer = "hello world"
    sockets: list[RawWebSocket] = []

    def cut_then_answer(raw: RawWebSocket) -> None:
        sockets.append(raw)
        if len(sockets) == 1:
            return socket_cut_mid_answer(raw)
        raw.read()
        raw.send_events(*text_events(answer, "resp_2", "msg_2"))

    if way == "http":
        server.then(cut_mid_answer, reply(body=text_stream(answer)))
    elif way == "websocket":
        server.websocket = cut_then_answer
    else:  # every socket cut: the budget runs out and HTTP answers
        server.websocket = socket_cut_mid_answer
        server.then(reply(body=text_stream(answer)))
    env = {"CODEX_HOME": str(home), "LOCAL_KEY": "k-local-12345678"}
    if not terminal:
        code, out, err = in_memory_limit(
            main_in_process, ["exec", "hi"], env, peak=200 << 20
        )
        assert (code, out) == (0, "hello world\n"), err
        assert "reconnecting" in err
        return
    env = {**os.environ, **env}
    command = [sys.executable, "-m", "codex_lite", "exec", "hi"]
    screen, stdout = os.openpty()
    proc = subprocess.Popen(command, env=env, stdout=stdout, cwd=HERE)
    os.close(stdout)
    shown = read_terminal(screen, until=b"hello world\n")
    assert proc.wait(30) == 0
    cuts = 2 if way == "websocket then http" else 1  # each retry marked
    marked = b"hel\n[connection lost: the answer starts again]\n"
    assert shown == marked * cuts + b"hello world\n"


def test_cli_images(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(PNG_1PX)
    server.then(reply(body=text_stream()))
    done = cli(
        home,
        "exec",
        "-i",
        str(image),
        "-i",
        str(tmp_path / "missing.png"),
        "what?",
        env=openai_env(server),
    )
    assert done.returncode == 0, done.stderr
    content = server.seen[0].json()["input"][0]["content"]
    assert content[0] == {
        "type": "input_text",
        "text": f'<image name=[Image #1] path="{image}">',
    }
    assert (
        content[1]["image_url"]
        == "data:image/png;base64," + base64.b64encode(PNG_1PX).decode()
    )
    assert content[1]["detail"] == "high"
    assert content[2] == {"type": "input_text", "text": "</image>"}
    assert content[3]["text"].startswith("Codex could not read the local image at ")
    assert content[4] == {"type": "input_text", "text": "what?"}


def test_cli_output_schema(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
    }
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    server.then(reply(body=text_stream('{"a": "x"}')), reply(body=text_stream("no")))
    args = ("exec", "--output-schema", str(path), "x")
    done = cli(home, *args, env=openai_env(server))
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{"a": "x"}\n'
    assert server.seen[0].json()["text"]["format"]["schema"] == schema
    # a reply that is not JSON: shown, then the error (strict servers never send one)
    done = cli(home, *args, env=openai_env(server))
    assert done.returncode == 1 and done.stdout == "no\n"
    assert "the reply does not parse as its schema" in done.stderr
    path.write_text("{not json")
    assert (
        cli(
            home, "exec", "--output-schema", str(path), "x", env=openai_env(server)
        ).returncode
        == 2
    )


def test_cli_body_fields_replace_or_add_request_fields(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(body=text_stream()))
    done = cli(
        home,
        "exec",
        "--body-field",
        "tool_choice=required",
        "--body-field",
        'metadata={"job": "nightly"}',
        "--body-field",
        "max_tool_calls=3",
        "--body-field",
        "safety_identifier=42x",
        "hi",
        env=openai_env(server),
    )
    assert done.returncode == 0, done.stderr
    body = server.seen[0].json()
    assert body["tool_choice"] == "required"
    assert body["metadata"] == {"job": "nightly"}
    assert body["max_tool_calls"] == 3
    assert body["safety_identifier"] == "42x"  # not JSON: taken as a string
    assert list(body).index("tool_choice") == 2  # where codex-lite puts its own
    for bad, named in (("input=[]", "input"), ("no-value", "no-value")):
        refused = cli(home, "exec", "--body-field", bad, "hi", env=openai_env(server))
        assert refused.returncode == 2 and named in refused.stderr
    assert len(server.seen) == 1
    assert "--body-field KEY=VALUE" in cli(home, "exec", "--help").stdout


def test_cli_dry_run_shows_the_input_as_it_would_be_sent(home: pathlib.Path) -> None:
    done = cli(home, "exec", "--dry-run", "hello", env={"OPENAI_API_KEY": "sk-test"})
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout.partition("\n\n")[2])
    metadata = body["input"][0]["internal_chat_message_metadata_passthrough"]
    assert set(metadata) == {"turn_id", "create_time"}
    assert body["client_metadata"]["turn_id"] == metadata["turn_id"]


def test_exec_appends_piped_stdin_as_codex_does(
    server: Loopback, home: pathlib.Path
) -> None:
    # what Codex 0.169 sent for `printf ... | codex exec "review this"`, seen on this machine
    cases = {
        "line one\nline two\n": "review this\n\n<stdin>\nline one\nline two\n</stdin>",
        "no newline": "review this\n\n<stdin>\nno newline\n</stdin>",
        "  \n": "review this",
    }
    for piped, expected in cases.items():
        server.then(reply(body=text_stream()))
        done = cli(home, "exec", "review this", stdin=piped, env=openai_env(server))
        assert done.returncode == 0, done.stderr
        assert server.seen[-1].json()["input"][-1]["content"][-1]["text"] == expected


def test_exec_output_last_message_and_cd(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    server.then(reply(body=text_stream("final answer")))
    out = tmp_path / "last.txt"
    args = ("exec", "-C", str(work), "-o", str(out), "hi")
    done = cli(home, *args, env=openai_env(server))
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "final answer"
    (path,) = (home / "sessions").rglob("rollout-*.jsonl")
    assert json.loads(path.read_text().splitlines()[0])["payload"]["cwd"] == str(work)
    missing = cli(home, "exec", "-C", str(tmp_path / "nowhere"), "hi")
    assert missing.returncode == 2 and "nowhere" in missing.stderr


def test_every_command_line_option_has_a_help_line() -> None:
    parser = cl._exec_parser()
    bare = [
        a.option_strings for a in parser._actions if a.option_strings and not a.help
    ]
    assert bare == []
    shown = cli(pathlib.Path(tempfile.mkdtemp()), "exec", "--help").stdout
    for option in (
        "-m MODEL",
        "-p PROFILE",
        "-c KEY=VALUE",
        "--fast",
        "--output-schema",
        "-i FILE",
        "-o FILE",
        "-C DIR",
    ):
        assert option in shown


def test_background_cli_answer_printed_once_through_the_cuts(
    server: Loopback, home: pathlib.Path
) -> None:
    events = background_answer(5)
    server.then(cut(*events[:3]), cut(*events[3:5]), reply(body=sse(*events[5:])))
    done = cli(home, "exec", "--background", "go", env=openai_env(server))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "0 1 2 3 4 \n"
    assert [s.method for s in server.seen] == ["POST", "GET", "GET"]


# ... bad local input, exit codes and messages ...


def test_cli_output_file_that_cannot_be_written_is_named(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    server.then(reply(body=text_stream("the answer")))
    target = tmp_path / "missing-dir" / "answer.txt"
    done = cli(home, "exec", "-o", str(target), "hi", env=openai_env(server))
    assert done.stdout == "the answer\n"
    assert done.returncode == 1, done.stderr  # not 2: the request was sent
    assert f"error: -o {target}: No such file or directory" in done.stderr
    assert ".answer.txt." not in done.stderr


def test_cli_exit_codes(server: Loopback, home: pathlib.Path) -> None:
    body = json.dumps(
        {"error": {"message": "Unsupported model", "code": "model_not_found"}}
    )
    server.then(reply(404, body.encode(), {"x-request-id": "req_cli"}))
    done = cli(home, "exec", "hi", env=openai_env(server))
    assert done.returncode == 1
    assert "Unsupported model" in done.stderr and "req_cli" in done.stderr
    assert "Traceback" not in done.stderr
    assert (
        cli(home, "exec").returncode == 2
    )  # no prompt on a non-tty stdin that is empty
    assert cli(home, "bogus").returncode == 2
    assert cli(home, "exec", "--no-such-flag", "x").returncode == 2
    fresh = home / "fresh"
    fresh.mkdir()
    done = cli(fresh, "exec", "hi", env={"OPENAI_BASE_URL": server.url})
    assert done.returncode == 2 and "OPENAI_API_KEY" in done.stderr
    assert not (fresh / "sessions").exists()  # nothing was sent, nothing recorded


def test_cli_broken_config_names_file_and_key(home: pathlib.Path) -> None:
    config = home / "config.toml"
    config.write_text("model = 5\n")
    done = cli(home, "exec", "--dry-run", "hi")
    assert done.returncode == 2
    assert f"{config}: config.model must be a string, not int" in done.stderr
    config.write_text("model = [unclosed\n")
    done = cli(home, "exec", "--dry-run", "hi")
    assert (
        done.returncode == 2
        and str(config) in done.stderr
        and "Traceback" not in done.stderr
    )
    config.write_text(
        '[model_providers.x]\nname = "x"\nbase_url = "http://h/v1"\nwire_api = "chat"\n'
    )
    done = cli(home, "exec", "--dry-run", "--provider", "x", "hi")
    assert done.returncode == 2 and "model_providers.x.wire_api" in done.stderr
    done = cli(home, "exec", "--dry-run", "-c", "features.item_ids=3", "hi")
    assert (
        done.returncode == 2
        and "features.item_ids must be true or false" in done.stderr
    )


def test_hostile_text_reaches_terminal_json_and_rollout(
    server: Loopback, home: pathlib.Path
) -> None:
    item = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "bad \ud800 text"}],
    }
    raw = sse(
        {"type": "response.output_text.delta", "delta": "bad \ud800 text"},
        {"type": "response.output_item.done", "item": item},
        completed(),
    )
    assert b"\\ud800" in raw  # json.dumps escapes it: the wire form of the attack
    for json_lines in (False, True):
        server.then(reply(body=raw))
        args = ["exec", *(["--json"] if json_lines else []), "hi"]
        done = cli(home, *args, env=openai_env(server))
        assert done.returncode == 0, done.stderr
        assert "bad ? text" in done.stdout  # what UTF-8 cannot carry is replaced
        if json_lines:
            for line in done.stdout.splitlines():
                json.loads(line)
    for path in (home / "sessions").glob("*/*/*/*.jsonl"):
        assert "bad ? text" in history_texts(path)


def test_broken_local_files_name_the_path(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    env = openai_env(server)
    (home / "config.toml").mkdir()
    done = cli(home, "exec", "hi", env=env)
    assert (done.returncode, "Traceback" in done.stderr) == (2, False)
    assert f"{home / 'config.toml'}" in done.stderr
    (home / "config.toml").rmdir()
    (home / "auth.json").mkdir()
    done = cli(home, "exec", "hi", env={"OPENAI_BASE_URL": server.url})
    assert done.returncode == 2 and f"{home / 'auth.json'}" in done.stderr
    (home / "auth.json").rmdir()
    (home / "sessions").symlink_to(tmp_path / "gone")
    done = cli(home, "exec", "hi", env=env)
    assert done.returncode == 2 and f"{home / 'sessions'}" in done.stderr
    (home / "sessions").unlink()

    def small_files() -> None:  # a disk that fills up after 200 bytes
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))

    full = raw_cli(home, "exec", "hi", env=env, preexec_fn=small_files)
    assert full.returncode == 2, full.stderr
    assert b"File too large" in full.stderr and b"rollout-" in full.stderr
    assert server.seen == []


def test_dry_run_and_ephemeral_conversations_write_nothing(
    server: Loopback,
    home: pathlib.Path,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    env = {**openai_env(server), "HOME": str(user_home)}
    before = files_under(home, user_home)
    assert cli(home, "exec", "--dry-run", "hi", env=env).returncode == 0
    server.then(reply(body=text_stream()), reply(body=text_stream("vendored")))
    assert cli(home, "exec", "--ephemeral", "hi", env=env).returncode == 0
    for name, value in env.items():  # a vendored script, as the README has it
        monkeypatch.setenv(name, value)
    with cl.Conversation.start(cl.load_config(), ephemeral=True) as conversation:
        assert conversation.run_turn("hi").text == "vendored"
    assert files_under(home, user_home) == before
    ids = {s.json()["client_metadata"]["x-codex-installation-id"] for s in server.seen}
    assert len(ids) == 2 and all(uuid.UUID(i) for i in ids)  # none kept
    assert cli(home, "exec", "hi", env=env).returncode == 6  # a rollout: asked
    assert (home / "installation_id").exists() and (home / "sessions").is_dir()


def test_each_request_retry_is_a_line_on_stderr(
    server: Loopback, home: pathlib.Path
) -> None:
    server.then(reply(500), reply(503), reply(body=text_stream("at last")))
    done = cli(home, "exec", "--ephemeral", "hi", env=openai_env(server))
    assert (done.returncode, done.stdout) == (0, "at last\n"), done.stderr
    assert done.stderr.splitlines()[:2] == [
        "retrying request 1/4 in 0.2s … (500: Internal Server Error)",
        "retrying request 2/4 in 0.4s … (503: Service Unavailable)",
    ]


def test_a_dead_proxy_and_the_host_are_named(
    server: Loopback, home: pathlib.Path
) -> None:
    table = (
        f'model_providers.here={{name="here", base_url="{server.url}", '
        'env_key="HERE_KEY", request_max_retries=1}'
    )
    env = {
        "HERE_KEY": "sk-here-1234",
        **{
            name: "http://user:proxy-secret@127.0.0.1:9"
            for name in ("HTTP_PROXY", "HTTPS_PROXY")
        },
        **{name: "" for name in ("NO_PROXY", "no_proxy")},
    }
    done = cli(
        home, "exec", "--ephemeral", "--provider", "here", "-c", table, "hi", env=env
    )
    host = server.url.split("/")[2]
    failure = f"request to {host} through proxy 127.0.0.1:9 failed: connection error"
    assert done.returncode == 6 and server.seen == []  # a network failure
    assert done.stderr.startswith(f"retrying request 1/1 in 0.2s … ({failure}")
    assert done.stderr.splitlines()[-1].startswith(
        f"error: request failed after 2 attempts: {failure}"
    )
    assert "proxy-secret" not in done.stderr


def test_bad_local_input_is_a_usage_error_or_replaced(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    env = openai_env(server)
    odd = tmp_path / os.fsdecode(b"dir-\xff")
    odd.mkdir()
    server.then(reply(body=text_stream()), reply(body=text_stream()))
    piped = raw_cli(home, "exec", "-", env=env, input=b"caf\xe9 \xff", cwd=odd)
    assert piped.returncode == 0, piped.stderr
    argv = raw_cli(home, "exec", os.fsdecode(b"arg \xfe"), env=env, cwd=odd)
    assert argv.returncode == 0, argv.stderr
    sent = [s.json()["input"][0]["content"][0]["text"] for s in server.seen]
    assert sent == ["caf\ufffd \ufffd", "arg ?"]
    rollouts = (home / "sessions").glob("*/*/*/*.jsonl")
    cwds = [
        json.loads(p.read_bytes().split(b"\n")[0])["payload"]["cwd"] for p in rollouts
    ]
    assert cwds == [str(tmp_path / "dir-?")] * 2
    closed = raw_cli(home, "exec", "-", env=env, preexec_fn=lambda: os.close(0))
    assert closed.returncode == 2 and b"no prompt given" in closed.stderr


def test_more_bad_local_input(home: pathlib.Path, tmp_path: pathlib.Path) -> None:
    (home / "config.toml").write_text(
        '[model_providers.v6]\nbase_url = "http://[::1/v1"\n'
        '[model_providers.aws]\nbase_url = "http://127.0.0.1:9/v1"\n'
        'aws = { profile = "p", region = "us-east-1" }\n'
    )
    done = cli(home, "exec", "--dry-run", "--provider", "v6", "hi")
    assert done.returncode == 2 and "'v6': base_url is not a valid URL" in done.stderr
    aws_config = tmp_path / "aws-config"
    aws_config.write_bytes(b"[profile p]\nregion = \xff\n")
    env = {
        "AWS_CONFIG_FILE": str(aws_config),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    done = cli(home, "exec", "--provider", "aws", "hi", env=env)
    assert done.returncode == 2 and f"{aws_config}: not UTF-8 text" in done.stderr
    creds = json.dumps(
        {"AccessKeyId": "AKIDX12345", "SecretAccessKey": "s" * 20, "Expiration": "soon"}
    )
    aws_config.write_text(f"[profile p]\ncredential_process = echo {creds!r}\n")
    done = cli(home, "exec", "--provider", "aws", "hi", env=env)
    assert done.returncode == 2 and "Expiration" in done.stderr, done.stderr
    schema = tmp_path / "schema.json"
    schema.write_text("[" * 100_000 + "]" * 100_000)
    done = cli(home, "exec", "--dry-run", "--output-schema", str(schema), "hi")
    assert done.returncode == 2 and str(schema) in done.stderr
    session = tmp_path / "session.json"
    session.write_text("[1, 2]")
    offer = tmp_path / "offer.sdp"
    offer.write_text(SDP_OFFER)
    done = cli(
        home, "realtime", "--sdp-offer", str(offer), "--session-json", str(session)
    )
    assert done.returncode == 2 and "must hold an object" in done.stderr
    for command in (
        ["sessions", "--debug"],
        ["fast", "--debug"],
        ["login", "status", "--debug"],
    ):
        assert cli(home, *command).returncode in (0, 1), command
    assert "Traceback" not in done.stderr


# ... what is shown and what is hidden ...


def test_cli_dry_run_sends_nothing_and_redacts(home: pathlib.Path) -> None:
    done = cli(
        home, "exec", "--dry-run", "hello", env={"OPENAI_API_KEY": "sk-very-secret-key"}
    )
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition("\n\n")
    assert head.splitlines()[0] == "POST https://api.openai.com/v1/responses"
    assert "Authorization: Bearer <redacted>" in head
    assert "sk-very-secret-key" not in done.stdout + done.stderr
    assert json.loads(body)["input"][0]["content"][0]["text"] == "hello"
    assert not (home / "sessions").exists()


def test_cli_dry_run_without_credentials_still_shows_the_request(
    home: pathlib.Path,
) -> None:
    done = cli(home, "exec", "--dry-run", "hello")
    assert done.returncode == 0, done.stderr
    assert "showing the request without credentials" in done.stderr
    assert done.stdout.startswith("POST https://api.openai.com/v1/responses\n")


def test_cli_dry_run_redacts_chatgpt_and_aws_secrets(home: pathlib.Path) -> None:
    (home / "auth.json").write_text(
        json.dumps(
            {
                "tokens": {
                    "access_token": "chatgpt-secret-token",
                    "account_id": "acct-secret",
                }
            }
        )
    )
    done = cli(home, "exec", "--dry-run", "hi")
    assert done.returncode == 0, done.stderr
    assert "chatgpt.com/backend-api/codex/responses" in done.stdout
    assert (
        "chatgpt-secret-token" not in done.stdout and "acct-secret" not in done.stdout
    )
    assert '"text": "hi"' in done.stdout  # the compressed body is shown as JSON
    aws = {
        "AWS_ACCESS_KEY_ID": "AKIDSECRETID",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-key",
        "AWS_SESSION_TOKEN": "aws-session-secret",
        "AWS_CONFIG_FILE": str(home / "none"),
    }
    done = cli(
        home,
        "exec",
        "--dry-run",
        "--provider",
        "amazon-bedrock",
        "hi",
        env={**aws, "AWS_REGION": "us-east-1"},
    )
    assert done.returncode == 0, done.stderr
    assert "x-amz-security-token: <redacted>" in done.stdout
    assert "authorization: AWS4-HMAC-SHA256 <redacted>" in done.stdout
    for secret in aws.values():
        assert secret not in done.stdout + done.stderr
    custom = home / "config.toml"
    custom.write_text(
        '[model_providers.az]\nname = "azure"\nbase_url = "https://r.openai.azure.com/openai"\n'
        'env_http_headers = { "api-key" = "AZ_KEY" }\nquery_params = { api-version = "2025-04-01-preview" }\n'
    )
    done = cli(
        home,
        "exec",
        "--dry-run",
        "--provider",
        "az",
        "hi",
        env={"AZ_KEY": "azure-secret-key"},
    )
    assert done.returncode == 0, done.stderr
    assert (
        "api-key: <redacted>" in done.stdout and "azure-secret-key" not in done.stdout
    )
    assert "?api-version=2025-04-01-preview" in done.stdout


@pytest.mark.parametrize("level", ["", "info", "debug", "trace"])
def test_no_secret_in_any_command_output(
    server: Loopback, home: pathlib.Path, tmp_path: pathlib.Path, level: str
) -> None:
    secret_home(home, server)
    offer = tmp_path / "offer.sdp"
    offer.write_text(SDP_OFFER)
    env = {
        **SECRETS,
        **AWS_KEY_ID,
        "OPENAI_BASE_URL": server.url,
        "CODEX_LITE_LOG": level,
    }
    runs = [
        ["exec", "hello"],
        ["exec", "--json", "--provider", "custom", "hello"],
        ["exec", "--provider", "bearer", "hello"],
        ["exec", "--provider", "amazon-bedrock", "hello"],
        ["exec", "--dry-run", "--provider", "custom", "hello"],
        ["exec", "--dry-run", "--provider", "amazon-bedrock", "hello"],
        ["exec", "resume", "--last", "again"],
        ["exec", "--provider", "custom", "fails"],
        ["sessions"],
        ["fast", "status"],
        ["realtime", "--sdp-offer", str(offer)],
    ]
    for step in [reply(body=text_stream())] * 5 + [
        reply(500, b"boom"),
        reply(500, b"boom"),
    ]:
        server.then(step)
    server.then(reply(201, b"answer", {"Location": "/v1/realtime/calls/rtc_1"}))
    for args in runs:
        done = cli(home, *args, env=env)
        assert "Traceback" not in done.stderr, (args, done.stderr)
        assert_no_secret(done.stdout + done.stderr)
    chatgpt_env = {"OPENAI_BASE_URL": server.url, "CODEX_LITE_LOG": level}
    server.then(
        reply(body=text_stream()), reply(401, b'{"error":{"message":"expired"}}')
    )
    for args in (["exec", "hi"], ["exec", "hi"], ["exec", "--dry-run", "hi"]):
        done = cli(home, *args, env=chatgpt_env)
        assert_no_secret(done.stdout + done.stderr)
    sent = [s.header("authorization") or "" for s in server.seen]
    assert (
        f"Bearer {SECRETS['OPENAI_API_KEY']}" in sent
    )  # the secrets were really in play
    assert any(
        s.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE3333/") for s in sent
    )


def test_dry_run_hides_secrets_by_value_and_url_user_info(home: pathlib.Path) -> None:
    (home / "config.toml").write_text(
        """
[model_providers.gw]
base_url = "https://user:SECRET-url-password@gw.example.com/v1"
env_key = "GW_KEY"
http_headers = { "X-Auth" = "SECRET-static-x-auth" }
env_http_headers = { "apikey" = "GW_APIKEY" }
"""
    )
    env = {"GW_KEY": "SECRET-gw-key-1", "GW_APIKEY": "SECRET-gw-apikey"}
    done = cli(home, "exec", "--dry-run", "--provider", "gw", "hi", env=env)
    assert done.returncode == 0, done.stderr
    assert "POST https://<redacted>@gw.example.com/v1/responses" in done.stdout
    assert "X-Auth: <redacted>" in done.stdout and "apikey: <redacted>" in done.stdout
    for secret in ("SECRET-url-password", "SECRET-static-x-auth", *env.values()):
        assert secret not in done.stdout + done.stderr
    creds = cl.AwsCredentials("AKIDSECRETKEYID1", "s", "t")
    assert "AKIDSECRETKEYID1" not in repr(creds)


@pytest.mark.parametrize("flags", [(), ("--json", "--raw-events")])
def test_cli_a_server_echoing_the_key_gets_it_nowhere(
    server: Loopback, ws: WsBackend, home: pathlib.Path, flags: tuple[str, ...]
) -> None:
    answer = text_events(response_id=f"resp_{ECHO_KEY}")  # shown by --json
    server.then(
        reply(body=echo_stream(), headers=echo_headers()),
        reply(body=sse(*answer), headers=echo_headers()),
        reply(400, json.dumps(ECHO_ERROR).encode(), echo_headers()),
    )
    ws.answer_headers = list(echo_headers().items())
    frame = {"type": "error", "status": 400, **ECHO_ERROR}
    ws.then(ws_events(ECHO_FAILED), ws_events(*answer), ws_events(frame))
    runs = []
    for backend in (server, ws):
        env = {**openai_env(backend, ECHO_KEY), "CODEX_LITE_LOG": "debug"}
        env["CODEX_HOME"] = str(home)
        for _ in range(2):  # a hostile server: in bounded memory too
            done = in_memory_limit(
                main_in_process, ["exec", *flags, "hi"], env, peak=200 << 20
            )
            runs.append(subprocess.CompletedProcess([], *done))
    assert [done.returncode for done in runs] == [0, 1, 0, 1], runs[-1].stderr
    assert server.seen[0].header("authorization") == f"Bearer {ECHO_KEY}"
    assert len(ws.frames) == 3
    if flags:
        assert '"model": "model-<redacted>"' in runs[0].stdout + runs[2].stdout
        assert '"response_id": "resp_<redacted>"' in runs[0].stdout
    rollouts = [p.read_text() for p in (home / "sessions").rglob("*.jsonl")]
    assert len(rollouts) == 4 and '"limit_name":"<redacted>"' in "".join(rollouts)
    assert_no_echo("".join(d.stdout + d.stderr for d in runs) + "".join(rollouts))


# --- The module's shape -----------------------------------------------------


def test_each_section_uses_only_the_sections_above_it() -> None:
    """The module reads top to bottom: a top-level definition names only
    what a section above it, or its own, defines (annotations included)."""
    import ast

    source = (HERE / "codex_lite.py").read_text()
    banner = re.compile(r"# --- (.+?) -+$")
    starts = [
        (number, match[1])
        for number, line in enumerate(source.splitlines(), start=1)
        if (match := banner.match(line))
    ]
    order = ["(head)"] + [name for _, name in starts]

    def section(line: int) -> str:
        return next((n for at, n in reversed(starts) if at <= line), "(head)")

    tree = ast.parse(source)
    defined: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            defined.setdefault(node.name, section(node.lineno))
        for target in getattr(node, "targets", [getattr(node, "target", None)]):
            if isinstance(target, ast.Name):
                defined.setdefault(target.id, section(node.lineno))
    backward = set()
    for node in tree.body:
        here = section(node.lineno)
        for name in ast.walk(node):
            below = isinstance(name, ast.Name) and name.id in defined
            if below and order.index(defined[name.id]) > order.index(here):
                backward.add((here, name.id))
    docstring = ast.get_docstring(tree) or ""
    assert [n for n in order[1:] if n not in docstring] == []  # the map lists each
    assert sorted(backward) == []
