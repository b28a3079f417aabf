"""De-identification works from a cold start with the network switched off, and never tries it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import json, socket, sys, urllib.request

attempts = []

def refuse(*args, **kwargs):
    attempts.append(repr(args[:2])[:80])
    raise OSError("network disabled by the test")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
urllib.request.urlopen = refuse

from privacy.deid.engine import _engine, deidentify

assert _engine is None, "the engine must start cold"
text = (
    "Email Priya Sharma at priya.sharma@yahoo.co.in or k.nowak@stmarys.sch.uk, "
    "see www.mindfulnessforall.org, or call +44 7700 900987."
)
result = deidentify(text)
print(json.dumps({
    "withheld": result.withheld,
    "error": result.error,
    "text": result.text,
    "types": sorted({s.entity_type for s in result.spans}),
    "attempts": attempts,
    "django_imported": "django" in sys.modules,
}))
"""


def test_cold_start_without_network(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TLDEXTRACT", "HF_", "TRANSFORMERS"))
    }
    env["HOME"] = str(tmp_path)  # no tldextract or other cache from earlier runs
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = str(ROOT)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = json.loads(completed.stdout.strip().splitlines()[-1])
    assert out["attempts"] == [], out["attempts"]
    assert out["withheld"] is False, out["error"]
    assert set(out["types"]) >= {"PERSON", "EMAIL_ADDRESS", "URL", "PHONE_NUMBER"}
    for secret in ("Priya", "yahoo", "stmarys", "mindfulness", "7700"):
        assert secret not in out["text"]
    # The engine is Django-free: only privacy.deid.patient touches the ORM.
    assert out["django_imported"] is False
