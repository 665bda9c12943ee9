"""One direct HTTP call to a remote, made on urllib3's connection pool.

requests' HTTPAdapter.send builds its pool key, TLS settings and request URL
anew on every call, and requests prepares the request (URL parsing and
quoting, header merging, cookies) before that and builds a Response with a
cookie jar after: about 12% of a worker's CPU per non-streamed chat request,
measured with py-spy (ops/bench/compare.py shows the effect). A `Direct`
does that work once per remote origin and keeps, per call, what
HTTPAdapter.send does: the same pool (so the DNS pinning of
app.remotes.pinning and the CA settings stay), the same urlopen arguments,
the same mapping of urllib3's exceptions to requests' (so RemoteHTTP maps
failures exactly as before) and a requests.Response around urllib3's answer.

Calls through an outbound proxy keep requests' own path: its proxy managers
choose the pool per call.
"""
import functools
import json

import requests
from requests.utils import get_encoding_from_headers
from urllib3.exceptions import (ClosedPoolError, ConnectTimeoutError, DecodeError, HTTPError,
                                InvalidHeader, MaxRetryError, NewConnectionError, ProtocolError,
                                ProxyError, ReadTimeoutError, ResponseError, SSLError)
from urllib3.util import Retry, Timeout

# HTTPAdapter's default: no retries of its own (app.remotes.retry decides).
_NO_RETRIES = Retry(0, read=False)
_E = requests.exceptions


@functools.lru_cache(maxsize=1024)
def _path(url):
    """The request target of `url` (path and query), quoted as requests quotes it."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.path_url


class Direct:
    """Calls to one remote origin, on the pool requests' adapter would choose."""

    def __init__(self, adapter, url, verify, timeout):
        probe = requests.PreparedRequest()
        probe.prepare(method="GET", url=url)
        self.adapter = adapter
        self.pool = adapter.get_connection_with_tls_context(probe, verify, proxies=None)
        adapter.cert_verify(self.pool, url, verify, None)
        self.timeout = Timeout(connect=timeout[0], read=timeout[1])

    def send(self, method, url, headers, payload=None):
        """The response to one request (a JSON `payload`, if any), its body
        unread; failures raised as requests' exceptions."""
        body = None
        headers = dict(headers)  # the callers' names are spelt as these are
        if payload is not None:
            # The bytes requests would send for json= (its default separators;
            # NaN cannot occur: request bodies refuse it).
            body = json.dumps(payload, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if body is not None or method not in ("GET", "HEAD"):
            headers["Content-Length"] = str(len(body or b""))
        try:
            raw = self.pool.urlopen(method, _path(url), body=body, headers=headers,
                                    redirect=False, assert_same_host=False, preload_content=False,
                                    decode_content=False, retries=_NO_RETRIES,
                                    timeout=self.timeout, chunked=False)
        except Exception as exc:
            error = as_requests_error(exc)
            if error is exc:
                raise
            raise error from exc
        response = requests.Response()
        response.status_code = raw.status
        # urllib3's headers are case-insensitive too, and need no copy.
        response.headers = raw.headers
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = raw
        response.reason = raw.reason
        response.url = url
        response.connection = self.adapter
        return response


def read_body(response):
    """Read a requests.Response's whole body into it, as its `content` would
    (the same exceptions), in one urllib3 read instead of its chunk
    generator; the connection goes back to the pool when the body ends."""
    try:
        response._content = response.raw.read(decode_content=True) or b""
    except ProtocolError as exc:
        raise _E.ChunkedEncodingError(exc) from exc
    except DecodeError as exc:
        raise _E.ContentDecodingError(exc) from exc
    except ReadTimeoutError as exc:  # requests' mapping here ("Read timed out")
        raise _E.ConnectionError(exc) from exc
    except SSLError as exc:
        raise _E.SSLError(exc) from exc
    response._content_consumed = True


# What HTTPAdapter.send raises for urllib3's exceptions: for the reason inside
# a MaxRetryError, and for the others, first match first.
_FOR_REASON = ((ResponseError, _E.RetryError), (ProxyError, _E.ProxyError),
               (SSLError, _E.SSLError))
_FOR_ERROR = (((ProtocolError, OSError, ClosedPoolError), _E.ConnectionError),
              (ProxyError, _E.ProxyError), (SSLError, _E.SSLError),
              (ReadTimeoutError, _E.ReadTimeout), (InvalidHeader, _E.InvalidHeader),
              # HTTPAdapter lets the rest through as urllib3's own; as a
              # ConnectionError they reach RemoteHTTP's mapping ("cannot reach").
              (HTTPError, _E.ConnectionError))


def as_requests_error(exc):
    """urllib3's exception as the requests exception HTTPAdapter.send raises for it;
    any other exception (RemoteHostRefused) as it was raised."""
    if isinstance(exc, MaxRetryError):
        reason = exc.reason
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return _E.ConnectTimeout(exc)
        kind = next((kind for cause, kind in _FOR_REASON if isinstance(reason, cause)),
                    _E.ConnectionError)
        return kind(exc)
    kind = next((kind for cause, kind in _FOR_ERROR if isinstance(exc, cause)), None)
    return exc if kind is None else kind(exc)
