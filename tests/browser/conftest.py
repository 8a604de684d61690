"""A live server on 127.0.0.1 and Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def live_server(make_app) -> Iterator[tuple[str, object]]:
    """Serve a fresh app in a thread; yields (base URL, app)."""
    app = make_app()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # A short poll interval: shutting the server down then takes milliseconds, not 0.5 s.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium (no browser download); skipped with a reason if absent."""
    if not (shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)):
        pytest.skip(
            f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def journey(browser, live_server):
    """A fresh live app and the shared steps of tests/browser/journeys.py; each person who
    signs in gets their own browser context (their own cookies)."""
    from tests.browser.journeys import Journey

    base_url, app = live_server
    journey = Journey(browser, base_url, app)
    yield journey
    journey.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, add the page the browser was showing to the report."""
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", {})
    journey = funcargs.get("journey")
    page = journey.page if journey is not None else funcargs.get("page")
    if report.when == "call" and report.failed and page is not None:
        try:
            text = page.locator("body").inner_text(timeout=2000)
        except Exception as error:  # noqa: BLE001 - a diagnostic only
            text = f"(could not read the page: {error})"
        report.sections.append(("browser page", f"{page.url}\n\n{text}"))
