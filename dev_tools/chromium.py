"""Where Debian's chromium is and how to start it here; shared by the browser tests and `make screenshots`.

Playwright drives the system's chromium: nothing downloads a browser at run time.
"""

import os
import shutil

# As root in a container with no network but loopback: no sandbox, no GPU, nothing phoning home.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

MISSING = "needs Debian's chromium on PATH (apt-get install chromium) or CHROMIUM_PATH"


def chromium_path() -> str:
    """The chromium executable (CHROMIUM_PATH, else `chromium` on PATH), or "" when there is none."""
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or ""
