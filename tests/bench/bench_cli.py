"""CLI cold start: wall time of `lncli channel-id <outpoint>` against `python -c "import typer"`.

    python tests/bench/bench_cli.py [RUNS]

Both are run alternately in fresh processes on the same machine; prints medians and the ratio
(target: lncli <= 1.5x the bare typer import).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

OUTPOINT = "8984484a580b825b9972d7adb15050b3ab624ccd731946b3eeddb92f4e7ef6be:0"


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    lncli = shutil.which("lncli", path=os.path.dirname(sys.executable)) or "lncli"
    cases = {
        "python -c 'import typer' (baseline)": [sys.executable, "-c", "import typer"],
        "lncli channel-id OUTPOINT": [lncli, "channel-id", OUTPOINT],
        "lncli --help": [lncli, "--help"],
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for cmd in cases.values():  # warm the page cache
        wall(cmd)
    for _ in range(runs):
        for name, cmd in cases.items():
            times[name].append(wall(cmd))
    base = statistics.median(times["python -c 'import typer' (baseline)"])
    print(f"CLI cold start, {runs} runs each, median wall time")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"  {name:40s} {m * 1000:7.1f} ms   {m / base:5.2f}x baseline")


if __name__ == "__main__":
    main()
