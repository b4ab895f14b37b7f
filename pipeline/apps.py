import logging

from django.apps import AppConfig
from django.db.models.signals import post_migrate

logger = logging.getLogger(__name__)


class PipelineConfig(AppConfig):
    name = "pipeline"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: they import models, which are not loaded before ready().
        from django_q.signals import post_spawn

        from .ingest.privileges import pipeline_writer_privileges_grant
        from .schedules import schedules_sync_on_migrate

        # Schedules are declared in code and upserted by name after every migrate (never wiped).
        post_migrate.connect(schedules_sync_on_migrate, sender=self, dispatch_uid="pipeline.schedules")
        # pipeline_writer may update exactly the columns the ingestion writes (listed in code, re-applied).
        post_migrate.connect(pipeline_writer_privileges_grant, sender=self, dispatch_uid="pipeline.privileges")
        # A cluster that just started is alive before its first scheduled task runs (/healthz reads this).
        post_spawn.connect(_heartbeat_on_spawn, dispatch_uid="pipeline.heartbeat_on_spawn")


def _heartbeat_on_spawn(sender=None, proc_name=None, **kwargs) -> None:
    from django.conf import settings

    from .ingest.sweeper import uploads_sweep  # models: loaded by the time a worker spawns
    from .jobs import scheduler_heartbeat

    try:
        scheduler_heartbeat()
        # A cluster that starts after a crash picks up at once what the crash left (not a minute later).
        uploads_sweep(idle_seconds=settings.UPLOAD_SWEEP_START_IDLE_SECONDS)
    except Exception:  # neither may keep a worker from starting
        logger.exception("could not record the scheduler heartbeat or sweep the uploads at spawn")
