from django.urls import path, re_path

from clinician_portal.fhir import views

app_name = "fhir"

_TYPE = r"(?P<resource_type>[A-Z][A-Za-z]+)"
_ID = r"(?P<resource_id>[A-Za-z0-9\-\.]{1,64})"

urlpatterns = [
    path("metadata", views.metadata, name="metadata"),
    path("auth/token", views.token, name="token"),
    path("$export", views.export_system, name="export"),
    path("Patient/$export", views.export_patient, name="export-patient"),
    re_path(r"^Group/(?P<group_id>[0-9]{1,12})/\$export$", views.export_group, name="export-group"),
    re_path(
        r"^\$export-status/(?P<job_id>[0-9a-f\-]{36})$", views.export_status, name="export-status"
    ),
    re_path(
        r"^\$export-file/(?P<job_id>[0-9a-f\-]{36})/(?P<name>[A-Za-z]+\.ndjson)$",
        views.export_file,
        name="export-file",
    ),
    re_path(rf"^{_TYPE}/_search$", views.search_post, name="search-post"),
    re_path(rf"^{_TYPE}$", views.search, name="search"),
    re_path(rf"^{_TYPE}/{_ID}$", views.read, name="read"),
    re_path(r"^(?P<rest>.*)$", views.not_found, name="not-found"),
]
