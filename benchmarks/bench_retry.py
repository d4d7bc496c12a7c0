"""CPU cost of sending a 10 MiB Responses body, first attempt and each retry.

A loopback server (its own process) answers 503 six times, then a short
stream.  codex_lite and openai-python send the same 3,841 input items; the
CPU time of the calling thread is measured for a run that succeeds at once
(the first attempt) and for the run with six 503s (each retry = the
difference / 6), taking the fastest of 5 runs of each.  Retry sleeps are cut to ~1 ms on both sides (openai-python's
`_calculate_retry_timeout` is replaced on the instance for that).  codex_lite
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

import json
import statistics
import time
import uuid
from typing import Any

from _loopback import LoopbackServer

import codex_lite as cl

REPEATS = 5
FAILURES = 6  # 503s before the stream, in the retry runs


def history_items(count: int = 3841) -> list[dict[str, Any]]:
    """A realistic coding-agent history of about 10 MiB."""
    text = "Refactor the parser so that every error carries its line number. " * 33
    output = "\n".join(
        f"src/module_{i}.rs:{i * 7}: warning: unused variable `x{i}`"
        for i in range(125)
    )
    items: list[dict[str, Any]] = []
    for n in range(count):
        kind = n % 4
        if kind == 0:
            items.append(
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": f"{n} {text}"}],
                }
            )
        elif kind == 1:
            items.append(
                {
                    "type": "function_call",
                    "name": "shell",
                    "arguments": json.dumps(
                        {
                            "command": ["bash", "-lc", f"cargo check -p crate{n}"],
                            "timeout_ms": 120000,
                        }
                    ),
                    "call_id": f"call_{n}",
                }
            )
        elif kind == 2:
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": f"call_{n - 1}",
                    "output": output,
                }
            )
        else:
            items.append(
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [
                        {
                            "type": "output_text",
                            "text": f"{n} {text[:1650]}",
                            "annotations": [],
                        }
                    ],
                }
            )
    return items


def cpu(call: Any) -> float:
    """CPU seconds (user + system) the calling thread spends in `call`."""
    started = time.thread_time()
    call()
    return time.thread_time() - started


def codex_lite_run(url: str, items: list[cl.ResponseItem], failures: int) -> float:
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
    prompt = cl.Prompt(input=items, instructions="You are a coding agent.")

    def call() -> None:
        events = list(client.new_turn().stream(prompt))
        assert isinstance(events[-1], cl.Completed)

    return cpu(call)


def openai_run(url: str, items: list[dict[str, Any]], failures: int) -> float:
    import openai

    run = uuid.uuid4().hex
    client = openai.OpenAI(
        api_key="sk-bench",
        base_url=f"{url}/{run}/fail{failures}/v1",
        max_retries=FAILURES,
    )
    client._calculate_retry_timeout = lambda *args, **kwargs: 0.001  # type: ignore[method-assign]

    def call() -> None:
        stream = client.responses.create(
            model="gpt-bench",
            input=items,
            instructions="You are a coding agent.",
            stream=True,  # type: ignore[arg-type]
        )
        kinds = [event.type for event in stream]
        assert kinds[-1] == "response.completed", kinds

    return cpu(call)


def per_attempt(first: list[float], many: list[float]) -> tuple[float, float]:
    """First-attempt cost and the cost of each retry, from the fastest runs.

    Noise on a shared machine only ever adds time, so the minimum is the
    steadiest estimate.
    """
    one = min(first)
    return one, max((min(many) - one) / FAILURES, 1e-9)


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
    dicts = history_items()
    items = [cl.item_from_json(d) for d in dicts]
    size = len(json.dumps(dicts, separators=(",", ":"), ensure_ascii=False).encode())
    print(f"body: {len(items)} items, {size / 2**20:.2f} MiB of input JSON")
    with LoopbackServer() as url:
        codex_lite_run(url, items, 0)  # warm up connections and caches
        openai_run(url, dicts, 0)
        runs: dict[str, dict[int, list[float]]] = {
            "codex_lite": {0: [], FAILURES: []},
            "openai-python": {0: [], FAILURES: []},
        }
        for _ in range(REPEATS):
            for failures in (0, FAILURES):
                runs["codex_lite"][failures].append(
                    codex_lite_run(url, items, failures)
                )
                runs["openai-python"][failures].append(openai_run(url, dicts, failures))
    costs = {name: per_attempt(r[0], r[FAILURES]) for name, r in runs.items()}
    print(
        f"{'CPU ms, best of ' + str(REPEATS):<22}{'first attempt':>15}{'each retry':>12}"
    )
    for name, (first, retry) in costs.items():
        print(f"{name:<22}{first * 1000:>15.1f}{retry * 1000:>12.1f}")
    (lite_first, lite_retry), (oai_first, oai_retry) = (
        costs["codex_lite"],
        costs["openai-python"],
    )
    print(f"ratio first attempt: {oai_first / lite_first:.1f}x (target >= 10x)")
    print(f"ratio each retry:    {oai_retry / lite_retry:.1f}x (target >= 20x)")
    body = cl._dumps({"model": "m", "input": dicts})
    first, later, boto = sigv4_costs(body)
    print(
        f"SigV4 on {len(body) / 2**20:.2f} MiB: codex_lite first {first * 1000:.2f} ms, "
        f"later attempts {later * 1000:.3f} ms; botocore {boto * 1000:.2f} ms every attempt "
        f"({boto / later:.0f}x per retry)"
    )


if __name__ == "__main__":
    main()
