"""Staff roles: two Django groups, declared here and brought in line after every `migrate`.

- *ops*: day-to-day triage (the DLQ, uploads, jobs and schedules, alerts, possible duplicates), and leads with
  their personal data masked (leads/masking.py: e-mail, phone, a consent record's address and browser, a DLQ
  row's raw payload), each shown on demand against a reason that goes on the access record.
- *admin*: every permission, nothing masked. Superusers count as admin.

A staff user in neither group, and not a superuser, may do nothing and sees personal data masked.

The groups are created by a data migration (leads 0010); their permissions are kept equal to the declaration
below by `staff_roles_sync` (post_migrate), because a model's permissions only exist once post_migrate has run
for its app, after every migration. Permissions are named by app label and model name, never imported: this
bottom layer names the apps above it only as text.
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS

OPS = "ops"
ADMIN = "admin"
ROLES = (OPS, ADMIN)

# (app label, model name) -> the actions ops may take on it.
OPS_PERMISSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("pipeline", "pipelinedlq"): ("view", "change"),  # triage: reprocess, correct, discard
    ("pipeline", "upload"): ("view", "change"),  # "Upload a CSV" needs change
    ("pipeline", "ingestreplayguard"): ("view",),
    ("pipeline", "possibleduplicate"): ("view", "change"),  # merge or keep apart
    ("pipeline", "alert"): ("view", "change"),
    ("pipeline", "jobheartbeat"): ("view", "change"),  # "run now"
    ("pipeline", "feederrun"): ("view",),
    ("pipeline", "businessholiday"): ("view", "add", "change", "delete"),  # the feeder's calendar
    ("pipeline", "webhookdelivery"): ("view",),
    ("django_q", "schedule"): ("view", "add", "change", "delete"),  # pause or move a schedule
    ("django_q", "task"): ("view",),
    ("django_q", "success"): ("view",),
    ("django_q", "failure"): ("view",),
    ("django_q", "ormq"): ("view",),
    ("leads", "lead"): ("view", "change"),  # masked; a change never touches the masked fields
    ("leads", "leadconsentaudit"): ("view",),
    ("leads", "consenttoken"): ("view",),
    ("leads", "verificationcodemap"): ("view",),
    ("leads", "leadaccessrecord"): ("view",),
    ("leads", "scoremodelversion"): ("view",),  # switching the score in use is for admins
    ("equity_connect", "pipelineevent"): ("view",),
    ("security", "broker"): ("view",),
}


def user_is_admin(user) -> bool:
    """Superusers and members of *admin*: every permission, personal data unmasked. Cached on the user object."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active or not user.is_staff:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_ec_is_admin", None)
    if cached is None:
        cached = user.groups.filter(name=ADMIN).exists()
        user._ec_is_admin = cached
    return cached


def staff_roles_sync(using: str = DEFAULT_DB_ALIAS, apps=global_apps, **kwargs) -> None:
    """Create both groups if missing and set their permissions to the declaration (post_migrate, idempotent).

    Every app's permissions are created first: this may run before post_migrate has reached the apps above."""
    from django.contrib.auth.management import create_permissions

    try:
        group_model = apps.get_model("auth", "Group")
        permission_model = apps.get_model("auth", "Permission")
    except LookupError:
        return
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using, apps=global_apps)
    everything = permission_model.objects.using(using).all()
    wanted = {(label, f"{do}_{model}") for (label, model), actions in OPS_PERMISSIONS.items() for do in actions}
    ops_permissions = [
        permission
        for permission in everything.select_related("content_type")
        if (permission.content_type.app_label, permission.codename) in wanted
    ]
    for name, permissions in ((OPS, ops_permissions), (ADMIN, list(everything))):
        group, _ = group_model.objects.using(using).get_or_create(name=name)
        group.permissions.set(permissions)
