"""Where a webhook may point: the SSRF guard OWASP describes, at create time and at send time.

Outside dev a URL must be https, and every address its host resolves to must be a public
unicast one: loopback, private, link-local (which holds the 169.254.169.254 metadata
service), shared, multicast, reserved and unspecified ranges are refused, IPv4-mapped IPv6
forms included. The check runs again before each send because DNS can change; the sender then
connects to exactly the address that was checked (see ``sender.py``), so a name cannot
resolve one way for the check and another for the connection. ``STOCKROOM_WEBHOOK_ALLOW_PRIVATE``
opens private addresses for a lab.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from db.errors import ErrorCode, ServiceError
from db.webhooks import check_url_shape

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(Exception):
    """A URL this service will not send to; the message says why, for the webhook's log."""


@dataclass(frozen=True, slots=True)
class Target:
    """A URL that passed the guard, and the address to connect to for it."""

    url: str
    scheme: str
    host: str  # as written (the TLS server name and the Host header)
    port: int
    address: str


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _refusal(address: IPAddress) -> str | None:
    """Why an address may not be reached, or None for a public unicast one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _refusal(address.ipv4_mapped)
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata lives here)"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


class UrlGuard:
    def __init__(
        self, *, allow_private: bool, require_https: bool, resolver: Resolver = system_resolver
    ) -> None:
        self.allow_private = allow_private
        self.require_https = require_https
        self._resolve = resolver

    async def target(self, url: str, *, resolve: bool = True) -> Target:
        """The checked target of ``url``; UrlRefused when it may not be sent to.

        Without ``resolve`` (creating a webhook where private addresses are allowed) a host
        name is not looked up: it only has to resolve when something is sent.
        """
        try:
            clean = check_url_shape(url)
        except ServiceError as error:
            raise UrlRefused(error.message) from None
        parts = urlsplit(clean)
        scheme = parts.scheme
        if self.require_https and scheme != "https":
            raise UrlRefused("URL must use https")
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        elif not resolve:
            return Target(clean, scheme, host, port, host)
        else:
            try:
                addresses = await self._resolve(host, port)
            except (OSError, UnicodeError) as exc:
                raise UrlRefused(f"host {host} does not resolve ({exc})") from None
            if not addresses:
                raise UrlRefused(f"host {host} does not resolve")
        if not self.allow_private:
            for text in addresses:
                why = _refusal(ipaddress.ip_address(text.split("%", 1)[0]))
                if why is not None:
                    shown = host if literal is not None else f"{host} ({text})"
                    raise UrlRefused(f"address {shown} is {why}: not allowed")
        return Target(clean, scheme, host, port, addresses[0])

    async def check(self, url: str) -> None:
        """For createWebhook and updateWebhook: INVALID on ``url`` when it is refused."""
        try:
            await self.target(url, resolve=not self.allow_private)
        except UrlRefused as refused:
            raise ServiceError(ErrorCode.INVALID, str(refused), ["url"]) from None
