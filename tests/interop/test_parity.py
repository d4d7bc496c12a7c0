"""Interop tests: what Codex and codex-lite send for the same rollout.

Each test writes one rollout, resumes it with the real Codex CLI and then
with codex-lite on the same `$CODEX_HOME` and loopback server (the fixtures
of test_interop.py), and compares the requests.

    python -m pytest tests/interop/test_parity.py
"""

from __future__ import annotations

import json
from typing import Any

import test_interop
from test_interop import Interop, exec_args

# test_interop's fixtures, here by name for pytest to find
backend = test_interop.backend
codex_version = test_interop.codex_version
codex_command = test_interop.codex_command
interop = test_interop.interop

THREAD_ID = "01a2429b-87b4-71d0-91c9-b4c05fe89a53"
# Calls cut short: in the rollout, no output answers them.
CALLS = [
    {
        "type": "function_call",
        "id": "fc_interrupted",
        "name": "do_it",
        "arguments": "{}",
        "call_id": "call_function",
    },
    {
        "type": "custom_tool_call",
        "id": "ctc_interrupted",
        "call_id": "call_custom",
        "name": "do_it",
        "input": "x",
    },
]


def _write_rollout(interop: Interop) -> str:
    """A thread whose last items are calls without their outputs (no
    `ordinal`s: the older format, which both programs resume)."""
    meta = {
        "id": THREAD_ID,
        "session_id": THREAD_ID,
        "timestamp": "2026-12-04T19:50:18.806Z",
        "cwd": str(interop.workdir("parity")),
        "originator": "codex_exec",
        "cli_version": "0.171.0",
        "source": "exec",
        "model_provider": "local",
    }
    hello = {
        "type": "message",
        "id": "msg_hello",
        "role": "user",
        "content": [{"type": "input_text", "text": "hello"}],
    }
    lines = [{"type": "session_meta", "payload": meta}]
    lines += [{"type": "response_item", "payload": i} for i in [hello, *CALLS]]
    folder = interop.codex_home / "sessions" / "2026" / "12" / "04"
    folder.mkdir(parents=True)
    path = folder / f"rollout-2026-12-04T19-50-18-{THREAD_ID}.jsonl"
    stamp = {"timestamp": "2026-12-04T19:50:18.826Z"}
    path.write_text("".join(json.dumps({**stamp, **x}) + "\n" for x in lines))
    return THREAD_ID


def _after_calls(body: Any) -> list[list[dict[str, Any]]]:
    """Each call of CALLS as sent, with the item sent right after it."""
    items = body["input"]
    where = [items.index(call) for call in CALLS]
    return [items[n : n + 2] for n in where]


def test_a_call_without_output_is_answered_aborted_as_codex_does(
    interop: Interop,
) -> None:
    # A thread stopped between a call and its output: Codex sends an
    # "aborted" output right after each call, with an id that is the same
    # on every resume, and never writes it to the rollout.
    server, work = interop.backend, interop.workdir("parity")
    thread_id = _write_rollout(interop)
    sent: dict[str, list[list[list[dict[str, Any]]]]] = {"codex": [], "lite": []}
    for n in range(2):
        mark = server.mark()
        interop.codex(*exec_args("resume", thread_id, f"codex {n}"), cwd=work)
        record = server.one_turn(mark, "codex exec resume")
        sent["codex"].append(_after_calls(record.json))
    for n in range(2):
        mark = server.mark()
        interop.lite("exec", "resume", thread_id, f"lite {n}", cwd=work)
        record = server.one_turn(mark, "codex-lite exec resume")
        sent["lite"].append(_after_calls(record.json))

    codex, again = sent["codex"]
    outputs = [pair[1] for pair in codex]
    assert [o["type"] for o in outputs] == [
        "function_call_output",
        "custom_tool_call_output",
    ], f"Codex sent after the calls: {codex}"
    assert all(o["output"] == "aborted" for o in outputs), outputs
    assert again == codex, "Codex's outputs differ between two resumes"
    for lite in sent["lite"]:
        assert lite == codex, (
            f"codex-lite sent after the calls:\n{json.dumps(lite)}\n"
            f"Codex sent:\n{json.dumps(codex)}"
        )
    rollout = interop.rollout(thread_id).read_text()
    assert "aborted" not in rollout, "an output sent for a call was stored"
