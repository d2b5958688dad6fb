"""Import time: ``aio_trader.kite`` (and the codec alone) vs Kite's official ``kiteconnect``.

Each statement runs in a fresh interpreter (``python -c``), in interleaved rounds (the
statements' order alternates round by round); the figure is the median wall time of a
round's run minus the median of a bare ``python -c pass``, with the spread (lowest and
highest round), and the number of modules the statement loads.

    .venv/bin/python benchmarks/bench_import.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from _rounds import Summary, header

STATEMENTS = {
    "python -c pass (baseline)": "pass",
    "import aio_trader.kite.ticks": "import aio_trader.kite.ticks",
    "import aio_trader.kite": "import aio_trader.kite",
    "from aio_trader.kite import Kite, KiteFeed": "from aio_trader.kite import Kite, KiteFeed",
    "import kiteconnect": "import kiteconnect",
}


def run_once(statement: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True)
    return time.perf_counter() - start


def module_count(statement: str) -> int:
    code = f"import sys; n = len(sys.modules); {statement}; print(len(sys.modules) - n)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return int(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    print(header("bench_import"))
    names = list(STATEMENTS)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm the file system cache and the .pyc files
        run_once(STATEMENTS[name])
    for index in range(args.rounds):
        for name in names if index % 2 == 0 else reversed(names):
            times[name].append(run_once(STATEMENTS[name]))
    base = statistics.median(times[names[0]])
    print(f"{args.rounds} interleaved rounds; ms above a bare interpreter, median [lowest-highest]")
    for name in names[1:]:
        ms = Summary([(t - base) * 1e3 for t in times[name]])
        print(f"{name:<44} {ms.format(1, ' ms'):>26} {module_count(STATEMENTS[name]):>5} modules")
    theirs = times["import kiteconnect"]
    for name in ("import aio_trader.kite", "from aio_trader.kite import Kite, KiteFeed"):
        ratio = Summary(
            [(t - base) / max(o - base, 1e-4) for t, o in zip(theirs, times[name], strict=True)]
        )
        print(f"kiteconnect / {name}: {ratio.format(1, 'x')} (above 1: ours imports faster)")


if __name__ == "__main__":
    main()
