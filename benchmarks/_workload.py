"""Workloads shared by the benchmarks: a coding-agent history and a big SSE stream.

Both are deterministic (a seeded `random.Random`), so every run and every
client sees the same bytes.

`conversation()` is 50 turns, 3,841 items and a request body of about 10.05 MiB: each
turn is a user message, a run of tool calls (`function_call` with JSON
arguments, `function_call_output` with logs, JSON documents and search hits:
quotes, backslashes, tabs and some non-ASCII text to escape) and an assistant
answer; the last turn stops at a tool output, where a request is sent.

`big_stream()` is a Responses event stream of about 50.3 MB and 171,629 events,
mostly `response.output_text.delta`, framed as the API frames them.
"""

from __future__ import annotations

import json
import random
from typing import Any

TURNS = 50
ITEMS = 3841
STREAM_EVENTS = 171_629
INSTRUCTIONS = "You are a coding agent working in a local repository. " * 40

_WORDS = [
    "parser",
    "config",
    "error",
    "line",
    "number",
    "span",
    "token",
    "lexer",
    "module",
    "crate",
    "test",
    "borrow",
    "lifetime",
    "trait",
    "impl",
    "async",
    "await",
    "retry",
    "backoff",
    "stream",
    "event",
    "body",
    "header",
    "request",
    "response",
    "cache",
    "fragment",
    "encode",
    "decode",
    "chunk",
    "buffer",
    "résumé",
    "naïve",
    "café",
    "→",
    "✓",
    "日本語",
    "ünïcode",
]


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _text(rng: random.Random, size: int) -> str:
    parts: list[str] = []
    length = 0
    while length < size:
        part = _sentence(rng, rng.randint(6, 18))
        if rng.random() < 0.2:
            part = f"`{rng.choice(_WORDS)}_{rng.randint(0, 99)}()` {part}"
        parts.append(part)
        length += len(part) + 1
    return " ".join(parts)


