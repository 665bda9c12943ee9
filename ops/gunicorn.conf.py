# gunicorn settings for ollama-relay: `gunicorn -c ops/gunicorn.conf.py wsgi:app`.
#
# Streams last minutes and mostly wait on the remote, so the relay runs few
# processes with many greenlets each. Every value can be overridden from the
# environment (names below); a --bind on the command line wins over RELAY_BIND.
# No app imports here, and no preload: each worker builds its own app, so
# connections and pools are never shared across a fork.
import glob
import multiprocessing
import os
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


def on_starting(server):
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for stale in glob.glob(os.path.join(directory, "*.db")):
        os.unlink(stale)


def child_exit(server, worker):
    # A dead worker's gauges (open streams) must stop counting.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
