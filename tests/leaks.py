"""What a reply may never show at ErrorDetail 0 (issue 8.8): tracebacks, storage paths, bucket
names, the serving folder — and of an error, anything but its title.

Used by the fuzz tests (tests/test_fuzz.py, tests/security/test_fuzz_catalogs.py) on every reply.
"""

from __future__ import annotations

import html
import re

# Internals that no reply body shows, whatever it is (a property reply too).
ALWAYS = ("Traceback", 'File "', "site-packages", "botocore", "imageserving/")
# Storage keys and file names an error message at ErrorDetail 0 must not name.
IN_ERRORS = ("catalogs/", "images/", "static/", ".ini", ".txt", ".xml", "s3://", "Errno")
# (title, message) of an error body per format (responses/properties.render_error)
_ERROR_BODIES = (
    re.compile(r"error\.title=(?P<title>[^\n]*)\nerror\.message=(?P<message>.*)\n\Z", re.S),
    re.compile(r"error\.title='(?P<title>[^\n]*)'\nerror\.message='(?P<message>.*)'\n\Z", re.S),
    re.compile(r'name="title" value="(?P<title>[^"]*)"/><property name="message" value="(?P<message>[^"]*)"', re.S),
    re.compile(r'\{"message":"(?P<message>(?:[^"\\]|\\.)*)","title":"(?P<title>[^"]*)"\}', re.S),
)


def assert_no_leak(reply, *, secrets: tuple[str, ...] = (), where: str = "") -> None:
    """``reply`` (an httpx/TestClient response) shows nothing internal; ``secrets``: strings of
    this deployment (the local root, the bucket name) that must never appear in any reply."""
    ctype = reply.headers.get("content-type", "")
    if ctype.startswith("image/"):
        return  # pixels (an error image is still an image)
    text = reply.content.decode("utf-8", "replace")
    for needle in (*ALWAYS, *(s for s in secrets if s)):
        assert needle not in text, (where, needle, text[:400])
    if not reply.headers.get("x-is-error") or reply.status_code in (301, 302, 304):
        return
    for needle in IN_ERRORS:
        assert needle not in text, (where, needle, text[:400])
    match = next((m for m in (p.search(text) for p in _ERROR_BODIES) if m), None)
    assert match is not None, (where, "not an error body", text[:400])
    title, message = html.unescape(match["title"]), html.unescape(match["message"])
    assert message == title, (where, title, message)  # ErrorDetail 0: the title only
