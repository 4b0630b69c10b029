"""A sequence's steps as plain data: what they may say (field errors keyed by the step's
path), where an enrollment stands in them (a cursor), and when a wait ends (durations,
business days, a date, a send window in the lead's time zone). No database.

Steps (SPEC.md): wait {days | hours | until, business_days, window: {start, end, days}},
email {template}, split {variants: [{weight, steps}]}, branch {if, then, else}, and the
actions task, update, notify_owner, move_stage, enroll (nurturing.actions checks those).

A cursor is the path of the next step to run: [2] is the third top-level step,
[2, "then", 0] the first step of its "then" list, [2, "variants", 1, "steps", 0] the first
step of its second variant; [] means the walk is over."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leadcrm import inputs
from nurturing import conditions

STEP_TYPES = ("wait", "email", "split", "branch", "task", "update", "notify_owner", "move_stage", "enroll")
ACTION_TYPES = ("task", "update", "notify_owner", "move_stage", "enroll")
EXIT_REASONS = ("reply", "opt_out", "bounce", "stage_change", "converted")
REENTRY_KINDS = ("never", "always", "after_days")
MAX_STEPS = 200  # in the whole tree
MAX_DEPTH = 5  # nested branches/splits
MAX_VARIANTS = 10
MAX_DAYS = 3650
MAX_HOURS = 24 * MAX_DAYS
MAX_REENTRY_DAYS = 99_999
PATH_MAX = 40  # StepRun.path, Message.step
UTC = dt.UTC
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
WEEK = (0, 1, 2, 3, 4, 5, 6)


class StepsInvalid(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(str(errors))
        self.errors = errors


# --- validation ----------------------------------------------------------------------------


def _number(value: object, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and 0 <= value <= high


def _default_action_errors(action: object) -> list[str]:
    from nurturing.actions import action_errors

    return action_errors(action)


def steps_errors(
    steps: object,
    *,
    template_ids: set[int] | None = None,
    sequence_ids: set[int] | None = None,
    segment_ids: set[int] | None = None,
    action_errors: Callable[[object], list[str]] | None = None,
) -> dict[str, list[str]]:
    """Field errors keyed by step path ("steps[2].variants[0].steps[1].template"), {} when the
    steps may be saved. The id sets, when given, are what exists (unknown ids are errors)."""
    try:
        clean_steps(
            steps,
            template_ids=template_ids,
            sequence_ids=sequence_ids,
            segment_ids=segment_ids,
            action_errors=action_errors,
        )
    except StepsInvalid as exc:
        return exc.errors
    return {}


def clean_steps(
    steps: object,
    *,
    template_ids: set[int] | None = None,
    sequence_ids: set[int] | None = None,
    segment_ids: set[int] | None = None,
    action_errors: Callable[[object], list[str]] | None = None,
) -> list[dict]:
    """The steps normalised (defaults filled, numbers as numbers), or StepsInvalid."""
    checker = _Checker(template_ids, sequence_ids, segment_ids, action_errors or _default_action_errors)
    cleaned = checker.steps(steps, "steps", (), 0)
    if checker.count > MAX_STEPS and "steps" not in checker.errors:
        checker.add("steps", f"At most {MAX_STEPS} steps in all.")
    if checker.errors:
        raise StepsInvalid(checker.errors)
    return cleaned


class _Checker:
    def __init__(self, template_ids, sequence_ids, segment_ids, action_errors):
        self.template_ids, self.sequence_ids, self.segment_ids = template_ids, sequence_ids, segment_ids
        self.action_errors = action_errors
        self.errors: dict[str, list[str]] = {}
        self.count = 0

    def add(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def steps(self, steps: object, key: str, cursor: tuple, depth: int) -> list[dict]:
        if not isinstance(steps, list):
            self.add(key, "A list of steps.")
            return []
        if len(steps) > MAX_STEPS:
            self.add(key, f"At most {MAX_STEPS} steps.")
            return []
        out = []
        for n, step in enumerate(steps):
            self.count += 1
            if self.count > MAX_STEPS:
                return out
            out.append(self.step(step, f"{key}[{n}]", (*cursor, n), depth))
        return out

    def step(self, step: object, key: str, cursor: tuple, depth: int) -> dict:
        if not isinstance(step, Mapping):
            self.add(key, "A step is a JSON object with a type.")
            return {}
        kind = step.get("type")
        if not isinstance(kind, str) or kind not in STEP_TYPES:
            self.add(f"{key}.type", f"One of {', '.join(STEP_TYPES)}.")
            return {}
        if len(path_of(list(cursor))) > PATH_MAX:
            self.add(key, "Steps nest too deep.")
            return {}
        if kind == "wait":
            return self.wait(step, key)
        if kind == "email":
            self.unknown(step, key, {"template"})
            template = step.get("template")
            if not inputs.is_id(template):
                self.add(f"{key}.template", "The id of an e-mail template.")
            elif self.template_ids is not None and template not in self.template_ids:
                self.add(f"{key}.template", f"Unknown e-mail template {template}.")
            return {"type": "email", "template": template}
        if kind in ("split", "branch") and depth >= MAX_DEPTH:
            self.add(key, f"Branches and splits nest at most {MAX_DEPTH} deep.")
            return {}
        if kind == "split":
            return self.split(step, key, cursor, depth)
        if kind == "branch":
            self.unknown(step, key, {"if", "then", "else"})
            cond = step.get("if", {})
            for message in conditions.condition_errors(cond, segment_ids=self.segment_ids):
                self.add(f"{key}.if", message)
            return {
                "type": "branch",
                "if": cond if isinstance(cond, Mapping) else {},
                "then": self.steps(step.get("then", []), f"{key}.then", (*cursor, "then"), depth + 1),
                "else": self.steps(step.get("else", []), f"{key}.else", (*cursor, "else"), depth + 1),
            }
        return self.action(step, key, kind)

    def unknown(self, step: Mapping, key: str, allowed: set[str]) -> None:
        for name in sorted(set(step) - allowed - {"type"}, key=str):
            self.add(f"{key}.{name}"[:200], f"Unknown for a {step.get('type')} step.")

    def wait(self, step: Mapping, key: str) -> dict:
        self.unknown(step, key, {"days", "hours", "until", "business_days", "window"})
        out: dict = {"type": "wait"}
        if "days" in step:
            if not _number(step["days"], MAX_DAYS):
                self.add(f"{key}.days", f"A number of days from 0 to {MAX_DAYS}.")
            else:
                out["days"] = step["days"]
        if "hours" in step:
            if not _number(step["hours"], MAX_HOURS):
                self.add(f"{key}.hours", f"A number of hours from 0 to {MAX_HOURS}.")
            else:
                out["hours"] = step["hours"]
        business = step.get("business_days", False)
        if not isinstance(business, bool):
            self.add(f"{key}.business_days", "True or false.")
        elif business:
            if "days" in out and out["days"] != int(out["days"]):
                self.add(f"{key}.days", "Business days are whole days.")
            out["business_days"] = True
        if "until" in step:
            if "days" in step or "hours" in step:
                self.add(f"{key}.until", "Either a duration (days, hours) or a date, not both.")
            until = parse_until(step["until"])
            if until is None:
                self.add(f"{key}.until", "An ISO date (2026-12-24) or date and time.")
            else:
                out["until"] = step["until"]
        if "window" in step:
            window, message = clean_window(step["window"])
            if message:
                self.add(f"{key}.window", message)
            else:
                out["window"] = window
        said = any(k.startswith(key + ".") for k in self.errors)
        if not set(out) & {"days", "hours", "until", "window"} and not said:
            self.add(key, "A wait needs days, hours, until or a window.")
        return out

    def split(self, step: Mapping, key: str, cursor: tuple, depth: int) -> dict:
        self.unknown(step, key, {"variants"})
        variants = step.get("variants")
        if not isinstance(variants, list) or not 2 <= len(variants) <= MAX_VARIANTS:
            self.add(f"{key}.variants", f"A list of 2 to {MAX_VARIANTS} variants {{weight, steps}}.")
            return {"type": "split", "variants": []}
        out = []
        for n, variant in enumerate(variants):
            vkey = f"{key}.variants[{n}]"
            if not isinstance(variant, Mapping):
                self.add(vkey, "A variant is {weight, steps}.")
                continue
            self.unknown(variant, vkey, {"weight", "steps", "name"})
            weight = variant.get("weight", 1)
            if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 1000:
                self.add(f"{vkey}.weight", "A whole number from 0 to 1000.")
                weight = 0
            name = variant.get("name", "")
            if not isinstance(name, str) or len(name) > 100 or "\x00" in name:
                self.add(f"{vkey}.name", "A text of at most 100 characters.")
                name = ""
            steps = self.steps(variant.get("steps", []), f"{vkey}.steps", (*cursor, "variants", n, "steps"), depth + 1)
            out.append({"weight": weight, "steps": steps, **({"name": name} if name else {})})
        if out and len(out) == len(variants) and sum(v["weight"] for v in out) <= 0:
            self.add(f"{key}.variants", "At least one variant needs a weight above 0.")
        return {"type": "split", "variants": out}

    def action(self, step: Mapping, key: str, kind: str) -> dict:
        try:
            messages = self.action_errors(dict(step))
        except Exception:  # a checker must not fail on odd input: it is an error like another
            messages = ["Not a valid action."]
        for message in messages:
            name, sep, text = message.partition(": ")
            if sep and re.fullmatch(r"[a-z_]+", name):
                self.add(f"{key}.{name}", text)
            else:
                self.add(key, message)
        if kind == "enroll" and inputs.is_id(step.get("sequence")):
            if self.sequence_ids is not None and step["sequence"] not in self.sequence_ids:
                self.add(f"{key}.sequence", f"Unknown sequence {step['sequence']}.")
        return dict(step)


def clean_window(value: object) -> tuple[dict, str]:
    """{"start": "09:00", "end": "17:00", "days": [0..4]} (Monday is 0), or an error."""
    if not isinstance(value, Mapping) or set(value) - {"start", "end", "days"}:
        return {}, 'An object {"start": "09:00", "end": "17:00", "days": [0, 1, 2, 3, 4]}.'
    start, end = value.get("start", "00:00"), value.get("end", "23:59")
    if not (isinstance(start, str) and _TIME.match(start) and isinstance(end, str) and _TIME.match(end)):
        return {}, "start and end are times HH:MM."
    if start >= end:
        return {}, "start comes before end (same day)."
    days = value.get("days", list(WEEK))
    if (
        not isinstance(days, list)
        or not days
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days)
    ):
        return {}, "days: a list of week days, 0 (Monday) to 6 (Sunday)."
    return {"start": start, "end": end, "days": sorted(set(days))}, ""


def parse_until(value: object) -> dt.date | dt.datetime | None:
    if not isinstance(value, str) or len(value) > 40 or "\x00" in value:
        return None
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def exit_on_errors(value: object) -> tuple[list[str], list[str]]:
    """(the reasons, sorted and distinct; errors)."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v in EXIT_REASONS for v in value):
        return [], [f"A list among {', '.join(EXIT_REASONS)}."]
    return sorted(set(value)), []


