"""Believe ``X-Forwarded-For`` / ``X-Forwarded-Proto`` only from a configured reverse proxy.

Behind nginx or Caddy terminating HTTPS, the dashboard sees the proxy's address and plain
HTTP.  werkzeug's ``ProxyFix`` rewrites the request from the proxy's headers, but trusts
them from whoever sends them; so this wrapper applies it only when the TCP peer is in
``dashboard.trusted_proxies``, and removes the headers from everybody else (a browser on
the LAN must not be able to claim another address to dodge the login back-off, or claim
HTTPS).  With it, ``request.remote_addr`` is the browser's address (login back-off) and
``request.is_secure`` is true when the browser used HTTPS (Secure cookies, automatically).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: the forwarded headers removed from requests that do not come from a trusted proxy
FORWARDED_KEYS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO",
                  "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX",
                  "HTTP_X_REAL_IP")


def is_trusted(address: str | None, networks: Iterable[Network]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return any(ip in net for net in networks)


class TrustedProxyFix:
    """WSGI middleware: ProxyFix (one proxy hop: for, proto, host) for trusted peers only.

    The host matters for HTTPS: Flask-WTF then checks that a form's Referer is this
    site, so the proxy must pass the browser's Host (or X-Forwarded-Host)."""

    def __init__(self, app: Any, networks: Iterable[Network]) -> None:
        self.app = app
        self.networks = tuple(networks)
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=0, x_prefix=0)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.networks and is_trusted(environ.get("REMOTE_ADDR"), self.networks):
            return self.fixed(environ, start_response)
        for key in FORWARDED_KEYS:
            environ.pop(key, None)
        return self.app(environ, start_response)
