from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from .schedules import schedules_sync_on_migrate

        # Schedules are declared in code and upserted by name after every migrate (never wiped).
        post_migrate.connect(schedules_sync_on_migrate, sender=self, dispatch_uid="pipeline.schedules")
