"""Start-up cost: `import codex_lite`, `codex-lite --help` and a dry run.

Each command runs in a fresh interpreter, 15 times after one warm-up run
(bytecode caches written), taking turns; the figure is the fastest run, less
the fastest bare interpreter (`python -c pass`).  `import requests` and
`import openai` run beside it for scale.  Also checks that importing
codex_lite loads neither requests nor zstandard, botocore or asyncio, and
where its import time goes (`-X importtime`).

    pip install -e . openai
    python benchmarks/bench_import.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

RUNS = 15


def command(*args: str) -> list[str]:
    script = shutil.which("codex-lite")
    return [script, *args] if script else [sys.executable, "-m", "codex_lite", *args]


def fastest(commands: dict[str, list[str]], env: dict[str, str]) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(RUNS + 1):
        for name, argv in commands.items():
            started = time.perf_counter()
            subprocess.run(argv, env=env, capture_output=True, check=True)
            times[name].append(time.perf_counter() - started)
    return {name: min(runs[1:]) * 1000 for name, runs in times.items()}


def import_profile() -> dict[str, float]:
    """Milliseconds each module adds to `import codex_lite` (its subtree)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import codex_lite"],
        capture_output=True,
        text=True,
        check=True,
    )
    out = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if match and len(match[3]) <= 2:  # codex_lite and what it imports itself
            out[match[4]] = (
                int(match[2] if match[4] != "codex_lite" else match[1]) / 1000
            )
    return out


def main() -> None:
    home = tempfile.mkdtemp()
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith(("OPENAI_", "CODEX_"))
    }
    env["CODEX_HOME"] = home
    py = sys.executable
    commands = {
        "bare interpreter": [py, "-c", "pass"],
        "import codex_lite": [py, "-c", "import codex_lite"],
        "import requests": [py, "-c", "import requests"],
        "codex-lite --help": command("--help"),
        "codex-lite exec --dry-run": command("exec", "--dry-run", "hi"),
    }
    try:
        import openai  # noqa: F401

        commands["import openai"] = [py, "-c", "import openai"]
    except ImportError:
        pass
    results = fastest(commands, env)
    bare = results.pop("bare interpreter")
    print(f"bare interpreter: {bare:.1f} ms (fastest of {RUNS})")
    for name, ms in results.items():
        print(f"  {name:<28} {ms - bare:7.1f} ms over bare")
    print(
        f"  import codex_lite: target <= 60 ms over bare; "
        f"--help and the dry run: target <= {2.5 * bare + 90 - bare:.0f} ms over bare "
        f"(2.5x bare + 90 ms)"
    )
    probe = (
        "import sys, codex_lite; "
        "print(sorted({'requests', 'urllib3', 'zstandard', 'botocore', 'asyncio'}"
        " & set(sys.modules)))"
    )
    loaded = subprocess.run(
        [py, "-c", probe], capture_output=True, text=True, check=True
    )
    print(
        f"requests, urllib3, zstandard, botocore, asyncio imported: {loaded.stdout.strip()}"
    )
    profile = sorted(import_profile().items(), key=lambda kv: -kv[1])
    print("where import codex_lite's time goes (one run, ms):")
    print("  " + ", ".join(f"{name} {ms:.1f}" for name, ms in profile[:10]))


if __name__ == "__main__":
    main()
