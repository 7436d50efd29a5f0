"""The web console's pages, the static files and the offline /docs and /redoc, through the app."""

from __future__ import annotations

import re

import httpx
import pytest

from stratus import capabilities
from stratus.capabilities.console.routes import NEEDS, PAGES

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def test_a_browser_at_the_root_opens_the_console_and_api_clients_keep_the_welcome(
    client: httpx.AsyncClient,
) -> None:
    browser = await client.get("/", headers=HTML)
    assert browser.status_code == 307 and browser.headers["location"] == "/console"
    api = await client.get("/")
    assert api.status_code == 200 and api.json()["name"] == "Stratus"
    home = await client.get("/console")
    assert home.status_code == 307 and home.headers["location"] == "/console/jobs"


@pytest.mark.parametrize("page", sorted(set(PAGES) - set(NEEDS)))
async def test_every_page_renders_with_local_assets_only(client: httpx.AsyncClient, page: str) -> None:
    response = await client.get(f"/console/{page}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert f'data-page="{page}"' in html and 'name="viewport"' in html
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert src.startswith("/"), f"{page} loads {src} from elsewhere"
        if src.startswith("/static/"):
            assert (await client.get(src)).status_code == 200, src


async def test_detail_pages_and_unknown_pages(client: httpx.AsyncClient) -> None:
    job = await client.get("/console/jobs/0123456789abcdef01234567")
    assert job.status_code == 200 and "uPlot.iife.min.js" in job.text
    dataset = await client.get("/console/datasets/0123456789abcdef01234567")
    assert dataset.status_code == 200 and "vega-embed.min.js" in dataset.text
    assert (await client.get("/console/nope")).status_code == 404
    assert (await client.get("/console/keys/x")).status_code == 404


async def test_static_files_are_served_from_the_package_and_nothing_else(client: httpx.AsyncClient) -> None:
    js = await client.get("/static/vendor/htmx/htmx.min.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "max-age" in js.headers["cache-control"]
    css = await client.get("/static/console/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for path in (
        "/static/../settings.py",
        "/static/%2e%2e/settings.py",
        "/static/",
        "/static/vendor/nope.js",
    ):
        assert (await client.get(path)).status_code == 404, path


async def test_docs_and_redoc_load_nothing_from_outside(client: httpx.AsyncClient) -> None:
    for path, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        page = await client.get(path)
        assert page.status_code == 200
        assert asset in page.text
        assert not re.search(r"""(?:src|href)=["']?https?://""", page.text), page.text
        assert "fonts.googleapis" not in page.text
        for src in re.findall(r"""(?:src|href)=["']?(/static/[^"' >]+)""", page.text):
            assert (await client.get(src)).status_code == 200, src
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200


async def test_pages_of_capabilities_the_api_lacks_are_neither_served_nor_linked(
    client: httpx.AsyncClient,
) -> None:
    paths = {
        route.path for router in capabilities.routes_of(capabilities.CAPABILITIES) for route in router.routes
    }
    jobs = (await client.get("/console/jobs")).text
    for page, needed in NEEDS.items():
        served = needed in paths
        assert ((await client.get(f"/console/{page}")).status_code == 200) is served, page
        assert (f'href="/console/{page}"' in jobs) is served, page
