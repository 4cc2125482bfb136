"""Browser tests: Debian's Chromium driven by Playwright (its sync API, no
pytest plugin) against a live gunicorn server and the real Celery worker, both
on the test PostgreSQL database. Nothing is downloaded: Playwright launches
/usr/bin/chromium. Without Chromium the tests skip (under CI=true they fail).

Tests here see the server through committed data only: mark them
``@pytest.mark.django_db(transaction=True)``.
"""
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT, WebServer

CHROMIUM = Path(os.environ.get("DATARUN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-extensions",
                 "--no-first-run", "--disable-sync"]
ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def chromium_missing() -> str | None:
    """Why no browser test can run here, or None."""
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium (Debian's package)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed: pip install -r requirements-dev.txt"
    return None


@pytest.fixture(scope="session")
def _chromium() -> Path:
    """Chromium's path; skips the test without it (fails it under CI=true)."""
    if reason := chromium_missing():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the browser tests cannot run: {reason}")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(_chromium):
    """One headless Chromium per test module."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop in this thread, which Django's
    # ORM guard takes for async code; the tests' ORM calls are plain sync code.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(_chromium),
                                                  args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture(scope="session")
def web_server(_chromium, live_server_process) -> WebServer:
    """The session's live gunicorn server (tests/conftest.py), for the browser."""
    return live_server_process


@dataclass
class Visit:
    """A browser tab on the live server, with what went wrong in it."""
    page: object
    server: WebServer
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    layout_problems: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        """A full-page PNG of the current page under artifacts/screenshots/;
        a page wider than the window (a horizontal scroll bar) is a problem."""
        width, window = self.page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]")
        if width > window:
            self.layout_problems.append(f"{name}: the page is {width} px wide in a "
                                        f"{window} px window ({self.page.url})")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.screenshots.append(path)
        print(f"screenshot: {path.relative_to(ROOT)}")
        return path

    def problems(self, *, allow_console: tuple[str, ...] = ()) -> list[str]:
        console = [c for c in self.console_errors if not any(a in c for a in allow_console)]
        return (self.page_errors + console + self.failed_requests + self.external_requests
                + self.layout_problems)


@pytest.fixture
def visit(browser, web_server, request):
    """A fresh browser context (no cookies) in a fixed time zone. Requests to
    any host but the live server's are recorded and refused: pages must load
    nothing from a CDN or any other outside address."""
    context = browser.new_context(base_url=web_server.url, viewport={"width": 1280, "height": 900},
                                  timezone_id="Europe/Paris", locale="en-GB")
    context.set_default_timeout(15_000)
    page = context.new_page()
    visit = Visit(page, web_server)

    def route(route):
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            visit.external_requests.append(f"request to an outside host: {route.request.url}")
            route.abort()

    context.route("**/*", route)
    page.on("pageerror", lambda exc: visit.page_errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and visit.console_errors.append(
        f"console error on {page.url}: {msg.text}"))
    page.on("requestfailed", lambda req: (
        # Outside hosts are recorded above; a navigation cancels a pending poll.
        urlsplit(req.url).hostname in LOCAL_HOSTS and req.failure != "net::ERR_ABORTED"
        and visit.failed_requests.append(f"request failed: {req.method} {req.url}: "
                                         f"{req.failure}")))
    page.on("response", lambda resp: (
        # A page may answer 4xx to a refused action; a server error never.
        (resp.status >= 500 or resp.status >= 400 and resp.request.resource_type != "document")
        and visit.failed_requests.append(
            f"{resp.status} for {resp.request.resource_type} {resp.request.method} {resp.url}")))
    yield visit
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        try:
            visit.shot(f"FAILED-{request.node.name}")
        except Exception as exc:  # the page may be gone with the failure
            print(f"no failure screenshot: {exc}")
        print(f"--- web server log (tail) ---\n{web_server.log_tail()}")
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
