"""The e-mail bytes written by hand (nurturing.mime) read back by the standard library's
parser as what was meant; the pipelined SMTP send against a server that offers PIPELINING."""

from __future__ import annotations

import email
import email.policy
import smtplib
import socket
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nurturing import mime
from nurturing.services.mail import smtp_send

# Text a template and a lead's merge fields may hold: any character but NUL and surrogates.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=300)
LINE = TEXT.map(lambda s: " ".join(s.split()))  # a header's value as a reader sees it


def _parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


@settings(max_examples=300, deadline=None)
@given(subject=TEXT, name=TEXT, text=TEXT, html=TEXT)
def test_what_is_written_reads_back_as_written(subject, name, text, html):
    headers = [
        ("Subject", subject),
        ("From", mime.address_header(email.utils.formataddr((name, "news@example.org")))),
        ("To", mime.address_header("d1@example.com")),
        ("Message-ID", "<1.abc@example.org>"),
        ("List-Unsubscribe", "<https://crm.example/u/" + "x" * 120 + "/>, <mailto:u@example.org?subject=unsubscribe>"),
    ]
    raw = mime.email_bytes(headers=headers, text=text, html=html)
    assert raw.isascii() and all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")  # every line ends in CRLF
    parsed = _parse(raw)
    assert " ".join(str(parsed["Subject"]).split()) == " ".join(subject.split())
    assert parsed["From"].addresses[0].addr_spec == "news@example.org"
    assert " ".join(parsed["From"].addresses[0].display_name.split()) == " ".join(name.split())
    assert parsed["To"].addresses[0].addr_spec == "d1@example.com"
    assert str(parsed["List-Unsubscribe"]).startswith("<https://crm.example/u/xxx")
    normal = lambda s: s.replace("\r\n", "\n").replace("\r", "\n")  # noqa: E731
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == normal(text)
    if html:
        assert parsed.get_content_type() == "multipart/alternative"
        assert parsed.get_body(("html",)).get_content().replace("\r\n", "\n") == normal(html)
    else:
        assert parsed.get_content_type() == "text/plain"


def test_a_line_break_in_a_header_value_cannot_start_a_header():
    raw = mime.email_bytes(headers=[("Subject", "Hi\r\nBcc: victim@example.org")], text="x")
    assert b"\r\nBcc:" not in raw and _parse(raw)["Subject"] == "Hi Bcc: victim@example.org"


def test_addresses_with_international_names_and_domains():
    assert mime.address_header("Zoé <zoe@exämple.fr>").endswith("<zoe@xn--exmple-cua.fr>")
    assert mime.envelope_address("Zoé <zoe@exämple.fr>") == "zoe@xn--exmple-cua.fr"
    assert mime.envelope_address("zoé@example.fr") is None  # needs SMTPUTF8: Django's way says so
    assert mime.envelope_address("not an address") is None


class _PipeliningServer:
    """An SMTP server on loopback that offers PIPELINING, refuses RCPT to refused@..., and
    records each message and the commands each read from the socket held."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.messages: list[bytes] = []
        self.reads: list[list[bytes]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.sock.accept()
        conn.sendall(b"220 test\r\n")
        buffer, data = b"", None
        while chunk := conn.recv(65536):
            buffer += chunk
            commands = []
            while buffer:
                if data is not None and buffer.startswith(b".\r\n"):  # an empty message: ended
                    buffer, data = buffer[3:], None
                    conn.sendall(b"250 empty\r\n")
                    continue
                if data is not None:
                    end = buffer.find(b"\r\n.\r\n")
                    if end < 0:
                        break
                    self.messages.append(buffer[: end + 2].replace(b"\r\n..", b"\r\n."))
                    buffer, data = buffer[end + 5 :], None
                    conn.sendall(b"250 queued\r\n")
                    continue
                line, sep, rest = buffer.partition(b"\r\n")
                if not sep:
                    break
                buffer = rest
                commands.append(line)
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-test\r\n250 PIPELINING\r\n")
                elif verb == b"RCPT" and b"refused@" in line:
                    conn.sendall(b"550 no such user\r\n")
                elif verb == b"DATA":
                    data = b""
                    conn.sendall(b"354 go on\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    conn.close()
                    return
                else:
                    conn.sendall(b"250 ok\r\n")
            if commands:
                self.reads.append(commands)


def test_the_envelope_is_pipelined_and_dots_survive():
    server = _PipeliningServer()
    smtp = smtplib.SMTP("127.0.0.1", server.port, timeout=10)
    smtp.ehlo()
    body = b"Subject: x\r\n\r\n.leading dot\r\n..two\r\nend\r\n"
    smtp_send(smtp, "news@example.org", ["d1@example.com"], body)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        smtp_send(smtp, "news@example.org", ["refused@example.com"], body)
    smtp_send(smtp, "news@example.org", ["d2@example.com"], body)  # the session goes on
    smtp.quit()
    assert server.messages == [body, body]
    envelopes = [read for read in server.reads if read[0].startswith(b"MAIL")]
    assert envelopes[0] == [b"MAIL FROM:<news@example.org>", b"RCPT TO:<d1@example.com>", b"DATA"]
