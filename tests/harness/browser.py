"""Headless Chromium (Debian's `chromium` package) driven by Playwright, for the console's
browser tests. Playwright's own browser download is never used: the tests run the system's
Chromium, as a user's machine or CI image has it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

# Chromium tries to reach Google's services at start; this machine's network refuses them,
# and the flags keep it from trying (and from stalling on it).
_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    configured = os.environ.get("BATCH_GATEWAY_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        # scripts/test installs Debian's chromium where it can; elsewhere, say what is missing.
        reason = "no chromium on PATH: `apt-get install chromium` (or BATCH_GATEWAY_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and CI is set: the CI machine must run the browser tests")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_directory(fallback: Path) -> Path:
    """Where the console's screenshots go: CONSOLE_SCREENSHOTS (the README's are made with
    `CONSOLE_SCREENSHOTS=docs/console scripts/test tests/console`), else the test's tmp."""
    chosen = os.environ.get("CONSOLE_SCREENSHOTS")
    directory = Path(chosen) if chosen else fallback
    directory.mkdir(parents=True, exist_ok=True)
    return directory
