"""Sign Claude Code in to the bridge with OAuth, the way a person would (scripts/check_clients.sh).

Runs `claude mcp login NAME` in a pseudo-terminal (it refuses to run without one), with a BROWSER
that only notes the authorization URL it is asked to open. Then plays the person: opens that URL,
lands on the tracker's consent page, signs in with KEY, approves ROLE, and follows the redirect
back to Claude Code's own callback listener. Exits 0 once Claude Code says it is authenticated.

Usage: claude_oauth_login.py NAME KEY ROLE
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

TIMEOUT = 90.0


def main(name: str, key: str, role: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        opened = Path(tmp) / "opened"
        browser = Path(tmp) / "browser"
        browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{opened}"\n')
        browser.chmod(0o755)
        leader, follower = pty.openpty()
        login = subprocess.Popen(
            ["claude", "mcp", "login", name],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env={**os.environ, "BROWSER": str(browser)},
            close_fds=True,
        )
        os.close(follower)
        output: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(leader, output), daemon=True)
        reader.start()
        try:
            url = _wait_for(opened, login)
            callback = _approve(url, key, role)
            print(f"consent approved; Claude Code's callback answered {callback}", file=sys.stderr)
            login.wait(TIMEOUT)
        finally:
            if login.poll() is None:
                login.kill()
        reader.join(2)
        text = b"".join(output).decode(errors="replace")
        if login.returncode != 0 or "Authenticated" not in text:
            print(text, file=sys.stderr)
            return 1
        return 0


def _drain(fd: int, output: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        output.append(chunk)


def _wait_for(opened: Path, login: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + TIMEOUT
    while not (opened.exists() and opened.read_text().strip()):
        if login.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("claude mcp login opened no authorization URL")
        time.sleep(0.1)
    return opened.read_text().split()[0]


def _approve(url: str, key: str, role: str) -> int:
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        page = browser.get(url)
        if page.status_code != 200 or "Approve" not in page.text:
            raise SystemExit(f"no consent page at the end of {url}: {page.status_code} {page.text[:300]}")
        consent = urlsplit(str(page.url))
        form = {"request": parse_qs(consent.query)["request"][0], "key": key, "role": role, "decision": "approve"}
        answer = browser.post(f"{consent.scheme}://{consent.netloc}/oauth/consent", data=form, follow_redirects=False)
        if answer.status_code != 303:
            raise SystemExit(f"consent refused: {answer.status_code} {answer.text[:300]}")
        return browser.get(answer.headers["location"]).status_code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
