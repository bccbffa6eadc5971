"""The browser tests' machinery works end to end: Chromium reaches the real tracker and paints text."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page


def test_chromium_opens_the_tracker_and_paints_its_text(
    page: Page, page_errors: list[str], tracker_url: str, tmp_path: Path
) -> None:
    response = page.goto(f"{tracker_url}/health")
    assert response is not None and response.ok, response and response.status
    # The DOM's text, not the painted one (innerText): the screenshot below checks the painting.
    assert '"status":"ok"' in (page.locator("body").text_content() or "")

    shot = tmp_path / "health.png"
    painted = page.screenshot(path=shot)
    assert painted[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 2000
    # Without a usable font Chromium lays the text out but paints nothing; the screenshot
    # then equals one of the same page with its text made transparent.
    page.locator("body").evaluate("body => body.style.setProperty('color', 'transparent', 'important')")
    text_was_painted = page.screenshot() != painted
    assert text_was_painted, f"Chromium painted no text (no fonts? install fonts-dejavu-core): {shot}"
    assert page_errors == []