def parse_reentry(value: object) -> tuple[str, int | None, list[str]]:
    """ "never" | "always" | "after_days:N" -> (kind, days, errors)."""
    if value in ("never", "always"):
        return value, None, []
    if isinstance(value, str) and value.startswith("after_days:"):
        days = value.removeprefix("after_days:")
        if days.isdigit() and len(days) <= 5 and 1 <= int(days) <= MAX_REENTRY_DAYS:
            return "after_days", int(days), []
    return "", None, [f'"never", "always" or "after_days:N" (N from 1 to {MAX_REENTRY_DAYS}).']


def reentry_text(kind: str, days: int | None) -> str:
    return f"after_days:{days}" if kind == "after_days" else kind


# --- cursors -------------------------------------------------------------------------------


def path_of(cursor: list) -> str:
    """The cursor as StepRun.path and Message.step: "2.variants.1.steps.0"."""
    return ".".join(str(part) for part in cursor)


def _frames(cursor: list) -> list[tuple[tuple, int]] | None:
    """(path of the list, index in it) for each level of the cursor; None if malformed."""
    if not cursor or not isinstance(cursor[0], int) or isinstance(cursor[0], bool):
        return None
    frames = [((), cursor[0])]
    i = 1
    while i < len(cursor):
        head = (*frames[-1][0], frames[-1][1])
        part = cursor[i]
        if part in ("then", "else") and i + 1 < len(cursor) and isinstance(cursor[i + 1], int):
            frames.append(((*head, part), cursor[i + 1]))
            i += 2
        elif (
            part == "variants"
            and i + 3 < len(cursor)
            and isinstance(cursor[i + 1], int)
            and cursor[i + 2] == "steps"
            and isinstance(cursor[i + 3], int)
        ):
            frames.append(((*head, "variants", cursor[i + 1], "steps"), cursor[i + 3]))
            i += 4
        else:
            return None
    return frames


