"""Request bodies refused before they are read whole (issue 14: a 150 MB upload was read
entirely before the 20 MB refusal).

Uploads: `LimitedUploadHandler`, first of FILE_UPLOAD_HANDLERS, refuses a multipart body
whose Content-Length already says it is too big (nothing read), and stops reading a file
once it passes the limit (at most one chunk more read), without draining the rest of the
body. BadInputMiddleware, which reads every form first, answers 413. JSON bodies: Django
refuses a Content-Length over DATA_UPLOAD_MAX_MEMORY_SIZE before reading, BadInputMiddleware
one over the view's own `max_body_bytes` (one lead), and the API's parser never takes more.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

# Room for the multipart framing and the small fields beside the file (the CSRF token).
MULTIPART_SLACK = 1024 * 1024
REFUSED_ATTR = "upload_refused"


class UploadTooBig(RequestDataTooBig):
    """RequestDataTooBig with a message meant for the person uploading."""


def upload_limit() -> int:
    return settings.LEADCRM_UPLOAD_MAX_BYTES


def too_big_message(limit: int | None = None) -> str:
    limit = upload_limit() if limit is None else limit
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
    return f"The file is larger than {size}."


def body_too_big_message(limit: int) -> str:
    return f"Request body too large: at most {limit:,} bytes."


class LimitedUploadHandler(FileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.limit = upload_limit()
        if content_length > self.limit + MULTIPART_SLACK:
            raise UploadTooBig(too_big_message(self.limit))
        return None

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.limit:
            if self.request is not None:
                setattr(self.request, REFUSED_ATTR, too_big_message(self.limit))
            # connection_reset: do not read (drain) the rest of the body.
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None


def refused_upload(request: HttpRequest) -> str:
    """Why this request's upload was stopped part-way ("" when it was not)."""
    return getattr(request, REFUSED_ATTR, "")
