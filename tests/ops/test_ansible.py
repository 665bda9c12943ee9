"""ops/ansible: lint-clean, converges on this machine, and converges twice
with no change (idempotent), with service management off.

ansible-core and ansible-lint live in their own virtualenv (versions pinned
in ops/ansible/requirements.txt; .ci/run installs them into .venv-ops), not
in the relay's. OLLAMA_RELAY_OPS_VENV points elsewhere.
"""

import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile

import pytest
from cryptography.fernet import Fernet

from tests.support.servers import ROOT

# Every test here runs the real tool (an autouse fixture skips without it).
pytestmark = pytest.mark.external

ANSIBLE_DIR = os.path.join(ROOT, "ops", "ansible")
ROLE = os.path.join(ANSIBLE_DIR, "roles", "ollama_relay")
OPS_VENV = os.environ.get("OLLAMA_RELAY_OPS_VENV", os.path.join(ROOT, ".venv-ops"))
OPS_BIN = os.path.join(OPS_VENV, "bin")
HAVE_ANSIBLE = os.access(os.path.join(OPS_BIN, "ansible-playbook"), os.X_OK)


@pytest.fixture(autouse=True)
def needs_ansible():
    # .ci/run installs it, so in CI a missing ansible is a failure, not a skip.
    if not HAVE_ANSIBLE:
        reason = (
            f"no ansible in {OPS_VENV}: python3 -m venv .venv-ops && "
            ".venv-ops/bin/pip install -r ops/ansible/requirements.txt (.ci/run does)"
        )
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(reason)


# The interpreter the role builds the relay's virtualenv from. The service
# user must be able to run it, which a pyenv under /root is not.
SYSTEM_PYTHON = "/usr/bin/python3"


def tool_env():
    return dict(
        os.environ,
        PATH=OPS_BIN + os.pathsep + os.environ["PATH"],
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PY_COLORS="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )


def run(command, cwd, timeout=900):
    return subprocess.run(
        command, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout
    )


def recap(output):
    match = re.search(r"^localhost\s+:\s+(.*)$", output, flags=re.M)
    assert match, output[-3000:]
    return dict((key, int(value)) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1)))


def changed_tasks(output):
    """Names of the tasks that reported a change, for the failure message."""
    tasks = re.split(r"^TASK \[", output, flags=re.M)[1:]
    return [task.split("]", 1)[0] for task in tasks if re.search(r"^changed: ", task, re.M)]


def write_inventory(directory):
    path = os.path.join(directory, "inventory.ini")
    with open(path, "w") as handle:
        handle.write(
            "[ollama_relay]\n"
            "localhost ansible_connection=local "
            f"ansible_python_interpreter={OPS_BIN}/python\n"
        )
    return path


