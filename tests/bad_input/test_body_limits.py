"""Bodies over a limit are refused before they are read whole (issue 14): a 150 MB CSV
upload, a 5 MB lead, a bulk body over DATA_UPLOAD_MAX_MEMORY_SIZE. Each request goes through
the whole Django stack with a generated body that counts the bytes the server read."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.test.client import ClientHandler
from rest_framework.authtoken.models import Token

from leadcrm.uploads import MULTIPART_SLACK
from leads.models import ImportJob, Lead

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
CHUNK = 64 * 1024  # Django's upload handlers' chunk size
BOUNDARY = "----leadcrm-boundary"


class CountingBody(io.RawIOBase):
    """A request body of `size` bytes made on demand: `head`, then `filler` repeated, then
    `tail`. `served` counts the bytes the server read."""

    def __init__(self, head: bytes, size: int, tail: bytes = b"", filler: bytes = b"x"):
        self.head, self.tail, self.size = head, tail, size
        self.middle = size - len(head) - len(tail)
        self.filler = filler * (CHUNK // len(filler) + 1)  # whole repeats, at least a chunk
        self.served = 0

    def _bytes(self, start: int, n: int) -> bytes:
        out, pos, end = bytearray(), start, min(self.size, start + n)
        head_end, middle_end = len(self.head), len(self.head) + self.middle
        while pos < end:
            if pos < head_end:
                piece = self.head[pos : min(end, head_end)]
            elif pos < middle_end:
                offset = (pos - head_end) % len(self.filler)
                piece = self.filler[offset : offset + min(end, middle_end) - pos]
            else:
                piece = self.tail[pos - middle_end : end - middle_end]
            out += piece
            pos += len(piece)
        return bytes(out)

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.served if n is None or n < 0 else n
        data = self._bytes(self.served, n)
        self.served += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        data = self._bytes(self.served, CHUNK if limit is None or limit < 0 else limit)
        end = data.find(b"\n")
        data = data if end < 0 else data[: end + 1]
        self.served += len(data)
        return data

    def readable(self) -> bool:
        return True


def _send(path: str, body: CountingBody, content_type: str, **headers):
    environ = RequestFactory()._base_environ(
        PATH_INFO=path,
        REQUEST_METHOD="POST",
        CONTENT_TYPE=content_type,
        CONTENT_LENGTH=str(body.size),
        **{"wsgi.input": body},
        **headers,
    )
    return ClientHandler(enforce_csrf_checks=False)(environ)


def _multipart(size: int) -> CountingBody:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\nemail,first name\r\n"
    ).encode()
    return CountingBody(head, size, f"\r\n--{BOUNDARY}--\r\n".encode(), filler=b"someone@example.com,Al\r\n")


@pytest.fixture
def session_cookie(client, make_user):
    client.force_login(make_user("marketing"))
    return {"HTTP_COOKIE": f"sessionid={client.cookies['sessionid'].value}"}


@pytest.fixture
def token(make_user):
    return {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=make_user('marketing')).key}"}


def test_a_150_mb_upload_is_refused_on_its_content_length_without_reading_it(session_cookie):
    body = _multipart(150 * MB)
    r = _send("/import/", body, f"multipart/form-data; boundary={BOUNDARY}", **session_cookie)
    assert r.status_code == 413
    assert b"The file is larger than 20 MB." in r.content
    assert body.served == 0
    assert not ImportJob.objects.exists()


def test_an_upload_past_the_limit_stops_within_a_chunk(settings, session_cookie):
    """A body whose Content-Length fits the framing slack but whose file passes the limit:
    the handler stops reading one chunk past the limit, the rest is never read."""
    settings.LEADCRM_UPLOAD_MAX_BYTES = 2 * MB
    size = 2 * MB + MULTIPART_SLACK - 1024
    body = _multipart(size)
    r = _send("/import/", body, f"multipart/form-data; boundary={BOUNDARY}", **session_cookie)
    assert r.status_code == 413 and b"The file is larger than 2 MB." in r.content
    assert 2 * MB < body.served <= 2 * MB + 2 * CHUNK + 1024
    assert body.served < size - 512 * 1024
    assert not ImportJob.objects.exists()


def test_an_upload_within_the_limit_is_taken(settings, session_cookie):
    settings.LEADCRM_UPLOAD_MAX_BYTES = 2 * MB
    body = _multipart(2 * MB - 4096)
    r = _send("/import/", body, f"multipart/form-data; boundary={BOUNDARY}", **session_cookie)
    assert r.status_code == 302, r.content[:300]
    assert body.served == body.size
    assert ImportJob.objects.get().total_rows > 80_000


def test_the_test_client_upload_over_the_limit_answers_the_page(settings, browser):
    settings.LEADCRM_UPLOAD_MAX_BYTES = 100 * 1024
    data = b"email\n" + b"a@example.com\n" * 10_000  # 140 KB
    r = browser.post("/import/", {"file": SimpleUploadedFile("x.csv", data, "text/csv")})
    assert r.status_code == 413 and b"The file is larger than 100 KB." in r.content
    assert b"<html" in r.content.lower()


def test_a_5_mb_lead_body_is_a_json_413_unread(token):
    body = CountingBody(b'{"email": "a@example.com", "first_name": "', 5 * MB, b'"}')
    r = _send("/api/v1/leads/", body, "application/json", **token)
    assert r.status_code == 413 and r["Content-Type"].startswith("application/json")
    assert "at most 262,144 bytes" in json.loads(r.content)["detail"]
    assert body.served == 0
    assert not Lead.objects.exists()


def test_a_lead_body_that_lies_about_its_length_is_read_up_to_the_limit_only(api):
    """Content-Length absent or wrong is no way around it: the parser reads limit + 1 bytes."""
    from leadcrm.parsers import SafeJSONParser

    class View:
        max_body_bytes = 1000

    class Request:
        META = {"CONTENT_LENGTH": "10"}

    stream = CountingBody(b'{"email": "', 10 * MB, b'"}')
    with pytest.raises(Exception) as refused:
        SafeJSONParser().parse(stream, parser_context={"view": View(), "request": Request()})
    assert refused.value.status_code == 413
    assert stream.served == 1001


def test_a_bulk_body_over_the_upload_limit_is_a_json_413_unread(settings, token):
    body = CountingBody(b'{"leads": [', settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1, b"]}", filler=b'{"email": "x"},')
    r = _send("/api/v1/leads/bulk/", body, "application/json", **token)
    assert r.status_code == 413 and r["Content-Type"].startswith("application/json")
    assert body.served == 0


def test_events_over_the_limit_are_a_json_413(settings, api):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    r = api.post("/api/v1/events/", [{"type": "page_view", "visitor_id": f"v{i}"} for i in range(100)], format="json")
    assert r.status_code == 413 and r["Content-Type"].startswith("application/json")


def test_a_lead_body_within_the_limit_is_taken(api):
    r = api.post("/api/v1/leads/", {"email": "a@example.com", "properties": {"k": "é" * 2000}}, format="json")
    assert r.status_code == 201


def test_a_form_body_over_data_upload_max_is_413_unread(settings, session_cookie):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = CountingBody(b"q=", 5000)
    r = _send("/scoring/", body, "application/x-www-form-urlencoded", **session_cookie)
    assert r.status_code == 413 and body.served == 0
