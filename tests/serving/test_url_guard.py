"""The SSRF guard on user-supplied endpoint URLs, with real DNS lookups and a real redirecting server."""

from __future__ import annotations

import pytest

from app.serving.types import ServingError
from app.serving.url_guard import (
    BlockedAddressError,
    HostResolutionError,
    check_url,
    guarded_http_client,
)
from tests.llama_server import HTTPAnswer, serve_http

ADMINS_ONLY = "only admins may use private endpoints"
NEVER = "Toolsmith never connects there"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080/v1", "127.0.0.1 is a loopback/private address"),
        ("http://10.1.2.3/v1", "10.1.2.3 is a loopback/private address"),
        ("http://[::1]:8000/v1", "::1 is a loopback/private address"),
        ("http://localhost:8000/v1", "localhost resolves to 127.0.0.1"),
        ("http://100.64.0.7/v1", "loopback/private"),  # carrier-grade NAT
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a link-local / cloud metadata address",
        ),
        ("http://[::ffff:169.254.169.254]/", "link-local / cloud metadata"),
        ("http://0.0.0.0:8000/", "unspecified address"),
        ("http://nonexistent.invalid/v1", "Could not resolve host 'nonexistent.invalid'"),
        ("ftp://example.com/models", "Only http:// and https://"),
        ("http:///v1", "no host name"),
    ],
)
def test_non_admins_are_refused(url, expected):
    with pytest.raises(ServingError) as refused:
        check_url(url, allow_private=False)
    assert expected in str(refused.value)


def test_private_refusal_says_how_to_allow_it():
    with pytest.raises(BlockedAddressError) as refused:
        check_url("http://127.0.0.1:8080/v1", allow_private=False)
    assert str(refused.value) == (
        "127.0.0.1 is a loopback/private address: only admins may use private endpoints "
        "(or set ALLOW_PRIVATE_ENDPOINTS)."
    )


def test_dns_failure_is_its_own_error():
    with pytest.raises(HostResolutionError, match="Could not resolve host"):
        check_url("https://nonexistent.invalid/v1", allow_private=True)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/v1", "http://10.1.2.3/v1", "http://[::1]:8000/v1", "http://localhost:8000/"],
)
def test_admins_may_use_loopback_and_private_networks(url):
    check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.10.20/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",  # AWS metadata over IPv6, inside the private fc00::/7
        "http://100.100.100.200/",  # Alibaba Cloud metadata, inside the CGNAT range
        "http://224.0.0.1/",
        "http://[::]/",
    ],
)
def test_metadata_link_local_and_unroutable_are_refused_even_for_admins(url):
    with pytest.raises(BlockedAddressError, match=NEVER):
        check_url(url, allow_private=True)


def test_public_address_passes_without_connecting():
    check_url("https://93.184.215.14/v1", allow_private=False)
    check_url("http://[2606:4700:4700::1111]:8080/v1", allow_private=False)


def test_disguised_loopback_spellings_are_resolved_and_refused():
    # Decimal and short forms reach 127.0.0.1 through the resolver just like the dotted quad.
    for url in ("http://2130706433/", "http://127.1/"):
        with pytest.raises(BlockedAddressError, match=ADMINS_ONLY):
            check_url(url, allow_private=False)


def test_redirect_to_metadata_is_refused_at_the_hop():
    def redirect(request):
        if request.path == "/fine":
            return HTTPAnswer(302, headers={"Location": "/landing"})
        if request.path == "/landing":
            return HTTPAnswer(200, "ok")
        return HTTPAnswer(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    with serve_http(redirect) as base_url, guarded_http_client(allow_private=True, timeout=5) as client:
        assert client.get(f"{base_url}/fine").text == "ok"  # redirects are followed where allowed
        with pytest.raises(BlockedAddressError, match="169.254.169.254 is a link-local"):
            client.get(f"{base_url}/steal")


def test_guarded_client_refuses_loopback_for_non_admins():
    with serve_http(lambda request: HTTPAnswer(200, "secret")) as base_url:
        with guarded_http_client(allow_private=False, timeout=5) as client:
            with pytest.raises(BlockedAddressError, match=ADMINS_ONLY):
                client.get(base_url)
