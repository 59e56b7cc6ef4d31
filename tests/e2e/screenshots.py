"""Where the browser tests save their screenshots.

By default into the test's temporary folder: a test run must not rewrite the PNGs committed in
docs/screenshots/ (every run would leave the work tree dirty with pixel noise). With
``LGO_UPDATE_SCREENSHOTS=1`` they go to docs/screenshots/, to refresh the README's pictures.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
UPDATE_VARIABLE = "LGO_UPDATE_SCREENSHOTS"


def screenshot_dir(scratch: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """docs/screenshots/ when asked for with LGO_UPDATE_SCREENSHOTS=1, else ``scratch``."""
    folder = DOCS_SCREENSHOTS if environ.get(UPDATE_VARIABLE) == "1" else scratch
    folder.mkdir(parents=True, exist_ok=True)
    return folder
