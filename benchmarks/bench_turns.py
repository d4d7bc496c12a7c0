"""A 50-turn conversation growing to 10 MiB: encoding cost and memory per turn.

The conversation of `_workload.conversation()`: each turn adds a user
message, a run of tool calls and their outputs, and an answer.  A
`Client` keeps every item's encoded JSON between turns, so `Turn.prepare`
of the last turn encodes only that turn's items and joins bytes; compared
with one `json.dumps` of the same payload (the bytes must be identical).
Then the last turn is streamed to a loopback server under tracemalloc: the
peak of memory allocated while sending, against the body size.

    pip install -e .
    python benchmarks/bench_turns.py
"""

from __future__ import annotations

import json
import logging
import time
import tracemalloc
import uuid

from _loopback import LoopbackServer
from _workload import INSTRUCTIONS, conversation

import codex_lite as cl

REPEATS = 5


def main() -> None:
    # 10 MiB bodies are "large" (wire-spec §5): keep that warning out of the figures
    logging.disable(logging.WARNING)
    with LoopbackServer() as url:
        base = f"{url}/{uuid.uuid4().hex}/fail0/v1"
        client = cl.Client(
            cl.ModelProvider("bench", cl.ProviderInfo(name="bench", base_url=base)),
            model="m",
        )
        turns = [[cl.item_from_json(d) for d in turn] for turn in conversation()]
        history: list[cl.ResponseItem] = []
        for turn in turns[:-1]:
            history += turn
            # as each turn's request would
            client.new_turn().prepare(
                cl.Prompt(input=history, instructions=INSTRUCTIONS)
            )
        history += turns[-1]
        prompt = cl.Prompt(input=history, instructions=INSTRUCTIONS)

        cached, full = [], []
        for _ in range(REPEATS):
            started = time.perf_counter()
            request = client.new_turn().prepare(prompt)
            cached.append(time.perf_counter() - started)
            payload = json.loads(request.body)
            started = time.perf_counter()
            one_shot = json.dumps(
                payload, separators=(",", ":"), ensure_ascii=False
            ).encode()
            full.append(time.perf_counter() - started)
            assert one_shot == request.body, (
                "joined bytes differ from one-shot json.dumps"
            )
        size = len(request.body)
        print(f"last turn: {len(history)} items, {size / 2**20:.2f} MiB body")
        print(f"  json.dumps of the whole payload   {min(full) * 1000:8.1f} ms")
        print(f"  Turn.prepare with cached items    {min(cached) * 1000:8.1f} ms")
        print(
            f"  ratio {min(cached) / min(full):.1%} of a full json.dumps (target <= 10%)"
        )

        client.new_turn().prepare(
            cl.Prompt(input=history[: -len(turns[-1])], instructions=INSTRUCTIONS)
        )
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        events = list(client.new_turn().stream(prompt))
        peak = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
        assert isinstance(events[-1], cl.Completed)
        print(
            f"  peak memory sending it: {peak / 2**20:.2f} MiB = {peak / size:.2f}x the body (target <= 2.5x)"
        )


if __name__ == "__main__":
    main()
