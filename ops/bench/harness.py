"""Processes for compare.py: the fast upstream, the relay, LiteLLM's proxy and
the load generators, each pinned to a core, and their CPU read from /proc.
Standard library only, so compare.py runs under any Python 3.
"""

import datetime
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "ops/bench"
RELAY_PYTHON = ROOT / ".venv/bin/python"
LITELLM_VENV = ROOT / ".venv-bench/litellm"
LITELLM_VERSION = "1.108.7"
TICKS = os.sysconf("SC_CLK_TCK")
# The server under test gets core 0 alone; the load generators, the upstream
# and this script share core 1, so a saturated server is not a starved one.
SERVER_CORES, LOAD_CORES = "0", "1"
WORKDIR = Path(tempfile.mkdtemp(prefix="relay-bench-"))
_started = []


def pinned(cores, command):
    if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        return command  # compare.py says the numbers are unpinned
    return ["taskset", "-c", cores, *command]


def http(method, url, body=None, token=None, timeout=30):
    """(status, body bytes) with urllib: setup and probes, not load."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Proc:
    def __init__(
        self, name, command, env=None, cores=SERVER_CORES, stop_signal=signal.SIGTERM, cwd=ROOT
    ):
        self.name, self.stop_signal = name, stop_signal
        self.log_path = WORKDIR / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            pinned(cores, command),
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.process.pid
        _started.append(self)

    def wait_ready(self, url, deadline=120):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                break
            try:
                if http("GET", url, timeout=2)[0] == 200:
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start; its log:\n{self.log()[-3000:]}")

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            # The session we started it in: gunicorn's workers, LiteLLM's
            # children and the taskset'd process go with it, nothing else.
            os.killpg(self.pid, self.stop_signal)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def stop_all():
    while _started:
        _started.pop().stop()


def stop_all_named(name):
    """Stop the processes started as `name` (one that failed to come up)."""
    for proc in [p for p in _started if p.name == name]:
        _started.remove(proc)
        proc.stop()


def start_upstream(interval=0.0):
    name = f"upstream-{len(_started)}"
    proc = Proc(
        name,
        [sys.executable, str(BENCH / "fast_upstream.py"), "--interval", str(interval)],
        cores=LOAD_CORES,
    )
    for _ in range(100):
        text = proc.log()
        if text.startswith("listening"):
            proc.url = f"http://127.0.0.1:{int(text.split()[1])}"
            return proc
        time.sleep(0.05)
    raise RuntimeError(f"upstream did not start: {proc.log()}")


def start_otlp_sink():
    """A local OTLP/HTTP endpoint (otlp_sink.py) for a relay with tracing on."""
    proc = Proc(
        f"otlp-sink-{len(_started)}",
        [sys.executable, str(BENCH / "otlp_sink.py")],
        cores=LOAD_CORES,
    )
    for _ in range(100):
        text = proc.log()
        if text.startswith("listening"):
            proc.url = f"http://127.0.0.1:{int(text.split()[1])}"
            return proc
        time.sleep(0.05)
    raise RuntimeError(f"the OTLP sink did not start: {proc.log()}")


def tracing_env(sink_url):
    """What turns a relay's tracing on, exporting to `sink_url` (every span sampled)."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": sink_url, "OTEL_TRACES_SAMPLER": "always_on"}


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_relay(
    upstream_url,
    slow_url=None,
    workers=1,
    cores=SERVER_CORES,
    database_url=None,
    root=ROOT,
    spend=True,
    env_extra=None,
):
    """gunicorn as production runs it, with keys on: the admin token makes
    the models, a client key with limits far above the load (so the limiter
    runs on every request but never refuses) makes the requests. With
    `spend`, the models have a price and the key a monthly budget far above
    the load, so every request is priced and reserved against it. `root`:
    the checkout whose app runs (gunicorn imports it from its working
    directory; a checkout without prices or budgets ignores them).
    `env_extra`: more environment (tracing_env() turns tracing on)."""
    home = Path(tempfile.mkdtemp(prefix="relay-", dir=WORKDIR))
    port = free_port()
    admin = secrets.token_urlsafe(24)
    env = dict(
        os.environ,
        RELAY_BIND=f"127.0.0.1:{port}",
        RELAY_WORKERS=str(workers),
        RELAY_ADMIN_TOKEN=admin,
        RELAY_REMOTE_ALLOWLIST="127.0.0.1",
        RELAY_DATABASE_URL=database_url or f"sqlite:///{home}/relay.sqlite3",
        RELAY_INSTANCE_PATH=str(home),
        PROMETHEUS_MULTIPROC_DIR=str(home / "metrics"),
        **(env_extra or {}),
    )
    python = str(RELAY_PYTHON if RELAY_PYTHON.exists() else sys.executable)
    proc = Proc(
        f"relay-{workers}w-{port}",
        [python, "-m", "gunicorn", "-c", "ops/gunicorn.conf.py", "wsgi:app"],
        # QUIT: gunicorn stops at once, not after idle keep-alives.
        env=env,
        cores=cores,
        stop_signal=signal.SIGQUIT,
        cwd=root,
    )
    proc.url = f"http://127.0.0.1:{port}"
    proc.home = home
    proc.wait_ready(proc.url + "/readyz")
    for name, url in (("bench", upstream_url), ("bench-slow", slow_url)):
        if url:
            status, body = http(
                "POST",
                proc.url + "/api/create",
                {
                    "name": name,
                    "from": "fast-model",
                    "remote_type": "openai",
                    "remote_host": url + "/v1",
                    "stream": False,
                    **({"price": {"input": 0.40, "output": 1.60}} if spend else {}),
                },
                token=admin,
            )
            if status != 200:  # setup, not a measurement: nothing to run without it
                raise RuntimeError(f"creating model {name} failed: {status} {body[:300]}")
    status, body = http(
        "POST",
        proc.url + "/api/keys",
        {
            "name": f"bench-{port}",
            "rpm": 100_000_000,
            "tpm": 2_000_000_000,
            **({"budget": 1_000_000, "period": "month"} if spend else {}),
        },
        token=admin,
    )
    if status != 200:
        raise RuntimeError(f"creating the client key failed: {status} {body[:300]}")
    proc.key = json.loads(body)["key"]
    proc.model = "bench"
    return proc


