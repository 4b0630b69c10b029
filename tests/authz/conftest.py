"""The lead maker of the leads tests, shared with the authorisation tests (the small
organisation `people` is in tests/conftest.py)."""

from tests.leads.conftest import mk_lead  # noqa: F401
