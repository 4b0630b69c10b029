"""CSV import, the pure part: decode a messy file, guess its columns, turn each line into the
input of the shared row validator (`leads.validation.clean_lead_row`) and report errors per
line and column. The Celery task (`leads.tasks.import_run`) feeds the good lines to
`leads.services.leads_bulk_upsert` in chunks.

Real exports are messy: a BOM, `;` separators, Latin-1 / Windows-1252 bytes, quoted commas,
blank cells and placeholders such as "Select", "--" or "N/A" where nothing was entered.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from leadcrm.csvfiles import BadFile as BadFile
from leadcrm.csvfiles import ParsedFile
from leadcrm.csvfiles import parse as parse
from leadcrm.csvsafe import safe_row
from leads.fields import INPUT_FIELDS
from leads.validation import clean_lead_row

# The lead fields a column may map to (public names of the API), plus "properties.<key>"
# for custom fields and "" to ignore a column.
FIELDS = tuple(f.name for f in INPUT_FIELDS if f.kind != "properties")
PROPERTIES_PREFIX = "properties."

# Normalised header (lower case, no accents, letters and digits only) -> field. English and
# French names as found in CRM and form-tool exports.
ALIASES: dict[str, list[str]] = {
    "email": ["email", "e-mail", "mail", "email address", "adresse e-mail", "adresse email", "courriel",
              "adresse mail"],
    "first_name": ["first name", "firstname", "given name", "prenom", "prénom"],
    "last_name": ["last name", "lastname", "surname", "family name", "nom", "nom de famille"],
    "phone": ["phone", "phone number", "telephone", "téléphone", "tel", "tél", "mobile", "portable", "numero"],
    "job_title": ["job title", "title", "position", "role", "fonction", "poste", "intitule du poste"],
    "company": ["company", "company name", "organisation", "organization", "account", "societe", "société",
                "entreprise", "raison sociale"],
    "company_domain": ["company domain", "domain", "website", "site web", "site internet", "domaine"],
    "industry": ["industry", "sector", "secteur", "secteur d activite", "industrie"],
    "company_size": ["company size", "employees", "number of employees", "headcount", "size", "effectif",
                     "taille", "nombre de salaries", "nombre d employes"],
    "country": ["country", "pays", "country code", "code pays"],
    "city": ["city", "town", "ville", "localite"],
    "source": ["source", "lead source", "origine", "source du lead", "canal"],
    "utm_source": ["utm source", "utm_source"],
    "utm_medium": ["utm medium", "utm_medium"],
    "utm_campaign": ["utm campaign", "utm_campaign", "campaign", "campagne"],
    "utm_term": ["utm term", "utm_term"],
    "utm_content": ["utm content", "utm_content"],
}  # fmt: skip

# Cell values meaning "nothing entered".
PLACEHOLDERS = frozenset(
    {"", "-", "--", "---", "n/a", "na", "n.a.", "none", "null", "nil", "select", "select...", "-- select --",
     "choose", "choisir", "sélectionner", "selectionner", "?", "unknown", "inconnu", "non renseigné", "#n/a"}
)  # fmt: skip


def normalise_header(header: str) -> str:
    text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


HEADER_ALIASES: dict[str, str] = {normalise_header(n): f for f, names in ALIASES.items() for n in names}


def property_key(header: str) -> str:
    return normalise_header(header).replace(" ", "_") or "column"


def guess_mapping(headers: list[str]) -> dict[str, str]:
    """Header -> field, `properties.<key>` for unknown columns. A field is taken once (the
    first column that names it); later duplicates become properties."""
    mapping, taken = {}, set()
    for header in headers:
        field = HEADER_ALIASES.get(normalise_header(header))
        if field and field not in taken:
            mapping[header] = field
            taken.add(field)
        elif normalise_header(header):
            mapping[header] = PROPERTIES_PREFIX + property_key(header)
        else:
            mapping[header] = ""
    return mapping


def _value(cell: str) -> str:
    value = cell.strip()
    return "" if value.lower() in PLACEHOLDERS else value


def row_input(headers: list[str], cells: list[str], mapping: dict[str, str]) -> tuple[dict, dict[str, str]]:
    """The validator's input for one line, and field -> the CSV column it came from."""
    data: dict = {}
    columns: dict[str, str] = {}
    properties: dict = {}
    for i, header in enumerate(headers):
        target = mapping.get(header, "")
        if not target:
            continue
        value = _value(cells[i]) if i < len(cells) else ""
        if target.startswith(PROPERTIES_PREFIX):
            if value:
                properties[target[len(PROPERTIES_PREFIX) :]] = value
                columns["properties"] = header
            continue
        if target in data and data[target]:
            continue
        if target == "company_size" and value:
            value = re.sub(r"[\s\u00a0\u202f.,](?=\d{3}\b)", "", value)  # "1 200", "1,200"
        data[target] = value
        columns[target] = header
    if properties:
        data["properties"] = properties
    return data, columns


@dataclass
class LineResult:
    line: int
    clean: dict | None
    errors: list[dict]  # [{line, column, message}]


def validate_line(line: int, headers: list[str], cells: list[str], mapping: dict[str, str]) -> LineResult:
    data, columns = row_input(headers, cells, mapping)
    extra = [c for c in cells[len(headers) :] if c.strip()]
    errors: list[dict] = []
    if extra:
        errors.append({"line": line, "column": "", "message": f"{len(extra)} more cells than the header has columns."})
    clean, field_errors = clean_lead_row(data)
    for field, messages in field_errors.items():
        column = columns.get(field, field)
        for message in messages:
            errors.append({"line": line, "column": column, "message": str(message)})
    return LineResult(line=line, clean=None if errors else clean, errors=errors)


def validate(parsed: ParsedFile, mapping: dict[str, str]) -> Iterator[LineResult]:
    for line, cells in parsed.rows:
        yield validate_line(line, parsed.headers, cells, mapping)


def mapping_errors(mapping: dict[str, str]) -> list[str]:
    targets = [t for t in mapping.values() if t and not t.startswith(PROPERTIES_PREFIX)]
    problems = []
    if "email" not in targets:
        problems.append("email")
    unknown = [t for t in targets if t not in FIELDS]
    problems += [f"unknown:{t}" for t in unknown]
    return problems


def error_report(errors: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "column", "message"])
    for e in errors:
        writer.writerow(safe_row([e["line"], e["column"], e["message"]]))
    return out.getvalue()