def litellm_binary(install):
    """LiteLLM's CLI from its own virtualenv (made on request), else PATH."""
    own = LITELLM_VENV / "bin/litellm"
    if install and not own.exists():
        print(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run(
            [str(LITELLM_VENV / "bin/pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
            check=True,
        )
    if own.exists():
        return str(own)
    return shutil.which("litellm")


def litellm_version(binary):
    python = Path(binary).parent / "python"
    if not python.exists():
        return "?"
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or "?"


def start_litellm(binary, upstream_url, database_url=None):
    """LiteLLM's proxy, one worker, on the relay's core. custom_openai/ is a
    plain OpenAI-compatible provider without a native Responses config, so
    LiteLLM bridges /v1/responses to Chat Completions (hosted_vllm/ would
    call the upstream's /v1/responses); compare.py checks the path taken."""
    port = free_port()
    config = WORKDIR / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: custom_openai/fast-model\n"
        f"      api_base: {upstream_url}/v1\n"
        "      api_key: sk-upstream\n"
        "general_settings:\n"
        "  master_key: sk-bench-master\n"
    )
    # No network at start (the cost map ships in the package) and errors-only
    # logs, as LiteLLM's production advice says.
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    proc = Proc(
        "litellm",
        [
            binary,
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        env=env,
    )
    proc.url = f"http://127.0.0.1:{port}"
    proc.wait_ready(proc.url + "/health/liveliness", deadline=180)
    proc.key, proc.model = "sk-bench-master", "bench"
    if database_url:
        status, body = http(
            "POST", proc.url + "/key/generate", {"models": ["bench"]}, token=proc.key
        )
        if status != 200:
            raise RuntimeError(f"LiteLLM's /key/generate failed: {status} {body[:300]!r}")
        proc.key = json.loads(body)["key"]
    return proc


def litellm_database(admin_url, name="litellm_bench"):
    """A fresh database `name` on the PostgreSQL server of `admin_url` (any
    database there the user may connect to), for LiteLLM's tables: its URL."""
    for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", admin_url, "-qc", sql], check=True, capture_output=True)
    return admin_url.rsplit("/", 1)[0] + "/" + name


def versions(litellm_bin):
    relay_python = str(RELAY_PYTHON if RELAY_PYTHON.exists() else sys.executable)
    libs = subprocess.run(
        [
            relay_python,
            "-c",
            "import importlib.metadata as m; print(' '.join("
            "f'{p} {m.version(p)}' for p in ('gunicorn', 'gevent', 'Flask')))",
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1:2]
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}\n"
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
        f"relay: {commit}, Python {platform.python_version()}, {libs}\n"
        f"LiteLLM: {litellm_version(litellm_bin) if litellm_bin else 'skipped'}; "
        f"wrk {' '.join(wrk)}"
    )


# --- CPU and memory from /proc ----------------------------------------------


def _children():
    tree = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rpartition(")")[2].split()
            except OSError:
                continue
            tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def descendants(pid):
    """pid and all its descendants: gunicorn's workers, LiteLLM's children."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += tree.get(current, [])
    return found


def cpu_ticks(pid):
    """utime + stime of pid and its descendants."""
    total = 0
    for current in descendants(pid):
        try:
            with open(f"/proc/{current}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass  # exited between the listing and the read
    return total


def wait_ns(pid):
    """Nanoseconds the main threads of pid and its descendants (the event
    loops) were runnable but waiting for a CPU (schedstat's second field):
    other processes on the server's core show here, so a noisy machine is
    told from a slow server. Main threads only: a server's own helper threads
    queueing behind its loop are not noise."""
    total = 0
    for current in descendants(pid):
        try:
            with open(f"/proc/{current}/schedstat") as handle:
                total += int(handle.read().split()[1])
        except (OSError, IndexError, ValueError):
            pass  # exited, or a kernel without schedstats
    return total


class CpuMeter:
    """CPU% (of one core) of each named process over a span of wall time, and
    the % of it the server spent waiting for its core (`server_wait`)."""

    def __init__(self, **pids):
        self.pids = pids
        self.begun = time.monotonic()
        self.before = {name: cpu_ticks(pid) for name, pid in pids.items()}
        self.waited = wait_ns(pids["server"])

    def result(self):
        wall = time.monotonic() - self.begun
        shares = {
            name: round(100 * (cpu_ticks(pid) - self.before[name]) / TICKS / wall)
            for name, pid in self.pids.items()
        }
        waited = wait_ns(self.pids["server"]) - self.waited
        shares["server_wait"] = max(0, round(waited / 1e7 / wall))
        return shares


def settle(pids, quiet=5, window=0.25, deadline=30.0):
    """Wait until the processes `pids` (and their children) use under `quiet`%
    of a core: a server still working off the last cell's requests (LiteLLM
    finishing streams its clients already left) would slow the next cell on
    the shared core."""
    begun = time.monotonic()
    while time.monotonic() - begun < deadline:
        before = sum(cpu_ticks(pid) for pid in pids)
        time.sleep(window)
        if 100 * (sum(cpu_ticks(pid) for pid in pids) - before) / TICKS / window < quiet:
            return


def rss_mb(pid):
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0  # exited
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmRSS:")), 0.0)
