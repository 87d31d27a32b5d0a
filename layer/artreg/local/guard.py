"""API.md's rule for the local server: it answers only requests whose `Host` names it, and refuses a
request whose `Origin` it was not told to trust, so that no web page the user visits can read it (by
DNS rebinding a name of its own to 127.0.0.1) or write it (a form or `fetch` from another origin).

It names itself by its loopback names with its port (`127.0.0.1`, `localhost`, `[::1]`), by the
address it is bound to when that is a specific one, and by the host of `--public-url`. Its own
origins are those names over `http` (and the public URL's scheme and host): the web UI it serves at
`/ui/` calls the API from there. Any other origin must be listed with `--trust-origin`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from artreg.model.errors import Forbidden, Invalid

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _netlocs(host: str, port: int, scheme: str = "http") -> set[str]:
    """`host:port`, and the bare host too when the port is the scheme's default (as clients send it)."""
    host = host.lower()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    names = {f"{host}:{port}"}
    if _DEFAULT_PORTS.get(scheme) == port:
        names.add(host)
    return names


def normalize_origin(origin: str) -> str:
    """`scheme://host[:port]` in lower case, the default port left out, as browsers send `Origin`."""
    split = urlsplit(origin.strip())
    if split.scheme not in _DEFAULT_PORTS or not split.hostname or split.path not in ("", "/") or split.query:
        raise Invalid(f"{origin!r} is not an origin (scheme://host[:port])")
    try:
        port = split.port
    except ValueError:
        raise Invalid(f"{origin!r} has an invalid port") from None
    host = split.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[split.scheme]:
        return f"{split.scheme}://{host}"
    return f"{split.scheme}://{host}:{port}"


@dataclass(frozen=True)
class Guard:
    hosts: frozenset[str]  # the Host header values it answers, lower case
    own_origins: frozenset[str]
    trusted_origins: frozenset[str]

    @classmethod
    def for_server(
        cls, bind_host: str, port: int, public_url: str | None = None, trust_origins: tuple[str, ...] = ()
    ) -> Guard:
        hosts: set[str] = set()
        for name in ("127.0.0.1", "localhost", "::1"):
            hosts |= _netlocs(name, port)
        if bind_host not in ("", "0.0.0.0", "::"):  # noqa: S104 - a wildcard names no host
            hosts |= _netlocs(bind_host, port)
        origins = {normalize_origin(f"http://{host}") for host in hosts}
        if public_url:
            split = urlsplit(public_url)
            if split.scheme not in _DEFAULT_PORTS or not split.hostname:
                raise Invalid(f"--public-url {public_url!r} is not an http(s) URL")
            public_port = split.port or _DEFAULT_PORTS[split.scheme]
            hosts |= _netlocs(split.hostname, public_port, split.scheme)
            origins.add(normalize_origin(f"{split.scheme}://{split.netloc}"))
        trusted = frozenset(normalize_origin(origin) for origin in trust_origins)
        return cls(frozenset(hosts), frozenset(origins), trusted)

    def check(self, host: str | None, origin: str | None) -> str | None:
        """Raises Forbidden for a Host it does not serve or an Origin it does not trust; answers the
        origin that CORS headers must name (a trusted foreign one), or None."""
        if host is None or host.lower() not in self.hosts:
            raise Forbidden(
                f"this server does not answer for host {(host or '')[:200]!r}; use its own address, "
                "or start it with --public-url naming that host",
                details={"host": (host or "")[:200]},
            )
        if origin is None:
            return None
        try:
            normal = normalize_origin(origin)
        except Invalid:
            normal = origin  # `null` and the like: never trusted
        if normal in self.own_origins:
            return None
        if normal in self.trusted_origins:
            return origin
        raise Forbidden(
            f"requests from origin {origin[:200]!r} are refused; start the server with --trust-origin to allow it",
            details={"origin": origin[:200]},
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
