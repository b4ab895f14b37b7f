"""Staff roles (equity_connect/staff_roles.py): the *ops* and *admin* groups exist after migrate with exactly the
declared permissions, and through the admin (test client) ops reach their screens and nothing else."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from equity_connect.staff_roles import ADMIN, OPS, OPS_PERMISSIONS, staff_roles_sync, user_is_admin
from tests.factories import RoleUserFactory, StaffUserFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]


def codenames(group: Group) -> set[tuple[str, str]]:
    return set(group.permissions.values_list("content_type__app_label", "codename"))


def test_both_groups_exist_with_the_declared_permissions():
    declared = {(app, f"{action}_{model}") for (app, model), actions in OPS_PERMISSIONS.items() for action in actions}
    assert codenames(Group.objects.get(name=OPS)) == declared
    assert Group.objects.get(name=ADMIN).permissions.count() == Permission.objects.count()


def test_the_sync_puts_back_what_someone_changed_by_hand():
    ops = Group.objects.get(name=OPS)
    ops.permissions.add(Permission.objects.get(codename="view_partnerkey"))
    Group.objects.filter(name=ADMIN).delete()
    staff_roles_sync()
    assert ("security", "view_partnerkey") not in codenames(Group.objects.get(name=OPS))
    assert Group.objects.get(name=ADMIN).permissions.count() == Permission.objects.count()


OPS_SCREENS = [
    "admin:pipeline_pipelinedlq_changelist",
    "admin:pipeline_upload_changelist",
    "admin:pipeline_upload_csv",
    "admin:pipeline_possibleduplicate_changelist",
    "admin:pipeline_alert_changelist",
    "admin:pipeline_alert_thresholds",
    "admin:pipeline_jobheartbeat_changelist",
    "admin:django_q_schedule_changelist",
    "admin:django_q_schedule_add",
    "admin:django_q_failure_changelist",
    "admin:leads_lead_changelist",
    "admin:leads_leadaccessrecord_changelist",
    "admin:equity_connect_pipelineevent_changelist",
]
ADMIN_ONLY_SCREENS = [
    "admin:security_partnerkey_changelist",
    "admin:security_partner_changelist",
    "admin:auth_user_changelist",
    "admin:auth_group_changelist",
    "admin:pipeline_leadstaging_changelist",
    "admin:otp_totp_totpdevice_changelist",
    "admin:leads_lead_add",
]


@pytest.mark.parametrize("screen", OPS_SCREENS)
def test_ops_reach_their_screens(client, screen):
    client.force_login(RoleUserFactory(role="ops"))
    assert client.get(reverse(screen)).status_code == 200


@pytest.mark.parametrize("screen", ADMIN_ONLY_SCREENS)
def test_ops_do_not_reach_the_rest_and_admins_do(client, screen):
    client.force_login(RoleUserFactory(role="ops"))
    assert client.get(reverse(screen)).status_code == 403
    client.force_login(RoleUserFactory(role="admin"))
    assert client.get(reverse(screen)).status_code == 200


def test_staff_in_no_role_reach_nothing(client):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(reverse("admin:pipeline_pipelinedlq_changelist")).status_code == 403


def test_who_counts_as_admin():
    assert user_is_admin(StaffUserFactory())  # superusers count as admin
    assert user_is_admin(RoleUserFactory(role="admin"))
    assert not user_is_admin(RoleUserFactory(role="ops"))
    assert not user_is_admin(UserFactory(is_staff=True))
    assert not user_is_admin(UserFactory())
    inactive = RoleUserFactory(role="admin")
    inactive.is_active = False
    assert not user_is_admin(inactive)
