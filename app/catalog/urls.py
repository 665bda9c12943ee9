"""remote_host as everyone but the admin's own listing sees it.

Providers and internal gateways often take a key in the query string
(`?key=...`, `?code=...`) or in the URL's userinfo. The database keeps the
URL whole (the relay needs it to call the remote); every answer, stream
line, log line and error message shows it through `shown_url`.
"""

import functools
from urllib.parse import urlsplit, urlunsplit

HIDDEN = "***"


def _hidden_query(query):
    # Each value replaced, each name kept (it says what the remote expects);
    # an item without "=" may itself be a token, so it goes whole.
    items = (
        item.split("=", 1)[0] + "=" + HIDDEN if "=" in item else HIDDEN
        for item in query.split("&")
        if item
    )
    return "&".join(items)


@functools.lru_cache(maxsize=4096)
def shown_url(url):
    """`url` without userinfo or fragment, every query value replaced by ***."""
    if not isinstance(url, str) or not url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
    except ValueError:
        # Not a URL we can take apart: nothing of it is safe to show.
        return HIDDEN
    return urlunsplit((parts.scheme, netloc, parts.path, _hidden_query(parts.query), ""))