def _resolve(steps: list, path: tuple) -> object:
    node: object = steps
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or not 0 <= part < len(node):
                return None
            node = node[part]
        else:
            if not isinstance(node, Mapping):
                return None
            node = node.get(part)
    return node


def step_at(steps: list, cursor: list) -> dict | None:
    """The step the cursor points at (None: the cursor does not fit these steps)."""
    if _frames(cursor) is None:
        return None
    node = _resolve(steps, tuple(cursor))
    return node if isinstance(node, Mapping) else None


def first_cursor(steps: list) -> list:
    return [0] if steps else []


def next_cursor(steps: list, cursor: list) -> list:
    """The cursor after the step at `cursor` is done (its nested lists not entered): the
    next sibling, or after the branch or split that holds this list; [] at the end."""
    frames = _frames(cursor)
    if frames is None:
        return []
    while frames:
        path, index = frames.pop()
        container = _resolve(steps, path)
        if isinstance(container, list) and index + 1 < len(container):
            return [*path, index + 1]
    return []


def enter(steps: list, cursor: list, branch: str | int) -> list:
    """The first step of the "then"/"else" list (branch) or of variant `branch` (an int)
    of the step at cursor; when that list is empty, the step after it."""
    sub = [*cursor, "variants", branch, "steps"] if isinstance(branch, int) else [*cursor, branch]
    container = _resolve(steps, tuple(sub))
    if isinstance(container, list) and container:
        return [*sub, 0]
    return next_cursor(steps, cursor)


