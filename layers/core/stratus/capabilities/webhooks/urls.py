"""Which webhook URLs Stratus will POST to.

Webhooks make the platform send requests to addresses users choose, which is the textbook server-side
request forgery: without a check, a user could point one at the instance metadata service
(169.254.169.254), a database in the VPC or the API itself. In production every address the host
resolves to must be public. The check runs when the endpoint is registered and again before every
attempt, since DNS answers change. A host that re-resolves between our check and httpx's own lookup can
still slip through (DNS rebinding); keeping the delivering Lambda outside the VPC limits what it can reach.
"""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address
from urllib.parse import urlsplit

from stratus.errors import ValidationFailed


class UnsafeUrl(ValidationFailed):
    """The URL is malformed, not http(s), or reaches a non-public address."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        # Transient: the host does not resolve right now, which a later attempt may see differently.
        self.transient = transient
        super().__init__(
            f"Invalid webhook URL: {message}",
            code="INVALID_WEBHOOK_URL",
            details=[{"field": "url", "message": message}],
        )


def _is_public(address: IPv4Address | IPv6Address) -> bool:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback in disguise
    return address.is_global and not address.is_multicast


async def _addresses(host: str, port: int) -> list[IPv4Address | IPv6Address]:
    try:
        return [ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise UnsafeUrl(f"host {host!r} does not resolve", transient=True) from e
    return [ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def split_url(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; UnsafeUrl when it is anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise UnsafeUrl(str(e)) from e
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("only http and https URLs are supported")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UnsafeUrl unless `url` is http(s) and (unless `allow_private`) every address is public."""
    host, port = split_url(url)
    if allow_private:
        return
    for address in await _addresses(host, port):
        if not _is_public(address):
            raise UnsafeUrl(f"{host} resolves to a private or reserved address ({address})")
