"""`/portal/…`: the broker portal's lead screens, in the `portal` namespace that the project URLconf opens.
`/portal/` itself, the broker's dashboard, is drawn from the shared figures module in pipeline/monitoring
and mounted in the same namespace there."""

from django.urls import path

from .views import portal, portal_account, portal_workday

urlpatterns = [
    path("leads/", portal.lead_list, name="lead_list"),
    path("leads/export.csv", portal.lead_export, name="lead_export"),
    path("leads/<uuid:lead_id>/", portal.lead_detail, name="lead_detail"),
    path("leads/<uuid:lead_id>/queue", portal.lead_queue, name="lead_queue"),
    path("leads/<uuid:lead_id>/do-not-contact", portal.lead_do_not_contact, name="lead_do_not_contact"),
    path("leads/<uuid:lead_id>/outcome", portal.lead_outcome, name="lead_outcome"),
    path("leads/<uuid:lead_id>/consent-link", portal.lead_consent_link, name="lead_consent_link"),
    # A broker's working day (leads/views/portal_workday.py).
    path("leads/<uuid:lead_id>/follow-ups", portal_workday.follow_up_add, name="follow_up_add"),
    path("follow-ups/<int:follow_up_id>/done", portal_workday.follow_up_done, name="follow_up_done"),
    path("leads/bulk", portal_workday.lead_bulk, name="lead_bulk"),
    path("views/", portal_workday.saved_view_save, name="saved_view_save"),
    path("views/<int:view_id>/default", portal_workday.saved_view_default, name="saved_view_default"),
    path("views/<int:view_id>/delete", portal_workday.saved_view_delete, name="saved_view_delete"),
    path("my-day/", portal_workday.my_day, name="my_day"),
    path("leads/<uuid:lead_id>/contact", portal.lead_contact_edit, name="lead_contact_edit"),
    path("leads/columns", portal_account.list_columns, name="list_columns"),
    path("notifications/", portal_account.notifications, name="notifications"),
    path("settings/", portal_account.portal_settings, name="settings"),
]
