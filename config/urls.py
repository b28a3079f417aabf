from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import health
from privacy.api import urls as privacy_api_urls
from screening.api import urls as screening_api_urls

#: One ``api`` namespace for /api/v1: the patient API and the privacy API (access log, audit).
api_v1 = ([*screening_api_urls.urlpatterns, *privacy_api_urls.urlpatterns], "api")

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("fhir/", include("clinician_portal.fhir.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", health.liveness, name="healthz"),
    path("readyz", health.readiness, name="readyz"),
    path("portal/", include("clinician_portal.urls")),
    path("admin/", admin.site.urls),
    path("", health.index, name="index"),
]

handler400 = "config.exceptions.handler400"
handler403 = "config.exceptions.handler403"
handler404 = "config.exceptions.handler404"
handler500 = "config.exceptions.handler500"
