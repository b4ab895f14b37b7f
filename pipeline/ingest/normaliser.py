"""The normaliser process: `python -m pipeline.ingest.normaliser`, started by `sources.SubprocessSource` for
large files, so that the Python work (CSV parsing, normalisers, COPY text) runs on its own core while the
worker feeds PostgreSQL's COPY on the other, without sharing one interpreter lock. It speaks the frames
protocol of pipeline/ingest/frames.py.

It opens no database connection and reads nothing but the file it is given (it imports no database
module, which keeps its start-up near 0.1 s). When the worker dies, the next write fails and this process
exits.
"""

from __future__ import annotations

import json
import resource
import sys

from .frames import BATCH, DONE, ERROR, FrameWriter, write_frame
from .reading import FileUnreadable
from .sources import InProcessSource, StageJob


def run(job: dict, out) -> None:
    def send(kind: bytes, value: dict) -> None:
        write_frame(out, kind, json.dumps(value).encode())

    try:
        source = InProcessSource(StageJob(**job))  # this process's share of the rows
    except FileUnreadable as error:
        send(ERROR, {"message": str(error)})
        return
    writer = FrameWriter(out)
    with source:
        done = False
        while not done:
            try:
                batch = source.copy_batch(writer)
            except FileUnreadable as error:
                send(ERROR, {"message": str(error)})
                return
            done = batch.done
            send(BATCH, {**batch.__dict__, "done": done})
    send(DONE, {"peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})


def main() -> int:
    job = json.loads(sys.stdin.readline())
    sys.stdin.close()
    out = sys.stdout.buffer
    try:
        run(job, out)
        out.flush()
    except BrokenPipeError:  # the worker is gone: nobody is left to tell
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