def test_ansible_lint_production_profile_is_clean():
    result = run(
        [os.path.join(OPS_BIN, "ansible-lint"), "--offline", "--profile", "production"],
        cwd=ANSIBLE_DIR,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "0 failure(s), 0 warning(s)" in result.stdout + result.stderr


def render(tmp_path, template, **variables):
    """A template of the role rendered with its defaults (and `variables`)."""
    out = tmp_path / "rendered"
    playbook = tmp_path / "render.yml"
    overrides = tmp_path / "overrides.json"
    overrides.write_text(json.dumps(variables))
    playbook.write_text(
        json.dumps(
            [
                {
                    "name": "Render",
                    "hosts": "localhost",
                    "gather_facts": False,
                    # The later file wins (play `vars` would lose to vars_files).
                    "vars_files": [os.path.join(ROLE, "defaults", "main.yml"), str(overrides)],
                    "tasks": [
                        {
                            "name": "Render",
                            "ansible.builtin.template": {
                                "src": os.path.join(ROLE, "templates", template),
                                "dest": str(out),
                                "mode": "0644",
                            },
                        }
                    ],
                }
            ]
        )
    )
    result = run(
        [os.path.join(OPS_BIN, "ansible-playbook"), "-i", write_inventory(tmp_path), str(playbook)],
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    return out.read_text()


@pytest.mark.parametrize(
    "template, shipped",
    [
        ("nginx-site.conf.j2", "ops/nginx/ollama-relay.conf"),
        ("ollama-relay.service.j2", "ops/systemd/ollama-relay.service"),
        ("gunicorn.env.j2", "ops/systemd/gunicorn.env"),
    ],
)
def test_shipped_files_are_the_role_rendered_with_its_defaults(tmp_path, template, shipped):
    """ops/nginx and ops/systemd serve installs without Ansible; they must not
    drift from what the role renders."""
    rendered = render(tmp_path, template).splitlines()
    with open(os.path.join(ROOT, shipped)) as handle:
        expected = handle.read().splitlines()
    # Line 1 is "# Ansible managed" in one and a pointer to the template in the other.
    assert rendered[0] == "# Ansible managed"
    assert template in expected[0]
    assert rendered[1:] == expected[1:]


ADMIN_TOKEN = "relay-admin-token-for-the-ansible-test"


def test_access_settings_land_in_relay_env_only_when_set(tmp_path):
    text = render(
        tmp_path,
        "relay.env.j2",
        ollama_relay_secret_key="k",
        ollama_relay_admin_token=ADMIN_TOKEN,
        ollama_relay_origins=["https://chat.internal", "https://ide.internal"],
        ollama_relay_allowed_hosts=["relay.internal"],
    )
    assert f"RELAY_ADMIN_TOKEN='{ADMIN_TOKEN}'\n" in text
    assert "RELAY_ORIGINS='https://chat.internal,https://ide.internal'\n" in text
    assert "RELAY_ALLOWED_HOSTS='relay.internal'\n" in text
    assert "RELAY_ALLOW_UNAUTHENTICATED" not in text

    text = render(
        tmp_path,
        "relay.env.j2",
        ollama_relay_secret_key="k",
        ollama_relay_allow_unauthenticated=True,
    )
    assert "RELAY_ALLOW_UNAUTHENTICATED='1'\n" in text
    for name in ("RELAY_ADMIN_TOKEN", "RELAY_ORIGINS", "RELAY_ALLOWED_HOSTS"):
        assert name not in text


REFUSAL = (
    "Set ollama_relay_admin_token (from Vault; comma separated tokens of 16 characters "
    "or more) so that the relay requires keys, or set "
    "ollama_relay_allow_unauthenticated: true to serve without them on purpose."
)


@pytest.mark.parametrize(
    "access",
    [
        {},
        {"ollama_relay_allow_unauthenticated": False, "ollama_relay_admin_token": " , "},
        {"ollama_relay_admin_token": f"{ADMIN_TOKEN},short"},
    ],
    ids=["no-token", "empty-token", "short-token"],
)
def test_play_refuses_a_relay_without_keys_unless_told(tmp_path, access):
    """No admin token and no ollama_relay_allow_unauthenticated: the play
    stops before it changes anything, and says what to set."""
    variables = {
        "ollama_relay_source_path": str(tmp_path),
        "ollama_relay_secret_key": Fernet.generate_key().decode(),
        **access,
    }
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(variables))
    result = run(
        [
            os.path.join(OPS_BIN, "ansible-playbook"),
            "-i",
            write_inventory(tmp_path),
            os.path.join(ANSIBLE_DIR, "site.yml"),
            "-e",
            f"@{vars_file}",
            "-e",
            "ansible_become=false",
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode != 0
    assert (
        "TASK [ollama_relay : Check that the relay requires keys, or is open on purpose]"
        in result.stdout
    )
    assert REFUSAL in result.stdout
    assert recap(result.stdout)["changed"] == 0
    assert ADMIN_TOKEN not in result.stdout + result.stderr


def export_working_tree(dest):
    """What a deployment copies: the tracked files but the tests (no VCS,
    venvs, caches or test suite). The role copies it file by file, so every
    file it need not hold costs the converge time."""
    listed = subprocess.run(
        ["git", "-C", ROOT, "ls-files", "-z"], capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if name.startswith("tests/"):
            continue
        target = os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, name), target)


@pytest.fixture
def prefix():
    # Not pytest's tmp_path: that is private to root (0700), and the service
    # user must reach the code, the virtualenv and its instance directory.
    path = tempfile.mkdtemp(prefix="relay-ansible-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the role sets root ownership and drops privileges with setpriv: converging needs root",
)
@pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"{SYSTEM_PYTHON} missing")
def test_role_converges_then_changes_nothing(prefix):
    source = os.path.join(prefix, "source")
    export_working_tree(source)
    secret = Fernet.generate_key().decode()
    variables = {
        "ollama_relay_source_path": source,
        "ollama_relay_install_dir": os.path.join(prefix, "opt"),
        "ollama_relay_config_dir": os.path.join(prefix, "etc"),
        "ollama_relay_instance_dir": os.path.join(prefix, "var"),
        "ollama_relay_systemd_dir": prefix,
        "ollama_relay_nginx_conf_dir": prefix,
        "ollama_relay_python": SYSTEM_PYTHON,
        # No systemd, no package installs, and an existing unprivileged user.
        "ollama_relay_manage_services": False,
        "ollama_relay_install_packages": False,
        "ollama_relay_create_user": False,
        "ollama_relay_user": "nobody",
        "ollama_relay_group": "nogroup",
        "ollama_relay_secret_key": secret,
        "ollama_relay_admin_token": ADMIN_TOKEN,
        "ollama_relay_remote_allowlist": ["127.0.0.1", "10.0.0.0/8"],
    }
    vars_file = os.path.join(prefix, "vars.json")
    with open(vars_file, "w") as handle:
        json.dump(variables, handle)
    command = [
        os.path.join(OPS_BIN, "ansible-playbook"),
        "-i",
        write_inventory(prefix),
        os.path.join(ANSIBLE_DIR, "site.yml"),
        "-e",
        "@" + vars_file,
        # Already root: the play's `become` would only need sudo.
        "-e",
        "ansible_become=false",
    ]

    first = run(command, cwd=prefix)
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    assert recap(first.stdout)["changed"] > 0
    second = run(command, cwd=prefix)
    assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-3000:]
    assert recap(second.stdout)["changed"] == 0, changed_tasks(second.stdout)

    relay_env = os.path.join(prefix, "etc", "relay.env")
    info = os.stat(relay_env)
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == 0
    with open(relay_env) as handle:
        text = handle.read()
    assert text.startswith("# Ansible managed")
    assert f"RELAY_SECRET_KEY='{secret}'" in text
    assert "RELAY_REMOTE_ALLOWLIST='127.0.0.1,10.0.0.0/8'" in text
    # The relay requires keys (behind nginx it would not start without them).
    assert f"RELAY_ADMIN_TOKEN='{ADMIN_TOKEN}'\n" in text
    assert "RELAY_ALLOW_UNAUTHENTICATED" not in text
    # Secrets never reach Ansible's output.
    for output in (first.stdout, second.stdout):
        assert secret not in output and ADMIN_TOKEN not in output

    # `ollama-relay db upgrade` ran, as the service user.
    database = os.path.join(prefix, "var", "relay.sqlite3")
    assert os.path.exists(database)
    assert os.stat(database).st_uid == pwd.getpwnam("nobody").pw_uid
    assert os.path.exists(os.path.join(prefix, "opt", "venv", "bin", "ollama-relay"))

    with open(os.path.join(prefix, "ollama-relay.service")) as handle:
        unit = handle.read()
    assert f"WorkingDirectory={prefix}/opt/src\n" in unit
    assert f"ReadWritePaths={prefix}/var\n" in unit
    assert os.path.exists(os.path.join(prefix, "ollama-relay.conf"))


def test_tool_versions_match_the_pins():
    """The test ran the versions ops/ansible/requirements.txt pins."""
    with open(os.path.join(ANSIBLE_DIR, "requirements.txt")) as handle:
        pins = dict(
            line.strip().split("==") for line in handle if "==" in line and not line.startswith("#")
        )
    result = subprocess.run(
        [os.path.join(OPS_BIN, "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    installed = {item["name"].lower(): item["version"] for item in json.loads(result.stdout)}
    for name, version in pins.items():
        assert installed.get(name.lower()) == version, (name, installed.get(name.lower()))
