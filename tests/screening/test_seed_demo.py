from __future__ import annotations

import io
import json
import stat

from django.core.management import call_command
from rest_framework.test import APIClient

from screening.models import Auditor, Clinician, DiaryEntry, Organisation, Patient


def test_seed_demo_creates_the_demo_clinic_once_and_its_tokens_work(db, tmp_path):
    credentials = tmp_path / "demo.json"
    call_command("seed_demo", "--credentials", str(credentials), stdout=io.StringIO())
    first = json.loads(credentials.read_text())
    counts = (
        Organisation.objects.count(),
        Clinician.objects.count(),
        Auditor.objects.count(),
        Patient.objects.count(),
        DiaryEntry.objects.count(),
    )
    assert counts[:4] == (1, 2, 1, 3)
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600

    out = io.StringIO()
    call_command(
        "seed_demo",
        "--credentials",
        str(credentials),
        "--summary",
        "http://127.0.0.1:8000",
        stdout=out,
    )
    again = json.loads(credentials.read_text())
    assert (
        Organisation.objects.count(),
        Clinician.objects.count(),
        Auditor.objects.count(),
        Patient.objects.count(),
        DiaryEntry.objects.count(),
    ) == counts
    assert again["tokens"] == first["tokens"], "a second run keeps working tokens"
    summary = out.getvalue()
    assert "curl" in summary and "/api/v1/diary-entries" in summary
    assert first["tokens"]["patient_alex"] in summary

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {first['tokens']['patient_alex']}")
    response = client.get("/api/v1/diary-entries")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 4
    assert all(r["text"] and r["text"] != "<encrypted>" for r in response.json()["results"])
    assert set(first["tokens"]) == {"patient_alex", "patient_sam", "patient_jo"}


def test_summary_only_touches_no_data(db, tmp_path, django_assert_num_queries):
    """``make run`` prints the summary after the workers have started scoring the demo data:
    ``--no-seed`` reads the credentials file only, so it cannot meet their write locks."""
    import pytest
    from django.core.management.base import CommandError

    credentials = tmp_path / "demo.json"
    with pytest.raises(CommandError):
        call_command(
            "seed_demo", "--credentials", str(credentials), "--no-seed", "--summary", "http://x"
        )
    call_command("seed_demo", "--credentials", str(credentials), stdout=io.StringIO())
    before = credentials.read_bytes()
    out = io.StringIO()
    with django_assert_num_queries(0):
        call_command(
            "seed_demo",
            "--credentials",
            str(credentials),
            "--no-seed",
            "--summary",
            "http://127.0.0.1:8000",
            stdout=out,
        )
    assert credentials.read_bytes() == before
    assert json.loads(before)["tokens"]["patient_alex"] in out.getvalue()
