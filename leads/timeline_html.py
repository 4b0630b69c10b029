"""The lead page's timeline as HTML, built in Python (up to 100 entries per page view; a
template costs ~0.5 ms per entry). An assignment's "why" keeps its own template
(`_assignment_why.html`, the routing part of the timeline)."""

from __future__ import annotations

from django.template.loader import get_template
from django.utils import formats, timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext as _


def _who(item: dict) -> str:
    return f'<span class="muted">{escape(item.get("actor") or item.get("actor_type") or "")}</span>'


def _reason(item: dict) -> str:
    return f" — {escape(item['reason'])}" if item.get("reason") else ""


def _value(value) -> str:
    if isinstance(value, dict) and set(value) == {"id", "repr"}:
        value = value["repr"]
    if value in (None, ""):
        return "–"
    return escape(Truncator(str(value)).chars(80))


def _changes(changes: dict) -> str:
    """Each changed field as old → new."""
    if not changes:
        return ""
    rows = "".join(
        f"<li><code>{escape(name)}</code>: {_value(old)} → <strong>{_value(new)}</strong></li>"
        for name, (old, new) in changes.items()
    )
    return f'<ul class="changes">{rows}</ul>'


def _message_status(status: str) -> str:
    labels = {
        "queued": _("Waiting to be sent"),
        "sending": _("Sending"),
        "sent": _("Sent, not opened yet"),
        "failed": _("Failed"),
        "bounced": _("Bounced back"),
        "complained": _("Reported as spam"),
        "opened": _("Opened by the lead"),
        "clicked": _("Link clicked"),
        "replied": _("The lead replied"),
        "unsubscribed": _("Unsubscribed through it"),
    }
    return labels.get(status, status)


def timeline(history: list[dict], request=None) -> SafeString:
    if not history:
        return mark_safe(f'<li class="muted">{escape(_("Nothing yet."))}</li>')
    why = get_template("_assignment_why.html")
    assigned, score, pool, email = _("Assigned"), _("Score"), _("pool"), _("E-mail")
    fmt = formats.get_format("SHORT_DATETIME_FORMAT")
    out = []
    for item in history:
        kind = item["kind"]
        if kind == "stage_change":
            src = f"{escape(item['from_stage'])} → " if item["from_stage"] else ""
            body = f"<strong>{src}{escape(item['to_stage'])}</strong> {_who(item)}{_reason(item)}"
        elif kind == "assignment":
            body = (
                f"{escape(assigned)}: <strong>{escape(item['from_owner'] or '–')} → "
                f"{escape(item['to_owner'] or pool)}</strong> {_who(item)}{_reason(item)}"
                + why.render({"item": item}, request)
            )
        elif kind == "audit":
            body = f"<strong>{escape(item['action'])}</strong> {_who(item)}{_reason(item)}" + _changes(item["changes"])
        elif kind == "message":
            body = (
                f'<span class="tp">{escape(email)}</span> <strong>{escape(item["subject"] or "–")}</strong>'
                f' <span class="tag">{escape(_message_status(item["status"]))}</span>'
            )
        elif kind == "score_change":
            grade = f" ({escape(item['grade'])})" if item.get("grade") else ""
            body = f"{escape(score)} {item['old_score']} → <strong>{item['new_score']}</strong>{grade}"
        else:
            body = f'<span class="tp">{escape(item["type"])}</span>'
            note = (item.get("properties") or {}).get("note")
            if note:
                body += f" {escape(note)}"
            if item.get("url"):
                body += f' <span class="muted">{escape(Truncator(item["url"]).chars(60))}</span>'
            utm = item.get("utm") or {}
            if utm.get("source"):
                campaign = f" / {escape(utm['campaign'])}" if utm.get("campaign") else ""
                body += f' <span class="tag">{escape(utm["source"])}{campaign}</span>'
            if item.get("actor"):
                body += f' <span class="muted">{escape(item["actor"])}</span>'
        at = formats.date_format(timezone.localtime(item["at"]), fmt)
        out.append(f'<li class="ev ev-{kind}" data-kind="{kind}"><time>{escape(at)}</time><div>{body}</div></li>')
    return mark_safe("".join(out))
