"""Streaming throughput on a 50 MB Responses stream of 171,629 events.

End to end: a loopback server (its own process) sends the stream in 64 KiB
chunks; codex_lite's `Turn.stream` (typed events) and openai-python's
`responses.create(stream=True)` (typed pydantic events) each consume it.
Decoder only: the same bytes, in memory, in 64 KiB chunks, decoded to
events and their JSON parsed: codex_lite's `SSEDecoder`, openai-python's
`SSEDecoder` and httpx-sse's decoder behind httpx's line splitter (how
`EventSource.iter_sse` feeds it).  Best of 5 runs each, taking turns.

    pip install -e . openai httpx-sse
    python benchmarks/bench_sse.py
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator

from _loopback import LoopbackServer
from _workload import big_stream

import codex_lite as cl

EVENTS = 171_629
REPEATS = 5


def side_by_side(runs: dict[str, Callable[[], int]]) -> dict[str, tuple[float, int]]:
    """Fastest wall time of each run and the events it saw, taking turns."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    counts: dict[str, int] = {}
    for _ in range(REPEATS):
        for name, run in runs.items():
            started = time.perf_counter()
            counts[name] = run()
            times[name].append(time.perf_counter() - started)
    return {name: (min(times[name]), counts[name]) for name in runs}


def chunks_of(blob: bytes, size: int = 65536) -> Iterator[bytes]:
    view = memoryview(blob)
    for start in range(0, len(blob), size):
        yield bytes(view[start : start + size])


def decode_codex_lite(blob: bytes) -> int:
    decoder, count = cl.SSEDecoder(), 0
    for chunk in chunks_of(blob):
        for sse in decoder.feed(chunk):
            json.loads(sse.data)
            count += 1
    return count


def decode_openai(blob: bytes) -> int:
    from openai._streaming import SSEDecoder

    count = 0
    for sse in SSEDecoder().iter_bytes(chunks_of(blob)):
        json.loads(sse.data)
        count += 1
    return count


def decode_httpx_sse(blob: bytes) -> int:
    from httpx._decoders import LineDecoder, TextDecoder
    from httpx_sse._decoders import SSEDecoder

    text, lines, decoder, count = TextDecoder(), LineDecoder(), SSEDecoder(), 0
    for chunk in chunks_of(blob):
        for line in lines.decode(text.decode(chunk)):
            sse = decoder.decode(line)
            if sse is not None:
                json.loads(sse.data)
                count += 1
    return count


def stream_codex_lite(url: str) -> int:
    base = f"{url}/{uuid.uuid4().hex}/stream/v1"
    client = cl.Client(
        cl.ModelProvider("bench", cl.ProviderInfo(name="bench", base_url=base)),
        model="m",
    )
    prompt = cl.Prompt(
        input=[cl.Message(role="user", content=(cl.InputText(text="hi"),))]
    )
    count = 0
    for event in client.new_turn().stream(prompt):
        count += 1
        last = event
    assert isinstance(last, cl.Completed)
    return count


def stream_openai(url: str) -> int:
    import openai

    client = openai.OpenAI(
        api_key="sk-bench", base_url=f"{url}/{uuid.uuid4().hex}/stream/v1"
    )
    count = 0
    for event in client.responses.create(model="m", input="hi", stream=True):
        count += 1
        last = event
    assert last.type == "response.completed"
    return count


def report(title: str, results: dict[str, tuple[float, int]], target: float) -> None:
    print(title)
    for name, (seconds, count) in results.items():
        print(
            f"  {name:<24}{count:>9} events {seconds:>7.2f} s {count / seconds:>12,.0f} events/s"
        )
    names = list(results)
    lite = results[names[0]][0]
    for other in names[1:]:
        print(
            f"  codex_lite is {results[other][0] / lite:.1f}x faster than {other} (target >= {target}x)"
        )


def main() -> None:
    blob = big_stream(EVENTS)
    print(f"stream: {len(blob) / 1e6:.1f} MB, {EVENTS} events")
    decoders = side_by_side(
        {
            "codex_lite SSEDecoder": lambda: decode_codex_lite(blob),
            "openai-python SSEDecoder": lambda: decode_openai(blob),
            "httpx-sse": lambda: decode_httpx_sse(blob),
        }
    )
    report("decoder to JSON (in memory):", decoders, 1.5)
    with LoopbackServer(stream_events=EVENTS) as url:
        stream_codex_lite(url)  # warm up
        typed = side_by_side(
            {
                "codex_lite Turn.stream": lambda: stream_codex_lite(url),
                "openai-python Stream": lambda: stream_openai(url),
            }
        )
    report("typed events end to end (loopback):", typed, 5)


if __name__ == "__main__":
    main()
