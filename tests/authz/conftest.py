"""The small organisation of the leads tests, shared with the authorisation tests."""

from tests.leads.conftest import mk_lead, people  # noqa: F401
