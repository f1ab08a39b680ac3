"""A real headless browser for the page tests: Debian's chromium, driven from the command line.

``Browser(tmp_path).dom(url)`` is the page's DOM after its scripts ran (fetches
included); ``screenshot(url, name)`` saves ``test-artifacts/<name>.png``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no headless browser: install Debian's chromium (apt-get install chromium); "
                "`make test` does it when run as root (scripts/ensure-apt)")


class Browser:
    def __init__(self, profile: Path, budget_ms: int = 5000):
        """:param budget_ms: how much (virtual) time the page's scripts get."""
        self.command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                        f"--virtual-time-budget={budget_ms}"]

    def dom(self, url: str) -> str:
        return subprocess.run(self.command + ["--dump-dom", url], capture_output=True, text=True,
                              timeout=120).stdout

    def screenshot(self, url: str, name: str, size: str = "1280,900") -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        subprocess.run(self.command + [f"--window-size={size}", f"--screenshot={path}", url],
                       capture_output=True, timeout=120)
        return path
