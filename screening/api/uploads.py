"""Upload handling: bytes go to a private temporary file; the size cap stops the stream early.

The request removes that file whatever happens: the view closes it once the video is stored or
refused, and :class:`UploadMultiPartParser` closes it at once when the body fails mid-way (Django
closes only the files it finished reading, leaving the one being received to the garbage
collector). One left by a killed web process is removed by :mod:`screening.services.uploads`
(swept from here too, at most every 10 minutes per process, so each web host sweeps its own
folder).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import UnreadablePostError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, MultiPartParser

from config.errors import PayloadTooLarge
from screening.services.uploads import upload_tempfiles_sweep_if_due


class CappedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        Path(str(settings.FILE_UPLOAD_TEMP_DIR)).mkdir(parents=True, exist_ok=True, mode=0o700)
        upload_tempfiles_sweep_if_due()
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > settings.VIGIL_VIDEO_MAX_BYTES:
            self.file.close()  # NamedTemporaryFile: closing removes it
            raise PayloadTooLarge(f"Videos are limited to {settings.VIGIL_VIDEO_MAX_BYTES} bytes.")
        return super().receive_data_chunk(raw_data, start)


def upload_tempfiles_discard(*, request: Any) -> int:
    """Close (and so remove) the temporary files of ``request``'s upload handlers; returns how
    many were still open. Safe to call twice, and for a request that has no file."""
    closed = 0
    for handler in getattr(request, "upload_handlers", ()):
        file = getattr(handler, "file", None)
        if isinstance(file, TemporaryUploadedFile) and not file.closed:
            file.close()  # NamedTemporaryFile: closing removes it
            closed += 1
    return closed


class UploadMultiPartParser(MultiPartParser):
    """DRF's multipart parser; a body that fails mid-way leaves no temporary file behind.

    A client that disconnects during an upload makes the read fail (``UnreadablePostError``):
    that is a 400 ``malformed_request`` here, not a 500, and the partly received file is removed
    before the error leaves the parser.
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> DataAndFiles[Any, Any]:
        try:
            return super().parse(stream, media_type, parser_context)
        except BaseException as exc:
            request = (parser_context or {}).get("request")
            if request is not None:
                upload_tempfiles_discard(request=request)
            if isinstance(exc, UnreadablePostError):
                raise ParseError("The request body could not be read.") from None
            raise
