"""The frames protocol between the worker and a normaliser child process (pipeline/ingest/normaliser.py).

Binary, on the pipes:
- stdin: one line of JSON, the job (`sources.StageJob` as a dict: which file, and which share of its rows
  this process normalises); then nothing.
- stdout: frames, each a kind byte, a 4-byte big-endian length and the payload:
  `D` COPY text (UTF-8) for the current batch; `B` JSON `{"rows", "rejected", "position", "done",
  "blank_lines"}` ends a batch (the worker commits it); `E` JSON `{"message"}`: the file is unreadable
  (the worker fails the upload with that message); `Z` JSON `{"peak_rss_kb"}`: finished.
"""

from __future__ import annotations

import struct

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
    """What `StagingLayout.write_copy_text` writes to in a child process: each block becomes one `D` frame."""

    def __init__(self, out):
        self.out = out

    def write(self, text: str) -> None:
        write_frame(self.out, DATA, text.encode())
