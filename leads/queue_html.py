"""The queue's rows as HTML, built in Python: the queue renders up to 50 of them on every
load and after every htmx action, and a template costs ~0.6 ms per row where this costs a
few microseconds."""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from leads.lifecycle import NEXT_STAGE
from leads.models import Lead


class Labels:
    """The row's words, translated once per page."""

    def __init__(self):
        self.prefix = reverse("leads-list")  # "/leads/": each row's links start with it
        self.pool = _("pool")
        self.claim = _("Claim")
        self.call = _("Call")
        self.log_call = _("Log a call")
        self.note = _("Note")
        self.disqualify = _("Disqualify")
        self.reason = _("Reason for disqualifying")
        self.gone = _("The lead left your queue.")
        # The quick "Enroll" action loads the nurturing app's small form into the row.
        self.enroll = _("Enroll")
        self.enroll_prefix = reverse("sequence-enroll-lead", args=[0])[:-2]  # ".../enroll/lead/"


def _button(url: str, action: str, label: str, *, vals: str = "", prompt: str = "", css="btn small", title=""):
    attrs = f' hx-vals="{escape(vals)}"' if vals else ""
    attrs += f' hx-prompt="{escape(prompt)}"' if prompt else ""
    attrs += f' title="{escape(title)}"' if title else ""
    return (
        f'<button class="{css}" hx-post="{url}"{attrs} hx-target="closest tr" hx-swap="outerHTML"'
        f' data-action="{action}">{escape(label)}</button>'
    )


def queue_row(lead: Lead | None, t: Labels, *, lead_id: int = 0, error: str = "", notice: str = "") -> SafeString:
    message = ""
    if error:
        message = format_html('<span class="row-msg error" role="alert">{}</span>', error)
    elif notice:
        message = format_html('<span class="row-msg ok" role="status">{}</span>', notice)
    if lead is None:
        text = message if error else format_html("{} {}", notice, t.gone)
        return format_html('<tr id="lead-{}" class="gone"><td colspan="8" class="muted">{}</td></tr>', lead_id, text)
    url = f"{t.prefix}{lead.pk}/"
    if lead.sla_due:
        due = lead.sla_due.isoformat()
        sla = f'<time class="countdown" datetime="{due}" data-due="{due}">{lead.sla_due:%H:%M}</time>'
    else:
        sla = '<span class="muted">–</span>'
    grade = lead.grade or ""
    if lead.owner_id is None:
        owner = f'<span class="tag">{escape(t.pool)}</span>'
        actions = _button(url + "claim/", "claim", t.claim, css="btn small primary")
    else:
        owner = escape(lead.owner.username)
        actions = _button(url + "log/", "call", t.call, vals='{"type": "call"}', title=t.log_call)
        actions += _button(url + "log/", "note", t.note, vals='{"type": "note"}', prompt=t.note)
        nxt = NEXT_STAGE.get(lead.stage)
        if nxt:
            actions += _button(url + "move/", "next", f"→ {nxt}", vals=f'{{"to": "{nxt}"}}')
    actions += (
        f'<button class="btn small" hx-get="{t.enroll_prefix}{lead.pk}/" hx-target="this" hx-swap="outerHTML"'
        f' data-action="enroll">{escape(t.enroll)}</button>'
    )
    actions += _button(
        url + "move/", "disqualify", "✕", vals='{"to": "DISQUALIFIED"}', prompt=t.reason,
        css="btn small danger ghost", title=t.disqualify,
    )  # fmt: skip
    return mark_safe(
        f'<tr id="lead-{lead.pk}" data-href="{url}" data-lead="{lead.pk}"'
        f' class="{"pool" if lead.owner_id is None else ""}">'
        f'<td class="sla">{sla}</td>'
        f'<td><span class="grade grade-{(grade or "none").lower()}">{escape(grade or "–")}</span></td>'
        f'<td class="num">{lead.score}</td>'
        f'<th scope="row"><a href="{url}">{escape(lead.full_name or lead.email)}</a>'
        f'<div class="sub muted">{escape(lead.email)}</div></th>'
        f'<td>{escape(lead.company_name or "–")}<div class="sub muted">{escape(lead.job_title)}</div></td>'
        f'<td><span class="stage stage-{lead.stage.lower()}">{lead.stage}</span></td>'
        f"<td>{owner}</td>"
        f'<td class="actions">{message}{actions}</td></tr>'
    )
