"""Row sources for staging: the same batches of COPY text, produced in this process or by child processes.

Both have one interface: `copy_batch(copy) -> Batch` writes the next `batch_rows` rows of the file to
`copy` (anything with `.write(text)`), `batch_committed()` after the caller's commit, `peak_rss_kb`, and
they are context managers. pipeline/ingest/staging.py picks one by the file's size and drives it.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings

from security.pii import CodecKeys, codec_for

from . import frames
from .reading import BlankLines, FileUnreadable, records
from .rows import StagingLayout, Territory


@dataclass
class StageJob:
    """Everything staging one file needs, as plain data (it crosses into the normaliser process)."""

    path: str
    encoding: str
    has_nul: bool
    upload_id: str
    broker_id: str | None
    by_prefix: dict[str, str]
    by_state: dict[str, str]
    email_codes: list[str]
    phone_codes: list[str]
    batch_rows: int
    pii_keys: dict  # security/pii.py CodecKeys.to_plain(): the blind indexes are computed here
    # Normalise only the rows whose index in the file is `part` modulo `parts` (several normaliser
    # processes share a file; each parses all of it, so all agree on line numbers and batches).
    part: int = 0
    parts: int = 1


@dataclass
class Batch:
    rows: int
    rejected: int
    position: int  # bytes of the file read so far
    done: bool
    blank_lines: int = 0  # blank lines read so far (not data)


class InProcessSource:
    """Reads, parses and normalises the file in this process; `copy_batch` writes one batch of COPY text."""

    peak_rss_kb = 0  # no normaliser process
    # The COPY's socket writes can go to psycopg's writer thread while this thread normalises the next
    # block (pipeline/ingest/staging.py): the Python work is in this process.
    overlap_writes = True

    def __init__(self, job: StageJob):
        self.binary = open(job.path, "rb")  # noqa: SIM115 (closed by __exit__)
        self.wrapper = io.TextIOWrapper(self.binary, encoding=job.encoding, newline="")
        self.batch_rows = job.batch_rows
        text_stream: Iterable[str] = self.wrapper
        if job.has_nul:  # PostgreSQL text cannot hold NUL
            text_stream = (line.replace("\x00", "") for line in self.wrapper)
        self.blank = BlankLines()
        stream = records(text_stream, self.blank)
        self.pairs = None
        try:
            _, headers = next(stream)
        except StopIteration:
            return  # no header: nothing to stage
        except csv.Error as error:
            self.close()
            raise FileUnreadable(f"the header line is not valid CSV: {error}") from error
        self.layout = StagingLayout(
            headers,
            upload_id=job.upload_id,
            broker_id=job.broker_id,
            territory=Territory(by_prefix=job.by_prefix, by_state=job.by_state),
            email_codes=frozenset(job.email_codes),
            phone_codes=frozenset(job.phone_codes),
            codec=codec_for(CodecKeys.from_plain(job.pii_keys)),
        )
        self.pairs = enumerate((row, line) for line, row in stream)
        self.part, self.parts = job.part, job.parts
        self.rows = 0  # rows of the file read so far (every part's)

    def _share(self) -> Iterator[tuple[list[str], int]]:
        """This part's rows of the next batch (the next `batch_rows` rows of the file)."""
        part, parts = self.part, self.parts
        for index, pair in itertools.islice(self.pairs, self.batch_rows):
            self.rows += 1
            if parts == 1 or index % parts == part:
                yield pair

    def copy_batch(self, copy) -> Batch:
        if self.pairs is None:
            return Batch(0, 0, self.binary.tell(), True, self.blank.count)
        before = self.rows
        try:
            count, rejected = self.layout.write_copy_text(copy, self._share())
        except csv.Error as error:
            raise FileUnreadable(f"the file is not valid CSV after data row {self.rows}: {error}") from error
        return Batch(count, rejected, self.binary.tell(), self.rows - before < self.batch_rows, self.blank.count)

    def batch_committed(self) -> None:
        pass  # nothing waits on the commit here

    def close(self) -> None:
        self.wrapper.detach()
        self.binary.close()

    def __enter__(self) -> InProcessSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SubprocessSource:
    """The same batches, normalised by `INGEST_NORMALISER_PROCESSES` child processes
    (`python -m pipeline.ingest.normaliser`, pipeline/ingest/normaliser.py), each taking every n-th row,
    while this process only passes their COPY text on to PostgreSQL. The Python work, the larger half of
    staging, then runs beside PostgreSQL's instead of before it, and is itself split.

    One reader thread per child moves its frames to a queue; after a child's end-of-batch frame its
    thread waits until the batch is committed, so one transaction holds exactly one batch of rows."""

    command = (sys.executable, "-m", "pipeline.ingest.normaliser")

    overlap_writes = False  # the Python work runs in the children

    def __init__(self, job: StageJob, processes: int):
        self.queue: queue.Queue = queue.Queue(maxsize=64)
        self.processes, self.threads, self.resume = [], [], []
        self.peak_rss_kb = 0
        try:
            self._start(job, processes)
        except BaseException:
            self.__exit__(*sys.exc_info())  # stop the ones already started
            raise

    def _start(self, job: StageJob, processes: int) -> None:
        for part in range(processes):
            process = subprocess.Popen(  # noqa: S603 (our own interpreter and module, no input in the command)
                self.command, cwd=settings.BASE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            self.processes.append(process)
            share = {**job.__dict__, "part": part, "parts": processes}
            process.stdin.write(json.dumps(share).encode() + b"\n")
            process.stdin.close()
            resume = threading.Event()
            thread = threading.Thread(target=self._read, args=(part, process, resume), daemon=True)
            self.resume.append(resume)
            self.threads.append(thread)
            thread.start()

    def _read(self, part: int, process: subprocess.Popen, resume: threading.Event) -> None:
        while True:
            kind, payload = frames.read_frame(process.stdout)
            self.queue.put((part, kind, payload))
            if kind == frames.BATCH:
                resume.wait()
                resume.clear()
            elif kind != frames.DATA:
                return  # DONE, ERROR or the end of the stream

    def copy_batch(self, copy) -> Batch:
        """Write the children's COPY text of the next batch to `copy`, until each has ended its batch."""
        waiting = set(range(len(self.processes)))
        rows = rejected = position = blank = 0
        done = True
        while waiting:
            part, kind, payload = self.queue.get()
            if kind == frames.DATA:
                copy.write(payload)
            elif kind == frames.BATCH:
                batch = json.loads(payload)
                rows += batch["rows"]
                rejected += batch["rejected"]
                position = max(position, batch["position"])
                blank = max(blank, batch["blank_lines"])  # every child reads the whole file
                done = done and batch["done"]
                waiting.discard(part)
            elif kind == frames.DONE:
                self.peak_rss_kb += json.loads(payload)["peak_rss_kb"]
            elif kind == frames.ERROR:
                raise FileUnreadable(json.loads(payload)["message"])
            else:
                code = self.processes[part].wait()
                raise RuntimeError(f"a normaliser process ended unexpectedly (exit code {code})")
        return Batch(rows, rejected, position, done, blank)

    def batch_committed(self) -> None:
        for resume in self.resume:
            resume.set()

    def __enter__(self) -> SubprocessSource:
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            if exc[0] is not None and process.poll() is None:
                process.kill()
        self.batch_committed()  # let every reader thread run to the end of its stream
        deadline = time.monotonic() + 30
        while True:  # drain the queue (the children's last frames: their peak memory) until the threads end
            try:
                _, kind, payload = self.queue.get(timeout=0.05)
            except queue.Empty:
                if not any(thread.is_alive() for thread in self.threads) or time.monotonic() > deadline:
                    break
                continue
            if kind == frames.DONE:
                self.peak_rss_kb += json.loads(payload)["peak_rss_kb"]
        for process in self.processes:
            process.stdout.close()
            process.wait()
