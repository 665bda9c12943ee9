"""Connections to remotes that go only to addresses the host policy approved.

The policy cannot check a name and then let urllib3 look it up again: a
DNS-rebinding attacker answers the first lookup with a public address and
the second with 169.254.169.254. So the check happens inside the connection,
when it is opened: the name is resolved once, every address is approved by
the policy, and the socket connects to one of those addresses. Everything
else about the connection still uses the name: TLS server name (SNI), the
certificate's hostname check and the Host header.

Only public urllib3 API is used: the pool classes' `ConnectionCls` hook, and
connection classes whose `connect()` (http.client's public method) points
the connection's `host` at one approved address at a time, with
`server_hostname` (a documented HTTPSConnection setting) holding the name for
TLS, and then puts the name back before the request's head is written.

Only direct connections are pinned. Behind an outbound proxy the proxy
resolves the name, so there is nothing local to pin: urllib3's ProxyManager
keeps its own classes, and RemoteHTTP checks at request time. A pooled
keep-alive connection was approved when it was opened, so reusing it needs
no new lookup.
"""

import socket
from collections.abc import Callable
from typing import Any, ClassVar

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError

from app.remotes.policy import RemoteHostPolicy


def _connect(
    conn: HTTPConnection, policy: RemoteHostPolicy, scheme: str, connect: Callable[[], None]
) -> None:
    """Open `conn` to an address of its host that `policy` approves.

    RemoteHostRefused from the policy is not an OSError, so urllib3 neither
    retries nor wraps it: the pool discards the connection (its slot is
    returned) and the exception reaches RemoteHTTP as it was raised.
    """
    name = conn.host
    try:
        addresses = policy.approve(scheme, name, conn.port)
    except socket.gaierror as exc:
        raise NameResolutionError(name, conn, exc) from exc
    if isinstance(conn, HTTPSConnection) and conn.server_hostname is None:
        conn.server_hostname = name  # SNI and the certificate's check: the name
    error: ConnectTimeoutError | None = None
    try:
        for address in addresses:  # in resolver order, as urllib3 would try them
            conn.host = str(address)  # an IP literal: no lookup of its own
            try:
                connect()
            except ConnectTimeoutError as exc:  # NewConnectionError too: the next address
                error = exc
                continue
            return
    finally:
        conn.host = name  # the Host header, and the next connect, use the name
    assert error is not None  # approve() returns at least one address
    raise error


class PinnedHTTPConnection(HTTPConnection):
    policy: ClassVar[RemoteHostPolicy]

    def connect(self) -> None:
        _connect(self, self.policy, "http", super().connect)


class PinnedHTTPSConnection(HTTPSConnection):
    policy: ClassVar[RemoteHostPolicy]

    def connect(self) -> None:
        _connect(self, self.policy, "https", super().connect)


class PinnedPools:
    """urllib3 connection pools, one per remote origin, whose connections
    `policy` approves; `mixins` (fast paths) go in front of the connection
    classes."""

    def __init__(self, policy: RemoteHostPolicy, mixins: tuple[type, ...] = ()) -> None:
        self.mixins = mixins
        self._classes: dict[str, type[HTTPConnectionPool]] = {}
        for scheme, base, pool in (
            ("http", PinnedHTTPConnection, HTTPConnectionPool),
            ("https", PinnedHTTPSConnection, HTTPSConnectionPool),
        ):
            connection = type(base.__name__, (*mixins, base), {"policy": policy})
            self._classes[scheme] = type(
                f"Pinned{pool.__name__}", (pool,), {"ConnectionCls": connection}
            )

    def pool(self, scheme: str, host: str, port: int | None, **kwargs: Any) -> HTTPConnectionPool:
        """A new pool for scheme://host:port; `kwargs` as HTTPSConnectionPool takes them."""
        cls = self._classes[scheme]
        if scheme == "http":
            for name in ("cert_reqs", "ca_certs", "ca_cert_dir"):
                kwargs.pop(name, None)
        return cls(host, port, **kwargs)
