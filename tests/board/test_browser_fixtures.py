"""`page_errors` hears what board tests assert away: CSP violations and uncaught script errors.

Were it deaf, every `assert page_errors == []` in the board's tests could not fail.
"""

from __future__ import annotations

from playwright.sync_api import Page

# The expect_* blocks only wait for the event to reach Python; the fixture's listener, added
# first, has seen it by then.


def test_page_errors_hears_a_csp_violation(page: Page, page_errors: list[str]) -> None:
    with page.expect_console_message(lambda message: message.type == "error"):
        page.set_content("<meta http-equiv='Content-Security-Policy' content=\"script-src 'self'\"><script>1</script>")
    assert any("Content Security Policy" in error for error in page_errors), page_errors


def test_page_errors_hears_an_uncaught_exception(page: Page, page_errors: list[str]) -> None:
    with page.expect_event("pageerror"):
        page.set_content("<script>throw new Error('board broke')</script>")
    assert any(error.startswith("uncaught:") and "board broke" in error for error in page_errors), page_errors
