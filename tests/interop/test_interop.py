"""Interop tests: the real Codex CLI and codex-lite on one CODEX_HOME.

Each test gives both programs the same `$CODEX_HOME` and `$HOME` (fresh tmp
dirs) and a loopback Responses server of its own, then checks what one
program leaves on disk or sends on the wire after the other one ran.  Every
test runs against each of CODEX_VERSIONS: the newest release, and 0.169.0,
the first that codex-lite shares a `CODEX_HOME` with.

Each Codex comes from npm (`@openai/codex@VERSION`, about 400 MB, installed
once into `$CODEX_LITE_INTEROP_CACHE/VERSION`, by default
`~/.cache/codex-lite-interop/VERSION`; a line says when a download starts).
Without npm or the binary every test fails; none is skipped.  codex-lite runs
as `python -m codex_lite` from this work tree.  Codex calls outside hosts on
start; every run gets proxies pointing at a dead loopback port, so only the
loopback servers are reached.

    python -m pytest tests/interop          # -s prints the header key table
    python -m pytest tests/interop -k 0.171 # one Codex version

Codex facts these tests rest on (seen with 0.169.0 and 0.171.0 on this server):
- it writes `ordinal` on every rollout line when `session_meta.history_mode`
  is "paginated", and then refuses to resume a file whose last line has none;
- it sends the base instructions as the first input item, a developer
  message with id `msg_<uuid5(uuid5(NAMESPACE_OID, thread_id), text)>`, and
  no `instructions` field, for custom providers and the openai one;
- the built-in openai provider tries a WebSocket first (GET with Upgrade,
  answered 426 here) and then POSTs over HTTP; on a server that takes the
  WebSocket it opens each connection with a prewarm (`generate: false`) and
  sends the turn with `previous_response_id` and only the new items;
- `codex login status` prints to stderr and exits 1 when not logged in;
- `codex exec` with ChatGPT auth refreshes an expiring access token before
  anything else; the ChatGPT turn itself then needs more backend than this
  server has, so the test stops Codex once the refresh is written.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

# The newest release first; 0.169.0 is the first codex-lite shares a CODEX_HOME with.
CODEX_VERSIONS = ("0.171.0", "0.169.0")
# Codex calls outside hosts on start: they get a loopback port nothing listens on.
OFFLINE = {
    **dict.fromkeys(
        (
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ),
        "http://127.0.0.1:9",
    ),
    **dict.fromkeys(("NO_PROXY", "no_proxy"), "127.0.0.1,localhost"),
}
REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 60  # seconds, for every Codex or codex-lite run
NPM_TIMEOUT = 900
MODEL = "tiny"
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
ACCOUNT_ID = "acc-interop"
# `x-codex-turn-metadata` keys both programs must send, and the ones Codex
# 0.169 was seen sending (codex-lite may send a subset, nothing else).
REQUIRED_TURN_METADATA = {
    "installation_id",
    "session_id",
    "thread_id",
    "turn_id",
    "window_id",
    "window_number",
    "request_kind",
    "model",
}
KNOWN_TURN_METADATA = REQUIRED_TURN_METADATA | {
    "agent_name",
    "analytics_enabled",
    "auto_review_enabled",
    "context_window_id",
    "history_initialization",
    "node_repl_auto_review_required",
    "node_repl_disabled",
    "reasoning_effort",
    "root_turn_id",
    "sandbox",
    "sandbox_mode",
    "thread_source",
    "turn_started_at_unix_ms",
    "turn_trigger",
}


# --- The Codex binary -------------------------------------------------------


def _cache_dir(version: str) -> Path:
    value = os.environ.get("CODEX_LITE_INTEROP_CACHE", "").strip()
    default = Path.home() / ".cache" / "codex-lite-interop"
    return (Path(value).expanduser() if value else default) / version


def _find_codex(cache: Path) -> list[str] | None:
    """The command that runs the installed Codex: the platform binary under
    `node_modules/@openai/*/vendor/<triple>/bin/`, else node and bin/codex.js."""
    scope = cache / "node_modules" / "@openai"
    for path in sorted(scope.glob("**/vendor/*/bin/codex")):
        if path.is_file() and os.access(path, os.X_OK):
            return [str(path)]
    script = scope / "codex" / "bin" / "codex.js"
    node = shutil.which("node")
    if script.is_file() and node:
        return [node, str(script)]
    return None


def _codex_version(command: list[str]) -> str:
    try:
        proc = subprocess.run(
            [*command, "--version"],
            check=False,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **OFFLINE},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"<{command[0]} --version failed: {exc}>"
    return (proc.stdout.strip() or proc.stderr.strip())[:500]


def _npm_install(cache: Path, version: str, request: pytest.FixtureRequest) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            "npm is not on PATH: the interop suite installs "
            f"@openai/codex@{version} with it (into {cache})",
            pytrace=False,
        )
    cache.mkdir(parents=True, exist_ok=True)
    manifest = cache / "package.json"
    if not manifest.exists():  # keeps npm from installing into a parent project
        manifest.write_text('{"private": true}\n', encoding="utf-8")
    command = [
        npm,
        "install",
        "--no-audit",
        "--no-fund",
        f"@openai/codex@{version}",
    ]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\ninterop: downloading @openai/codex@{version} (~400 MB) into {cache}")
    try:
        proc = subprocess.run(
            command,
            check=False,
            cwd=cache,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"{' '.join(command)} (in {cache}) failed: {exc}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} (in {cache}) exited {proc.returncode}:\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
            pytrace=False,
        )


@pytest.fixture(scope="session", params=CODEX_VERSIONS)
def codex_version(request: pytest.FixtureRequest) -> str:
    """The Codex release a test runs against (each test runs with each)."""
    return str(request.param)


@pytest.fixture(scope="session")
def codex_command(codex_version: str, request: pytest.FixtureRequest) -> list[str]:
    """How to run that Codex, installed from npm when missing."""
    cache = _cache_dir(codex_version)
    expected = f"codex-cli {codex_version}"
    command = _find_codex(cache)
    if command is None or _codex_version(command) != expected:
        _npm_install(cache, codex_version, request)
        command = _find_codex(cache)
    if command is None:
        pytest.fail(
            f"npm installed @openai/codex@{codex_version} into {cache}, but no "
            "vendor/*/bin/codex binary (nor node and bin/codex.js) is there",
            pytrace=False,
        )
    version = _codex_version(command)
    if version != expected:
        pytest.fail(
            f"{' '.join(command)} --version printed {version!r}, not {expected!r}",
            pytrace=False,
        )
    return command


# --- The loopback server ----------------------------------------------------


def _b64url(obj: Any) -> str:
    raw = json.dumps(obj).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT: Codex and codex-lite read the claims without checking."""
    return f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(claims)}.sig"


