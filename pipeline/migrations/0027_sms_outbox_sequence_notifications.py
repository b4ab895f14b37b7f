"""The SMS outbox and sequence (pipeline/sms/outbox.py, sequence.py), SMS body retention, and a text reply on
the brokers' notifications.

- `send_state`, `idempotency_key`, `sending_at`, `sent_at`: the outbox's columns; `step` and the `followup` kind:
  the sequence; `body_erased_at`: the retention job emptied the body (SMS_BODY_RETENTION_DAYS).
- The texts already sent get the state their status says (RunSQL below).
- The notification trigger (leads 0021, re-created on the partitions by 0023) also files `sms_replied`.
"""

from django.db import migrations, models

# Why: rows written before the outbox existed have a Twilio status only; give each the outbox state it implies
# (an old `pending` row never got an answer, and `uncertain` timed out: both are unknown, never sent again).
# Back: the columns go with the fields' own reverse.
BACKFILL = """
UPDATE sms_messages SET send_state = CASE
    WHEN twilio_sid IS NOT NULL THEN 'sent'
    WHEN status = 'not_sent' THEN 'not_sent'
    WHEN status = 'failed' THEN 'refused'
    ELSE 'unknown' END,
  sent_at = CASE WHEN twilio_sid IS NOT NULL THEN created_at END
WHERE direction = 'outbound';
"""

# Why: a text reply notifies the broker as an e-mail reply does (leads/notifications.py NOTIFIED_EVENTS says the
# same; a test compares them with the live trigger). The function is leads 0021's, unchanged.
TRIGGER = """
DROP TRIGGER IF EXISTS trg_broker_notification_add ON pipeline_events;
CREATE TRIGGER trg_broker_notification_add AFTER INSERT ON pipeline_events FOR EACH ROW
  WHEN (NEW.event_type IN ('email_replied', 'sms_replied', 'appointment_booked', 'consent_given')
        AND NEW.status = 'success' AND NEW.broker_id IS NOT NULL AND NEW.lead_id IS NOT NULL)
  EXECUTE FUNCTION broker_notification_add();
"""
# Back: 0023's trigger, without `sms_replied`.
TRIGGER_BEFORE = """
DROP TRIGGER IF EXISTS trg_broker_notification_add ON pipeline_events;
CREATE TRIGGER trg_broker_notification_add AFTER INSERT ON pipeline_events FOR EACH ROW
  WHEN (NEW.event_type IN ('email_replied', 'appointment_booked', 'consent_given')
        AND NEW.status = 'success' AND NEW.broker_id IS NOT NULL AND NEW.lead_id IS NOT NULL)
  EXECUTE FUNCTION broker_notification_add();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0023_sms_opt_out_reason"),
        ("pipeline", "0026_events_append_only"),
    ]

    operations = [
        migrations.AddField(
            model_name="smsmessage",
            name="body_erased_at",
            field=models.DateTimeField(blank=True, help_text="SMS_BODY_RETENTION_DAYS emptied it", null=True),
        ),
        migrations.AddField(
            model_name="smsmessage",
            name="idempotency_key",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True, unique=True),
        ),
        migrations.AddField(
            model_name="smsmessage",
            name="send_state",
            field=models.CharField(
                blank=True,
                choices=[
                    ("queued", "queued: committed, Twilio not asked yet"),
                    ("sending", "sending: Twilio asked, its answer not recorded yet"),
                    ("sent", "sent: Twilio accepted it (sid recorded)"),
                    ("refused", "refused by Twilio (final)"),
                    ("not_sent", "not sent (offered again)"),
                    ("unknown", "unknown: Twilio may have sent it; ops decide"),
                ],
                db_default="",
                default="",
                help_text="outbound only",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="smsmessage",
            name="sending_at",
            field=models.DateTimeField(blank=True, help_text="when Twilio was asked (the database clock)", null=True),
        ),
        migrations.AddField(
            model_name="smsmessage",
            name="sent_at",
            field=models.DateTimeField(blank=True, help_text="when Twilio accepted it (the run's clock)", null=True),
        ),
        migrations.AddField(
            model_name="smsmessage",
            name="step",
            field=models.PositiveSmallIntegerField(
                db_default=0, default=0, help_text="0: the first text; n: SMS_SEQUENCE[n-1]"
            ),
        ),
        migrations.AlterField(
            model_name="smsmessage",
            name="business_date",
            field=models.DateField(blank=True, help_text="Los Angeles date of an outbound text", null=True),
        ),
        migrations.AlterField(
            model_name="smsmessage",
            name="kind",
            field=models.CharField(
                choices=[
                    ("first", "first message (the feed)"),
                    ("followup", "follow-up (SMS_SEQUENCE)"),
                    ("reply", "reply"),
                    ("opt_out", "opt-out word (STOP …)"),
                    ("opt_in", "opt-in word (START …)"),
                ],
                max_length=8,
            ),
        ),
        migrations.AddIndex(
            model_name="smsmessage",
            index=models.Index(
                condition=models.Q(("send_state__in", ["queued", "sending", "unknown"])),
                fields=["send_state"],
                name="sms_messages_outbox_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="smsmessage",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "followup"), models.Q(("status", "not_sent"), _negated=True)),
                fields=("lead", "step"),
                name="sms_messages_one_per_step",
            ),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RunSQL(TRIGGER, TRIGGER_BEFORE),
    ]
