"""The web UI: static files (HTML, CSS and a little vanilla JavaScript, nothing to build) that call the
HTTP API of the same origin, as the SDK does. `artreg server` serves them at /ui/; `artreg ui` serves
them on loopback for a deployed stack (artreg.ui.proxy). Nothing here reaches into a store."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
PREFIX = "/ui/"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The page runs only its own files and talks only to its own origin: a string from the API that slipped
# into markup could run nothing, and nothing of the page can be framed or sent elsewhere.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def static_file(path: str) -> tuple[bytes, str] | None:
    """The bytes and content type of the UI file at a URL path under /ui/ (`/ui/` is index.html), or
    None. Only the files of the static folder itself answer: no path can climb out of it."""
    if not path.startswith(PREFIX):
        return None
    name = path.removeprefix(PREFIX) or "index.html"
    if "/" in name or name.startswith(".") or Path(name).suffix not in CONTENT_TYPES:
        return None
    file = STATIC / name
    if not file.is_file():
        return None
    return file.read_bytes(), CONTENT_TYPES[file.suffix]
