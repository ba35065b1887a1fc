"""imageserving: an open-source, serverless twin of Scene7 / Dynamic Media Image Serving."""

__version__ = "0.1.0"
