"""StratusRoute defers FastAPI's analysis of a route to when something reads it: an included route is
served, validated and documented exactly as FastAPI's own APIRoute would, without being analysed at
declaration."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from stratus.api.errors import install_error_handlers
from stratus.api.routing import StratusRoute


class Item(BaseModel):
    name: str
    size: int = 1


class Stored(BaseModel):
    id: str
    name: str


def _router(route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(prefix="/items", tags=["items"], route_class=route_class)

    @router.post("", status_code=201, summary="Store an item")
    async def store(item: Item) -> Stored:
        """Stores one item.\fNot documented."""
        return Stored(id="1", name=item.name)

    @router.get("/{item_id}", responses={404: {"description": "No such item"}})
    async def read(item_id: int, verbose: bool = False) -> dict[str, object]:
        return {"id": item_id, "verbose": verbose}

    return router


def _app(route_class: type[APIRoute]) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(_router(route_class))
    return app


def _declared(app: FastAPI) -> list[StratusRoute]:
    routes: list[StratusRoute] = []
    for included in app.router.routes:
        original = getattr(included, "original_router", None)
        routes.extend(r for r in getattr(original, "routes", []) if isinstance(r, StratusRoute))
    return routes


def test_an_included_route_is_served_without_analysing_its_declaration() -> None:
    app = _app(StratusRoute)
    declared = _declared(app)
    assert len(declared) == 2
    with TestClient(app) as client:
        assert client.post("/items", json={"name": "a"}).json() == {"id": "1", "name": "a"}
        assert client.get("/items/7", params={"verbose": "true"}).json() == {"id": 7, "verbose": True}
        invalid = client.post("/items", json={"size": "big"})
        assert invalid.status_code == 422
        assert "name" in invalid.text and "size" in invalid.text
        assert (
            client.post("/items", content="name=a", headers={"content-type": "text/plain"}).status_code == 415
        )
        assert client.get("/items/x").status_code == 422
    assert all("dependant" not in route.__dict__ for route in declared)


def test_the_openapi_document_is_fastapis_own() -> None:
    assert _app(StratusRoute).openapi() == _app(APIRoute).openapi()


def test_reading_the_analysis_runs_it_once() -> None:
    [store, read] = _declared(_app(StratusRoute))
    assert isinstance(store.dependant, Dependant)
    assert store.body_field is not None and store.response_field is not None
    assert read.body_field is None and read.unique_id.startswith("read")
    assert store.dependant is store.dependant
    try:
        store.no_such_attribute  # noqa: B018
    except AttributeError:
        pass
    else:
        raise AssertionError("an attribute the analysis does not set must not exist")


def test_a_route_added_to_the_app_itself_is_analysed_by_its_first_request() -> None:
    app = FastAPI()

    async def ping(n: int) -> dict[str, int]:
        return {"n": n}

    app.router.add_api_route("/ping", ping, route_class_override=StratusRoute)
    [route] = [r for r in app.router.routes if isinstance(r, StratusRoute)]
    assert "dependant" not in route.__dict__
    with TestClient(app) as client:
        assert client.get("/ping", params={"n": 3}).json() == {"n": 3}
        assert client.get("/ping").status_code == 422
    assert "dependant" in route.__dict__
