"""API Lambda: the FastAPI app behind API Gateway's HTTP API, through Mangum.

Everything is built once per container at import (cold start); lifespan is off because Mangum would
run startup and shutdown on every invocation. Heavy ML libraries are never imported here.
"""

from mangum import Mangum

from stratus.api.app import create_app
from stratus.composition import build_container
from stratus.settings import get_settings

container = build_container(get_settings())
app = create_app(container)
handler = Mangum(app, lifespan="off")
