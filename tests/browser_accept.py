"""Real browsers' Accept headers for image requests (<img>), shared by the negotiation tests and the
edge function's tests (tests/test_edge.py hands them to node). Each: (browser, header, class).

Sources: MDN's "List of default Accept values" (image requests) and the browsers' own strings as
sent for <img> in late 2026. Safari sends image/avif from 16.0 on macOS 13+/iOS 16+ (the decoder
comes with the OS); Safari 16 on macOS 12 does not. EdgeHTML 18 names no WebP although it decodes
it: negotiation goes by the header alone, so it gets the requested format.
"""

BROWSERS = [
    ("Chrome 131", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "avif"),
    ("Edge 131 (Chromium)", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "avif"),
    ("Firefox 92-127", "image/avif,image/webp,*/*", "avif"),
    ("Firefox 133", "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5", "avif"),
    ("Firefox 65-91", "image/webp,*/*", "webp"),
    (
        "Safari 17",
        "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,"
        "image/svg+xml,image/*;q=0.8,*/*;q=0.5",
        "avif",
    ),
    (
        "Safari 16.4 (macOS 13)",
        "image/webp,image/avif,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
        "avif",
    ),
    (
        "Safari 16 (macOS 12) / Safari 14-15",
        "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5",
        "webp",
    ),
    ("Safari 13 and older", "image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", "none"),
    ("Edge 18 (EdgeHTML)", "image/png, image/svg+xml, image/*; q=0.8, */*; q=0.5", "none"),
    ("IE 11", "image/png, image/svg+xml, image/jxr, image/*; q=0.8, */*; q=0.5", "none"),
    ("curl", "*/*", "none"),
    ("image/* only", "image/*", "none"),
    ("no Accept header", "", "none"),
    ("avif refused with q=0", "image/avif;q=0,image/webp,*/*", "webp"),
    ("both refused", "image/avif; q=0.0, image/webp;q=0, */*", "none"),
    ("upper case, spaces, low q", "IMAGE/AVIF ; Q=0.1 , */*", "avif"),
    ("malformed q", "image/avif;q=abc,image/webp", "webp"),
    ("look-alike type", "image/avifx,image/webpx,image/x-webp", "none"),
]
