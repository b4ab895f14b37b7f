"""The normaliser process: `python -m pipeline.ingest.normaliser`, started by `stage.stage_file` for large
files so that the Python work (CSV parsing, normalisers, COPY text) runs on one core while the worker
feeds PostgreSQL's COPY on the other, without sharing one interpreter lock.

Protocol (binary, on the pipes):
- stdin: one line of JSON, the job (`stage.StageJob` as a dict: which file, and which share of its rows
  this process normalises); then nothing.
- stdout: frames, each a kind byte, a 4-byte big-endian length and the payload:
  `D` COPY text (UTF-8) for the current batch; `B` JSON `{"rows", "rejected", "position", "done"}`
  ends a batch (the worker commits it); `E` JSON `{"message"}`: the file is unreadable (the worker
  fails the upload with that message); `Z` JSON `{"peak_rss_kb"}`: finished.

It opens no database connection and reads nothing but the file it is given. When the worker dies, the
next write fails and this process exits.
"""

from __future__ import annotations

import json
import resource
import struct
import sys

HEADER = struct.Struct(">cI")
DATA, BATCH, ERROR, DONE = b"D", b"B", b"E", b"Z"


def write_frame(out, kind: bytes, payload: bytes) -> None:
    out.write(HEADER.pack(kind, len(payload)))
    out.write(payload)


def read_frame(stream) -> tuple[bytes, bytes]:
    """(kind, payload); (b"", b"") at the end of the stream."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return b"", b""
    kind, size = HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return b"", b""
    return kind, payload


class FrameWriter:
    """What `StagingLayout._copy` writes COPY text to: each block becomes one `D` frame."""

    def __init__(self, out):
        self.out = out

    def write(self, text: str) -> None:
        write_frame(self.out, DATA, text.encode())


def run(job: dict, out) -> None:
    from . import stage

    def send(kind: bytes, value: dict) -> None:
        write_frame(out, kind, json.dumps(value).encode())

    try:
        source = stage.InProcessSource(stage.StageJob(**job))  # this process's share of the rows
    except stage.FileUnreadable as error:
        send(ERROR, {"message": str(error)})
        return
    writer = FrameWriter(out)
    with source:
        done = False
        while not done:
            try:
                batch = source.copy_batch(writer)
            except stage.FileUnreadable as error:
                send(ERROR, {"message": str(error)})
                return
            done = batch.done
            send(BATCH, {"rows": batch.rows, "rejected": batch.rejected, "position": batch.position, "done": done})
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
