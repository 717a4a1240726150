"""The HTTP layer: the FastAPI application assembling each domain package's routes."""
