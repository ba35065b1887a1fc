"""Print one line per request: a hash of the reply the sample bucket gives to it.

A refactoring check (issue 9): run before and after a change and diff the two outputs; any line
that differs is a reply that changed. The requests are every ``/is/…`` URL in the README, every
event of events/, and every ``/is/image|content`` URL written in the tests (most name the tests'
own catalogs, so against the sample bucket they exercise the error model). Headers that carry
the clock (Date, Expires) are left out of the hash, and so are the time stamps of property bodies.

    python tests/tools/reply_hashes.py > before.txt   # …change…   then again > after.txt; diff
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_URL = re.compile(r"/is/(image|content)(/[^\s\"'`)<>]*|(?=[\s\"'`)]))")
_CLOCK = {"date", "expires", "last-modified"}
# Property replies carry the time they were made (``#Fri Dec 04 13:07:38 UTC 2026``), and so
# does their ETag: the stamp is blanked and such a reply's ETag left out.
_STAMP = re.compile(rb"#[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d [A-Z]+ \d{4}")


def urls() -> list[str]:
    found: list[str] = []
    texts = [ROOT / "README.md", *sorted((ROOT / "tests").rglob("test_*.py"))]
    for path in texts:
        found += [m.group(0) for m in _URL.finditer(path.read_text(encoding="utf-8"))]
    for event in sorted((ROOT / "events").glob("*.json")):
        e = json.loads(event.read_text())
        found.append(e["rawPath"] + ("?" + e["rawQueryString"] if e.get("rawQueryString") else ""))
    return list(dict.fromkeys(u.replace("\\\\", "\\") for u in found))


def main() -> int:
    sys.path.insert(0, str(ROOT / "functions" / "imageserving"))
    from imageserving.service import ImageServer
    from imageserving.settings import Settings
    from imageserving.storage import open_storage

    settings = Settings.from_env(storage="local", local_root=str(ROOT))
    server = ImageServer(settings, open_storage(settings))
    for url in urls():
        path, _, query = url.partition("?")
        context = "content" if path.startswith("/is/content") else "image"
        obj = path[len(f"/is/{context}") :].removeprefix("/")
        for accept in ("", "image/avif,image/webp,*/*"):
            headers = {"accept": accept} if accept else {}
            reply = server.handle("GET", obj, query, headers, "127.0.0.1", context)
            body, stamped = _STAMP.subn(b"#STAMP", reply.body)
            clock = _CLOCK | ({"etag"} if stamped else set())
            kept = sorted((k.lower(), v) for k, v in reply.headers.items() if k.lower() not in clock)
            digest = hashlib.sha256(repr((reply.status, reply.media_type, kept)).encode() + body).hexdigest()
            print(f"{digest[:16]} {reply.status} {accept or '-':>8.8} {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
