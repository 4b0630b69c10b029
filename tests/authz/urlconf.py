"""Every operation the URL conf serves, read from `django.urls.get_resolver()`: the
authorisation matrix (test_matrix.py) is generated from it, so a new URL or a new method
on an existing one shows up there without anyone remembering to add it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from django.urls import URLPattern, URLResolver, get_resolver

# What any view may answer that is not an operation of its own: OPTIONS (DRF's metadata,
# Django's Allow header) and HEAD (GET without a body).
NOT_OPERATIONS = {"options", "head"}
# Django answers any method for a function view without a method decorator.
UNDECORATED = ("GET", "POST")


@dataclasses.dataclass(frozen=True)
class Operation:
    name: str  # "namespace:url-name", or the route when the pattern has no name
    route: str  # the full route, e.g. "api/v1/leads/<int:pk>/"
    method: str
    params: tuple[str, ...]  # the route's path parameters

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.method)

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/")


def _view_class(callback):
    return getattr(callback, "cls", None) or getattr(callback, "view_class", None)


def _decorated_methods(callback) -> tuple[str, ...] | None:
    """The list given to `require_http_methods` (require_POST...) anywhere in the chain of
    decorators (each wraps the next with functools.wraps, so `__wrapped__` walks it)."""
    func = callback
    while func is not None:
        code = getattr(func, "__code__", None)
        if code is not None and func.__closure__:
            cells = dict(zip(code.co_freevars, func.__closure__, strict=True))
            if "request_method_list" in cells:
                return tuple(m.upper() for m in cells["request_method_list"].cell_contents)
        func = getattr(func, "__wrapped__", None)
    return None


def view_methods(callback) -> tuple[str, ...]:
    actions = getattr(callback, "actions", None)  # a DRF viewset bound by a router
    if actions:
        return tuple(sorted(m.upper() for m in actions if m not in NOT_OPERATIONS))
    cls = _view_class(callback)
    if cls is not None:
        return tuple(
            m.upper() for m in cls.http_method_names if m not in NOT_OPERATIONS and callable(getattr(cls, m, None))
        )
    return _decorated_methods(callback) or UNDECORATED


def _walk(patterns, prefix: str, namespace: str, params: tuple[str, ...]) -> Iterator[tuple]:
    for p in patterns:
        route = prefix + str(p.pattern)
        names = (*params, *getattr(p.pattern, "converters", {}).keys())
        if isinstance(p, URLResolver):
            ns = ":".join(n for n in (namespace, p.namespace) if n)
            yield from _walk(p.url_patterns, route, ns, names)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if namespace and p.name else p.name or route
            yield name, route, names, p.callback


def operations(skip=lambda name, route: False) -> list[Operation]:
    """(URL name, method) for every pattern of the root URL conf, nested includes too."""
    out = []
    for name, route, params, callback in _walk(get_resolver().url_patterns, "", "", ()):
        if skip(name, route):
            continue
        for method in view_methods(callback):
            out.append(Operation(name, route, method, tuple(dict.fromkeys(params))))
    return out