def jwt_claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    assert isinstance(claims, dict)
    return claims


AUTH_CLAIMS = {
    "chatgpt_account_id": ACCOUNT_ID,
    "chatgpt_plan_type": "pro",
    "chatgpt_user_id": "user-interop",
}


def id_token(exp: int, tag: str) -> str:
    return jwt(
        {
            "exp": exp,
            "email": "interop@example.com",
            "https://api.openai.com/auth": AUTH_CLAIMS,
            "tag": tag,
        }
    )


def access_token(exp: int, tag: str) -> str:
    return jwt({"exp": exp, "https://api.openai.com/auth": AUTH_CLAIMS, "tag": tag})


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]

            return bytes(zstd.decompress(body))
        except ImportError:
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    if encoding == "gzip":
        import gzip

        return gzip.decompress(body)
    raise ValueError(f"unexpected content-encoding {encoding!r}")


@dataclasses.dataclass
class Record:
    """One request as it arrived, and the answer text it got (if a turn)."""

    seq: int
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; the last value of a repeat
    header_names: list[str]  # in arrival order
    json: Any
    body_text: str | None
    answer: str | None = None

    @property
    def is_turn(self) -> bool:
        return self.method == "POST" and self.path.split("?")[0].endswith("/responses")

    def show(self) -> str:
        body = json.dumps(self.json)[:1500] if self.json is not None else ""
        return f"#{self.seq} {self.method} {self.path} {body or self.body_text}"


