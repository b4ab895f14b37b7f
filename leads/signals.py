"""Signal receivers of the leads app (connected in LeadsConfig.ready)."""

from .contact_indexes import lead_contact_indexes_set
from .services import login_lockout_record


def lead_contact_indexes(sender, instance, **kwargs):
    """Every ORM save of a lead keeps its blind indexes with its e-mail and phone."""
    lead_contact_indexes_set(instance)


def record_lockout(sender, request=None, username=None, ip_address=None, **kwargs):
    """django-axes locked an account: put it on the record staff can see (a `login_locked_out` event)."""
    login_lockout_record(username=username or "", ip_address=ip_address)
