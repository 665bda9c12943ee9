"""HTTP to remote hosts, through urllib3's public API: `client` (RemoteHTTP:
a route per origin, retries, redirects refused, error statuses), `transport`
(one call: a pinned pool's urlopen, or the outbound proxy's), `pinning` (DNS
pinning through the host policy) and `errors` (the one map from failures to
the upstream errors clients see). The fast paths it may take are app/fast/'s."""
