"""CPU cost of sending a 10 MiB Responses body, first attempt and each retry.

A loopback server (its own process) answers 503 six times, then a short
stream.  codex_lite and openai-python send the same 3,841 input items; the
CPU time of the calling thread is measured for a run that succeeds at once
(the first attempt: the fastest of 5 runs) and, in 5 runs with six 503s,
between one retry decision and the next (each retry: the median of those
25 intervals; a difference of whole runs would drown it in the noise of
openai-python's first attempt).  codex_lite marks a decision with its
"retrying request" log record, openai-python with its
`_calculate_retry_timeout`, replaced on the instance to note the clock and
cut the sleep to 1 ms, as codex_lite's `RetryPolicy(base_delay=0.001)` does.  codex_lite
gets items already parsed into its dataclasses, openai-python the same items
as dicts: each side's natural form of a conversation history.

The second table compares SigV4 signing of the same 10 MiB body per attempt:
codex_lite's `SigV4Auth` (payload hashed once per body) against botocore's
`SigV4Auth.add_auth` (hashes on every call, as openai-python's Bedrock client
uses it).

    pip install -e . openai botocore
    python benchmarks/bench_retry.py
"""

from __future__ import annotations

import itertools
import json
import logging
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from _loopback import LoopbackServer
from _workload import INSTRUCTIONS, history_items

import codex_lite as cl

REPEATS = 5
FAILURES = 6  # 503s before the stream, in the retry runs


def cpu(call: Any) -> float:
    """CPU seconds (user + system) the calling thread spends in `call`."""
    started = time.thread_time()
    call()
    return time.thread_time() - started


class RetryMarks(logging.Handler):
    """The calling thread's CPU clock at each of codex_lite's retry decisions."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("retrying request"):
            self.marks.append(time.thread_time())


def intervals(marks: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(marks)]


def codex_lite_run(
    url: str, items: list[cl.ResponseItem], failures: int, retries: RetryMarks
) -> tuple[float, list[float]]:
    run = uuid.uuid4().hex
    provider = cl.ModelProvider(
        "bench",
        cl.ProviderInfo(name="bench", base_url=f"{url}/{run}/fail{failures}/v1"),
    )
    client = cl.Client(
        provider,
        model="gpt-bench",
        retry_policy=cl.RetryPolicy(base_delay=0.001, request_max_retries=FAILURES),
    )
    prompt = cl.Prompt(input=items, instructions=INSTRUCTIONS)

    def call() -> None:
        events = list(client.new_turn().stream(prompt))
        assert isinstance(events[-1], cl.Completed)

    retries.marks.clear()
    return cpu(call), intervals(retries.marks)


def openai_run(
    url: str, items: list[dict[str, Any]], failures: int
) -> tuple[float, list[float]]:
    import openai

    run = uuid.uuid4().hex
    client = openai.OpenAI(
        api_key="sk-bench",
        base_url=f"{url}/{run}/fail{failures}/v1",
        max_retries=FAILURES,
    )
    marks: list[float] = []

    def retry_timeout(*args: Any, **kwargs: Any) -> float:
        marks.append(time.thread_time())
        return 0.001

    client._calculate_retry_timeout = retry_timeout  # type: ignore[method-assign]

    def call() -> None:
        stream = client.responses.create(
            model="gpt-bench",
            input=items,
            instructions=INSTRUCTIONS,
            stream=True,  # type: ignore[arg-type]
        )
        kinds = [event.type for event in stream]
        assert kinds[-1] == "response.completed", kinds

    return cpu(call), intervals(marks)


def sigv4_costs(body: bytes) -> tuple[float, float, float]:
    """Seconds per signing: codex_lite first, codex_lite later attempts, botocore each."""
    from botocore.auth import SigV4Auth as BotoSigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = "https://bedrock-mantle.us-east-1.api.aws/openai/v1/responses"
    headers = {"Content-Type": "application/json", "session-id": "s"}
    auth = cl.SigV4Auth(
        lambda: (cl.AwsCredentials("AKIDEXAMPLE", "secret"), None), region="us-east-1"
    )
    request = cl.PreparedRequest("POST", url, headers, body)
    first = cpu(lambda: auth.apply_auth(request))
    later = statistics.median(cpu(lambda: auth.apply_auth(request)) for _ in range(20))
    boto = BotoSigV4Auth(
        Credentials("AKIDEXAMPLE", "secret"), "bedrock-mantle", "us-east-1"
    )

    def boto_once() -> None:
        boto.add_auth(AWSRequest(method="POST", url=url, data=body, headers=headers))

    each = statistics.median(cpu(boto_once) for _ in range(5))
    return first, later, each


def main() -> None:
    retries = RetryMarks()
    log = logging.getLogger("codex_lite")
    log.setLevel(logging.INFO)
    log.propagate = False  # and 10 MiB bodies' "large request" warning unprinted
    log.addHandler(retries)
    dicts = history_items()
    items = [cl.item_from_json(d) for d in dicts]
    size = len(json.dumps(dicts, separators=(",", ":"), ensure_ascii=False).encode())
    print(f"body: {len(items)} items, {size / 2**20:.2f} MiB of input JSON")
    runs: dict[str, Callable[[str, int], tuple[float, list[float]]]] = {
        "codex_lite": lambda url, failures: codex_lite_run(
            url, items, failures, retries
        ),
        "openai-python": lambda url, failures: openai_run(url, dicts, failures),
    }
    first: dict[str, list[float]] = {name: [] for name in runs}
    each: dict[str, list[float]] = {name: [] for name in runs}
    with LoopbackServer() as url:
        for run in runs.values():
            run(url, 0)  # warm up connections and caches
        for _ in range(REPEATS):
            for name, run in runs.items():
                first[name].append(run(url, 0)[0])
                each[name] += run(url, FAILURES)[1]
    costs = {name: (min(first[name]), statistics.median(each[name])) for name in runs}
    print(f"{'CPU ms':<22}{'first attempt':>15}{'each retry':>12}")
    for name, (one, retry) in costs.items():
        print(f"{name:<22}{one * 1000:>15.1f}{retry * 1000:>12.1f}")
    (lite_first, lite_retry), (oai_first, oai_retry) = (
        costs["codex_lite"],
        costs["openai-python"],
    )
    print(f"ratio first attempt: {oai_first / lite_first:.1f}x (target >= 10x)")
    print(f"ratio each retry:    {oai_retry / lite_retry:.1f}x (target >= 20x)")
    body = cl._dumps({"model": "m", "input": dicts})
    sign_first, later, boto = sigv4_costs(body)
    print(
        f"SigV4 on {len(body) / 2**20:.2f} MiB: codex_lite first {sign_first * 1000:.2f} ms, "
        f"later attempts {later * 1000:.3f} ms; botocore {boto * 1000:.2f} ms every attempt "
        f"({boto / later:.0f}x per retry)"
    )


if __name__ == "__main__":
    main()
