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


# The marked strings a quick reading of the sources finds (templates' translate tags, the
# gettext calls of the code); blocktranslate and plural forms are left to makemessages.
_MARKED = (
    re.compile(r"""\{%\s*(?:translate|trans)\s+"((?:[^"\\]|\\.)*)"(?:\s+[^%]*)?%\}"""),
    re.compile(r"""\b(?:_|gettext|gettext_lazy|pgettext)\(\s*"((?:[^"\\]|\\.)*)"\s*[,)]"""),
)
ROOT = LOCALE.parents[2]
SKIP = {".venv", "tests", "bench", "staticfiles", "var", "node_modules", ".git"}


def _sources():
    for path in ROOT.rglob("*"):
        if path.suffix in (".py", ".html", ".txt") and not SKIP & set(path.relative_to(ROOT).parts):
            yield path


def test_every_marked_string_of_the_sources_is_in_the_catalogue():
    po = (LOCALE / "django.po").read_text(encoding="utf-8")
    known = {
        "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m)).encode().decode("unicode_escape")
        for m in re.findall(r'^msgid ((?:"(?:[^"\\]|\\.)*"\n?)+)', po, re.M)
    }
    missing = set()
    for path in _sources():
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in _MARKED:
            for found in pattern.findall(text):
                if found and found.encode().decode("unicode_escape") not in known:
                    missing.add(f"{path.relative_to(ROOT)}: {found}")
    assert not missing, (
        "Strings without a French entry: run `manage.py makemessages -l fr --ignore=.venv --ignore=tests "
        "--ignore=bench`, translate them in locale/fr/LC_MESSAGES/django.po (no fuzzy entry left) and "
        "`manage.py compilemessages -l fr --ignore=.venv`:\n" + "\n".join(sorted(missing))
    )
