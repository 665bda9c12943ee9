"""The model API through gunicorn (gevent workers), with the real ollama client and curl."""

import shlex
import subprocess
import threading

import ollama
import pytest
import requests

# The seed's example, character for character but for the port.
SEED_CURL = """curl http://localhost:11434/api/create -d '{
  "name": "dashscope-model",
  "from": "qwen-plus",
  "remote_host": "https://dashscope.aliyuncs.com/compatible-mode/v1",
  "remote_type": "openai",
  "remote_api_key": "sk-your-api-key-here"
}'"""


def run_seed_curl(relay):
    command = SEED_CURL.replace("http://localhost:11434", relay.url)
    return subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)


def test_seed_create_example_works_as_written(relay):
    result = run_seed_curl(relay)
    assert result.returncode == 0
    assert result.stdout.strip().splitlines()[-1] == '{"status":"success"}'
    assert "sk-your-api-key-here" not in relay.log()


def test_ollama_python_list_show_copy_delete(relay):
    run_seed_curl(relay)
    client = ollama.Client(host=relay.url)

    listed = client.list()
    assert [m.model for m in listed.models] == ["dashscope-model:latest"]

    shown = client.show("dashscope-model")
    assert shown.modelinfo is not None
    assert "tools" in shown.capabilities
    assert shown.details is not None

    assert client.copy("dashscope-model", "backup").status == "success"
    assert sorted(m.model for m in client.list().models) == [
        "backup:latest",
        "dashscope-model:latest",
    ]

    assert client.delete("dashscope-model").status == "success"
    assert [m.model for m in client.list().models] == ["backup:latest"]

    with pytest.raises(ollama.ResponseError) as excinfo:
        client.show("dashscope-model")
    assert excinfo.value.status_code == 404
    assert "not found" in excinfo.value.error


def test_replacing_a_model_never_hides_it_from_readers(relay):
    run_seed_curl(relay)
    body = {
        "name": "dashscope-model",
        "remote_type": "openai",
        "stream": False,
        "remote_host": "https://dashscope.aliyuncs.com/compatible-mode/v1",
    }
    stop = threading.Event()
    seen = []

    def read():
        with requests.Session() as session:
            while not stop.is_set():
                response = session.post(relay.url + "/api/show", json={"model": "dashscope-model"})
                seen.append((response.status_code, response.json().get("remote_model")))

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    with requests.Session() as session:
        for i in range(20):
            response = session.post(
                relay.url + "/api/create", json=dict(body, **{"from": f"qwen-{i}"})
            )
            assert response.status_code == 200
    stop.set()
    for reader in readers:
        reader.join()
    assert seen and all(status == 200 for status, _ in seen)
    assert (
        requests.post(relay.url + "/api/show", json={"model": "dashscope-model"}).json()[
            "remote_model"
        ]
        == "qwen-19"
    )
