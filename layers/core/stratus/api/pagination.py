"""Both pagination styles the seeds use: `limit`/`offset` (003, 004) and `page`/`limit` (001)."""

from __future__ import annotations

from typing import Annotated, NamedTuple

from fastapi import Depends, Query, Response

from stratus.schemas.common import INT64_MAX

MAX_PAGE_SIZE = 1000
# A skip reaches MongoDB as an int64; the page bound keeps (page - 1) * limit within one for any limit.
MAX_OFFSET = INT64_MAX
MAX_PAGE = MAX_OFFSET // MAX_PAGE_SIZE + 1

PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")]


class PageParams(NamedTuple):
    limit: int
    offset: int

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1


def _page_params(
    limit: PageSize = 100,
    offset: Offset = 0,
    page: Annotated[
        int | None, Query(ge=1, le=MAX_PAGE, description="1-based page number; overrides offset")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, offset=(page - 1) * limit if page is not None else offset)


Pagination = Annotated[PageParams, Depends(_page_params)]


def set_total(response: Response, total: int) -> None:
    """Bare-list responses (seed 003's shape) still tell clients how many items exist."""
    response.headers["X-Total-Count"] = str(total)