class Backend:
    """What the loopback server has seen and how it answers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: list[Record] = []
        self.turns = 0
        self.refreshes = 0

    def mark(self) -> int:
        with self.lock:
            return len(self.records)

    def since(self, mark: int) -> list[Record]:
        with self.lock:
            return list(self.records[mark:])

    def show(self, mark: int = 0) -> str:
        return "\n".join(r.show() for r in self.since(mark)) or "(no requests)"

    def turn_requests(self, mark: int) -> list[Record]:
        return [r for r in self.since(mark) if r.is_turn]

    def one_turn(self, mark: int, who: str) -> Record:
        turns = self.turn_requests(mark)
        assert len(turns) == 1, (
            f"{who}: expected one POST .../responses, got {len(turns)}:\n"
            f"{self.show(mark)}"
        )
        return turns[0]

    def refresh_requests(self, mark: int) -> list[Record]:
        return [
            r
            for r in self.since(mark)
            if r.method == "POST" and r.path.split("?")[0].endswith("/oauth/token")
        ]

    def add(self, record: Record) -> Record:
        with self.lock:
            record.seq = len(self.records)
            self.records.append(record)
        return record

    def next_answer(self) -> str:
        with self.lock:
            self.turns += 1
            return f"answer-{self.turns}"

    def next_tokens(self) -> dict[str, str]:
        with self.lock:
            self.refreshes += 1
            n = self.refreshes
        now = int(time.time())
        return {
            "id_token": id_token(now + 3600, f"refreshed-{n}"),
            "access_token": access_token(now + 86400, f"refreshed-{n}"),
            "refresh_token": f"rt-{n + 1}",
        }


def _sse(answer: str, n: int, compaction: bool = False) -> bytes:
    """The answer as response resp_interop_N; for a remote compaction's
    request (a trailing `compaction_trigger`), its one `compaction` item."""
    response_id = f"resp_interop_{n}"
    item = {
        "type": "message",
        "role": "assistant",
        "id": f"msg_{response_id}",
        "status": "completed",
        "content": [{"type": "output_text", "text": answer, "annotations": []}],
    }
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 14,
    }
    events = [
        {"type": "response.created", "response": {"id": response_id}},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "status": "in_progress", "content": []},
        },
        {
            "type": "response.output_text.delta",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "delta": answer,
        },
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {
            "type": "response.completed",
            "response": {"id": response_id, "usage": usage},
        },
    ]
    if compaction:
        item = {
            "type": "compaction",
            "id": f"cmp_{answer}",
            "encrypted_content": f"enc-{answer}",
        }
        done = {"type": "response.output_item.done", "output_index": 0, "item": item}
        events = [events[0], done, events[-1]]
    return b"".join(
        f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _record(self, body: bytes) -> Record:
        text = None
        parsed: Any = None
        try:
            body = _decompress(body, self.headers.get("content-encoding", "").lower())
            parsed = json.loads(body) if body else None
        except ValueError as exc:
            text = f"<unreadable body: {exc}> {body[:200]!r}"
        else:
            if body and parsed is None:
                text = body.decode("utf-8", "replace")
        return self.server.backend.add(
            Record(
                seq=-1,
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                header_names=[k.lower() for k in self.headers],
                json=parsed,
                body_text=text,
            )
        )

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._record(b"")
        if self.headers.get("upgrade", "").lower() == "websocket":
            # No WebSockets here: Codex falls back to HTTP for the session.
            self._send(426, b"Upgrade Required", "text/plain")
        else:
            self._send(404, b"{}", "application/json")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        record = self._record(self.rfile.read(length))
        backend = self.server.backend
        path = self.path.split("?")[0]
        if path.endswith("/oauth/token"):
            reply = json.dumps(backend.next_tokens()).encode()
            self._send(200, reply, "application/json")
        elif record.is_turn:
            record.answer = backend.next_answer()
            trigger = {"type": "compaction_trigger"} in (record.json or {}).get(
                "input", []
            )
            body = _sse(record.answer, backend.turns, trigger)
            self._send(200, body, "text/event-stream")
        else:
            self._send(404, b"{}", "application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    backend: Backend


@pytest.fixture
def backend() -> Iterator[tuple[Backend, int]]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.backend = Backend()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.backend, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- Running both programs on one CODEX_HOME --------------------------------


@dataclasses.dataclass
class Run:
    who: str
    args: list[str]
    cwd: Path
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"{self.who} {' '.join(self.args)} (cwd {self.cwd}) exited "
            f"{self.returncode}\n--- stdout ---\n{self.stdout[-4000:]}\n"
            f"--- stderr ---\n{self.stderr[-4000:]}"
        )

    def first_line(self) -> str:
        """The first line printed, stdout first (Codex prints status to stderr)."""
        for text in (self.stdout, self.stderr):
            for line in text.splitlines():
                if line.strip():
                    return line.strip()
        return ""


class Interop:
    """One CODEX_HOME and HOME shared by Codex and codex-lite, one server."""

    def __init__(
        self,
        root: Path,
        codex: list[str],
        backend: Backend,
        port: int,
        version: str = CODEX_VERSIONS[-1],
    ):
        self.root = root
        self.codex_command = codex
        self.codex_version = version  # for a test that rests on one version's fact
        self.backend = backend
        self.port = port
        self.home = root / "home"
        self.codex_home = root / "codex-home"
        self.tmp = root / "tmp"  # TMPDIR: Codex warns about a CODEX_HOME under it
        for path in (self.home, self.codex_home, self.tmp):
            path.mkdir()
        self.extra_env: dict[str, str] = {"LOCAL_KEY": "sk-local-interop"}
        self.use_custom_provider()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def write_config(self, text: str) -> None:
        (self.codex_home / "config.toml").write_text(text, encoding="utf-8")

    def use_custom_provider(self) -> None:
        self.write_config(
            f'model = "{MODEL}"\n'
            'model_provider = "local"\n'
            "\n"
            "[model_providers.local]\n"
            'name = "local"\n'
            f'base_url = "{self.base_url}"\n'
            'env_key = "LOCAL_KEY"\n'
            'wire_api = "responses"\n'
        )

    def use_openai_provider(self, *, chatgpt: bool = False) -> None:
        """The built-in openai provider at this server (`openai_base_url`)."""
        text = f'model = "{MODEL}"\nopenai_base_url = "{self.base_url}"\n'
        if chatgpt:
            text += f'chatgpt_base_url = "http://127.0.0.1:{self.port}/backend-api/"\n'
        self.write_config(text)

    def workdir(self, name: str) -> Path:
        path = (self.root / "work" / name).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "CODEX_", "RUST_LOG"))
            and k not in ("HOME", "PYTHONPATH")
        }
        env.update(
            HOME=str(self.home),
            CODEX_HOME=str(self.codex_home),
            TMPDIR=str(self.tmp),
            PYTHONPATH=str(REPO),
            **OFFLINE,
        )
        env.update(self.extra_env)
        env.update(extra or {})
        return env

    def _run(
        self,
        who: str,
        command: list[str],
        args: tuple[str, ...],
        cwd: Path | None,
        stdin: str | None,
        env: dict[str, str] | None,
        expect: int | None,
    ) -> Run:
        cwd = cwd or self.workdir("default")
        try:
            proc = subprocess.run(
                [*command, *args],
                check=False,
                cwd=cwd,
                env=self.env(env),
                input=stdin if stdin is not None else "",
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else ""
            err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else ""
            pytest.fail(
                f"{who} {' '.join(args)} ran past {RUN_TIMEOUT}s\n{out}\n{err}\n"
                f"requests:\n{self.backend.show()}",
                pytrace=False,
            )
        run = Run(who, list(args), cwd, proc.returncode, proc.stdout, proc.stderr)
        if expect is not None:
            assert run.returncode == expect, (
                f"{run.describe()}\nrequests:\n{self.backend.show()}"
            )
        return run

    def codex(
        self,
        *args: str,
        cwd: Path | None = None,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        expect: int | None = 0,
    ) -> Run:
        return self._run("codex", self.codex_command, args, cwd, stdin, env, expect)

    def lite(
        self,
        *args: str,
        cwd: Path | None = None,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        expect: int | None = 0,
    ) -> Run:
        command = [sys.executable, "-m", "codex_lite"]
        return self._run("codex-lite", command, args, cwd, stdin, env, expect)

    # Rollouts

    def rollouts(self) -> set[Path]:
        sessions = self.codex_home / "sessions"
        return set(sessions.glob("*/*/*/rollout-*.jsonl")) | set(
            sessions.glob("*/*/*/rollout-*.jsonl.zst")
        )

    def new_thread(self, before: set[Path], run: Run) -> str:
        """The id of the one thread `run` started (from its rollout's name)."""
        new = sorted(self.rollouts() - before)
        assert len(new) == 1, (
            f"expected one new rollout after {run.who}, got {new}\n{run.describe()}"
        )
        match = re.search(
            r"([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})\.jsonl", new[0].name
        )
        assert match, new[0]
        return match.group(1)

    def rollout(self, thread_id: str) -> Path:
        found = [p for p in self.rollouts() if p.name.endswith(f"-{thread_id}.jsonl")]
        assert len(found) == 1, (
            f"rollout of {thread_id}: {found} in {sorted(self.rollouts())}"
        )
        return found[0]

    def rollout_lines(self, thread_id: str) -> list[dict[str, Any]]:
        text = self.rollout(thread_id).read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def installation_id(self) -> str:
        return (self.codex_home / "installation_id").read_text().strip()

    @property
    def auth_path(self) -> Path:
        return self.codex_home / "auth.json"


@pytest.fixture
def interop(
    tmp_path: Path,
    codex_command: list[str],
    backend: tuple[Backend, int],
    codex_version: str,
) -> Interop:
    return Interop(tmp_path, codex_command, *backend, codex_version)


# --- Looking at requests ----------------------------------------------------


def messages(body: Any) -> list[tuple[str, str]]:
    """(role, text) of every message in a request's input, in order; a
    compaction item as ("compaction", its id and encrypted content)."""
    out = []
    for item in body.get("input", []):
        if isinstance(item, dict) and item.get("type") == "compaction":
            out.append(
                ("compaction", f"{item.get('id')} {item.get('encrypted_content')}")
            )
        if isinstance(item, dict) and item.get("type", "message") == "message":
            content = item.get("content")
            if isinstance(content, str):
                text = content
            else:
                text = "".join(
                    part.get("text", "")
                    for part in content or []
                    if isinstance(part, dict)
                )
            out.append((str(item.get("role")), text))
    return out


def assert_conversation(record: Record, expected: list[tuple[str, str]]) -> None:
    """`expected` appears in the request's messages in this order, each once."""
    seen = messages(record.json)
    listing = "\n".join(f"  {role}: {text[:80]!r}" for role, text in seen)
    for pair in expected:
        assert seen.count(pair) == 1, (
            f"{pair} should be in the request exactly once, is there "
            f"{seen.count(pair)} times; the request's messages:\n{listing}"
        )
    positions = [seen.index(pair) for pair in expected]
    assert positions == sorted(positions), (
        f"expected in this order: {expected}; the request's messages:\n{listing}"
    )


def assert_ordinals(lines: list[dict[str, Any]], after: str) -> None:
    ordinals = [line.get("ordinal") for line in lines]
    assert ordinals == list(range(len(lines))), (
        f"after {after}: every rollout line should carry `ordinal`, 0..N in "
        "file order; got "
        + ", ".join(f"{o}:{line['type']}" for o, line in zip(ordinals, lines))
    )


def exec_args(*rest: str) -> tuple[str, ...]:
    return ("exec", "--skip-git-repo-check", *rest)


# --- a, b: threads continued across programs --------------------------------


def test_codex_thread_continued_by_codex_lite_then_codex(interop: Interop) -> None:
    backend, work = interop.backend, interop.workdir("a")
    before, mark = interop.rollouts(), backend.mark()
    run = interop.codex(*exec_args("hello"), cwd=work)
    thread_id = interop.new_thread(before, run)
    first = backend.one_turn(mark, "codex exec")
    assert_ordinals(interop.rollout_lines(thread_id), "codex exec")

    mark = backend.mark()
    interop.lite("exec", "resume", thread_id, "again", cwd=work)
    second = backend.one_turn(mark, "codex-lite exec resume")
    assert second.headers.get("thread-id") == thread_id
    assert_conversation(second, [("user", "hello"), ("assistant", first.answer or "")])
    assert messages(second.json)[-1] == ("user", "again")
    assert_ordinals(interop.rollout_lines(thread_id), "codex-lite exec resume")

    before, mark = interop.rollouts(), backend.mark()
    interop.codex(*exec_args("resume", thread_id, "third"), cwd=work)
    third = backend.one_turn(mark, "codex exec resume")
    assert interop.rollouts() == before, "Codex started a new thread instead"
    assert third.headers.get("thread-id") == thread_id
    assert_conversation(
        third,
        [
            ("user", "hello"),
            ("assistant", first.answer or ""),
            ("user", "again"),
            ("assistant", second.answer or ""),
            ("user", "third"),
        ],
    )
    assert_ordinals(interop.rollout_lines(thread_id), "codex exec resume")


def test_codex_lite_thread_continued_by_codex_then_codex_lite(
    interop: Interop,
) -> None:
    backend, work = interop.backend, interop.workdir("b")
    before, mark = interop.rollouts(), backend.mark()
    run = interop.lite("exec", "--json", "hello", cwd=work)
    thread_id = interop.new_thread(before, run)
    first_line = (run.stdout.splitlines() or [""])[0]
    assert first_line.startswith("{"), f"no JSON event first:\n{run.describe()}"
    started = json.loads(first_line)
    assert started == {"type": "thread.started", "thread_id": thread_id}
    first = backend.one_turn(mark, "codex-lite exec")

    before, mark = interop.rollouts(), backend.mark()
    interop.codex(*exec_args("resume", thread_id, "again"), cwd=work)
    second = backend.one_turn(mark, "codex exec resume")
    assert interop.rollouts() == before, "Codex started a new thread instead"
    assert second.headers.get("thread-id") == thread_id
    assert_conversation(
        second,
        [("user", "hello"), ("assistant", first.answer or ""), ("user", "again")],
    )

    mark = backend.mark()
    interop.lite("exec", "resume", thread_id, "third", cwd=work)
    third = backend.one_turn(mark, "codex-lite exec resume")
    assert third.headers.get("thread-id") == thread_id
    conversation = [
        ("user", "hello"),
        ("assistant", first.answer or ""),
        ("user", "again"),
        ("assistant", second.answer or ""),
        ("user", "third"),
    ]
    assert_conversation(third, conversation)

    # And Codex still takes the file after codex-lite appended to it again.
    mark = backend.mark()
    interop.codex(*exec_args("resume", thread_id, "fourth"), cwd=work)
    fourth = backend.one_turn(mark, "codex exec resume (again)")
    assert fourth.headers.get("thread-id") == thread_id
    assert_conversation(
        fourth, [*conversation, ("assistant", third.answer or ""), ("user", "fourth")]
    )


# --- c: base instructions ---------------------------------------------------


@pytest.mark.parametrize("provider", ["custom", "openai"])
def test_codex_lite_resume_sends_codex_base_instructions(
    interop: Interop, provider: str
) -> None:
    backend, work = interop.backend, interop.workdir("c")
    if provider == "openai":
        interop.use_openai_provider()
        interop.extra_env["CODEX_API_KEY"] = "sk-interop-openai"
    before, mark = interop.rollouts(), backend.mark()
    run = interop.codex(*exec_args("hello"), cwd=work)
    thread_id = interop.new_thread(before, run)
    codex_request = backend.one_turn(mark, "codex exec").json
    codex_first = codex_request["input"][0]
    text = codex_first["content"][0]["text"]
    namespace = uuid.uuid5(uuid.NAMESPACE_OID, thread_id)
    # What Codex itself does, so a failure below is codex-lite's.
    assert "instructions" not in codex_request
    assert codex_first["role"] == "developer"
    assert codex_first["id"] == f"msg_{uuid.uuid5(namespace, text)}"
    meta = interop.rollout_lines(thread_id)[0]["payload"]
    assert meta["base_instructions"]["text"]

    mark = backend.mark()
    interop.lite("exec", "resume", thread_id, "again", cwd=work)
    lite_request = backend.one_turn(mark, "codex-lite exec resume").json
    assert "instructions" not in lite_request, (
        "codex-lite sent `instructions`; Codex sends none on this thread"
    )
    lite_first = lite_request["input"][0]
    if lite_first != codex_first:
        stored = meta["base_instructions"]["text"]
        content = lite_first.get("content")
        lite_text = content[0].get("text") if isinstance(content, list) else None
        lite_text = lite_text if isinstance(lite_text, str) else json.dumps(content)
        pytest.fail(
            "codex-lite's first input item differs from Codex's for the same "
            f"thread:\n codex:      id={codex_first.get('id')} role="
            f"{codex_first.get('role')} text: {len(text)} chars\n"
            f" codex-lite: id={lite_first.get('id')} role={lite_first.get('role')} "
            f"keys={sorted(lite_first)} text: {len(lite_text)} chars, "
            f"{'equal to' if lite_text == stored else 'not'} "
            f"session_meta.base_instructions.text ({len(stored)} chars)\n"
            " (Codex 0.169 exec sends the stored text without its '## Planning' "
            "and '## `update_plan`' sections; its tools have no update_plan)",
            pytrace=False,
        )


# --- d: headers and turn metadata -------------------------------------------


def _check_turn_headers(who: str, record: Record, installation_id: str) -> dict:
    headers, body = record.headers, record.json
    names = (
        "session-id",
        "thread-id",
        "x-client-request-id",
        "x-codex-window-id",
        "x-codex-turn-metadata",
    )
    missing = [n for n in names if n not in headers]
    assert not missing, f"{who} sent no {missing}; headers: {record.header_names}"
    meta = json.loads(headers["x-codex-turn-metadata"])
    assert isinstance(meta, dict), f"{who}: x-codex-turn-metadata is not an object"
    lacking = REQUIRED_TURN_METADATA - set(meta)
    assert not lacking, f"{who}: x-codex-turn-metadata lacks {sorted(lacking)}: {meta}"
    window = headers["x-codex-window-id"]
    thread, _, number = window.rpartition(":")
    expected = {
        "installation_id": installation_id,
        "session_id": headers["session-id"],
        "thread_id": headers["thread-id"],
        "window_id": window,
        "window_number": int(number),
        "request_kind": "turn",
        "model": MODEL,
    }
    got = {k: meta.get(k) for k in expected}
    assert got == expected, f"{who}: x-codex-turn-metadata {meta}"
    assert thread == headers["thread-id"] == headers["x-client-request-id"], headers
    client_metadata = body.get("client_metadata") or {}
    assert (
        client_metadata.get("x-codex-turn-metadata")
        == (headers["x-codex-turn-metadata"])
    ), f"{who}: client_metadata {client_metadata}"
    assert client_metadata.get("turn_id", meta["turn_id"]) == meta["turn_id"]
    return meta


def test_headers_and_turn_metadata_match_codex(interop: Interop) -> None:
    backend, work = interop.backend, interop.workdir("d")
    interop.use_openai_provider()
    interop.extra_env["CODEX_API_KEY"] = "sk-interop-openai"
    mark = backend.mark()
    interop.codex(*exec_args("hi"), cwd=work)
    upgrades = [
        r
        for r in backend.since(mark)
        if r.method == "GET" and r.headers.get("upgrade", "").lower() == "websocket"
    ]
    assert upgrades, f"Codex tried no WebSocket first:\n{backend.show(mark)}"
    codex_request = backend.one_turn(mark, "codex exec")
    installation_id = interop.installation_id()
    codex_meta = _check_turn_headers("codex", codex_request, installation_id)

    mark = backend.mark()
    interop.lite("exec", "hi", cwd=work)
    lite_request = backend.one_turn(mark, "codex-lite exec")
    table = {
        "codex": {
            "headers": sorted(codex_request.header_names),
            "x-codex-turn-metadata": sorted(codex_meta),
            "client_metadata": sorted(codex_request.json.get("client_metadata", {})),
            "body": sorted(codex_request.json),
        },
        "codex-lite": {
            "headers": sorted(lite_request.header_names),
            "client_metadata": sorted(
                (lite_request.json or {}).get("client_metadata") or {}
            ),
            "body": sorted(lite_request.json or {}),
        },
    }
    print(json.dumps(table, indent=1))
    lite_meta = _check_turn_headers("codex-lite", lite_request, installation_id)
    table["codex-lite"]["x-codex-turn-metadata"] = sorted(lite_meta)
    print(json.dumps(table["codex-lite"], indent=1))
    unknown = set(lite_meta) - KNOWN_TURN_METADATA - set(codex_meta)
    assert not unknown, f"codex-lite sends turn metadata Codex does not: {unknown}"
    assert lite_meta["installation_id"] == codex_meta["installation_id"]


# --- e: ChatGPT token refresh -----------------------------------------------


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _read_json_retrying(path: Path) -> Any:
    """auth.json as JSON; Codex truncates and writes it, so retry a torn read."""
    for _ in range(50):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            time.sleep(0.02)
    return None


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group this test started (its own session)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _codex_refreshes(interop: Interop, env: dict[str, str], old: str) -> Record:
    """Start `codex exec`, wait until it has refreshed and rewritten
    auth.json, then stop it (the ChatGPT turn needs more backend than this)."""
    backend, mark = interop.backend, interop.backend.mark()
    command = [*interop.codex_command, *exec_args("hi")]
    proc = subprocess.Popen(
        command,
        cwd=interop.workdir("e"),
        env=interop.env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + RUN_TIMEOUT
    rewritten = False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if backend.refresh_requests(mark):
                data = _read_json_retrying(interop.auth_path)
                tokens = (data or {}).get("tokens") or {}
                if tokens.get("refresh_token") not in (None, old):
                    rewritten = True
                    break
            time.sleep(0.05)
    finally:
        _kill_group(proc, signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGKILL)
            output, _ = proc.communicate()
    refreshes = backend.refresh_requests(mark)
    assert refreshes, (
        f"codex exec sent no refresh (rc {proc.returncode}):\n"
        f"{output.decode(errors='replace')[-3000:]}\nrequests:\n{backend.show(mark)}"
    )
    assert rewritten, f"codex did not store the refreshed tokens: {backend.show(mark)}"
    return refreshes[0]


def test_chatgpt_token_refresh_round_trip(interop: Interop) -> None:
    backend, work = interop.backend, interop.workdir("e")
    interop.use_openai_provider(chatgpt=True)
    env = {
        "CODEX_REFRESH_TOKEN_URL_OVERRIDE": f"http://127.0.0.1:{interop.port}/oauth/token"
    }
    now = datetime.now(UTC)
    stamp = int(now.timestamp())
    before = {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": id_token(stamp + 3600, "first"),
            "access_token": access_token(stamp - 60, "expired"),
            "refresh_token": "rt-1",
            "account_id": ACCOUNT_ID,
        },
        "last_refresh": _rfc3339(now - timedelta(days=1)),
        "x_interop_unknown": {"kept": True},
    }
    interop.auth_path.write_text(json.dumps(before, indent=2), encoding="utf-8")
    interop.auth_path.chmod(0o600)

    mark = backend.mark()
    interop.lite("exec", "hi", cwd=work, env=env)
    refreshes = backend.refresh_requests(mark)
    assert len(refreshes) == 1, f"refresh requests:\n{backend.show(mark)}"
    refresh = refreshes[0]
    assert refresh.headers.get("content-type", "").startswith("application/json")
    assert refresh.json == {
        "client_id": CLIENT_ID,
        "grant_type": "refresh_token",
        "refresh_token": "rt-1",
        "refresh_reason": "proactive_expiry",
    }
    assert backend.refreshes == 1
    turn = backend.one_turn(mark, "codex-lite exec")
    assert turn.seq > refresh.seq, "the turn went out before the refresh"
    bearer = turn.headers.get("authorization", "")
    assert jwt_claims(bearer.removeprefix("Bearer "))["tag"] == "refreshed-1"
    assert turn.headers.get("chatgpt-account-id") == ACCOUNT_ID

    after = json.loads(interop.auth_path.read_text(encoding="utf-8"))
    assert set(before) <= set(after), f"keys lost: {set(before) - set(after)}"
    assert after["x_interop_unknown"] == {"kept": True}
    assert after["auth_mode"] == "chatgpt"
    assert set(before["tokens"]) <= set(after["tokens"])
    assert after["tokens"]["refresh_token"] == "rt-2"
    assert after["tokens"]["account_id"] == ACCOUNT_ID
    assert jwt_claims(after["tokens"]["access_token"])["tag"] == "refreshed-1"
    assert jwt_claims(after["tokens"]["id_token"])["tag"] == "refreshed-1"
    last = datetime.fromisoformat(after["last_refresh"])
    assert abs((last - datetime.now(UTC)).total_seconds()) < 120, after["last_refresh"]
    mode = stat.S_IMODE(interop.auth_path.stat().st_mode)
    assert mode == 0o600, f"auth.json mode {oct(mode)}"

    status = interop.codex("login", "status")
    assert status.first_line() == "Logged in using ChatGPT", status.describe()
    lite_status = interop.lite("login", "status", expect=None)
    assert (lite_status.returncode, lite_status.first_line()) == (
        0,
        "Logged in using ChatGPT",
    ), lite_status.describe()

    # Codex refreshes with the refresh token codex-lite stored.
    after["tokens"]["access_token"] = access_token(stamp - 60, "expired-again")
    interop.auth_path.write_text(json.dumps(after, indent=2), encoding="utf-8")
    codex_refresh = _codex_refreshes(interop, env, "rt-2")
    assert codex_refresh.json == {
        "client_id": CLIENT_ID,
        "grant_type": "refresh_token",
        "refresh_token": "rt-2",
        "refresh_reason": "proactive_expiry",
    }
    assert set(codex_refresh.json) == set(refresh.json)


# --- f: login and logout ----------------------------------------------------


def test_api_key_login_status_logout(interop: Interop) -> None:
    key = "sk-proj-interop0123456789ABCDE"
    interop.lite("login", "--with-api-key", stdin=key + "\n")
    saved = json.loads(interop.auth_path.read_text(encoding="utf-8"))
    assert saved.get("auth_mode") == "apikey" and saved.get("OPENAI_API_KEY") == key
    mode = stat.S_IMODE(interop.auth_path.stat().st_mode)
    assert mode == 0o600, f"auth.json mode {oct(mode)}"
    status = interop.codex("login", "status")
    assert status.first_line() == "API key configured - sk-proj-***ABCDE", (
        status.describe()
    )

    interop.codex("logout")
    other = "sk-proj-interop9876543210VWXYZ"
    interop.codex("login", "--with-api-key", stdin=other + "\n")
    codex_status = interop.codex("login", "status")
    assert codex_status.first_line() == "API key configured - sk-proj-***VWXYZ"
    lite_status = interop.lite("login", "status", expect=None)
    assert (lite_status.returncode, lite_status.first_line()) == (
        codex_status.returncode,
        codex_status.first_line(),
    ), lite_status.describe()

    interop.lite("logout")
    codex_status = interop.codex("login", "status", expect=1)
    assert codex_status.first_line() == "Not logged in", codex_status.describe()
    lite_status = interop.lite("login", "status", expect=None)
    assert (lite_status.returncode, lite_status.first_line()) == (
        1,
        "Not logged in",
    ), lite_status.describe()


# --- g: resume --last by directory ------------------------------------------


def test_resume_last_picks_newest_thread_of_this_directory(interop: Interop) -> None:
    backend = interop.backend
    here, there = interop.workdir("g-here"), interop.workdir("g-there")
    before = interop.rollouts()
    run = interop.codex(*exec_args("started here"), cwd=here)
    here_id = interop.new_thread(before, run)
    time.sleep(1.1)  # rollout names and mtimes tell the two apart
    before = interop.rollouts()
    run = interop.lite("exec", "started there", cwd=there)
    there_id = interop.new_thread(before, run)

    mark = backend.mark()
    interop.lite("exec", "resume", "--last", "--all", "any", cwd=here)
    newest = backend.one_turn(mark, "codex-lite exec resume --last --all")
    assert newest.headers.get("thread-id") == there_id, messages(newest.json)
    assert ("user", "started there") in messages(newest.json)

    mark = backend.mark()
    interop.lite("exec", "resume", "--last", "x", cwd=here)
    local = backend.one_turn(mark, "codex-lite exec resume --last")
    assert local.headers.get("thread-id") == here_id, (
        f"resume --last in {here} took thread {local.headers.get('thread-id')} "
        f"(here: {here_id}, elsewhere: {there_id})"
    )
    assert_conversation(local, [("user", "started here"), ("user", "x")])


# --- f: Responses over WebSocket ---------------------------------------------


class _WsServer:
    """A Responses WebSocket server (the websockets library's server side):
    each handshake's header names, each `response.create`, answered with
    the events `_sse` sends, one frame each; a prewarm gets no output."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self.handshakes: list[dict[str, str]] = []
        self.frames: list[dict[str, Any]] = []

        def process_request(connection: Any, request: Any) -> None:
            headers = {k.lower(): v for k, v in request.headers.raw_items()}
            self.handshakes.append({"path": request.path, **headers})

        def handler(connection: Any) -> None:
            with contextlib.suppress(Exception):  # a client that hangs up
                for message in connection:
                    frame = json.loads(message)
                    self.frames.append(frame)
                    n = len(self.frames)
                    data = _sse(f"ws-answer-{n}", n).decode()
                    events = [
                        json.loads(line[6:])
                        for line in data.splitlines()
                        if line.startswith("data: ")
                    ]
                    if frame.get("generate") is False:  # nothing generated
                        created = events[0]
                        events = [
                            created,
                            {**events[-1], **created, "type": "response.completed"},
                        ]
                    for event in events:
                        connection.send(json.dumps(event))

        self.server = serve(handler, "127.0.0.1", 0, process_request=process_request)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.socket.getsockname()[1])

    def take(self) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
        taken = self.handshakes, self.frames
        self.handshakes, self.frames = [], []
        return taken


def test_websocket_handshake_and_frames_match_codex(interop: Interop) -> None:
    server = _WsServer()
    work = interop.workdir("ws")
    try:
        interop.write_config(
            f'model = "{MODEL}"\n'
            f'openai_base_url = "http://127.0.0.1:{server.port}/v1"\n'
        )
        interop.extra_env["CODEX_API_KEY"] = "sk-interop-openai"
        codex_run = interop.codex(*exec_args("hi over ws"), cwd=work)
        codex_shakes, codex_frames = server.take()
        lite_run = interop.lite("exec", "resume", "--last", "and again", cwd=work)
        lite_shakes, lite_frames = server.take()
        interop.codex(*exec_args("resume", "--last", "once more"), cwd=work)
        _, codex_again = server.take()
    finally:
        server.server.shutdown()
    assert "ws-answer-2" in codex_run.stdout, codex_run.describe()
    assert "ws-answer-1" in lite_run.stdout, lite_run.describe()
    print(json.dumps({"codex": codex_shakes, "codex-lite": lite_shakes}, indent=1))
    (codex_shake,), (lite_shake,) = codex_shakes, lite_shakes
    assert lite_shake["path"] == codex_shake["path"] == "/v1/responses"
    # x-codex-beta-features names features of Codex's own
    assert set(lite_shake) == set(codex_shake) - {"x-codex-beta-features"}
    for name in ("openai-beta", "authorization", "session-id", "thread-id"):
        assert lite_shake[name] == codex_shake[name], name
    assert "permessage-deflate" in lite_shake["sec-websocket-extensions"]
    # Codex prewarms each connection (generate: false), then continues it
    codex_prewarm, codex_turn = codex_frames
    assert codex_prewarm["generate"] is False
    assert codex_turn["previous_response_id"] == "resp_interop_1"
    (lite_turn,) = lite_frames  # codex-lite prewarms only when asked to
    not_ours = {"tools", "text", "previous_response_id"}  # README: differences
    assert set(lite_turn) == set(codex_turn) - not_ours
    codex_metadata = set(codex_turn["client_metadata"]) - {"mcp_attribution"}
    assert set(lite_turn["client_metadata"]) == codex_metadata
    # what codex-lite sent over the socket is the thread Codex goes on with
    texts = [m for m in messages(codex_again[-1]) if m[0] != "developer"]
    assert ("assistant", "ws-answer-1") in texts and ("user", "and again") in texts


# --- exec --json: the events Codex prints -----------------------------------


class _RefusingHandler(BaseHTTPRequestHandler):
    """Every turn refused with HTTP 400, which neither program retries."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        error = {"message": "bad", "type": "invalid_request_error", "code": None}
        body = json.dumps({"error": error}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _json_events(run: Run, answer: str | None) -> list[dict[str, Any]]:
    """`run`'s `--json` lines with the thread id, the answer text (each run
    gets its own) and error wording (Codex's and codex-lite's differ) set
    aside; every other key of Codex's kept, codex-lite's extra ones dropped."""
    events = []
    for line in run.stdout.splitlines():
        event = json.loads(line)
        if event["type"] == "thread.started":
            uuid.UUID(event["thread_id"])
            event["thread_id"] = "<thread>"
        elif (
            event["type"] == "item.completed"
            and event["item"]["type"] == "agent_message"
        ):
            assert event["item"]["text"] == answer, run.describe()
            event["item"]["text"] = "<answer>"
        elif event["type"] == "error":
            assert event["message"], run.describe()
            event = {"type": "error", "message": "<message>"}
        elif event["type"] == "turn.failed":
            assert event["error"]["message"], run.describe()
            event["error"] = {"message": "<message>"}
        events.append(event)
    return events


def _json_config(port: int) -> str:
    # a model Codex knows: for another it adds an `error` item (a warning)
    return (
        'model = "gpt-5.5"\nmodel_provider = "local"\n\n'
        '[model_providers.local]\nname = "local"\n'
        f'base_url = "http://127.0.0.1:{port}/v1"\n'
        'env_key = "LOCAL_KEY"\nwire_api = "responses"\n'
    )


def test_exec_json_prints_the_events_codex_prints(interop: Interop) -> None:
    backend, work = interop.backend, interop.workdir("json")
    interop.write_config(_json_config(interop.port))
    mark = backend.mark()
    codex = interop.codex(*exec_args("--json", "hello"), cwd=work)
    codex_answer = backend.one_turn(mark, "codex exec --json").answer
    mark = backend.mark()
    lite = interop.lite("exec", "--json", "hello", cwd=work)
    lite_answer = backend.one_turn(mark, "codex-lite exec --json").answer
    expected = _json_events(codex, codex_answer)
    assert [e["type"] for e in expected] == [
        "thread.started",
        "turn.started",
        "item.completed",
        "turn.completed",
    ], codex.describe()
    assert _json_events(lite, lite_answer) == expected

    refusing = _Server(("127.0.0.1", 0), _RefusingHandler)
    thread = threading.Thread(target=refusing.serve_forever, daemon=True)
    thread.start()
    try:
        interop.write_config(_json_config(refusing.server_address[1]))
        codex = interop.codex(*exec_args("--json", "hello"), cwd=work, expect=1)
        lite = interop.lite("exec", "--json", "hello", cwd=work, expect=1)
    finally:
        refusing.shutdown()
        refusing.server_close()
        thread.join(5)
    expected = _json_events(codex, None)
    assert [e["type"] for e in expected] == [
        "thread.started",
        "turn.started",
        "error",
        "turn.failed",
    ], codex.describe()
    assert _json_events(lite, None) == expected
    failed = json.loads(lite.stdout.splitlines()[-1])["error"]
    assert (failed["kind"], failed["http_status"], failed["retryable"]) == (
        "other",
        400,
        False,
    )


# --- compaction: threads compacted by one program, resumed by the other -----

SUMMARY_PREFIX = (
    "Another language model started to solve this problem and produced a summary"
    " of its thinking process. You also have access to the state of the tools"
    " that were used by that language model. Use this to build on the work that"
    " has already been done and avoid duplicating work. Here is the summary"
    " produced by the other language model, use the information in this summary"
    " to assist with your own analysis:\n"
)
# every answer's usage is 14 tokens: at this limit each resume compacts first
COMPACT = ("-c", "model_auto_compact_token_limit=10")


def _compacted(lines: list[dict[str, Any]], who: str) -> dict[str, Any]:
    found = [line["payload"] for line in lines if line["type"] == "compacted"]
    assert len(found) == 1, f"{who}: expected one compacted line, got {len(found)}"
    return found[0]


def _compacting(interop: Interop, provider: str) -> None:
    if provider == "openai":
        interop.use_openai_provider()
        interop.extra_env["CODEX_API_KEY"] = "sk-interop-openai"


def _summary(provider: str, compaction: Record) -> tuple[str, str]:
    """What stands for the history a compaction replaced: the openai
    provider's `compaction` item, or another's summary message."""
    if provider == "openai":
        assert compaction.json["input"][-1] == {"type": "compaction_trigger"}
        return ("compaction", f"cmp_{compaction.answer} enc-{compaction.answer}")
    assert messages(compaction.json)[-1][1].startswith("You are performing a CONTEXT")
    return ("user", f"{SUMMARY_PREFIX}{compaction.answer}")


def _assert_compacted(record: Record, summary: tuple[str, str], answer: str) -> None:
    """The replacement history, then what came after the compaction; no
    answer from before it."""
    assert_conversation(
        record,
        [
            ("user", "hello"),
            summary,
            ("user", "again"),
            ("assistant", answer),
            ("user", "third"),
        ],
    )
    answers = [text for role, text in messages(record.json) if role == "assistant"]
    assert answers == [answer], messages(record.json)


@pytest.mark.parametrize("provider", ["custom", "openai"])
def test_codex_resumes_a_thread_codex_lite_compacted(
    interop: Interop, provider: str
) -> None:
    backend, work = interop.backend, interop.workdir("compact-lite")
    _compacting(interop, provider)
    before = interop.rollouts()
    run = interop.lite("exec", "hello", cwd=work)
    thread_id = interop.new_thread(before, run)
    mark = backend.mark()
    interop.lite("exec", *COMPACT, "resume", thread_id, "again", cwd=work)
    compaction, second = backend.turn_requests(mark)
    summary = _summary(provider, compaction)
    _compacted(interop.rollout_lines(thread_id), "codex-lite")

    mark = backend.mark()
    interop.codex(*exec_args("resume", thread_id, "third"), cwd=work)
    third = backend.one_turn(mark, "codex exec resume")
    assert third.headers.get("thread-id") == thread_id
    _assert_compacted(third, summary, second.answer or "")


@pytest.mark.parametrize("provider", ["custom", "openai"])
def test_codex_lite_resumes_a_thread_codex_compacted(
    interop: Interop, provider: str
) -> None:
    backend, work = interop.backend, interop.workdir("compact-codex")
    _compacting(interop, provider)
    before = interop.rollouts()
    run = interop.codex(*exec_args("hello"), cwd=work)
    thread_id = interop.new_thread(before, run)
    mark = backend.mark()
    interop.codex(*exec_args(*COMPACT, "resume", thread_id, "again"), cwd=work)
    compaction, second = backend.turn_requests(mark)
    summary = _summary(provider, compaction)
    _compacted(interop.rollout_lines(thread_id), "codex")

    mark = backend.mark()
    interop.lite("exec", "resume", thread_id, "third", cwd=work)
    third = backend.one_turn(mark, "codex-lite exec resume")
    assert third.headers.get("thread-id") == thread_id
    _assert_compacted(third, summary, second.answer or "")
