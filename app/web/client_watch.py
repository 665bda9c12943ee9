"""Watching the client while the relay waits on a remote for a whole answer.

A client that gives up on a non-streamed call (its timeout, a closed tab)
would otherwise leave the remote generating to the end: a paid generation
nobody reads, and an SDK's retry starts another beside it. While the call
is waiting, a greenlet peeks at the client's socket; when it reads the end
of the connection, the waiting greenlet gets ClientGone raised where it
blocks (as gevent.Timeout does), and urllib3 closes the remote's connection
on the way out, which is how a remote learns it may stop.

Only under gunicorn's gevent worker, which hands the socket over; elsewhere
the call is waited for as before.
"""

import contextlib
import socket

from app.errors import ClientGone


def _socket(environ):
    sock = environ.get("gunicorn.socket")
    return sock if sock is not None and "gevent" in type(sock).__module__ else None


class _Interrupter:
    def __init__(self, sock, host):
        import gevent

        self._gevent = gevent
        self._host = host
        self._waiting = gevent.getcurrent()
        self._armed = True
        self._watcher = gevent.spawn(self._watch, sock)

    def _watch(self, sock):
        try:
            data = sock.recv(1, socket.MSG_PEEK)
        except OSError:
            data = b""
        # Data is a pipelined next request: the client is still there.
        if not data and self._armed:
            # From the hub's loop, as gevent.Timeout throws: never from this
            # greenlet, which would then be left suspended.
            self._gevent.get_hub().loop.run_callback(self._interrupt)

    def _interrupt(self):
        if self._armed:
            self._armed = False
            self._waiting.throw(
                ClientGone(f"the client went away while the relay waited for {self._host}")
            )

    def close(self):
        self._armed = False
        # Dead before the worker reads the next request on this socket:
        # two greenlets reading one socket is an error in gevent.
        self._watcher.kill()


@contextlib.contextmanager
def interrupting(environ, host):
    """Raise ClientGone in this greenlet, where it waits, once the client
    of `environ` closes its connection; `host` names the remote waited for."""
    sock = _socket(environ)
    if sock is None:
        yield
        return
    interrupter = _Interrupter(sock, host)
    try:
        yield
    finally:
        interrupter.close()
