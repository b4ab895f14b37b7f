"""Reads of an upload: its status and rejected rows as partners see them (docs/api.md), and what the uploads admin
shows of a run (the progress bar's status, the steps with their durations)."""

from __future__ import annotations

import csv
import io
import tempfile
from typing import BinaryIO

from django.conf import settings
from django.utils import timezone

from equity_connect.humanise import duration_ms, number, percent
from equity_connect.models import PipelineEvent
from equity_connect.spreadsheets import spreadsheet_safe
from pipeline.models import DLQSource, DLQStatus, Upload, UploadStatus

UNFINISHED = (UploadStatus.RECEIVED, UploadStatus.PROCESSING)
# The apply's steps (pipeline/ingest/apply.py timings), in the order they run.
APPLY_STEPS = (
    ("dlq_ms", "Rejected rows to the DLQ"),
    ("dedupe_ms", "Duplicates inside the file"),
    ("match_ms", "Match against existing leads"),
    ("update_ms", "Merge into existing leads"),
    ("insert_ms", "Insert new leads"),
    ("search_ms", "Search rows of the new leads"),
    ("suppress_ms", "Suppression list"),
)


def upload_status_payload(upload: Upload, request=None) -> dict:
    """`GET /api/v1/uploads/<id>`'s body: status, counts, progress, times, a sample of DLQ ids."""
    sample = list(upload.dlq_rows.order_by("id").values_list("id", flat=True)[:10])
    path = f"/api/v1/uploads/{upload.id}"
    return {
        "upload_id": str(upload.id),
        "status": upload.status,
        "rows_total": upload.rows_total,
        "leads_created": upload.leads_created,
        "leads_merged": upload.leads_merged,
        "duplicates_in_file": upload.duplicates_in_file,
        "rows_rejected": upload.rows_rejected,
        "rows_recovered": upload.rows_recovered,
        "possible_duplicates": upload.possible_duplicates,
        "blank_lines": upload.blank_lines,
        "unrecognised_columns": upload.unrecognised_columns,
        "dlq_ids_sample": sample,
        "progress": upload.progress,
        "started_at": upload.started_at.isoformat() if upload.started_at else None,
        "finished_at": upload.finished_at.isoformat() if upload.finished_at else None,
        "status_url": request.build_absolute_uri(path) if request is not None else path,
        "rejections_url": request.build_absolute_uri(f"{path}/rejections")
        if request is not None
        else f"{path}/rejections",
        "error": upload.error_message or None,
    }


REJECTION_COLUMNS = ("line_number", "reason")


def upload_rejections_csv(upload: Upload) -> BinaryIO:
    """The upload's rejected rows as CSV, in line order: the line number, the reason, then the row as sent
    (its columns in the file's order; cells a spreadsheet would run as formulas are quoted). A row that was
    fixed and reprocessed since is no longer rejected, so it is not listed. Spooled to disk past
    INGEST_SPOOL_BYTES; read it from the start."""
    rows = (
        upload.dlq_rows.filter(source=DLQSource.UPLOAD_ROW)
        .exclude(status=DLQStatus.RESOLVED)
        .order_by("line_number", "id")
        .values_list("line_number", "reason", "payload")
    )
    headers: dict[str, None] = dict.fromkeys(upload.columns)  # the file's order (jsonb keeps its own)
    extras = False
    for _, _, payload in rows.iterator(chunk_size=2000):
        headers.update(dict.fromkeys(key for key in (payload or {}) if key != "_extra_values"))
        extras = extras or bool((payload or {}).get("_extra_values"))
    spool = tempfile.SpooledTemporaryFile(max_size=settings.INGEST_SPOOL_BYTES)  # noqa: SIM115 (returned)
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow([*REJECTION_COLUMNS, *headers, *(["_extra_values"] if extras else [])])
    for line_number, reason, payload in rows.iterator(chunk_size=2000):
        payload = payload or {}
        cells = [line_number, reason, *(payload.get(key) for key in headers)]
        if extras:  # cells past the header's width, as sent
            cells.append(" | ".join(map(str, payload.get("_extra_values") or [])))
        writer.writerow([spreadsheet_safe(cell) for cell in cells])
    text.detach()
    spool.seek(0)
    return spool


# --- the uploads admin ---------------------------------------------------------------------------------------------


def upload_progress_status(upload: Upload) -> dict:
    """What the progress bar shows (the admin's `<id>/status/`)."""
    return {
        "status": upload.status,
        "running": upload.status in UNFINISHED,
        "progress": upload.progress,
        "percent": round(upload.progress * 100, 1),
        "label": f"{upload.status} · {percent(upload.progress)}",
        "counts": {
            name: number(getattr(upload, name))
            for name in (
                "rows_total",
                "leads_created",
                "leads_merged",
                "duplicates_in_file",
                "rows_rejected",
                "rows_recovered",
                "possible_duplicates",
            )
        },
        "error": upload.error_message,
        "duration": duration_ms(_elapsed_ms(upload)),
    }


def _elapsed_ms(upload: Upload) -> int | None:
    if upload.started_at is None:
        return None
    end = upload.finished_at or timezone.now()
    return int((end - upload.started_at).total_seconds() * 1000)


def upload_steps(upload: Upload) -> list[dict]:
    """The steps of the upload's last run with their durations (from its events; a running step says so)."""
    steps = []
    created = upload.created_at
    if upload.started_at:
        waited = int((upload.started_at - created).total_seconds() * 1000)
        steps.append({"name": "Waiting for a worker", "duration": duration_ms(max(waited, 0)), "state": "done"})
    else:
        steps.append({"name": "Waiting for a worker", "duration": "—", "state": "running"})
        return steps
    done = (
        PipelineEvent.objects.filter(
            upload_id=upload.pk, event_type="dedupe_success", created_at__gte=upload.started_at
        )
        .order_by("-created_at")
        .values_list("event_data", "duration_ms")
        .first()
    )
    if done is None:
        state = "running" if upload.status in UNFINISHED else "stopped"
        steps.append(
            {"name": "Read, normalise and stage the file", "duration": percent(upload.progress), "state": state}
        )
        steps.append({"name": "Apply (dedupe, merge, insert)", "duration": "—", "state": "waiting"})
        return steps
    data, total = done
    timings = (data or {}).get("timings") or {}
    steps.append({"name": "Read, normalise and stage the file", "duration": duration_ms(timings.get("staging_ms"))})
    for key, name in APPLY_STEPS:
        if key in timings:
            steps.append({"name": name, "duration": duration_ms(timings[key])})
    steps.append({"name": "Total", "duration": duration_ms(total), "total": True})
    return steps
