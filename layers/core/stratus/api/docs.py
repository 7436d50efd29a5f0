"""/docs (Swagger UI) and /redoc (ReDoc) on assets the package ships (stratus/static/vendor), so they
render on a machine or VPC without internet: FastAPI's defaults load them, a favicon and Google fonts
from CDNs. Each group's app serves them (the document is the whole API's); the assets are served under
/static by the console capability, which API Gateway's $default route sends to the platform function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse

if TYPE_CHECKING:
    from fastapi import FastAPI

STATIC_PREFIX = "/static"
SWAGGER = f"{STATIC_PREFIX}/vendor/swagger-ui"
REDOC = f"{STATIC_PREFIX}/vendor/redoc"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def install(app: FastAPI) -> None:
    """Adds the three documentation pages to an app built with docs_url=None and redoc_url=None, and
    records their URLs on it as FastAPI would have (the template test reads them)."""
    app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url = DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        from fastapi.openapi.docs import get_swagger_ui_html

        base = root(request)
        return get_swagger_ui_html(
            openapi_url=base + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{base}{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{base}{SWAGGER}/favicon-32x32.png",
            oauth2_redirect_url=base + OAUTH2_REDIRECT_URL,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        from fastapi.openapi.docs import get_swagger_ui_oauth2_redirect_html

        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        from fastapi.openapi.docs import get_redoc_html

        base = root(request)
        return get_redoc_html(
            openapi_url=base + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{base}{REDOC}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{SWAGGER}/favicon-32x32.png",
            with_google_fonts=False,
        )

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
