"""The bytes of one outgoing e-mail (text, optional HTML alternative), written directly.

The standard library's `email` package builds a tree of message objects and folds every
header through its policy machinery: for a two-part e-mail that is a millisecond, more than
rendering and sending it together. A sequence sends the same shape of e-mail thousands of
times, so this writes that one shape by hand: RFC 5322 headers (non-ASCII words as RFC 2047
encoded words, long headers folded at their spaces), a multipart/alternative body whose
parts are UTF-8 in quoted-printable (lines of at most 76 characters whatever the template
holds). tests/nurturing/test_mime.py reads what it writes back with the standard parser.
Pure: plain data in, bytes out.
"""

from __future__ import annotations

import binascii
import functools
import secrets
from email.charset import QP, Charset
from email.header import Header, decode_header, make_header
from email.utils import formataddr, getaddresses

CRLF = "\r\n"
_UTF8_QP = Charset("utf-8")
_UTF8_QP.header_encoding = QP
_UTF8_QP.body_encoding = QP
MAX_LINE = 78


def header_line(name: str, value: str) -> str:
    """`Name: value` as it goes on the wire: one line when it is short and ASCII; else
    folded at its spaces (plain ASCII) or written as encoded words. A line break inside a
    value (a merge field that held one) becomes a space: it can never start a header."""
    value = " ".join(value.splitlines()) if ("\n" in value or "\r" in value) else value
    if value.isascii() and len(name) + 2 + len(value) <= MAX_LINE:
        return f"{name}: {value}"
    if value.isascii():
        return f"{name}: {_fold(value, len(name) + 2)}"
    return f"{name}: " + Header(value, _UTF8_QP, header_name=name, maxlinelen=MAX_LINE).encode(linesep=CRLF)


def _fold(value: str, used: int) -> str:
    """Fold an ASCII value at its spaces (a word longer than a line stays whole: a URL
    cannot be cut, and RFC 5322 allows lines of 998 characters)."""
    lines, line = [], ""
    for word in value.split(" "):
        if line and used + len(line) + 1 + len(word) > MAX_LINE:
            lines.append(line)
            line, used = word, 1
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return (CRLF + " ").join(lines)


def _plain(value: str) -> bool:
    """A bare ASCII addr-spec (most leads' addresses): nothing to parse or encode."""
    return value.isascii() and value.count("@") == 1 and not any(c in value for c in ' <>,;:"()[]\\\r\n')


@functools.lru_cache(maxsize=1024)
def address_header(value: str) -> str:
    """An address list ("Name <a@b>, c@d") as a header value: display names with non-ASCII
    letters become encoded words, internationalised domains their ASCII (IDNA) form."""
    if _plain(value):
        return value
    out = []
    for name, address in getaddresses([value]):
        if "=?" in name:  # already encoded (`formataddr` of a non-ASCII name): its letters
            name = str(make_header(decode_header(name)))
        name = " ".join(name.splitlines())  # a display name never breaks its header's line
        local, _, domain = address.rpartition("@")
        if domain and not domain.isascii():
            domain = domain.encode("idna").decode("ascii")
        address = f"{local}@{domain}" if local else address
        out.append(formataddr((name, address), charset="utf-8"))
    return ", ".join(out)


def _part(content_type: str, text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    body = CRLF.join(binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii").split("\n"))
    head = f'Content-Type: {content_type}; charset="utf-8"{CRLF}Content-Transfer-Encoding: quoted-printable'
    return f"{head}{CRLF}{CRLF}{body}"


def email_bytes(*, headers: list[tuple[str, str]], text: str, html: str = "", boundary: str = "") -> bytes:
    """A whole e-mail: `headers` in order (addresses already in `address_header` form),
    then the text part, and the HTML part as its alternative when there is one."""
    lines = [header_line(name, value) for name, value in headers]
    lines.append("MIME-Version: 1.0")
    if html:
        boundary = boundary or f"lc-{secrets.token_hex(16)}"
        lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        head = CRLF.join(lines)
        body = (
            f"--{boundary}{CRLF}{_part('text/plain', text)}{CRLF}"
            f"--{boundary}{CRLF}{_part('text/html', html)}{CRLF}--{boundary}--{CRLF}"
        )
        return f"{head}{CRLF}{CRLF}{body}".encode("ascii")
    return f"{CRLF.join(lines)}{CRLF}{_part('text/plain', text)}".encode("ascii")


@functools.lru_cache(maxsize=4096)
def envelope_address(value: str) -> str | None:
    """The SMTP envelope form (MAIL FROM / RCPT TO) of one address ("Name <a@b>" or
    "a@b"): its addr-spec with an internationalised domain in IDNA; None when its local
    part is not ASCII (that needs SMTPUTF8: left to the back end, which says so)."""
    if _plain(value):
        return value
    found = getaddresses([value])
    if len(found) != 1 or "@" not in found[0][1]:
        return None
    local, _, domain = found[0][1].rpartition("@")
    if not local.isascii() or any(c in local + domain for c in "\r\n<> "):
        return None
    try:
        domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return f"{local}@{domain}"
