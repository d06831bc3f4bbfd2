"""Who the client is: one setting decides which peers may speak for it.

`FORWARDED_ALLOW_IPS` lists the reverse proxies in front of the service (addresses
or networks, comma-separated; empty by default: nobody). uvicorn is started with
the same list (`uvicorn_proxy_args`): it replaces the peer address with the one in
`X-Forwarded-For` only when the peer is on that list, so a client that forges the
header, even from 127.0.0.1, keeps its own address. The application then reads
the address in one place, `client_address`, and never parses the header itself.
uvicorn reads the same environment variable when started by hand, but defaults to
trusting 127.0.0.1 when it is unset: start it with these arguments (docs/operations.md).
"""

from django.conf import settings
from django.http import HttpRequest


def uvicorn_proxy_args() -> list[str]:
    """The uvicorn arguments that match FORWARDED_ALLOW_IPS: none trusted means no proxy headers at all."""
    trusted = ",".join(settings.FORWARDED_ALLOW_IPS)
    if not trusted:
        return ["--no-proxy-headers"]
    return ["--proxy-headers", "--forwarded-allow-ips", trusted]


def client_address(request: HttpRequest) -> str:
    """The client's IP address, as the ASGI server established it (REMOTE_ADDR); 0.0.0.0 when there is none
    (a request built in code, such as a test's forced login)."""
    return str(request.META.get("REMOTE_ADDR") or "0.0.0.0")  # noqa: S104 (a placeholder, never bound)
