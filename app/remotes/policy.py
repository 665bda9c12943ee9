"""Which remote hosts the relay may send requests (and API keys) to.

Everything must be https:// to a public address unless RELAY_REMOTE_ALLOWLIST
names it: otherwise anyone who may create a model could make the relay call
cloud metadata (169.254.169.254) or internal services on their behalf.

The check runs at create time (`check`), and for every new connection on
the address it is about to use (`approve`, called by app.remotes.http.pinning
inside the connection): checking a name and letting the HTTP library look
it up again would give a DNS-rebinding attacker the gap in between.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from app.catalog.urls import shown_url


class RemoteHostRefused(Exception):
    """remote_host is not allowed; the message says why and what to set.

    Not an OSError on purpose: raised inside a connection, it must pass
    through urllib3 and requests unchanged (they retry or wrap OSErrors).
    """


def _ip(text):
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


# IPv6 forms that carry an IPv4 address in their last 32 bits: NAT64's
# well-known prefix (RFC 6052), IPv4-compatible (::a.b.c.d, deprecated) and
# IPv4-translated (::ffff:0:a.b.c.d, RFC 2765). A gateway or the kernel may
# deliver them to the IPv4 address, so that address is what is judged.
_LAST_32_BITS = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96"))
# Local-use NAT64 (RFC 8215) translates inside a network: never a public remote.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def embedded_ipv4(address):
    """The IPv4 address an IPv6 `address` embeds (mapped, NAT64, 6to4,
    IPv4-compatible or -translated, Teredo's client), or None."""
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _LAST_32_BITS) and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_public(address):
    if address.version == 6 and (address.is_site_local or address in _LOCAL_NAT64):
        return False
    inner = embedded_ipv4(address)
    if inner is not None and not _is_public(inner):
        return False
    return address.is_global and not address.is_multicast


def _normal(host):
    return (host or "").lower().rstrip(".")


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
        # URLs that passed check(resolve=False), a verdict that depends on the
        # URL alone: every request checks its remote's URL again.
        self._passed = set()

    def _allowlisted(self, host, addresses):
        if host in self._names:
            return True
        return bool(addresses) and all(self._in_networks(address) for address in addresses)

    def _in_networks(self, address):
        inner = embedded_ipv4(address) if address.version == 6 else None
        return any(
            address in network or (inner is not None and inner in network)
            for network in self._networks
        )

    @staticmethod
    def _known(host):
        """The addresses of `host` that need no lookup: an IP literal, or localhost
        (always loopback: RFC 6761; never asked of DNS or /etc/hosts). None otherwise."""
        literal = _ip(host)
        if literal is not None:
            return [literal]
        if host == "localhost" or host.endswith(".localhost"):
            return [ipaddress.ip_address("127.0.0.1")]
        return None

    def _lookup(self, host):
        """Every address of `host`, in resolver order, without repeats.
        Raises OSError (socket.gaierror) or UnicodeError if it does not resolve."""
        known = self._known(host)
        if known is not None:
            return known
        addresses = []
        for info in self._resolve(host, None, proto=socket.IPPROTO_TCP):
            address = _ip(info[4][0])
            if address is not None and address not in addresses:
                addresses.append(address)
        return addresses

    def _judge(self, scheme, host, addresses, shown):
        if self._allowlisted(host, addresses):
            return
        internal = [address for address in addresses if not _is_public(address)]
        if internal:
            # A mixed answer is what a rebinding attack looks like: all of a
            # name's addresses must be public, or all allowlisted. The
            # refusal names an address the allowlist does not admit.
            named = next((a for a in internal if not self._in_networks(a)), internal[0])
            inner = embedded_ipv4(named)
            shown_address = f"{named} (which embeds {inner})" if inner is not None else named
            among = f" (one of its {len(addresses)} addresses)" if len(addresses) > 1 else ""
            raise RemoteHostRefused(
                f"remote_host {host!r} is {shown_address}{among}, a loopback, private or "
                f"link-local address: refused unless listed in RELAY_REMOTE_ALLOWLIST"
            )
        if scheme != "https":
            raise RemoteHostRefused(
                f"remote_host {shown!r} is plain {scheme}://: only https:// is allowed "
                f"unless the host is listed in RELAY_REMOTE_ALLOWLIST"
            )

    def check(self, url: str, resolve: bool = True) -> None:
        """Raise RemoteHostRefused unless requests to `url` are allowed.

        With `resolve=False` only what the URL itself decides is checked (its
        scheme, a literal address, an allowlisted name; localhost counts as a
        name): for calls whose connections `approve` checks as they are opened.
        """
        if resolve:
            self._check(url, resolve=True)
        elif url not in self._passed:
            self._check(url, resolve=False)
            if len(self._passed) >= 10_000:  # bounded: URLs come from the models
                self._passed.clear()
            self._passed.add(url)

    def _check(self, url, resolve):
        parts = urlsplit(url)
        host = _normal(parts.hostname)
        literal = _ip(host)
        addresses = [literal] if literal is not None else None
        if addresses is None and resolve:
            try:
                addresses = self._lookup(host)
            except (OSError, UnicodeError):
                # Unresolvable here (e.g. only the outbound proxy resolves public
                # names): nothing is known to be private, so the request may go
                # on; the proxy or the connection will fail it if it is wrong.
                addresses = []
        if addresses is None:
            # A name, not looked up: its addresses are checked when connecting.
            # Plain http to a name can only pass by the allowlist: by that name,
            # or by CIDR once resolved.
            if host in self._names or parts.scheme == "https" or self._networks:
                return
            addresses = []
        self._judge(parts.scheme, host, addresses, shown_url(url))

    def approve(
        self, scheme: str, host: str, port: int | None = None
    ) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        """The addresses a new `scheme` connection to `host` may go to: all of
        them, resolved once here, or RemoteHostRefused if any is not allowed
        (a mixed answer is what a rebinding attack looks like).
        Raises socket.gaierror if `host` does not resolve."""
        host = _normal(host)
        try:
            addresses = self._lookup(host)
        except UnicodeError as exc:
            raise socket.gaierror(socket.EAI_NONAME, f"invalid host name: {exc}") from None
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        shown = (
            f"{scheme}://" + (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
        )
        self._judge(scheme, host, addresses, shown)
        return addresses
