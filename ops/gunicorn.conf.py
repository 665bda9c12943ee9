# gunicorn settings for ollama-relay: `gunicorn -c ops/gunicorn.conf.py wsgi:app`.
#
# Streams last minutes and mostly wait on the remote, so the relay runs few
# processes with many greenlets each. Every value can be overridden from the
# environment (names below); a --bind on the command line wins over RELAY_BIND.
# No app imports here, and no preload: each worker builds its own app, so
# connections and pools are never shared across a fork.
import glob
import ipaddress
import multiprocessing
import os
import sys
import tempfile


def _env_int(name, default):
    return int(os.environ.get(name, default))


bind = os.environ.get("RELAY_BIND", "127.0.0.1:11434")
worker_class = "gevent"
# One process per core: the work is I/O-bound and gevent multiplexes it.
workers = _env_int("RELAY_WORKERS", multiprocessing.cpu_count())
# Concurrent requests (open streams included) per worker.
worker_connections = _env_int("RELAY_WORKER_CONNECTIONS", 1000)
# For gevent workers this is only a liveness check of the worker's loop,
# not a limit on request length: streams are not cut by it.
timeout = _env_int("RELAY_WORKER_TIMEOUT", 60)
# How long streams in flight may run on after HUP/TERM before being cut.
graceful_timeout = _env_int("RELAY_GRACEFUL_TIMEOUT", 300)
# Longer than nginx's upstream keepalive_timeout (10s), so nginx closes idle
# connections first and never writes to one we just closed; yet short, because
# on HUP/TERM gunicorn's gevent worker waits this long on an idle connection
# before it exits (streams in flight are never cut by it).
keepalive = _env_int("RELAY_KEEPALIVE", 15)
preload_app = False
accesslog = os.environ.get("RELAY_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("RELAY_LOG_LEVEL", "info").lower()
# gunicorn's control socket defaults to one path per user, which two relays
# on one host (or a service user without a home) trip over: opt in by path.
control_socket = os.environ.get("RELAY_CONTROL_SOCKET", "")
control_socket_disable = not control_socket

# Metrics: each worker writes its own files here and /metrics sums them
# (prometheus-client's multiprocess mode). Set before any worker imports
# prometheus_client; one directory per master, emptied when it starts.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:  # the config is read again on HUP
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ollama-relay-metrics-")


# Who may reach a relay that asks no key. Without RELAY_ADMIN_TOKEN the
# relay is open, as Ollama is: safe only where nobody else can connect. So
# the master refuses to start on a network address, or behind a proxy (which
# brings the network to it), unless RELAY_ALLOW_UNAUTHENTICATED=1 says that
# is meant. The app reads these settings too, but this file must not import
# it (see the top: the master stays free of app code), so it reads them
# here with the stdlib alone.


def _flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _has_admin_token():
    return any(token.strip() for token in os.environ.get("RELAY_ADMIN_TOKEN", "").split(","))


def _trusted_proxies():
    try:
        return int(os.environ.get("RELAY_TRUSTED_PROXIES") or 0)
    except ValueError:
        return 1  # not a number: the app refuses it; here it must not open a way round


def _is_local(address):
    """Whether a gunicorn bind address is reachable from this host only."""
    if address.startswith("unix:"):
        return True
    if address.startswith("tcp://"):
        address = address[len("tcp://") :]
    if address.startswith("["):
        host = address[1:].partition("]")[0]
    else:
        host = address.partition(":")[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # A host name, "" (every interface), or fd:// (an inherited socket
        # we cannot see): all count as the network.
        return False


def _open_to_the_network(binds):
    """Why starting without a key would expose the relay, or None."""
    if _has_admin_token() or _flag("RELAY_ALLOW_UNAUTHENTICATED"):
        return None
    network = [address for address in binds if not _is_local(address)]
    if network:
        return f"it would listen on {', '.join(network)}, which is not loopback"
    if _trusted_proxies() > 0:
        return (
            f"RELAY_TRUSTED_PROXIES={os.environ['RELAY_TRUSTED_PROXIES']} says clients "
            f"reach it through a proxy"
        )
    return None


def on_starting(server):
    # Here, not at the top: server.cfg.bind is final (a --bind on the command
    # line has replaced RELAY_BIND), and nothing listens yet.
    problem = _open_to_the_network(server.cfg.bind)
    if problem:
        # A string exits with status 1 and goes to stderr as it is.
        sys.exit(
            f"ollama-relay refuses to start without RELAY_ADMIN_TOKEN: {problem}. "
            f"Set RELAY_ADMIN_TOKEN to require keys, or RELAY_ALLOW_UNAUTHENTICATED=1 "
            f"to serve without them on purpose."
        )
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for stale in glob.glob(os.path.join(directory, "*.db")):
        os.unlink(stale)


def child_exit(server, worker):
    # A dead worker's gauges (open streams) must stop counting.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    # Spans still queued in this worker go out before it ends. Only if the
    # app loaded its tracing: this file imports no app code.
    tracing = sys.modules.get("app.observability.tracing")
    if tracing is not None:
        tracing.shutdown()
