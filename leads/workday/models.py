"""Follow-up tasks (`lead_follow_ups`) and saved list views (`portal_saved_views`). Imported by leads/models.py, so
Django sees them as the leads app's models. Both are a broker's own rows: row-level security (migration 0018)
lets a broker read and write only rows naming themselves, and a follow-up only on a lead assigned to them."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class FollowUp(models.Model):
    """Something a broker means to do about a lead by `due_date` (the broker's own calendar day). Done when
    `done_at` is set; kept afterwards, so the timeline and the list of done tasks stay true."""

    id = models.BigAutoField(primary_key=True)
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="follow_ups")
    broker = models.ForeignKey("security.Broker", on_delete=models.CASCADE, related_name="follow_ups")
    due_date = models.DateField()
    note = models.TextField(blank=True, default="", db_default="")
    created_at = models.DateTimeField(default=timezone.now, db_default=Now(), editable=False)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "lead_follow_ups"
        ordering = ["due_date", "id"]
        indexes = [
            # My day: a broker's open follow-ups by due date.
            models.Index(
                fields=["broker", "due_date"],
                name="lead_follow_ups_open_idx",
                condition=models.Q(done_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"Follow up {self.lead_id} by {self.due_date}"

    @property
    def is_done(self) -> bool:
        return self.done_at is not None


class SavedView(models.Model):
    """A broker's named list view: the list's query string (filters, search, sort, page size) as it was saved.
    At most one per broker is the default, opened when they land on the list without parameters."""

    id = models.BigAutoField(primary_key=True)
    broker = models.ForeignKey("security.Broker", on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=80)
    query = models.TextField(blank=True, default="", db_default="", help_text="The list's query string")
    is_default = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now(), editable=False)

    class Meta:
        db_table = "portal_saved_views"
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["broker", "name"], name="portal_saved_views_name_uniq"),
            models.UniqueConstraint(
                fields=["broker"], condition=models.Q(is_default=True), name="portal_saved_views_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name
