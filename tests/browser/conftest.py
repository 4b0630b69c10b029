"""The browser fixtures live in tests/browser/fixtures.py and are registered once, by
tests/conftest.py, for every directory: two definitions of the session's `browser` would
start a second Playwright while the first runs (it refuses). Tests import `login` and
`shot` from here or from there."""

from tests.browser.fixtures import ARTIFACTS, CHROMIUM, login, shot  # noqa: F401
