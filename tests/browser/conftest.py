"""Browser fixtures: Debian's Chromium driven by Playwright for Python (sync API).

Never `playwright install` (it downloads browsers): the tests use /usr/bin/chromium (NOTES.md).
Without it the browser tests are skipped, unless RESCUEHUB_TEST_REQUIRE_BROWSER=1 (CI): then
they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("RESCUEHUB_TEST_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("RESCUEHUB_TEST_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# A 10-inch tablet in landscape, the office's smallest screen.
TABLET = {"width": 1280, "height": 800}
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _unavailable(reason: str):
    if REQUIRE_BROWSER:
        pytest.fail(f"a browser is required (RESCUEHUB_TEST_REQUIRE_BROWSER=1) but {reason}",
                    pytrace=False)
    pytest.skip(f"browser tests need Chromium: {reason}")


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """One headless Chromium for the session."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator:
    """A fresh browser context (no cookies) and page, Chinese locale, tablet-sized."""
    context = browser.new_context(viewport=TABLET, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.errors = []  # uncaught script errors, checked by the tests
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    close(context)


def close(context) -> None:
    """Close a context whose page may still be loading through a test's route handler: the
    handlers go first, waiting for none (a handler that ran into the closing page raised in
    Playwright's dispatcher, failing the test after it had passed)."""
    for page in context.pages:
        page.unroute_all(behavior="ignoreErrors")
    context.unroute_all(behavior="ignoreErrors")
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where browser tests leave screenshots (tests/artifacts)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
