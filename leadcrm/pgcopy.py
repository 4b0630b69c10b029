"""Set-based inserts through PostgreSQL's COPY, for the 10,000-row bulk paths.

Django's bulk_create prepares every value through each field's `get_db_prep_save` and
builds one huge INSERT: ~0.4 ms a row with our indexes. COPY into a temporary table, then
one INSERT ... SELECT (with ON CONFLICT where a unique key may race), is ~10x faster and
stays inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zlib
from collections.abc import Callable, Iterable
from decimal import Decimal

from django.db import connection, models
from django.utils import timezone


def _quote(value: object) -> str:
    """One CSV cell of any type: NULL is an unquoted empty cell, strings are quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    return '"' + str(value).replace('"', '""') + '"'


def _text(value: object) -> str:
    return "" if value is None else '"' + str(value).replace('"', '""') + '"'


def _number(value: object) -> str:
    return "" if value is None else str(value)


def _formatter(field: models.Field) -> Callable[[object], str]:
    """The cell format for one column, chosen once per column instead of per value."""
    if isinstance(field, (models.CharField, models.TextField)):
        return _text
    if isinstance(field, (models.IntegerField, models.FloatField, models.ForeignKey)) and not isinstance(
        field, models.BooleanField
    ):
        return _number
    return _quote


def _temp_name(kind: str, table: str, cols: str) -> str:
    """One session-lived temp table per table and column set (it is emptied after use)."""
    return f"_{kind}_{table}_{zlib.crc32(cols.encode()):08x}"


def _columns(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _getter(field: models.Field, now: dt.datetime) -> Callable[[models.Model | dict], str]:
    """Read one column from a model instance or from a dict keyed by attname (cheaper to
    build than an instance: no __init__ over ~40 fields); dicts fall back on defaults."""
    name = field.attname
    auto = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    default = field.get_default() if field.has_default() else None

    fmt = _formatter(field)

    def get(obj):
        value = obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name)
        return fmt(now if auto and value is None else value)

    return get


def copy_insert(
    objs: Iterable[models.Model | dict],
    *,
    model: type[models.Model],
    conflict_key: str | None = None,
    returning: tuple[str, ...] = (),
) -> list[tuple]:
    """Insert unsaved model instances; returns the `returning` columns of inserted rows.

    With `conflict_key`, rows whose key already exists are skipped (ON CONFLICT DO NOTHING):
    the caller sees them missing from the result and decides what that means.
    """
    fields = _columns(model)
    now = timezone.now()
    getters = [_getter(f, now) for f in fields]
    buf = io.StringIO()
    count = 0
    for obj in objs:
        buf.write(",".join([get(obj) for get in getters]))
        buf.write("\n")
        count += 1
    if not count:
        return []
    buf.seek(0)
    table = model._meta.db_table
    cols = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    temp = _temp_name("ins", table, cols)
    with connection.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {temp} AS SELECT {cols} FROM {table} WITH NO DATA")
        cur.execute(f"TRUNCATE {temp}")
        cur.cursor.copy_expert(f"COPY {temp} ({cols}) FROM STDIN WITH (FORMAT csv)", buf)
        sql = f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {temp}"
        if conflict_key:
            sql += f" ON CONFLICT ({connection.ops.quote_name(conflict_key)}) DO NOTHING"
        if returning:
            sql += " RETURNING " + ", ".join(connection.ops.quote_name(c) for c in returning)
        cur.execute(sql)
        rows = cur.fetchall() if returning else []
        cur.execute(f"TRUNCATE {temp}")
    return rows


def bulk_insert(objs: list[models.Model | dict], *, model: type[models.Model]) -> None:
    """COPY on PostgreSQL, bulk_create elsewhere (the SQLite development default)."""
    if connection.vendor == "postgresql":
        copy_insert(objs, model=model)
    else:
        model.objects.bulk_create([model(**o) if isinstance(o, dict) else o for o in objs], batch_size=2000)


def copy_update(objs: list[models.Model], *, model: type[models.Model], fields: list[str]) -> None:
    """UPDATE many rows with their own values in one statement (COPY + UPDATE ... FROM)."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, fields, batch_size=2000)
        return
    now = timezone.now()
    chosen = [model._meta.pk] + [model._meta.get_field(name) for name in fields]
    getters = [_getter(f, now) for f in chosen]
    buf = io.StringIO()
    for obj in objs:
        buf.write(",".join([get(obj) for get in getters]))
        buf.write("\n")
    buf.seek(0)
    table = model._meta.db_table
    q = connection.ops.quote_name
    cols = ", ".join(q(f.column) for f in chosen)
    temp = _temp_name("upd", table, cols)
    with connection.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {temp} AS SELECT {cols} FROM {table} WITH NO DATA")
        cur.execute(f"TRUNCATE {temp}")
        cur.cursor.copy_expert(f"COPY {temp} ({cols}) FROM STDIN WITH (FORMAT csv)", buf)
        sets = ", ".join(f"{q(f.column)} = t.{q(f.column)}" for f in chosen[1:])
        pk = q(chosen[0].column)
        cur.execute(f"UPDATE {table} SET {sets} FROM {temp} t WHERE {table}.{pk} = t.{pk}")
        cur.execute(f"TRUNCATE {temp}")
