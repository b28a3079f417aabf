"""Upload handling: bytes go to a private temporary file; the size cap stops the stream early."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from config.errors import PayloadTooLarge


class CappedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        Path(str(settings.FILE_UPLOAD_TEMP_DIR)).mkdir(parents=True, exist_ok=True, mode=0o700)
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > settings.VIGIL_VIDEO_MAX_BYTES:
            self.file.close()  # NamedTemporaryFile: closing removes it
            raise PayloadTooLarge(f"Videos are limited to {settings.VIGIL_VIDEO_MAX_BYTES} bytes.")
        return super().receive_data_chunk(raw_data, start)
