from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from .schedules import schedules_sync_on_migrate

        # Schedules are declared in code and upserted by name after every migrate (never wiped).
        post_migrate.connect(schedules_sync_on_migrate, sender=self, dispatch_uid="pipeline.schedules")

        from django_q.signals import post_spawn

        # A cluster that just started is alive before its first scheduled task runs (/healthz reads this).
        post_spawn.connect(_heartbeat_on_spawn, dispatch_uid="pipeline.heartbeat_on_spawn")


def _heartbeat_on_spawn(sender=None, proc_name=None, **kwargs) -> None:
    import logging

    from .jobs import scheduler_heartbeat

    try:
        scheduler_heartbeat()
    except Exception:  # a heartbeat must never keep a worker from starting
        logging.getLogger(__name__).exception("could not record the scheduler heartbeat at spawn")
