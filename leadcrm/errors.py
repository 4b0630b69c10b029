"""Errors any app's services raise; the API turns them into 400 / 409 answers."""

from __future__ import annotations


class ServiceError(Exception):
    """Bad input found by a service (not by a serializer): answers 400 with field errors."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(str(errors))
        self.errors = errors


class Conflict(Exception):
    """A state change a rule refuses: answers 409 naming the rule (`guard`)."""

    status_code = 409

    def __init__(self, guard: str, message: str, **details: object):
        super().__init__(message)
        self.guard = guard
        self.details = details


class TransitionRefused(Exception):
    """A lifecycle move that a guard refused: the API answers 409 naming the guard, the
    stage the lead is in and the one asked for. `failure` is the lifecycle engine's
    GuardFailure (guard, message, details)."""

    def __init__(self, failure, lead, to: str):
        super().__init__(failure.message)
        self.failure = failure
        self.lead = lead
        self.to = to