def variant_of(cursor: list) -> str:
    """The innermost split variant the cursor is in, as Message.variant ("3:1"), or ""."""
    for i in range(len(cursor) - 1, -1, -1):
        if cursor[i] == "variants" and i + 1 < len(cursor):
            return f"{path_of(cursor[:i])}:{cursor[i + 1]}"
    return ""


def window_for(steps: list, cursor: list) -> dict | None:
    """The send window of the wait that leads to this step: the nearest wait before it in
    the walk (earlier siblings, then those of the branches and splits holding it). A wait
    without a window clears it."""
    frames = _frames(cursor)
    if frames is None:
        return None
    while frames:
        path, index = frames.pop()
        container = _resolve(steps, path)
        if isinstance(container, list):
            for j in range(min(index, len(container)) - 1, -1, -1):
                step = container[j]
                if isinstance(step, Mapping) and step.get("type") == "wait":
                    return step.get("window")
    return None


def choose_variant(weights: list[int], *, enrollment_id: int, path: str) -> int:
    """The variant one enrollment takes at one split: weighted, and the same every time it is
    asked (a retry takes the same branch)."""
    total = sum(max(0, w) for w in weights)
    if total <= 0:
        return 0
    digest = hashlib.sha256(f"{enrollment_id}:{path}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for n, weight in enumerate(weights):
        point -= max(0, weight)
        if point < 0:
            return n
    return len(weights) - 1


# --- time ----------------------------------------------------------------------------------


@functools.cache
def _country_zones() -> dict[str, str]:
    """ISO country code -> its first zone in the tz database's zone.tab."""
    places = []
    try:
        import tzdata

        places.append(Path(tzdata.__file__).parent / "zoneinfo" / "zone.tab")
    except ImportError:  # pragma: no cover - the system's database then
        pass
    places.append(Path("/usr/share/zoneinfo/zone.tab"))
    for place in places:
        try:
            text = place.read_text(encoding="utf-8")
        except OSError:
            continue
        zones: dict[str, str] = {}
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) >= 3:
                zones.setdefault(parts[0].strip().upper(), parts[2].strip())
        if zones:
            return zones
    return {}


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    if not isinstance(name, str) or not name or len(name) > 64 or "\x00" in name or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def lead_zone(*, timezone_name: object = None, country: object = None, fallback: str = "UTC") -> ZoneInfo:
    """The lead's time zone: its own ("timezone" property) when valid, else its country's
    main zone (tz database zone.tab), else the fallback (the team's zone, the site's)."""
    if isinstance(timezone_name, str):
        zone = _zone(timezone_name)
        if zone is not None:
            return zone
    if isinstance(country, str) and len(country) == 2:
        name = _country_zones().get(country.upper())
        zone = _zone(name) if name else None
        if zone is not None:
            return zone
    return _zone(fallback) or ZoneInfo("UTC")


