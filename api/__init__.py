"""The HTTP API: a FastAPI app mounted in the function app and served by ``fraudops serve``."""
