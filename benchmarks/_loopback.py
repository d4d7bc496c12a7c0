"""A loopback Responses server in its own process, shared by the benchmarks.

Running it in another process keeps its CPU out of the client's measurements.
Paths say what to do:

- `/<run>/fail<N>/v1/responses`: the first N requests of run `<run>` get 503,
  later ones a short stream ending in `response.completed`;
- `/<run>/stream/v1/responses`: the stream built by `_workload.big_stream()`,
  in 64 KiB chunks.
"""

from __future__ import annotations

import http.server
import json
import multiprocessing
import re
import threading
from typing import Any

from _workload import big_stream

SHORT_STREAM = b"".join(
    f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode()
    for e in (
        {"type": "response.created", "response": {"id": "resp_1"}},
        {"type": "response.output_text.delta", "delta": "ok", "item_id": "msg_1"},
        {
            "type": "response.completed",
            "response": {
                "id": "resp_1",
                "usage": {"input_tokens": 1, "output_tokens": 1},
            },
        },
    )
)


def _serve(port_queue: Any, stream_events: int) -> None:
    counts: dict[str, int] = {}
    lock = threading.Lock()
    stream = big_stream(stream_events) if stream_events else b""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            remaining = length
            while remaining:
                remaining -= len(self.rfile.read(min(remaining, 1 << 20)))
            match = re.match(r"/(\w+)/(fail(\d+)|stream)/", self.path)
            if match is None:
                self.send_error(404)
                return
            run, kind, failures = match.groups()
            with lock:
                counts[run] = counts.get(run, 0) + 1
                attempt = counts[run]
            if failures and attempt <= int(failures):
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = stream if kind == "stream" else SHORT_STREAM
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            view = memoryview(body)
            for start in range(0, len(body), 65536):
                chunk = view[start : start + 65536]
                self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")

        def log_message(self, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # clients close kept-alive connections when they are done

    server = Server(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


class LoopbackServer:
    """Start with `with LoopbackServer() as url:`; the process stops on exit."""

    def __init__(self, *, stream_events: int = 0) -> None:
        self.stream_events = stream_events

    def __enter__(self) -> str:
        queue: Any = multiprocessing.Queue()
        self.process = multiprocessing.Process(
            target=_serve, args=(queue, self.stream_events), daemon=True
        )
        self.process.start()
        return f"http://127.0.0.1:{queue.get(timeout=120)}"

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.join()
