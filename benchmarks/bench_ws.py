"""The 50-turn conversation over HTTP and over a WebSocket, side by side.

The history of `_workload.conversation()` (growing to about 10 MiB) is sent
one turn at a time through a `Conversation`: each turn's workload items are
the new input, and the server answers each request with one assistant
message.  Over HTTP every request carries the whole history; over the
WebSocket a request that continues the last one carries
`previous_response_id` and only the new items.  Both servers run in one
other process, so their CPU stays out of the client's figures.

Printed per transport: request bytes of the first and last turns (the JSON
before any compression: HTTP bodies, `response.create` frames), client CPU
per turn and wall time for the 50 turns.  Then the WebSocket's turn N+1
against the full body of the same turn (goal: under 2%): a workload turn
adds about a fiftieth of the final history, so its share is bounded by
that; a 51st turn, a one-line user message on the 10 MiB history, shows a
chat turn's.

    pip install -e '.[ws]'
    python benchmarks/bench_ws.py
"""

from __future__ import annotations

import http.server
import json
import logging
import multiprocessing
import re
import threading
import time
from typing import Any

from _workload import INSTRUCTIONS, conversation

import codex_lite as cl


def _events(number: int) -> list[dict[str, Any]]:
    item = {
        "type": "message",
        "id": f"msg_{number}",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Done.", "annotations": []}],
    }
    return [
        {"type": "response.created", "response": {"id": f"resp_{number}"}},
        {"type": "response.output_item.done", "item": item},
        {"type": "response.completed", "response": {"id": f"resp_{number}"}},
    ]


def _serve(ports: Any) -> None:
    from websockets.sync.server import serve

    counter = iter(range(1, 1 << 30))
    lock = threading.Lock()

    def number() -> int:
        with lock:
            return next(counter)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                remaining -= len(self.rfile.read(min(remaining, 1 << 20)))
            body = b"".join(
                f"data: {json.dumps(e)}\n\n".encode() for e in _events(number())
            )
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # no WebSockets on this one
            self.send_response(426)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    def answer(connection: Any) -> None:
        for _ in connection:
            for event in _events(number()):
                connection.send(json.dumps(event))

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sockets = serve(answer, "127.0.0.1", 0, max_size=None)
    threading.Thread(target=sockets.serve_forever, daemon=True).start()
    ports.put((web.server_address[1], sockets.socket.getsockname()[1]))
    web.serve_forever()


class _Sizes(logging.Handler):
    """The `request.body_bytes` of each "Responses request prepared" line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.sizes: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = re.search(r"request\.body_bytes=(\d+)", record.getMessage())
        if found:
            self.sizes.append(int(found.group(1)))


def _run(port: int, turns: list[list[cl.ResponseItem]]) -> dict[str, Any]:
    info = cl.ProviderInfo(
        name="OpenAI", base_url=f"http://127.0.0.1:{port}/v1", supports_websockets=True
    )
    client = cl.Client(
        cl.ModelProvider("openai", info),
        model="m",
        auth=cl.BearerAuth("sk-bench"),
    )
    sizes = _Sizes()
    logging.getLogger("codex_lite").addHandler(sizes)
    cpu, started = [], time.perf_counter()
    with cl.Conversation(client, instructions=INSTRUCTIONS) as convo:
        for items in turns:
            before = time.process_time()
            convo.run_turn(items)
            cpu.append(time.process_time() - before)
    wall = time.perf_counter() - started
    logging.getLogger("codex_lite").removeHandler(sizes)
    return {"sizes": sizes.sizes, "cpu": cpu, "wall": wall}


def main() -> None:
    logging.getLogger("codex_lite").setLevel(logging.INFO)
    logging.getLogger("codex_lite").propagate = False
    turns = [[cl.item_from_json(d) for d in turn] for turn in conversation()]
    turns.append([cl.Message.user("Thanks, that is all.")])
    ports: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    try:
        http_port, ws_port = ports.get(timeout=120)
        http = _run(http_port, turns)
        ws = _run(ws_port, turns)
    finally:
        server.terminate()
    if len(ws["sizes"]) != len(turns) or len(http["sizes"]) != len(turns):
        raise SystemExit(f"expected {len(turns)} requests a transport")
    work = len(turns) - 1
    print(
        f"{work} workload turns, the last request {http['sizes'][-2] / 2**20:.2f} MiB"
    )
    for name, run in (("HTTP", http), ("WebSocket", ws)):
        first, last = run["sizes"][0], run["sizes"][work - 1]
        print(
            f"  {name:<9}  turn 1 {first:>10,} B  turn {work} {last:>10,} B  "
            f"CPU/turn {sum(run['cpu'][:work]) / work * 1000:6.2f} ms  "
            f"wall {run['wall']:6.2f} s"
        )
    shares = [w / h for w, h in zip(ws["sizes"], http["sizes"], strict=True)]
    print(
        f"  WebSocket turn N+1 / full body: turn {work} {shares[work - 1]:.2%}, "
        f"mean of turns 2-{work} {sum(shares[1:work]) / (work - 1):.2%}; "
        f"the one-line turn {ws['sizes'][-1]:,} B = {shares[-1]:.3%} (goal < 2%)"
    )
    print(
        f"  ratios HTTP/WebSocket: CPU per turn "
        f"{sum(http['cpu']) / sum(ws['cpu']):.1f}x, wall {http['wall'] / ws['wall']:.1f}x"
    )


if __name__ == "__main__":
    main()
