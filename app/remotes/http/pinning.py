"""Connections to remotes that go only to addresses the host policy approved.

The policy cannot check a name and then let urllib3 look it up again: a
DNS-rebinding attacker answers the first lookup with a public address and
the second with 169.254.169.254. So the check happens inside the connection,
when it is opened: the name is resolved once, every address is approved by
the policy, and the socket connects to one of those addresses. Everything
else about the connection still uses the name: TLS server name (SNI), the
certificate's hostname check and the Host header.

Only direct connections are pinned. Behind an outbound proxy the proxy
resolves the name, so there is nothing local to pin: the adapter's proxy
managers keep urllib3's own classes, and RemoteHTTP checks at request time.
A pooled keep-alive connection was approved when it was opened, so reusing
it needs no new lookup.
"""

import socket
import sys

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection

from app.remotes.http.wire import Lean


class _Pinned:
    """Mixin for urllib3 connections: `_new_conn` through the policy.

    RemoteHostRefused from the policy is not an OSError, so urllib3 neither
    retries nor wraps it: the pool discards the connection (its slot is
    returned) and the exception reaches RemoteHTTP.request as it was raised.
    """

    policy = None  # set on the classes pinned_pools() makes
    scheme = None

    def _new_conn(self):
        try:
            addresses = self.policy.approve(self.scheme, self.host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        error = None
        for address in addresses:  # in resolver order, as urllib3 would try them
            try:
                # An IP literal: create_connection does no lookup of its own.
                sock = connection.create_connection(
                    (str(address), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                error = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        if isinstance(error, socket.timeout):
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from error
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error


def pinned_pools(policy):
    """urllib3 pool classes, by scheme, whose connections `policy` approves."""
    http = type(
        "PinnedHTTPConnection",
        (_Pinned, Lean, HTTPConnection),
        {"policy": policy, "scheme": "http"},
    )
    https = type(
        "PinnedHTTPSConnection",
        (_Pinned, Lean, HTTPSConnection),
        {"policy": policy, "scheme": "https"},
    )
    return {
        "http": type("PinnedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
        "https": type(
            "PinnedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https}
        ),
    }


class PinnedAdapter(HTTPAdapter):
    """An HTTPAdapter whose direct pools use `pools` (from pinned_pools);
    its proxy managers (proxy_manager_for) are left as requests makes them."""

    def __init__(self, pools, **kwargs):
        self._pinned_pools = pools  # before super().__init__: it builds the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pinned_pools
