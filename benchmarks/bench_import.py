"""What `import codex_lite` costs on top of `import requests`.

Runs `python -X importtime -c "import codex_lite"` several times (bytecode
caching on, first run discarded) and reports the median of codex_lite's
cumulative import time minus that of requests, and how much of it is the
module's own body.  Also checks that zstandard, botocore and asyncio are not
imported.

    pip install -e .
    python benchmarks/bench_import.py
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys

RUNS = 9


def importtime() -> dict[str, tuple[int, int]]:
    """Module name -> (self, cumulative) microseconds for one fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import codex_lite"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    out = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if match:
            out[match[4]] = (int(match[1]), int(match[2]))
    return out


def main() -> None:
    importtime()  # writes the bytecode caches
    runs = [importtime() for _ in range(RUNS)]
    extra = statistics.median(
        (r["codex_lite"][1] - r["requests"][1]) / 1000 for r in runs
    )
    body = statistics.median(r["codex_lite"][0] / 1000 for r in runs)
    base = statistics.median(r["requests"][1] / 1000 for r in runs)
    print(f"import requests:                        {base:6.1f} ms")
    print(f"import codex_lite on top of requests:   {extra:6.1f} ms (target <= 15 ms)")
    print(f"  of which codex_lite's own module body: {body:6.1f} ms")
    others = {
        name: (cumulative - own) / 1000
        for name, (own, cumulative) in runs[-1].items()
        if name in ("dataclasses", "pathlib", "secrets", "typing", "enum", "copy")
    }
    print("  standard-library modules it adds (last run, ms):", others)
    probe = "import sys, codex_lite; print(sorted({'zstandard', 'botocore', 'asyncio'} & set(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    print(f"zstandard, botocore, asyncio imported: {loaded.stdout.strip() or '[]'}")


if __name__ == "__main__":
    main()
