"""Debian's Chromium driven by Playwright: never downloaded, kept off the network, out of HOME.

Chromium writes crash and config files under HOME, so each browser gets a throw-away HOME and profile
that are removed afterwards. The flags stop its background requests to outside hosts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
]


@contextmanager
def chromium_context(
    *, prefix: str, viewport: dict[str, int], timeout_ms: int, locale: str = "fr-FR"
) -> Iterator[Any]:
    """A persistent Chromium context (downloads allowed); skips the test when Chromium is absent."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    home = Path(tempfile.mkdtemp(prefix=prefix))
    previous_home = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        with playwright_api.sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(home / "profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport=viewport,
                locale=locale,
                accept_downloads=True,
            )
            context.set_default_timeout(timeout_ms)
            try:
                yield context
            finally:
                context.close()
    finally:
        if previous_home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = previous_home
        shutil.rmtree(home, ignore_errors=True)
