"""`make bench`: every benchmark in turn. Each module's `main(argv)` measures and writes its section of
docs/benchmarks.md. `make bench BENCH_ARGS="ingest --rows 100000"` runs one, with its own options."""

from __future__ import annotations

import importlib
import subprocess
import sys

BENCHMARKS = ("ingest", "concurrent_apply", "feeder", "portal", "portal_bulk", "dnc", "events", "learning")


def main(argv: list[str]) -> int:
    selected = [name for name in argv if name in BENCHMARKS] or list(BENCHMARKS)
    options = [arg for arg in argv if arg not in BENCHMARKS]
    failures = 0
    for name in selected:
        try:
            importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError:
            print(f"benchmark {name}: not present, skipped")
            continue
        print(f"=== benchmark: {name} ===", flush=True)
        # Each benchmark runs in its own process: each sets up its own database before Django starts.
        result = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *options])
        failures += result.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
