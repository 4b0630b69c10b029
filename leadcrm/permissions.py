"""Who may do what, by role: the rules every app's pages and API share.

Who may *see* a lead is `leads.selectors.leads_visible_to`; who may *own* one and which
roles may call which API are here, so that no app re-states them."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as PageDenied
from django.db.models import Q
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.models import Role, User
from leadcrm.actors import Actor, actor_of

# Roles that work leads and can be their owner (marketing captures and nurtures, never owns).
SELLER_ROLES = (Role.SDR, Role.MANAGER, Role.ADMIN)
# The same rule as a filter on users: active people in a seller role.
SELLERS = Q(is_active=True, role__in=SELLER_ROLES)


def may_own_leads(user: User | None) -> bool:
    """Only active sellers own leads: assignment, routing, the admin and the pages ask this."""
    return user is not None and user.is_active and user.role in SELLER_ROLES


def has_role(user: User, roles: tuple[str, ...]) -> bool:
    """Admins may do everything a role may; anyone else needs one of the roles."""
    return bool(user.is_authenticated and user.is_active and (user.is_admin_role or user.role in roles))


def require_role(request, *roles: str, message: str = "Your role does not allow this.") -> None:
    """For a check that must come after a lookup (404 before 403 on hidden objects)."""
    if not has_role(request.user, roles):
        raise PermissionDenied(message)


def page_actor(request, *roles: str, message: str) -> Actor:
    """A page's write needs one of the roles (admins pass): the acting person, or the 403
    page saying why."""
    if not has_role(request.user, roles):
        raise PageDenied(message)
    return actor_of(request)


class RolePermission(BasePermission):
    """DRF permission: reads (GET, HEAD, OPTIONS) need a read or a write role, writes a write
    role; admins pass both. Build one with `roles(...)`.

    On a detail view (`detail=True`) a write first needs a read role, and the write role is
    checked on the object (`check_object_permissions` after the lookup): a caller who may
    read the configuration but not this object gets 404, not a 403 that confirms it exists."""

    read_roles: tuple[str, ...] = ()
    write_roles: tuple[str, ...] = ()
    detail = False
    message = "Your role does not allow this."

    def _allowed(self, request) -> tuple[str, ...]:
        readers = (*self.read_roles, *self.write_roles)
        return readers if request.method in SAFE_METHODS else self.write_roles

    def has_permission(self, request, view) -> bool:
        if self.detail:
            return has_role(request.user, (*self.read_roles, *self.write_roles))
        return has_role(request.user, self._allowed(request))

    def has_object_permission(self, request, view, obj) -> bool:
        return has_role(request.user, self._allowed(request))


def roles(
    *, read: tuple[str, ...] = (), write: tuple[str, ...] = (), detail: bool = False, message: str = ""
) -> type[RolePermission]:
    """`permission_classes = [roles(read=(Role.MANAGER,))]`: managers read, admins only write."""
    attrs = {"read_roles": tuple(read), "write_roles": tuple(write), "detail": detail}
    if message:
        attrs["message"] = message
    return type("RolePermission", (RolePermission,), attrs)
