"""Who does a write: every service takes an `Actor`, every audit row and history row names one.

The kernel of the project: apps import this, never each other's copy of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from accounts.models import User


class ActorType(models.TextChoices):
    USER = "user", "User (web)"
    API = "api", "API client"
    AUTOMATION = "automation", "Automation"
    IMPORT = "import", "Import"


@dataclass(frozen=True)
class Actor:
    """A person on the web, an API client, automation or an import."""

    user: User | None = None
    kind: str = ActorType.AUTOMATION

    @classmethod
    def automation(cls) -> Actor:
        return cls(None, ActorType.AUTOMATION)


def actor_of(request) -> Actor:
    """Token calls are API clients; session calls (pages, the browsable API) are people."""
    kind = ActorType.API if getattr(request, "auth", None) is not None else ActorType.USER
    return Actor(user=request.user, kind=kind)
