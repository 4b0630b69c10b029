"""The e-mail template editor's form (shapes only: what a template may contain is
`nurturing.mail_render.template_errors`, asked by the services)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from nurturing.models import TemplateKind


class EmailTemplateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=[(TemplateKind.MARKETING, _("Marketing")), (TemplateKind.TRANSACTIONAL, _("Transactional"))],
    )
    subject = forms.CharField(label=_("Subject"), max_length=300)
    html = forms.CharField(
        label=_("HTML part"), required=False, strip=False, max_length=200_000, widget=forms.Textarea(attrs={"rows": 12})
    )
    text = forms.CharField(
        label=_("Text part"), required=False, strip=False, max_length=200_000, widget=forms.Textarea(attrs={"rows": 8})
    )
    sender = forms.TypedChoiceField(label=_("Sender"), required=False, coerce=int, empty_value=None)
    topic = forms.TypedChoiceField(label=_("Topic"), required=False, coerce=int, empty_value=None)

    def __init__(self, *args, senders=(), topics=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sender"].choices = [("", _("The default sender")), *((s.pk, str(s)) for s in senders)]
        self.fields["topic"].choices = [("", _("No topic")), *((t.pk, t.name) for t in topics)]

    def clean(self):
        data = super().clean()
        for name in ("name", "subject", "html", "text"):
            if "\x00" in (data.get(name) or ""):
                self.add_error(name, _("This text holds a character that is not allowed."))
        return data


class SenderIdentityForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    from_email = forms.EmailField(label=_("From address"), max_length=254)
    reply_to = forms.EmailField(label=_("Replies to"), max_length=254, required=False)
    is_default = forms.BooleanField(label=_("The default sender"), required=False)


class TopicForm(forms.Form):
    key = forms.SlugField(label=_("Key"), max_length=60)
    name = forms.CharField(label=_("Name"), max_length=200)
    name_fr = forms.CharField(label=_("Name in French"), max_length=200, required=False)
