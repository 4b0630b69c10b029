"""E-mail templates, the pure part: which merge fields and tags a template may use, and
rendering one for a lead from plain data (never model objects: a template cannot call a
method or walk a relation), with tracked links.

Merge fields are Django template variables under `lead`, `owner` and `company`, with a few
filters (`{{ lead.first_name|default:"there" }}`); tags are limited to `if`/`else`. A
template that reaches for anything else (`{% load %}`, `{% include %}`, `{{ settings }}`) is
refused when it is saved, with the field and the reason.
"""

from __future__ import annotations

import functools
import html as html_lib
import re
from collections.abc import Callable, Mapping

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import Lexer, TokenType

MERGE_FIELDS: dict[str, tuple[str, ...]] = {
    "lead": ("first_name", "last_name", "full_name", "email", "company_name", "job_title", "city", "country"),
    "owner": ("first_name", "last_name", "full_name", "email"),
    "company": ("name", "domain", "industry"),
}
ALLOWED_TAGS = frozenset({"if", "elif", "else", "endif"})
ALLOWED_FILTERS = frozenset({"default", "upper", "lower", "title", "capfirst", "truncatechars"})
_ENGINE = Engine(libraries={}, autoescape=True)
_PLAIN = Engine(libraries={}, autoescape=False)
_VARIABLE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*((?:\|.*)?)$")
_HREF = re.compile(r"""href\s*=\s*(["'])(https?://[^"']+)\1""", re.IGNORECASE)


def _token_errors(source: str) -> list[str]:
    problems = []
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            tag = token.contents.split()[0] if token.contents.split() else ""
            if tag not in ALLOWED_TAGS:
                problems.append(f"The tag {{% {tag} %}} is not allowed (only if / else).")
            else:
                for word in token.contents.split()[1:]:
                    name = word.split("|")[0]
                    if "." in name and not _known(name):
                        problems.append(f"Unknown merge field {name}.")
        elif token.token_type == TokenType.VAR:
            match = _VARIABLE.match(token.contents)
            if not match or not _known(match.group(1)):
                problems.append(f"Unknown merge field {{{{ {token.contents.strip()} }}}}.")
                continue
            for part in match.group(2).split("|")[1:]:
                name = part.split(":")[0].strip()
                if name not in ALLOWED_FILTERS:
                    problems.append(f"The filter |{name} is not allowed.")
    return problems


def _known(name: str) -> bool:
    head, _, field = name.partition(".")
    return head in MERGE_FIELDS and field in MERGE_FIELDS[head]


def template_errors(*, subject: object, html: object, text: object) -> dict[str, list[str]]:
    """Field errors of a template's parts (empty: it may be saved)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 300 or "\n" in subject:
        errors["subject"] = ["One line of at most 300 characters."]
    parts = {"subject": subject, "html": html, "text": text}
    for name, source in parts.items():
        if name in errors:
            continue
        if not isinstance(source, str) or len(source) > 200_000 or "\x00" in source:
            errors[name] = ["Text of at most 200,000 characters."]
            continue
        problems = _token_errors(source)
        if not problems:
            try:
                _ENGINE.from_string(source)
            except TemplateSyntaxError as exc:
                problems = [str(exc)]
        if problems:
            errors[name] = problems[:5]
    if not errors and not (html or "").strip() and not (text or "").strip():
        errors["text"] = ["Write the text part, the HTML part or both."]
    return errors


def merge_context(*, lead: Mapping, owner: Mapping | None, company: Mapping | None) -> dict:
    """The only data a template sees: the allowed fields, as plain strings."""

    def pick(kind: str, data: Mapping | None) -> dict:
        data = data or {}
        return {f: "" if data.get(f) is None else str(data.get(f)) for f in MERGE_FIELDS[kind]}

    return {"lead": pick("lead", lead), "owner": pick("owner", owner), "company": pick("company", company)}


@functools.lru_cache(maxsize=256)
def _compiled(engine, source: str):
    """A template's source compiled once per process (a sequence sends one template to
    thousands of people); an edited template is another source, compiled anew."""
    return engine.from_string(source)


def render(
    *,
    subject: str,
    html: str,
    text: str,
    context: dict,
    footer_html: str = "",
    footer_text: str = "",
    track_link: Callable[[str], str] | None = None,
    pixel_url: str = "",
) -> tuple[str, str, str]:
    """(subject, html, text) for one person. Links of the HTML part go through `track_link`
    (a signed redirect); the footer (postal address, unsubscribe link) closes both parts."""
    out_subject = _compiled(_PLAIN, subject).render(Context(context)).strip()
    out_html = _compiled(_ENGINE, html).render(Context(context)) if html.strip() else ""
    out_text = _compiled(_PLAIN, text).render(Context(context)) if text.strip() else ""
    if not out_text and out_html:
        out_text = html_lib.unescape(re.sub(r"<[^>]+>", "", out_html)).strip()
    if out_html and track_link is not None:
        out_html = _HREF.sub(lambda m: f'href="{html_lib.escape(track_link(html_lib.unescape(m.group(2))))}"', out_html)
    if out_html:
        pixel = f'<img src="{html_lib.escape(pixel_url)}" width="1" height="1" alt="">' if pixel_url else ""
        out_html = f"{out_html}{footer_html}{pixel}"
    if footer_text:
        out_text = f"{out_text}\n\n-- \n{footer_text}"
    return out_subject, out_html, out_text


def links_of(html: str) -> list[str]:
    """The absolute links of an HTML part (those a click may lead to)."""
    return [html_lib.unescape(m.group(2)) for m in _HREF.finditer(html)]
