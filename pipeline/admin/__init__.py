"""The pipeline's admin, one module per area: uploads, feeder (jobs and Instantly), ops (DLQ, events,
alerts, heartbeats)."""

from . import feeder, ops, uploads  # noqa: F401
