"""The web console at /console (and `GET /` for a browser), and the package's static files at /static.

Pages are Jinja2 templates rendered by the platform app; their data comes from the API itself, called by
the page's script with the token the sign-in page stored (the same calls as the Python client), live job
updates from the WebSocket. Jinja2 is imported on the first page, not at the Lambda's cold start. Assets
(vendored htmx, uPlot, vega-embed, Swagger UI, ReDoc) are files in the package, so in AWS they come
from the layer through API Gateway like the API.
"""

from __future__ import annotations

import functools
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from stratus import __version__
from stratus.api.deps import AppSettings
from stratus.errors import NotFound

if TYPE_CHECKING:
    from jinja2 import Environment

STATIC_DIR = (Path(__file__).resolve().parents[2] / "static").resolve()
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# page name -> (template, title).
PAGES: dict[str, tuple[str, str]] = {
    "signin": ("signin.html", "Sign in"),
    "jobs": ("jobs.html", "Jobs"),
    "datasets": ("datasets.html", "Datasets"),
    "models": ("models.html", "Models"),
    "chats": ("chats.html", "Chats"),
    "media": ("media.html", "Media"),
    "playground": ("playground.html", "NLP playground"),
    "keys": ("keys.html", "API keys"),
    "webhooks": ("webhooks.html", "Webhooks"),
}
# Pages about one resource: /console/<kind>/<id>.
DETAIL_PAGES: dict[str, tuple[str, str]] = {
    "jobs": ("job.html", "Job"),
    "datasets": ("dataset.html", "Dataset"),
    "chats": ("chat.html", "Chat"),
}
NAV = ("jobs", "datasets", "models", "chats", "media", "playground", "keys", "webhooks")
# Pages shown only when the API serves what they call (capabilities that may not be deployed).
NEEDS: dict[str, str] = {"chats": "/api/chats", "media": "/api/text-to-image/generate"}

router = APIRouter(include_in_schema=False)


@functools.cache
def _templates() -> Environment:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]), auto_reload=False
    )


@functools.cache
def _available() -> frozenset[str]:
    """The optional pages whose API the platform serves: read once from every capability's routes, since
    in AWS the console's Lambda serves only its own group's (the API's other paths go to other Lambdas)."""
    from stratus import capabilities

    paths = {
        getattr(route, "path", None)
        for router in capabilities.routes_of(capabilities.CAPABILITIES)
        for route in router.routes
    }
    return frozenset(page for page, path in NEEDS.items() if path in paths)


def _shown(request: Request, page: str) -> bool:
    return page not in NEEDS or page in _available()


def _render(
    request: Request, settings: Any, page: str, template: str, title: str, **extra: Any
) -> HTMLResponse:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    websocket_url = settings.websocket_url.rstrip("/") if settings.websocket_url else ""
    html = (
        _templates()
        .get_template(template)
        .render(
            page=page,
            title=title,
            nav=[(name, PAGES[name][1]) for name in NAV if _shown(request, name)],
            root=root,
            static=f"{root}/static",
            websocket_url=websocket_url,
            version=__version__,
            **extra,
        )
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/console")
async def console_home(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{str(request.scope.get('root_path', '')).rstrip('/')}/console/jobs", 307)


@router.get("/console/{page}", response_class=HTMLResponse)
async def console_page(page: str, request: Request, settings: AppSettings) -> HTMLResponse:
    if page not in PAGES or not _shown(request, page):
        raise NotFound(f"No console page {page!r}")
    template, title = PAGES[page]
    return _render(request, settings, page, template, title)


@router.get("/console/{page}/{item_id}", response_class=HTMLResponse)
async def console_detail(page: str, item_id: str, request: Request, settings: AppSettings) -> HTMLResponse:
    if page not in DETAIL_PAGES or not _shown(request, page) or not item_id.isalnum() or len(item_id) > 64:
        raise NotFound(f"No console page {page!r}")
    template, title = DETAIL_PAGES[page]
    return _render(request, settings, page, template, title, item_id=item_id)


@router.get("/static/{path:path}")
async def static(path: str) -> Response:
    """A file of the package's static folder; nothing outside it (no `..`, no hidden files)."""
    parts = Path(path).parts
    if not parts or any(p.startswith(".") for p in parts):
        raise NotFound("No such file")
    file = (STATIC_DIR / path).resolve()
    if not file.is_relative_to(STATIC_DIR) or not file.is_file():
        raise NotFound("No such file")
    media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type.endswith("javascript"):
        media_type += "; charset=utf-8"
    # Vendored files change only with the package version; the console's own ones may change on deploy.
    max_age = 86400 if parts[0] == "vendor" else 300
    return FileResponse(file, media_type=media_type, headers={"Cache-Control": f"public, max-age={max_age}"})


def routers() -> list[APIRouter]:
    return [router]
