"""Privacy routes, mounted under ``/api/v1/`` in the ``api`` namespace (see config/urls.py)."""

from django.urls import path

from privacy.api import views

urlpatterns = [
    path("access-log", views.AccessLogView.as_view(), name="access-log"),
    path("audit/events", views.AuditEventListView.as_view(), name="audit-events"),
    path("audit/consents", views.AuditConsentListView.as_view(), name="audit-consents"),
    path("audit/break-glass", views.AuditBreakGlassListView.as_view(), name="audit-break-glass"),
    path(
        "audit/break-glass/<uuid:pk>/reviews",
        views.AuditBreakGlassReviewView.as_view(),
        name="audit-break-glass-review",
    ),
    path("audit/chain", views.AuditChainView.as_view(), name="audit-chain"),
    path("audit/chain/verify", views.AuditChainVerifyView.as_view(), name="audit-chain-verify"),
]
