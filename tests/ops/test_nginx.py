"""ops/nginx/ollama-relay.conf in real nginx (Debian's package) in front of
real gunicorn: `nginx -t` accepts it, and a stream passes through unbuffered.

The site is used as shipped; only what must differ on a test machine is
substituted (loopback ports, certificate paths, log path), and each
substitution must match exactly once so a reshaped site fails loudly here.
"""

import datetime
import grp
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.config import SETTINGS
from tests.support.config import relay_settings
from tests.support.servers import ROOT, GunicornServer, free_port

# Every test here runs the real tool (an autouse fixture skips without it).
pytestmark = pytest.mark.external

SITE = os.path.join(ROOT, "ops", "nginx", "ollama-relay.conf")
NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(path, os.X_OK)), None
)


@pytest.fixture(autouse=True)
def needs_nginx():
    # .ci/run installs it, so in CI a missing nginx is a failure, not a skip.
    if NGINX is None:
        reason = "nginx not installed (apt-get install nginx-light; .ci/run does)"
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(reason)


def write_certificate(directory):
    """A self-signed certificate for 127.0.0.1, standing in for the real one."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "relay.crt", directory / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def substitute(text, old, new):
    count = len(re.findall(old, text, flags=re.M))
    assert count == 1, f"expected one match of {old!r} in the site, found {count}"
    return re.sub(old, new, text, flags=re.M)


class Nginx:
    """nginx in the foreground with everything under `prefix`, our site included."""

    def __init__(self, prefix, upstream_port, location_extra=""):
        self.prefix = prefix
        self.http_port, self.https_port = free_port(), free_port()
        self.cert, key = write_certificate(prefix)
        site = open(SITE).read()
        site = substitute(
            site, r"^    server 127\.0\.0\.1:11434;", f"    server 127.0.0.1:{upstream_port};"
        )
        site = substitute(site, r"^    listen 80;", f"    listen 127.0.0.1:{self.http_port};")
        site = substitute(
            site, r"^    listen 443 ssl;", f"    listen 127.0.0.1:{self.https_port} ssl;"
        )
        # Containers may have no IPv6.
        site = substitute(site, r"^    listen \[::\]:80;\n", "")
        site = substitute(site, r"^    listen \[::\]:443 ssl;\n", "")
        site = substitute(site, r"^    ssl_certificate .*;", f"    ssl_certificate {self.cert};")
        site = substitute(site, r"^    ssl_certificate_key .*;", f"    ssl_certificate_key {key};")
        site = substitute(site, r"^    access_log \S+", f"    access_log {prefix}/access.log")
        if location_extra:
            site = substitute(
                site,
                r"^        proxy_pass http://ollama_relay;",
                f"        proxy_pass http://ollama_relay;\n        {location_extra}",
            )
        (prefix / "ollama-relay.conf").write_text(site)
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        temp_paths = "".join(
            f"    {kind}_temp_path {prefix}/{kind}_temp;\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # What a distribution's nginx.conf provides around an included site.
        (prefix / "nginx.conf").write_text(
            f"user {user} {group};\n"
            "daemon off;\n"
            "worker_processes 1;\n"
            f"pid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/error.log info;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            f"    access_log {prefix}/access.log;\n"
            f"{temp_paths}"
            f"    include {prefix}/ollama-relay.conf;\n"
            "}\n"
        )
        self.https = f"https://127.0.0.1:{self.https_port}"
        self.http = f"http://127.0.0.1:{self.http_port}"
        self.process = None

    def command(self, *extra):
        return [
            NGINX,
            "-p",
            str(self.prefix),
            "-c",
            str(self.prefix / "nginx.conf"),
            "-e",
            str(self.prefix / "error.log"),
            *extra,
        ]

    def check(self):
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)

    def start(self):
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        end = time.monotonic() + 20
        while time.monotonic() < end:
            assert self.process.poll() is None, self.error_log()
            try:
                socket.create_connection(("127.0.0.1", self.https_port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen: " + self.error_log())

    def error_log(self):
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self):
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)  # fast shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def upstream():
    from tests.support.fake_upstream import FakeUpstream

    server = FakeUpstream()
    yield server
    server.close()


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("nginx-relay")
    server = GunicornServer(
        relay_settings(
            workdir,
            # As deployed behind this site; open on purpose (these tests are
            # about nginx, tests/access/ about keys).
            RELAY_TRUSTED_PROXIES="1",
            RELAY_ALLOW_UNAUTHENTICATED="1",
        ),
        workdir,
        workers=1,
    )
    yield server
    server.stop()


@pytest.fixture
def start_nginx(tmp_path, relay):
    started = []

    def start(location_extra=""):
        nginx = Nginx(tmp_path, relay.port, location_extra).start()
        started.append(nginx)
        return nginx

    yield start
    for nginx in started:
        nginx.stop()


def test_nginx_accepts_the_site(tmp_path):
    result = Nginx(tmp_path, free_port()).check()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_body_limit_matches_the_relays():
    size = re.search(r"client_max_body_size (\d+)m;", open(SITE).read())
    assert size, "client_max_body_size missing"
    assert int(size.group(1)) * 1024 * 1024 == int(SETTINGS["RELAY_MAX_BODY_BYTES"][1])


def test_plain_http_redirects_to_https_keeping_the_method(start_nginx):
    nginx = start_nginx()
    response = requests.post(
        nginx.http + "/api/chat?x=1", json={}, allow_redirects=False, timeout=10
    )
    assert response.status_code == 308
    assert response.headers["Location"] == "https://127.0.0.1/api/chat?x=1"
    # And the TLS side reaches gunicorn.
    answer = requests.get(nginx.https + "/api/version", verify=nginx.cert, timeout=10)
    assert answer.status_code == 200 and "version" in answer.json()


# Second case: nginx ignores the relay's X-Accel-Buffering: no, so only the
# site's own `proxy_buffering off` keeps the stream flowing.
@pytest.mark.parametrize(
    "location_extra",
    ["", "proxy_ignore_headers X-Accel-Buffering;"],
    ids=["as-shipped", "site-alone"],
)
def test_stream_reaches_the_client_while_the_upstream_still_sends(
    start_nginx, relay, upstream, location_extra
):
    from tests.support.fake_upstream import Reply, chunk

    nginx = start_nginx(location_extra)
    created = requests.post(
        nginx.https + "/api/create",
        verify=nginx.cert,
        timeout=10,
        json={
            "name": "streamer",
            "from": "remote-model",
            "remote_type": "openai",
            "remote_host": upstream.url + "/v1",
            "stream": False,
        },
    )
    assert created.status_code == 200, created.text

    # The upstream sends its first chunk (with text, so the relay has
    # something to pass on), then holds the stream open until this test has
    # read the first event through nginx.
    gate = threading.Event()
    upstream.reply(
        Reply(
            gate=gate,
            sse=[
                chunk({"role": "assistant", "content": "Hello"}),
                chunk({"content": " through nginx"}),
                chunk({}, finish_reason="stop"),
            ],
        )
    )
    try:
        # The read timeout only turns a buffered (stuck) stream into a
        # failure before the upstream's own 30 s gate timeout would let it end.
        response = requests.post(
            nginx.https + "/v1/chat/completions",
            verify=nginx.cert,
            stream=True,
            timeout=(5, 20),
            json={
                "model": "streamer",
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
        )
        assert response.status_code == 200, response.text
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith(b"data: "))
        assert not gate.is_set()
        assert b"chat.completion.chunk" in first
    finally:
        gate.set()
    rest = [line[len(b"data: ") :] for line in lines if line.startswith(b"data: ")]
    assert rest[-1] == b"[DONE]"
    text = first + b"".join(rest)
    assert b"Hello" in text and b" through nginx" in text
