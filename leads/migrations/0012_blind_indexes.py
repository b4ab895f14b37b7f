"""Keyed blind indexes of each lead's e-mail, e-mail domain, phone and phone's last four digits (security/pii.py),
for exact lookups once e-mail and phone are encrypted: suppression checks, webhooks, privacy requests, portal
search. The database holds no key, so the existing rows are indexed here in Python, in batches; rows the seed's
`upsert_lead()` writes later are indexed by the sweep (leads/contact_indexes.py). Only e-mail and phone get a
b-tree: the domain and last-four lookups are joins over a few entries or scans of one broker's leads."""

from django.db import migrations, models


def index_existing(apps, schema_editor):
    from leads.contact_indexes import contact_indexes_fill

    contact_indexes_fill(using_connection=schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0011_contact_windows"),
        ("security", "0003_partner_key_policies"),
    ]

    operations = [
        migrations.AddField(
            model_name="lead",
            name="email_bidx",
            field=models.CharField(blank=True, editable=False, max_length=40, null=True),
        ),
        migrations.AddField(
            model_name="lead",
            name="email_domain_bidx",
            field=models.CharField(blank=True, editable=False, max_length=40, null=True),
        ),
        migrations.AddField(
            model_name="lead",
            name="phone_bidx",
            field=models.CharField(blank=True, editable=False, max_length=40, null=True),
        ),
        migrations.AddField(
            model_name="lead",
            name="phone_last4_bidx",
            field=models.CharField(blank=True, editable=False, max_length=40, null=True),
        ),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(
                condition=models.Q(("email_bidx__isnull", False)), fields=["email_bidx"], name="leads_email_bidx_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(
                condition=models.Q(("phone_bidx__isnull", False)), fields=["phone_bidx"], name="leads_phone_bidx_idx"
            ),
        ),
        # Reversing drops the columns: nothing to undo.
        migrations.RunPython(index_existing, migrations.RunPython.noop),
    ]
