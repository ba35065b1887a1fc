"""Real browsers' Accept headers for image requests (<img>): edge/accept-samples.json, read by the
negotiation tests here and by the edge function's node tests (edge/viewer-request.test.js), so that
both sides are held to the same strings. Each entry: (browser, header, class).

Sources: MDN's "List of default Accept values" (image requests) and the browsers' own strings as
sent for <img>. Safari sends image/avif from 16.0 on macOS 13+/iOS 16+ (the decoder comes with
the OS); Safari 16 on macOS 12 does not. EdgeHTML 18 names no WebP although it decodes it:
negotiation goes by the header alone, so it gets the requested format.
"""

import json
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "edge" / "accept-samples.json"
BROWSERS = [(s["browser"], s["accept"], s["class"]) for s in json.loads(SAMPLES.read_text())]