def _json_document(rng: random.Random) -> str:
    doc = {
        "name": f"@acme/{rng.choice(_WORDS)}-{rng.randint(0, 999)}",
        "version": f"{rng.randint(0, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 9)}",
        "scripts": {
            "build": 'tsc -p "tsconfig.build.json"',
            "test": "vitest run --reporter=verbose",
            "lint": "eslint 'src/**/*.{ts,tsx}' --max-warnings=0",
        },
        "dependencies": {
            f"{rng.choice(_WORDS)}-{n}": f"^{rng.randint(0, 9)}.{rng.randint(0, 20)}.0"
            for n in range(rng.randint(8, 20))
        },
        "description": _sentence(rng, 12),
        "paths": [f"C:\\src\\{rng.choice(_WORDS)}\\mod_{n}.ts" for n in range(4)],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _search_hits(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(20, 45)):
        path = f"src/{rng.choice(_WORDS)}/{rng.choice(_WORDS)}.rs"
        code = rng.choice(
            (
                'let msg = format!("{}: {}", path.display(), err);',
                "\tif line.ends_with('\\\\') { continue; }",
                'return Err(Error::new(span, "unexpected token \\"}\\""));',
                "// TODO(review): handle CRLF → LF before hashing",
                'assert_eq!(parse("a = 1\\n"), Ok(Config { a: 1 }));',
            )
        )
        lines.append(f"{path}:{rng.randint(1, 2000)}:{rng.randint(1, 80)}:{code}")
    return "\n".join(lines)


def _test_log(rng: random.Random) -> str:
    lines = [f"   Compiling {rng.choice(_WORDS)} v0.{rng.randint(1, 30)}.0"]
    for n in range(rng.randint(25, 60)):
        verdict = "ok" if rng.random() < 0.93 else "FAILED"
        lines.append(
            f"test {rng.choice(_WORDS)}::tests::case_{n} ... {verdict} ({n * 3} ms)"
        )
    lines.append("test result: ok. 57 passed; 2 failed; 0 ignored; finished in 1.84s")
    return "\n".join(lines)


def _tool_output(rng: random.Random, size: int) -> str:
    out: list[str] = []
    length = 0
    while length < size:
        part = rng.choice((_json_document, _search_hits, _test_log))(rng)
        out.append(part)
        length += len(part) + 1
    text = "\n".join(out)
    return json.dumps(
        {"output": text[:size], "metadata": {"exit_code": 0, "duration_seconds": 1.2}},
        ensure_ascii=False,
    )


def _arguments(rng: random.Random) -> str:
    if rng.random() < 0.25:
        patch = "\n".join(
            f"{rng.choice('+- ')}    {_sentence(rng, rng.randint(3, 10))}"
            for _ in range(rng.randint(6, 20))
        )
        return json.dumps(
            {"input": f"*** Begin Patch\n*** Update File: src/lib.rs\n{patch}\n"}
        )
    command = rng.choice(
        (
            f'rg -n "fn {rng.choice(_WORDS)}" src/',
            "cargo test -p codex-core -- --nocapture",
            f"sed -n '{rng.randint(1, 900)},+80p' src/{rng.choice(_WORDS)}.rs",
            "cat package.json",
        )
    )
    return json.dumps(
        {
            "command": ["bash", "-lc", command],
            "workdir": "/home/dev/project",
            "timeout_ms": 120000,
        }
    )


def conversation(
    turns: int = TURNS, items: int = ITEMS, output_size: int = 4200, seed: int = 0
) -> list[list[dict[str, Any]]]:
    """`turns` lists of item JSON objects, `items` objects in all."""
    rng = random.Random(seed)
    # Each turn is a user message, pairs of call and output, and an answer;
    # the last has no answer (it is waiting on the model).
    pairs = [(items - 2 * turns + 1) // (2 * turns)] * turns
    extra = (items - 2 * turns + 1) // 2 - sum(pairs)
    for n in range(extra):
        pairs[n * turns // max(extra, 1)] += 1
    out: list[list[dict[str, Any]]] = []
    call = 0
    for turn in range(turns):
        items_of_turn: list[dict[str, Any]] = [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {
                        "type": "input_text",
                        "text": f"Turn {turn}: " + _text(rng, rng.randint(150, 700)),
                    }
                ],
            }
        ]
        for _ in range(pairs[turn]):
            call += 1
            call_id = f"call_{call:06d}"
            items_of_turn.append(
                {
                    "type": "function_call",
                    "name": "shell" if rng.random() < 0.75 else "apply_patch",
                    "arguments": _arguments(rng),
                    "call_id": call_id,
                }
            )
            items_of_turn.append(
                {
                    "type": "function_call_output",
                    "call_id": call_id,
                    "output": _tool_output(
                        rng, rng.randint(output_size // 3, output_size * 5 // 3)
                    ),
                }
            )
        if turn < turns - 1:
            items_of_turn.append(
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [
                        {
                            "type": "output_text",
                            "text": _text(rng, rng.randint(300, 1800)),
                            "annotations": [],
                        }
                    ],
                }
            )
        out.append(items_of_turn)
    count = sum(len(t) for t in out)
    assert count == items, (count, items)
    return out


def history_items() -> list[dict[str, Any]]:
    """The whole conversation as one list of item JSON objects."""
    return [item for turn in conversation() for item in turn]


def big_stream(events: int = STREAM_EVENTS, seed: int = 0) -> bytes:
    """About 50 MB of Responses SSE: created, one message's deltas, completed."""
    rng = random.Random(seed)

    def frame(event: dict[str, Any]) -> bytes:
        return (
            f"event: {event['type']}\n"
            f"data: {json.dumps(event, ensure_ascii=False, separators=(',', ':'))}\n\n"
        ).encode()

    parts = [
        frame(
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": {"id": "resp_big", "status": "in_progress", "output": []},
            }
        )
    ]
    seq = 1
    messages = 8
    per_message = (events - 2 - 2 * messages) // messages
    deltas = events - 2 - 2 * messages
    for index in range(messages):
        item_id = f"msg_{index:04d}{'0' * 44}"
        item: dict[str, Any] = {
            "id": item_id,
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        added = {"type": "response.output_item.added", "sequence_number": seq}
        parts.append(frame({**added, "output_index": index, "item": item}))
        seq += 1
        count = per_message if index < messages - 1 else deltas - per_message * index
        text: list[str] = []
        for _ in range(count):
            delta = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 10)))
            text.append(delta)
            parts.append(
                frame(
                    {
                        "type": "response.output_text.delta",
                        "sequence_number": seq,
                        "item_id": item_id,
                        "output_index": index,
                        "content_index": 0,
                        "delta": delta,
                        "logprobs": [],
                        "obfuscation": "x" * rng.randint(2, 8),
                    }
                )
            )
            seq += 1
        done_item = {
            **item,
            "status": "completed",
            "content": [
                {
                    "type": "output_text",
                    "text": "".join(text)[:2000],
                    "annotations": [],
                    "logprobs": [],
                }
            ],
        }
        parts.append(
            frame(
                {
                    "type": "response.output_item.done",
                    "sequence_number": seq,
                    "output_index": index,
                    "item": done_item,
                }
            )
        )
        seq += 1
    parts.append(
        frame(
            {
                "type": "response.completed",
                "sequence_number": seq,
                "response": {
                    "id": "resp_big",
                    "object": "response",
                    "created_at": 1_760_000_000,
                    "status": "completed",
                    "model": "gpt-bench",
                    "output": [],
                    "usage": {
                        "input_tokens": 10,
                        "input_tokens_details": {"cached_tokens": 0},
                        "output_tokens": events,
                        "output_tokens_details": {"reasoning_tokens": 0},
                        "total_tokens": events + 10,
                    },
                },
            }
        )
    )
    assert len(parts) == events, (len(parts), events)
    return b"".join(parts)
