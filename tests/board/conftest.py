"""Fixtures for the board's browser tests: Debian's Chromium driven by Playwright.

Playwright cannot download its own browsers where CI runs (only package registries are
reachable), so the tests drive the distribution's `chromium`: $TRACKER_TEST_CHROMIUM if set,
else `chromium` on PATH, else, as root on Debian, the tests install it with apt-get themselves,
so that `pip install -e '.[dev]' && pytest` is still all a fresh machine needs. A browser
test is never skipped: without a browser the tests fail, saying how to get one.

The browser is package-scoped, not session-scoped: between two sync calls Playwright marks its
own asyncio loop as the thread's running loop, so while it is started every later
`asyncio.run()` or `anyio.run()` in the thread fails ("cannot be called from a running event
loop"). Closing it when tests/board is done keeps that away from the other packages; inside
tests/board, drive async code from another thread.
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

# Without the background-networking switches Chromium dials Google's services at start, and
# the closed network refuses them; no sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# fonts-dejavu-core is what paints text with --no-install-recommends (chromium only reaches a
# font through an alternative dependency of fontconfig-config); naming it makes that explicit.
APT_PACKAGES = ["chromium", "fonts-dejavu-core"]
INSTALL_HINT = "Install it (Debian: `sudo apt-get install chromium`) or set TRACKER_TEST_CHROMIUM to a Chromium binary."
TIMEOUT_MS = 10_000


def say(config: pytest.Config, text: str) -> None:
    """Tell the person at the terminal, past pytest's output capture."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(f"[tests/board] {text}", file=sys.stderr, flush=True)
        return
    with capture.global_and_fixture_disabled():
        print(f"\n[tests/board] {text}", file=sys.stderr, flush=True)


def can_install_with_apt() -> bool:
    try:
        debian = platform.freedesktop_os_release().get("ID") == "debian"
    except OSError:
        return False
    return debian and os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    # Lock::Timeout waits for another apt or dpkg run (unattended upgrades) instead of failing.
    return subprocess.run(
        ["apt-get", "-o", "DPkg::Lock::Timeout=600", *args],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        timeout=1800,
    )


def install_chromium(config: pytest.Config) -> str:
    """apt-get install chromium; an apt-get update first only when that fails (empty package lists)."""
    # Two test sessions (or xdist workers) on one machine install once: the second waits here.
    with open(Path(tempfile.gettempdir()) / "agent-tracker-chromium-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if found := shutil.which("chromium"):
            return found
        install = ["install", "-y", "--no-install-recommends", *APT_PACKAGES]
        say(config, f"no chromium found; running apt-get {' '.join(install)} (about a minute)")
        started = time.monotonic()
        runs = [apt_get(*install)]
        if runs[-1].returncode != 0:
            say(config, "apt-get install failed; running apt-get update and trying again")
            runs += [apt_get("update"), apt_get(*install)]
        found = shutil.which("chromium")
        if runs[-1].returncode != 0 or found is None:
            output = "\n".join(f"$ {' '.join(run.args)}\n{run.stdout[-2000:]}{run.stderr[-2000:]}" for run in runs)
            pytest.fail(f"apt-get could not install chromium. {INSTALL_HINT}\n{output}", pytrace=False)
        say(config, f"installed {found} in {time.monotonic() - started:.0f} s")
        return found


@pytest.fixture(scope="session")
def chromium_path(pytestconfig: pytest.Config) -> str:
    """The Chromium binary the browser tests drive, installed with apt-get if need be."""
    if configured := os.environ.get("TRACKER_TEST_CHROMIUM"):
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            pytest.fail(f"TRACKER_TEST_CHROMIUM={configured} is not an executable file.", pytrace=False)
        return configured
    if found := shutil.which("chromium"):
        return found
    if can_install_with_apt():
        return install_chromium(pytestconfig)
    pytest.fail(
        "The board's browser tests need Chromium: there is no `chromium` on PATH, and only as root on Debian "
        f"do the tests install it themselves. {INSTALL_HINT}",
        pytrace=False,
    )


@pytest.fixture(scope="package")
def browser(chromium_path: str) -> Iterator[Browser]:
    """One headless Chromium for the board's tests, closed when tests/board is done."""
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()
    finally:
        playwright.stop()


@pytest.fixture
def page_errors() -> list[str]:
    """What went wrong in the test's page: console errors (CSP violations among them, but not the
    browser's own request for /favicon.ico) and uncaught exceptions, one line each. Assert it is
    empty after the page has done its work."""
    return []


@pytest.fixture
def page(browser: Browser, page_errors: list[str]) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies or storage from other tests). Actions and
    navigations time out after 10 s; `expect()` keeps Playwright's own 5 s."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        # Chromium asks any origin for /favicon.ico by itself; a 404 there is not the page's error.
        source = message.location.get("url", "")
        if message.type == "error" and urlsplit(source).path != "/favicon.ico":
            page_errors.append(f"console error: {message.text}" + (f" ({source})" if source else ""))

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: page_errors.append(f"uncaught: {error}"))
    yield opened
    context.close()
