"""AWS Lambda entry point: the FastAPI app behind Mangum (API Gateway HTTP API, payload 2.0)."""

from mangum import Mangum

from imageserving.app import create_app

# lifespan="off": with "auto", Mangum would run startup/shutdown on every invocation.
handler = Mangum(create_app(), lifespan="off")
