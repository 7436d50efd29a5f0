"""Webhooks at /api/webhooks (and /webhooks, seed 001): endpoints, their delivery log, test deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from stratus.api.deps import Webhooks
from stratus.api.pagination import Pagination, set_total
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.webhooks.schemas import DeliveryPublic, WebhookCreate, WebhookCreated, WebhookPublic
from stratus.db.ids import ObjectIdStr, oid


def build_router(prefix: str, *, include_in_schema: bool = True) -> APIRouter:
    """The webhook routes under `prefix`, built per prefix so each route knows its full path (metrics)."""
    router = APIRouter(
        prefix=prefix,
        tags=["webhooks"],
        route_class=StratusRoute,
        dependencies=[RateLimit],
        include_in_schema=include_in_schema,
    )

    @router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
    async def create_webhook(body: WebhookCreate, user: CurrentUser, webhooks: Webhooks) -> dict[str, Any]:
        """Register an endpoint. `secret` verifies each delivery's `webhook-signature` header (Standard
        Webhooks); it is in this response only."""
        doc, secret = await webhooks.create(
            user.user_id, url=body.url, events=list(body.events), description=body.description
        )
        return {**doc, "secret": secret}

    @router.get("", response_model=list[WebhookPublic])
    async def list_webhooks(
        user: CurrentUser, webhooks: Webhooks, page: Pagination, response: Response
    ) -> list[dict[str, Any]]:
        """Newest first; the total is in `X-Total-Count`."""
        items, total = await webhooks.list(user.user_id, limit=page.limit, offset=page.offset)
        set_total(response, total)
        return items

    @router.get("/{webhook_id}", response_model=WebhookPublic)
    async def get_webhook(webhook_id: ObjectIdStr, user: CurrentUser, webhooks: Webhooks) -> dict[str, Any]:
        return await webhooks.get(user.user_id, oid(webhook_id, what="Webhook"))

    @router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_webhook(webhook_id: ObjectIdStr, user: CurrentUser, webhooks: Webhooks) -> None:
        """Deletes the endpoint and its delivery log; pending retries are dropped."""
        await webhooks.delete(user.user_id, oid(webhook_id, what="Webhook"))

    @router.get("/{webhook_id}/deliveries", response_model=list[DeliveryPublic])
    async def list_deliveries(
        webhook_id: ObjectIdStr,
        user: CurrentUser,
        webhooks: Webhooks,
        page: Pagination,
        response: Response,
    ) -> list[dict[str, Any]]:
        """The last 30 days of deliveries, newest first: status, attempts, last response or error."""
        items, total = await webhooks.deliveries(
            user.user_id, oid(webhook_id, what="Webhook"), limit=page.limit, offset=page.offset
        )
        set_total(response, total)
        return items

    @router.post("/{webhook_id}/test", status_code=status.HTTP_202_ACCEPTED, response_model=DeliveryPublic)
    async def test_webhook(webhook_id: ObjectIdStr, user: CurrentUser, webhooks: Webhooks) -> dict[str, Any]:
        """Queue a `webhook.test` delivery to this endpoint; follow it in the delivery log."""
        return await webhooks.send_test(user.user_id, oid(webhook_id, what="Webhook"))

    return router


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed path aliases included)."""
    return [build_router("/api/webhooks"), build_router("/webhooks", include_in_schema=False)]
