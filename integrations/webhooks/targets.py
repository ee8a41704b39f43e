"""Where webhooks may be sent (the SSRF guard): one copy of each rule.

`check_url` runs when a subscription is saved (integrations.services.validate_target_url)
and again before every try; `is_public_address` judges address literals then and every
address a host name resolves to at send time (delivery.target_addresses).
"""

import contextlib
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

# IPv6 ranges whose address carries an IPv4 address in its last 32 bits: it is judged by
# that IPv4 address (a mapped ::ffff:127.0.0.1, a translated ::ffff:0:127.0.0.1 or, through
# DNS64, 64:ff9b::7f00:1 reaches 127.0.0.1). NAT64's well-known prefix is judged, not
# refused: IPv6-only hosts reach public IPv4 receivers through it.
_JUDGED_BY_LAST_32_BITS = [
    ipaddress.IPv6Network("::ffff:0:0/96"),  # IPv4-mapped
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT, RFC 2765)
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64, well-known prefix (RFC 6052)
]
# Every other IPv6 receiver is in global unicast space: the rest (::/8 with its other ways of
# writing IPv4, and the unassigned blocks) is refused, whatever Python's is_global says.
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
# Ranges refused outright: deprecated or local-use ways of embedding IPv4, where the
# embedded address is in another place (6to4, Teredo's obfuscated client) or depends on a
# local prefix length (NAT64 local use). No receiver needs them; refusing is simpler than
# decoding each one right.
_REFUSED = [
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible ::a.b.c.d (deprecated, RFC 4291)
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # NAT64, local use (RFC 8215)
    ipaddress.IPv6Network("2002::/16"),  # 6to4 (deprecated, RFC 7526)
    ipaddress.IPv6Network("2001::/32"),  # Teredo
]


class TargetRefused(Exception):
    """A URL or an address webhooks may not be sent to; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int


def is_public_address(address: str) -> bool:
    """Globally routable unicast: not loopback, private, link-local (cloud metadata), CGNAT...

    IPv6 forms that embed an IPv4 address are judged by it or refused, and IPv6 outside
    global unicast is refused (see the ranges above). Raises ValueError when `address` is not an IP address (a host name).
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6:
        if any(ip in network for network in _JUDGED_BY_LAST_32_BITS):
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip not in _GLOBAL_UNICAST or any(ip in network for network in _REFUSED):
            return False
    return ip.is_global and not ip.is_multicast


def check_address(host: str, address: str) -> None:
    """Refuse a private address, unless private targets are allowed (development)."""
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS and not is_public_address(address):
        raise TargetRefused(f"Webhooks cannot be sent to a private or local address ('{host}': {address}).")


def check_url(url: str) -> Target:
    """An https URL (http only where WEBHOOK_ALLOW_HTTP is on), with no user name or password,
    a port from 1 to 65535, and a host that is not this server's own network."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # an unclosed IPv6 bracket, a port out of range or not a number
        raise TargetRefused(f"Invalid URL: {exc}.") from exc
    allowed = ("http", "https") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if not host or parts.scheme not in allowed:
        raise TargetRefused("Use an https:// URL." if allowed == ("https",) else "Use an http(s):// URL.")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("A webhook URL cannot carry a user name or password; sign-in is the signature.")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    elif not 1 <= port <= 65535:
        raise TargetRefused(f"Port {port} is out of range: use 1 to 65535.")
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS and (host == "localhost" or host.endswith(".localhost")):
        raise TargetRefused(f"Webhooks cannot be sent to a private or local address ('{host}').")
    with contextlib.suppress(ValueError):  # a host name: checked once resolved, at every try
        check_address(host, host)
    return Target(scheme=parts.scheme, host=host, port=port)