def _hm(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def in_window(at: dt.datetime, window: Mapping, zone: ZoneInfo) -> bool:
    local = at.astimezone(zone)
    start, end = _hm(window["start"]), _hm(window["end"])
    return local.weekday() in window["days"] and start <= local.time().replace(tzinfo=None) < end


def next_in_window(at: dt.datetime, window: Mapping, zone: ZoneInfo) -> dt.datetime:
    """`at` when it is inside the window, else the window's next opening (in UTC)."""
    if in_window(at, window, zone):
        return at.astimezone(UTC)
    local = at.astimezone(zone)
    start = _hm(window["start"])
    for offset in range(8):
        day = local.date() + dt.timedelta(days=offset)
        if day.weekday() not in window["days"]:
            continue
        opening = dt.datetime.combine(day, start, tzinfo=zone)
        if opening > local:
            return opening.astimezone(UTC)
    return at.astimezone(UTC)  # pragma: no cover - a valid window opens within a week


def add_business_days(local: dt.datetime, days: int) -> dt.datetime:
    """Monday to Friday only, same wall time; from a weekend the count starts on Monday."""
    out = local
    while days > 0:
        out = out + dt.timedelta(days=1)
        if out.weekday() < 5:
            days -= 1
    while out.weekday() >= 5:
        out = out + dt.timedelta(days=1)
    return out


def wait_until(step: Mapping, *, start: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """When a wait that starts at `start` ends (aware, UTC): days in the lead's wall time
    (business days skip weekends), hours in elapsed time, until a date (midnight in the
    lead's zone) or date and time, then the send window's next opening if outside it."""
    local = start.astimezone(zone)
    if "until" in step:
        until = parse_until(step["until"])
        if isinstance(until, dt.datetime):
            target = until if until.tzinfo else until.replace(tzinfo=zone)
        elif isinstance(until, dt.date):
            target = dt.datetime.combine(until, dt.time(0, 0), tzinfo=zone)
        else:
            target = local
        local = max(local, target.astimezone(zone))
    else:
        days = step.get("days") or 0
        if step.get("business_days"):
            local = add_business_days(local, int(days))
        elif days:
            naive = local.replace(tzinfo=None) + dt.timedelta(days=days)
            local = naive.replace(tzinfo=zone)
        hours = step.get("hours") or 0
        if hours:
            local = (local.astimezone(UTC) + dt.timedelta(hours=hours)).astimezone(zone)
            if step.get("business_days"):
                local = add_business_days(local, 0)
    window = step.get("window")
    if window:
        if step.get("business_days") and set(window["days"]) & {0, 1, 2, 3, 4}:
            window = {**window, "days": [d for d in window["days"] if d < 5]}  # weekends stay out
        return next_in_window(local, window, zone)
    return local.astimezone(UTC)
