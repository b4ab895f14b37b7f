"""The normaliser alone: `StagingLayout.write_copy_text` over the ingestion benchmark's synthetic file (CSV parsing,
normalising, blind indexes, encryption, COPY text; no database), CPU seconds of this one process
(`time.process_time`), in µs per row. Run two checkouts in turn to compare them:

    python -m benchmarks.normaliser --rows 200000 1000000

The files are written once under var/bench/normaliser/ (not timed) and kept for the next run.
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks import common
from benchmarks.ingest_files import generate
from pipeline.ingest.reading import records
from pipeline.ingest.rows import StagingLayout, Territory
from security.pii import CodecKeys, PiiCodec

WORK = common.ROOT / "var" / "bench" / "normaliser"


class _Discard:
    """Where the COPY text goes: counted, then dropped."""

    size = 0

    def write(self, text: str) -> None:
        self.size += len(text)


def measure(rows: int) -> tuple[float, int]:
    """(CPU seconds, characters of COPY text) for the first benchmark file of `rows` rows."""
    path = WORK / f"a_{rows}.csv"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        generate(path, rows, offset=0)
    codec = PiiCodec(CodecKeys(encryption=(("bench", b"\x01" * 32),), blind_index=(("1", b"\x02" * 32),)))
    territory = Territory(by_prefix={"921": "broker-a"}, by_state={"TX": "broker-b", "FL": "broker-c"})
    with path.open(newline="") as handle:
        stream = records(handle)
        _, headers = next(stream)
        layout = StagingLayout(
            headers,
            upload_id="00000000-0000-0000-0000-000000000001",
            broker_id=None,
            territory=territory,
            email_codes=frozenset(),
            phone_codes=frozenset(),
            codec=codec,
        )
        out = _Discard()
        started = time.process_time()
        layout.write_copy_text(out, ((row, line) for line, row in stream))
        return time.process_time() - started, out.size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000])
    args = parser.parse_args(argv)
    for rows in args.rows:
        seconds, size = measure(rows)
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        per_row = seconds / rows * 1e6
        print(f"{rows} rows: {seconds:.2f} s CPU, {per_row:.1f} µs/row, COPY text {size / 1e6:.0f} MB (load {load})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
