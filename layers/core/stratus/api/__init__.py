"""The HTTP API: FastAPI app factory, routers per capability, error mapping, middleware."""
