"""Portal routes, mounted under ``/portal/`` (namespace ``portal``)."""

from django.urls import path

from clinician_portal import views

app_name = "portal"

urlpatterns = [
    path("", views.home_view, name="home"),
    path("login/", views.login_view, name="login"),
    path("login/verify/", views.login_verify_view, name="login-verify"),
    path("logout/", views.logout_view, name="logout"),
    path("alerts/", views.queue_view, name="queue"),
    path("alerts/rows/", views.queue_fragment_view, name="queue-rows"),
    path("alerts/<uuid:alert_id>", views.alert_detail_view, name="alert"),
    path(
        "alerts/<uuid:alert_id>/acknowledge",
        views.alert_acknowledge_view,
        name="alert-acknowledge",
    ),
    path("alerts/<uuid:alert_id>/escalate", views.alert_escalate_view, name="alert-escalate"),
    path("alerts/<uuid:alert_id>/reassign", views.alert_reassign_view, name="alert-reassign"),
    path("alerts/<uuid:alert_id>/resolve", views.alert_resolve_view, name="alert-resolve"),
    path("patients/", views.caseload_view, name="caseload"),
    path("patients/<str:pseudonym>/", views.patient_view, name="patient"),
    path("patients/<str:pseudonym>/break-glass", views.break_glass_view, name="break-glass"),
    path("audit/events/", views.audit_events_view, name="audit-events"),
    path("audit/consents/", views.audit_consents_view, name="audit-consents"),
    path("audit/break-glass/", views.audit_break_glass_view, name="audit-break-glass"),
    path(
        "audit/break-glass/<uuid:access_id>/review",
        views.audit_break_glass_review_view,
        name="audit-break-glass-review",
    ),
    path("audit/chain/", views.audit_chain_view, name="audit-chain"),
]
