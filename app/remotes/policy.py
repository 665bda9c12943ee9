"""Which remote hosts the relay may send requests (and API keys) to.

Everything must be https:// to a public address unless RELAY_REMOTE_ALLOWLIST
names it: otherwise anyone who may create a model could make the relay call
cloud metadata (169.254.169.254) or internal services on their behalf.
The check runs at create time and again before each request, because DNS
answers can change in between.
"""
import ipaddress
import socket
from urllib.parse import urlsplit


class RemoteHostRefused(Exception):
    """remote_host is not allowed; the message says why and what to set."""


def _ip(text):
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def _is_public(address):
    return address.is_global and not address.is_multicast


class RemoteHostPolicy:
    def __init__(self, allowlist=(), resolver=socket.getaddrinfo):
        self._names = set()
        self._networks = []
        for entry in allowlist:
            try:
                self._networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self._names.add(entry.lower().rstrip("."))
        self._resolve = resolver

    def _allowlisted(self, host, addresses):
        if host in self._names:
            return True
        return bool(addresses) and all(
            any(address in network for network in self._networks) for address in addresses)

    def _addresses(self, host):
        literal = _ip(host)
        if literal is not None:
            return [literal]
        if host == "localhost" or host.endswith(".localhost"):
            return [ipaddress.ip_address("127.0.0.1")]
        try:
            infos = self._resolve(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            # Unresolvable here (e.g. only the outbound proxy resolves public
            # names): nothing is known to be private, so the request may go
            # on; the proxy or the connection will fail it if it is wrong.
            return []
        return [_ip(info[4][0]) for info in infos]

    def check(self, url):
        """Raise RemoteHostRefused unless requests to `url` are allowed."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        addresses = self._addresses(host)
        if self._allowlisted(host, addresses):
            return
        for address in addresses:
            if not _is_public(address):
                raise RemoteHostRefused(
                    f"remote_host {host!r} is {address}, a loopback, private or link-local "
                    f"address: refused unless listed in RELAY_REMOTE_ALLOWLIST")
        if parts.scheme != "https":
            raise RemoteHostRefused(
                f"remote_host {url!r} is plain {parts.scheme}://: only https:// is allowed "
                f"unless the host is listed in RELAY_REMOTE_ALLOWLIST")
