"""The French catalogue is complete and compiled."""

from __future__ import annotations

import re
from pathlib import Path

LOCALE = Path(__file__).resolve().parents[2] / "locale" / "fr" / "LC_MESSAGES"


def test_every_string_has_a_french_translation():
    po = (LOCALE / "django.po").read_text(encoding="utf-8")
    entries = po.split("\n\n")[1:]
    assert len(entries) > 300
    untranslated = [e for e in entries if re.search(r'\nmsgstr(\[\d\])? ""\n?$', e.strip() + "\n")]
    assert untranslated == []
    assert "#, fuzzy" not in po


def test_the_compiled_catalogue_is_committed_and_current():
    po, mo = LOCALE / "django.po", LOCALE / "django.mo"
    assert mo.exists() and mo.stat().st_size > 10_000
    from django.utils import translation

    with translation.override("fr"):
        assert translation.gettext("My queue") == "Ma file"
        assert translation.gettext("Marketing qualified lead") == "Lead qualifié marketing"
    assert po.stat().st_size > 0
