"""SSRF guard for endpoint URLs that users type in: Toolsmith must not become a proxy into its own network.

Every address a host name resolves to is checked, not just the first: an attacker who controls DNS can
return a public and a private address together. Link-local and cloud-metadata addresses are refused for
everyone (they hand out cloud credentials); loopback and private networks only for admins or when the
operator sets ALLOW_PRIVATE_ENDPOINTS (a self-hosted vLLM or Ollama next to Toolsmith is a real use).

`GuardedTransport` checks every request httpx sends, so each redirect hop is checked too, and its network
backend connects only to the addresses it has just checked: a DNS answer that changes between the check
and the connection (DNS rebinding) cannot slip a private address through.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
from collections.abc import Iterable

import httpcore
import httpx

from app.serving.types import ServingError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services that sit outside link-local space (AWS IPv6, Alibaba Cloud in the CGNAT range).
CLOUD_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, not global
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")  # reaches the embedded IPv4 address through a gateway
MAX_REDIRECTS = 5

_NEVER = "Toolsmith never connects there."
_ADMINS_ONLY = "only admins may use private endpoints (or set ALLOW_PRIVATE_ENDPOINTS)."


class BlockedAddressError(ServingError):
    """The URL points at an address Toolsmith refuses to connect to."""


class HostResolutionError(ServingError):
    """The URL's host name does not resolve (DNS failure)."""


class InvalidEndpointURLError(ServingError):
    """The URL is not an http(s) URL with a host."""


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for (::ffff:a.b.c.d, 6to4, NAT64), else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return embedded
        if address in NAT64_PREFIX:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal_reason(address: IPAddress, allow_private: bool) -> str | None:
    """Why Toolsmith will not connect to `address` (a sentence fragment after the address), or None."""
    address = _embedded_ipv4(address)
    if address in CLOUD_METADATA_ADDRESSES or address.is_link_local:
        return f"is a link-local / cloud metadata address: {_NEVER}"
    if address.is_multicast:
        return f"is a multicast address: {_NEVER}"
    if address.is_unspecified:
        return f"is an unspecified address: {_NEVER}"
    private = address.is_loopback or address.is_private or address in SHARED_ADDRESS_SPACE
    # Loopback first: Python counts ::1 as reserved too (all of ::/8 is), but it is just this machine.
    if address.is_reserved and not address.is_loopback:
        return f"is a reserved address: {_NEVER}"
    if private or not address.is_global:
        return None if allow_private else f"is a loopback/private address: {_ADMINS_ONLY}"
    return None


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve_checked(host: str, port: int | None, allow_private: bool) -> list[str]:
    """All addresses `host` resolves to, after checking each one; raises if any is refused."""
    literal = _literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise HostResolutionError(f"Could not resolve host {host!r} (DNS lookup failed).") from exc
        # The scope id of a link-local IPv6 answer ("fe80::1%eth0") is not part of the address itself.
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
        if not addresses:
            raise HostResolutionError(f"Could not resolve host {host!r} (no addresses).")
    for address in addresses:
        reason = refusal_reason(address, allow_private)
        if reason is not None:
            shown = host if literal is not None else f"{host} resolves to {address}, which"
            raise BlockedAddressError(f"{shown} {reason}")
    return [str(address) for address in addresses]


def check_url(url: str, allow_private: bool) -> None:
    """Raise a `ServingError` unless `url` is http(s) with a host whose every address may be contacted."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise InvalidEndpointURLError(f"Not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise InvalidEndpointURLError("Only http:// and https:// endpoint URLs are supported.")
    # raw_host is the ASCII (IDNA) form that DNS sees; IPv6 literals come without brackets.
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise InvalidEndpointURLError("The endpoint URL has no host name.")
    resolve_checked(host, parsed.port, allow_private)


class _CheckedNetworkBackend(httpcore.SyncBackend):
    """Resolves, checks and connects to the checked address itself, so DNS cannot change in between."""

    def __init__(self, allow_private: bool):
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[tuple] | None = None,
    ) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for address in resolve_checked(host, port, self.allow_private):
            try:
                # TLS still verifies the certificate against the URL's host name (httpcore passes it as SNI).
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last_error = exc
        assert last_error is not None  # resolve_checked never returns an empty list
        raise last_error


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """One verifying context (certifi CA bundle) for all clients: building one costs about 20 ms."""
    return httpx.create_ssl_context()


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that checks every request (so every redirect hop) before it leaves the process."""

    def __init__(self, allow_private: bool, limits: httpx.Limits | None = None):
        ssl_context = _default_ssl_context()
        super().__init__(verify=ssl_context)
        self.allow_private = allow_private
        limits = limits or httpx.Limits(max_connections=20, max_keepalive_connections=5)
        # httpx gives no public way to choose the network backend: build the same pool httpx would,
        # with the checking backend. No proxy support on purpose: a proxy would hide the real address.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedNetworkBackend(allow_private),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        check_url(str(request.url), self.allow_private)
        return super().handle_request(request)


def guarded_http_client(allow_private: bool, timeout: float) -> httpx.Client:
    """An httpx client for user-supplied endpoints: every hop checked, at most five redirects."""
    return httpx.Client(
        transport=GuardedTransport(allow_private),
        timeout=timeout,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        # No .netrc credentials or proxy settings from the server's environment for users' URLs.
        trust_env=False,
    )
