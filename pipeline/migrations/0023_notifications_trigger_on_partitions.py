"""The brokers' notification trigger (leads 0021) on the partitioned `pipeline_events`.

Why: 0022 rebuilt `pipeline_events` as a partitioned table and dropped the old one, and the row trigger that
files a reply, an appointment or a consent for its broker's notifications went with it. A row trigger on the
partitioned parent is cloned onto every partition, those to come included (PostgreSQL 13+). The function is
leads 0021's, unchanged.
"""

from django.db import migrations

TRIGGER = """
CREATE TRIGGER trg_broker_notification_add AFTER INSERT ON pipeline_events FOR EACH ROW
  WHEN (NEW.event_type IN ('email_replied', 'appointment_booked', 'consent_given')
        AND NEW.status = 'success' AND NEW.broker_id IS NOT NULL AND NEW.lead_id IS NOT NULL)
  EXECUTE FUNCTION broker_notification_add();
"""
# Back: 0022's reverse rebuilds the unpartitioned table without it; leads 0021's reverse drops it IF EXISTS.
DROP = "DROP TRIGGER IF EXISTS trg_broker_notification_add ON pipeline_events;"


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0022_events_partitioned"),
        ("leads", "0021_portal_contact_edit_notifications"),
    ]

    operations = [migrations.RunSQL(TRIGGER, DROP)]
