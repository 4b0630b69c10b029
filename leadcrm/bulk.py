"""Set-based inserts and updates for the 10,000-row paths, on PostgreSQL.

Django's bulk_create prepares every value through each field's `get_db_prep_save` and
builds one huge INSERT (~0.4 ms a row with our indexes); bulk_update builds a CASE per
column. Here the rows travel as one JSON document (encoded in C by `json.dumps`) and
PostgreSQL unpacks them with `json_populate_recordset` into one INSERT ... SELECT (with
ON CONFLICT where a unique key may race) or one UPDATE ... FROM. Everything stays inside
the caller's transaction. Other databases (the SQLite development default) fall back on
Django's bulk methods.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from decimal import Decimal

from django.db import connection, models
from django.utils import timezone


def _json_default(value: object) -> str:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"Cannot store {type(value).__name__} through JSON")


def _plan(model: type[models.Model], fields: list[models.Field]) -> list[tuple[str, str, object, bool]]:
    """(attname, column, default, auto timestamp) for each column written."""
    return [
        (
            f.attname,
            f.column,
            f.get_default() if f.has_default() else None,
            bool(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)),
        )
        for f in fields
    ]


def _rows(objs: Iterable[models.Model | dict], plan: list, now: dt.datetime) -> list[dict]:
    """Plain dicts keyed by column: from a dict keyed by attname (missing → the field's
    default) or from a model instance's own attributes."""
    out = []
    for obj in objs:
        data = obj if isinstance(obj, dict) else obj.__dict__
        row = {}
        for attname, column, default, auto in plan:
            value = data.get(attname, default)
            row[column] = now if auto and value is None else value
        out.append(row)
    return out


def _recordset(model: type[models.Model]) -> str:
    return f"json_populate_recordset(NULL::{connection.ops.quote_name(model._meta.db_table)}, %s::json)"


def insert_select(model: type[models.Model], objs: Iterable[models.Model | dict]) -> tuple[str, list]:
    """The `INSERT INTO table (cols) SELECT cols FROM <rows>` part and its one parameter,
    for callers that extend the statement (ON CONFLICT, RETURNING, a CTE around it)."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    rows = _rows(objs, _plan(model, fields), timezone.now())
    q = connection.ops.quote_name
    cols = ", ".join(q(f.column) for f in fields)
    sql = f"INSERT INTO {q(model._meta.db_table)} ({cols}) SELECT {cols} FROM {_recordset(model)}"
    return sql, [json.dumps(rows, default=_json_default)] if rows else []


def insert_rows(
    objs: Iterable[models.Model | dict],
    *,
    model: type[models.Model],
    conflict_key: str | None = None,
    returning: tuple[str, ...] = (),
) -> list[tuple]:
    """Insert rows (unsaved instances, or dicts keyed by attname); returns the `returning`
    columns of the inserted rows, in insertion order.

    With `conflict_key`, rows whose key already exists are skipped (ON CONFLICT DO NOTHING):
    the caller sees them missing from the result and decides what that means.
    """
    sql, params = insert_select(model, objs)
    if not params:
        return []
    q = connection.ops.quote_name
    if conflict_key:
        sql += f" ON CONFLICT ({q(conflict_key)}) DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(q(c) for c in returning)
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if returning else []


def _instances(objs: list[models.Model | dict], model: type[models.Model]) -> list[models.Model]:
    return [model(**o) if isinstance(o, dict) else o for o in objs]


def bulk_insert(objs: list[models.Model | dict], *, model: type[models.Model]) -> None:
    """One INSERT on PostgreSQL, bulk_create elsewhere."""
    if connection.vendor == "postgresql":
        insert_rows(objs, model=model)
    else:
        model.objects.bulk_create(_instances(objs, model), batch_size=2000)


def update_rows(objs: list[models.Model | dict], *, model: type[models.Model], fields: list[str]) -> None:
    """UPDATE many rows, each with its own values (instances, or dicts keyed by attname with
    the primary key), in one statement."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(_instances(objs, model), fields, batch_size=2000)
        return
    chosen = [model._meta.pk] + [model._meta.get_field(name) for name in fields]
    rows = _rows(objs, _plan(model, chosen), timezone.now())
    q = connection.ops.quote_name
    table, pk = q(model._meta.db_table), q(chosen[0].column)
    sets = ", ".join(f"{q(f.column)} = j.{q(f.column)}" for f in chosen[1:])
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {table} SET {sets} FROM {_recordset(model)} AS j WHERE {table}.{pk} = j.{pk}",
            [json.dumps(rows, default=_json_default)],
        )
