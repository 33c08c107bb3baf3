"""The SSRF guard: a callback URL may only lead to public addresses, unless allow-listed.

A callback URL is chosen by the caller and fetched by our workers, from inside our network. So
its host is resolved (every A and AAAA record) and the URL refused when any address is
loopback, private, link-local, CGNAT (100.64/10), multicast, reserved, unspecified or otherwise
not globally routable, and always when it is a cloud metadata address. Embedded IPv4 addresses
(IPv4-mapped, 6to4, NAT64) are judged as the IPv4 address they lead to. Hosts in
WEBHOOK_ALLOWED_HOSTS and addresses in WEBHOOK_ALLOWED_NETWORKS may be non-public (an internal
receiver, the tests' receiver on 127.0.0.1); metadata addresses stay refused.

The check is made at POST time and again before every delivery attempt, and the attempt
connects to the very address that was checked (webhooks/sender.py): a host whose DNS answer
changes between the check and the connection (DNS rebinding) cannot steer the request.
Addresses are judged after resolution, so every spelling of an address (decimal, octal, hex,
short forms, IPv6 literals) is judged as the address the system resolver makes of it.
"""

import ipaddress
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
type Resolver = Callable[[str, int], list[str]]

# Instance metadata services; they hand out credentials, so no allow-list opens them.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS DNS resolver
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::253",
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure WireServer (a public address)
    )
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Resolution runs in a thread so that it can be given a timeout (getaddrinfo takes none); a
# resolution that times out finishes in the background, bounded by the resolver's own timeouts.
_resolver_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")


class RefusedURL(Exception):
    """The URL may not be used as a callback. The message names the rule it broke, for the
    caller to read; `detail` adds what the resolver said (which addresses a name has), for the
    log only: told to callers, it would map our internal names."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail or message


# One message whether the name does not resolve or resolves to a refused address, so that
# answers cannot tell which names exist inside our network.
# The settings are named for every name, the unresolvable ones too: a developer's receiver on
# `localhost` learns what allows it, and the answer still says nothing of what a name resolves to.
_NOT_PUBLIC = (
    "The host must resolve, now, to public addresses only; callbacks must reach a public "
    "address, or a host or network the operator allows (WEBHOOK_ALLOWED_HOSTS, "
    "WEBHOOK_ALLOWED_NETWORKS)."
)


class ResolutionFailed(RefusedURL):
    """The host did not resolve (now); at delivery time that is worth retrying."""


@dataclass(frozen=True)
class Target:
    """A checked callback URL and the addresses it may be sent to."""

    scheme: str
    host: str
    port: int
    # What goes on the request line: path and query.
    request_target: str
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def check_syntax(url: str) -> None:
    """Refuse what is not an absolute http(s) URL with a host and without credentials."""
    _parse(url)


def check_url(url: str, *, resolve: Resolver | None = None) -> Target:
    """Check the URL and every address its host resolves to; RefusedURL when any may not be used."""
    scheme, host, port, request_target = _parse(url)
    addresses = (resolve or resolve_host)(host, port)
    if not addresses:
        raise ResolutionFailed(_NOT_PUBLIC, f"{host} does not resolve to any address.")
    for address in addresses:
        reason = address_refusal(ipaddress.ip_address(address), host=host)
        if not reason:
            continue
        if address == host:
            # The caller wrote the address itself: naming its kind tells nothing new.
            raise RefusedURL(f"{address} is a {reason} address; {_allowed_only(reason)}")
        raise RefusedURL(_NOT_PUBLIC, f"{host} resolves to {address}, a {reason} address.")
    return Target(
        scheme=scheme,
        host=host,
        port=port,
        request_target=request_target,
        addresses=tuple(addresses),
    )


def address_refusal(address: IPAddress, *, host: str) -> str | None:
    """Why this address may not be called for `host` ("loopback", ...), or None if it may."""
    embedded = _embedded_ipv4(address)
    judged = [address] if embedded is None else [address, embedded]
    if any(candidate in METADATA_ADDRESSES for candidate in judged):
        return "cloud metadata"
    if _host_allowed(host) or any(_network_allowed(candidate) for candidate in judged):
        return None
    for candidate in reversed(judged):  # the embedded IPv4 address names the reason best
        reason = _non_public(candidate)
        if reason:
            return reason
    return None


def resolve_host(host: str, port: int) -> list[str]:
    """Every address of `host` (an IP literal is its own), within WEBHOOK_DNS_TIMEOUT."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    future = _resolver_pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=settings.WEBHOOK_DNS_TIMEOUT)
    except FutureTimeout as exc:
        raise ResolutionFailed(_NOT_PUBLIC, f"{host} could not be resolved in time.") from exc
    except (OSError, UnicodeError) as exc:
        raise ResolutionFailed(_NOT_PUBLIC, f"{host} could not be resolved: {exc}") from exc
    addresses = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # An IPv6 sockaddr may carry a zone ("fe80::1%eth0"); the address is what is judged.
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    return addresses


def _parse(url: str) -> tuple[str, str, int, str]:
    if len(url) > settings.WEBHOOK_URL_MAX_LENGTH:
        raise RefusedURL(f"The URL is longer than {settings.WEBHOOK_URL_MAX_LENGTH} characters.")
    if not url.isascii() or any(ord(char) < 0x21 or char == "\x7f" for char in url):
        raise RefusedURL("The URL must be ASCII without spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedURL("The URL cannot be parsed.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise RefusedURL("The URL must be http:// or https://.")
    if "@" in parts.netloc:
        raise RefusedURL("The URL must not carry credentials (user:password@).")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise RefusedURL("The URL has no host.")
    if port == 0:
        raise RefusedURL("The URL's port must be 1 to 65535.")
    request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or (443 if scheme == "https" else 80), request_target


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to (mapped, 6to4, NAT64), if any."""
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _non_public(address: IPAddress) -> str | None:
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.version == 4 and address in CGNAT:
        return "carrier-grade NAT"
    if address.is_reserved:  # before is_private, which covers 240.0.0.0/4 too
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "non-public"
    return None


def _allowed_only(reason: str) -> str:
    """What would make the address usable: the settings, unless nothing can (cloud metadata).
    Named in the refusal, so whoever runs the service (a developer's `make run` on loopback)
    knows which setting allows its own receiver."""
    if reason == "cloud metadata":
        return "callbacks must reach a public address."
    return (
        "callbacks must reach a public address, or a host or network the operator allows "
        "(WEBHOOK_ALLOWED_HOSTS, WEBHOOK_ALLOWED_NETWORKS)."
    )


def _host_allowed(host: str) -> bool:
    host = host.lower()
    for allowed in settings.WEBHOOK_ALLOWED_HOSTS:
        if host == allowed:
            return True
        # ".example.internal": the domain and every subdomain, as in DJANGO_ALLOWED_HOSTS.
        if allowed.startswith(".") and (host.endswith(allowed) or host == allowed[1:]):
            return True
    return False


def _network_allowed(address: IPAddress) -> bool:
    return any(
        address.version == network.version and address in network
        for network in settings.WEBHOOK_ALLOWED_NETWORKS
    )
