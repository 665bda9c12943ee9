"""Issue 18, hole 12: the Ansible role gives the relay its metrics token, and
its nginx site lets only the listed networks reach /metrics."""

from tests.ops.test_ansible import render

TOKEN = "metrics-token-for-the-ansible-test"


def test_the_metrics_token_lands_in_relay_env_only_when_set(tmp_path):
    text = render(tmp_path, "relay.env.j2", ollama_relay_secret_key="k")
    assert "RELAY_METRICS_TOKEN" not in text
    text = render(
        tmp_path, "relay.env.j2", ollama_relay_secret_key="k", ollama_relay_metrics_token=TOKEN
    )
    assert f"RELAY_METRICS_TOKEN='{TOKEN}'\n" in text


def test_the_nginx_site_can_keep_metrics_to_the_scrapers_networks(tmp_path):
    text = render(tmp_path, "nginx-site.conf.j2")
    assert "location = /metrics" not in text
    text = render(tmp_path, "nginx-site.conf.j2", ollama_relay_nginx_metrics_allow=["10.9.0.0/16"])
    block = text.split("location = /metrics {", 1)[1].split("}", 1)[0]
    assert "allow 10.9.0.0/16;" in block and "deny all;" in block
    assert "proxy_pass http://ollama_relay;" in block
