"""Create the local secret key and key-encryption keyring (0600) for the embedded profile."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from privacy.keys import create_local_keyring


class Command(BaseCommand):
    help = "Create var/secret_key and var/keys.json with 0600 permissions if they do not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.IS_PRODUCTION:
            raise CommandError("Production keys are provided by the environment, not created.")
        var = Path(settings.VAR_DIR)
        var.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret = var / "secret_key"
        if not secret.exists():
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(64))
            self.stdout.write(f"created {secret.name} (0600)")
        if settings.VIGIL_KEYRING_FILE:
            path = Path(settings.VIGIL_KEYRING_FILE)
            if create_local_keyring(path):
                self.stdout.write(f"created keyring {path.name} (0600)")
        for sub in ("media", "work", "broker/queue", "broker/processed", "cache"):
            (var / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
