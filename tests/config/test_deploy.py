"""Production settings: check --deploy is clean, and missing secrets stop the service."""

from __future__ import annotations

import base64
import io
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def _production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "DJANGO_"))}
    env.update(
        VIGIL_ENV="production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="vigil.example.org",
        VIGIL_PORTAL_BASE_URL="https://vigil.example.org",
        DATABASE_URL="postgres://vigil@127.0.0.1:5432/vigil",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        VIGIL_KEYRING="prod-1:" + base64.b64encode(os.urandom(32)).decode(),
    )
    env.update(overrides)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_on_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "missing",
    [
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "VIGIL_KEYRING",
        "DJANGO_ALLOWED_HOSTS",
        "VIGIL_PORTAL_BASE_URL",
    ],
)
def test_production_refuses_to_start_without_a_secret(missing):
    env = _production_env()
    secret_value = env[missing]
    env.pop(missing)
    result = _manage("check", env=env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "refuses to start" in output
    assert missing.split("_")[0] in output
    assert secret_value not in output or missing in (
        "DJANGO_ALLOWED_HOSTS",
        "VIGIL_PORTAL_BASE_URL",
    )


@pytest.mark.parametrize(
    "key",
    [
        "short",
        # what startproject writes (fixed: parameters must be the same in every xdist worker)
        "django-insecure-k3v9q2x7w8m1p0z5b6n4c2r8t1y7u3i9o0e5a4s6d2f8g1h7j3l9",
        "a" * 60,  # long but not random (Django's W009 test: fewer than 5 distinct characters)
    ],
)
def test_production_refuses_a_weak_secret_key(key):
    result = _manage("check", env=_production_env(DJANGO_SECRET_KEY=key))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stdout + result.stderr
    assert key not in result.stdout + result.stderr


@pytest.mark.parametrize("hosts", ["*", ".example.org", "vigil.example.org,*"])
def test_production_refuses_wildcard_hosts(hosts):
    result = _manage("check", env=_production_env(DJANGO_ALLOWED_HOSTS=hosts))
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS" in result.stdout + result.stderr


@pytest.mark.parametrize("url", ["http://vigil.example.org", "vigil.example.org"])
def test_production_refuses_a_portal_link_that_is_not_https(url):
    """Alert notifications link clinicians to this address: never localhost, never plain http."""
    result = _manage("check", env=_production_env(VIGIL_PORTAL_BASE_URL=url))
    assert result.returncode != 0
    assert "VIGIL_PORTAL_BASE_URL" in result.stdout + result.stderr


def test_production_refuses_a_malformed_keyring():
    result = _manage("check", env=_production_env(VIGIL_KEYRING="prod-1:not-base64!!"))
    assert result.returncode != 0
    assert "KeyNotFound" in result.stderr or "base64" in result.stderr


def test_no_missing_migrations(db):
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_openapi_schema_generates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "/api/v1/diary-entries" in text
    assert "bearerAuth" in text
