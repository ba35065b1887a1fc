"""AWS Lambda entry point: the app behind Mangum (API Gateway HTTP API, payload 2.0), and its SnapStart hook."""

import gc
import io

from mangum import Mangum

from imageserving import storage
from imageserving.app import create_app

app = create_app()
# lifespan="off": with "auto", Mangum would run startup/shutdown on every invocation.
handler = Mangum(app, lifespan="off")
# Everything imported and built so far lives as long as the container: out of the collector's reach,
# so that a full collection during a request scans only that request's objects (app._lifespan); the
# image half, imported later, follows (service._imaging_class).
gc.freeze()


def prime() -> None:
    """What a SnapStart snapshot may keep, loaded before it is taken: the image half of the app
    (imaging.py: assembly, the renderer, Pillow), which the import above leaves to the first image
    request, and Pillow's plugins and codecs, loaded by encoding and decoding a 1-pixel image in
    every format the pipeline serves; with S3 storage, the SDK and S3's API description
    (storage.load_s3_sdk). Nothing that can change or that is secret (no S3 client, credentials,
    catalogs or signing keys): those are read on first use after restore, as on any cold start."""
    server = app.state.server
    server.imaging  # noqa: B018 - the property imports the image half (service.py)
    if isinstance(server.storage, storage.S3Storage):
        storage.load_s3_sdk()
    from PIL import Image

    Image.init()
    pixel = Image.new("RGB", (1, 1))
    for fmt in ("JPEG", "PNG", "WEBP", "AVIF", "GIF", "TIFF"):
        if fmt not in Image.SAVE:
            continue
        buf = io.BytesIO()
        pixel.save(buf, fmt)
        buf.seek(0)
        Image.open(buf).load()
    from imageserving import negotiate

    negotiate.negotiate(negotiate.formats.parse_fmt("jpeg"), explicit=False, bfc=True, accept="avif", quality=80)
    gc.freeze()  # what priming loaded lives as long as the container too (see gc.freeze above)


try:  # built into Lambda's managed python3.12+ runtimes; absent anywhere else
    from snapshot_restore_py import register_before_snapshot
except ImportError:
    pass
else:
    register_before_snapshot(prime)
