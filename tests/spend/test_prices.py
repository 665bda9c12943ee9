"""Prices and the cost of requests: on every surface, stream and not, exact to
the pico-unit, in usage rows, the request log line and Prometheus; priced
from the moment a price is set; CLI `--price-*`, `prices load` and `usage`."""

import json
import os
import re
import subprocess
import time
from decimal import Decimal

import anthropic
import ollama
import openai
import pytest
import requests

from tests.support.access import unique
from tests.support.fake_upstream import Reply, completion, text_stream
from tests.support.paths import CLI

PRICE = {"input": 0.40, "output": 1.60, "cached_input": 0.10}
# 11 prompt tokens of which 4 were read from the remote's cache, 7 out:
# 7 x 0.40 + 4 x 0.10 + 7 x 1.60 per million.
USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 7,
    "total_tokens": 18,
    "prompt_tokens_details": {"cached_tokens": 4},
}
COST = Decimal("0.0000144")
CHAT = [{"role": "user", "content": "hi"}]


def create(relay, upstream, name="priced", price=PRICE, **fields):
    body = {
        "name": name,
        "from": "remote-model",
        "remote_type": "openai",
        "remote_host": upstream.url + "/v1",
        "stream": False,
        **({"price": price} if price is not None else {}),
        **fields,
    }
    response = requests.post(relay.url + "/api/create", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return name


@pytest.fixture
def shared(module_relays, module_database):
    """One relay per database for the tests that look only at their own model
    (`priced`): its usage rows and request lines."""
    return module_relays.get(module_database)


@pytest.fixture
def priced():
    """A model name of this test's own, on the shared relay."""
    return unique("priced")


def usage_rows(relay, expected_requests, model=None, **query):
    """/api/usage once the workers have written `expected_requests` requests;
    with `model`, its row alone (of the rows by model)."""
    if model:
        query["by"] = "model"
    deadline = time.monotonic() + 15
    while True:
        rows = requests.get(relay.url + "/api/usage", params=query, timeout=10).json()["usage"]
        if model:
            rows = [row for row in rows if row["model"] == model + ":latest"]
        if sum(row["requests"] for row in rows) >= expected_requests or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def request_lines(relay, model=None):
    """The request log lines naming a model (`model` alone, when given)."""
    return [
        line
        for line in map(json.loads, re.findall(r"^\{.*\}$", relay.log(), re.M))
        if line.get("message") == "request"
        and line.get("model")
        and (model is None or line["model"] == model + ":latest")
    ]


def _chat(url, stream, model="priced"):
    client = openai.OpenAI(base_url=url + "/v1", api_key="-", max_retries=0)
    if stream:
        list(client.chat.completions.create(model=model, messages=CHAT, stream=True))
    else:
        client.chat.completions.create(model=model, messages=CHAT)


def _ollama_chat(url, stream, model="priced"):
    answer = ollama.Client(host=url).chat(model=model, messages=CHAT, stream=stream)
    list(answer) if stream else answer


def _responses(url, stream, model="priced"):
    client = openai.OpenAI(base_url=url + "/v1", api_key="-", max_retries=0)
    if stream:
        list(client.responses.create(model=model, input="hi", stream=True, store=False))
    else:
        client.responses.create(model=model, input="hi", store=False)


def _messages(url, stream, model="priced"):
    client = anthropic.Anthropic(base_url=url, api_key="-", max_retries=0)
    if stream:
        with client.messages.stream(model=model, max_tokens=50, messages=CHAT) as events:
            events.get_final_message()
    else:
        client.messages.create(model=model, max_tokens=50, messages=CHAT)


SURFACES = {"chat": _chat, "ollama": _ollama_chat, "responses": _responses, "messages": _messages}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_each_request_costs_its_tokens_at_the_models_price(
    shared, priced, upstream, surface, stream
):
    create(shared, upstream, name=priced)
    reply = (
        Reply(sse=text_stream("Hi", usage=USAGE)) if stream else Reply(json=completion(usage=USAGE))
    )
    upstream.reply(reply, reply)
    SURFACES[surface](shared.url, stream, priced)
    SURFACES[surface](shared.url, stream, priced)

    (row,) = usage_rows(shared, 2, priced)
    assert (row["requests"], row["input_tokens"], row["output_tokens"]) == (2, 22, 14)
    assert Decimal(row["cost"]) == 2 * COST
    assert (row["currency"], row["unpriced"]) == ("USD", False)
    costs = [Decimal(line["cost"]) for line in request_lines(shared, priced)]
    assert costs == [COST, COST]
    # The rows hold the exact sum of the requests' costs.
    assert sum(costs) == Decimal(row["cost"])


def test_embeddings_cost_their_input_tokens(shared, priced, upstream):
    create(shared, upstream, name=priced, price={"input": "0.02", "output": "0"})
    client = openai.OpenAI(base_url=shared.url + "/v1", api_key="-", max_retries=0)
    client.embeddings.create(model=priced, input=["a", "b"])  # the fake says 4 tokens
    ollama.Client(host=shared.url).embed(model=priced, input="a")
    (row,) = usage_rows(shared, 2, priced)
    assert Decimal(row["cost"]) == Decimal("0.00000016")


def test_a_tiny_cost_is_kept_exactly(shared, priced, upstream):
    create(shared, upstream, name=priced, price={"input": 0.40, "output": 1.60})
    upstream.reply(Reply(json=completion(usage={"prompt_tokens": 11, "completion_tokens": 0})))
    _chat(shared.url, stream=False, model=priced)
    (row,) = usage_rows(shared, 1, priced)
    assert row["cost"] == "0.0000044"


def test_a_price_change_applies_to_later_requests_only(shared, priced, upstream):
    create(shared, upstream, name=priced)
    upstream.reply(Reply(json=completion(usage=USAGE)))
    _chat(shared.url, stream=False, model=priced)
    usage_rows(shared, 1, priced)
    create(shared, upstream, name=priced, price={"input": 4, "output": 16, "cached_input": 1})
    upstream.reply(Reply(json=completion(usage=USAGE)))
    _chat(shared.url, stream=False, model=priced)
    (row,) = usage_rows(shared, 2, priced)
    assert Decimal(row["cost"]) == COST + 10 * COST


def test_an_unpriced_model_costs_nothing_and_its_rows_say_so(shared, upstream):
    free = unique("free")
    create(shared, upstream, name=free, price=None)
    ollama.Client(host=shared.url).chat(model=free, messages=CHAT)
    (row,) = usage_rows(shared, 1, free)
    assert (row["cost"], row["unpriced"]) == ("0", True)
    assert [line["cost"] for line in request_lines(shared, free)] == [None]


def test_prices_are_checked_naming_the_part(shared, upstream):
    for price, param in [
        ({"input": 0.4}, "price.output"),
        ({"input": -1, "output": 1}, "price.input"),
        ({"input": 0.0000001, "output": 1}, "price.input"),
        ({"input": "cheap", "output": 1}, "price.input"),
        ({"input": 1, "output": 1, "cache": 1}, "price.cache"),
        ("0.4", "price"),
    ]:
        response = requests.post(
            shared.url + "/api/create",
            json={"name": "m", "from": "x", "remote_host": upstream.url, "price": price},
            timeout=10,
        )
        assert response.status_code == 400, price
        assert param + ":" in response.json()["error"], response.json()


def test_require_prices_refuses_an_unpriced_model(relay_with, upstream):
    relay = relay_with(RELAY_REQUIRE_PRICES="1")
    response = requests.post(
        relay.url + "/api/create",
        json={"name": "m", "from": "x", "remote_type": "openai", "remote_host": upstream.url},
        timeout=10,
    )
    assert response.status_code == 400
    assert "RELAY_REQUIRE_PRICES" in response.json()["error"]
    create(relay, upstream, name="m")
    # A model derived from a priced one costs what its parent costs.
    derived = requests.post(
        relay.url + "/api/create", json={"name": "d", "from": "m", "system": "be brief"}, timeout=10
    )
    assert derived.status_code == 200, derived.text


def test_cost_is_counted_in_prometheus(relay_with, upstream):
    relay = relay_with(RELAY_CURRENCY="eur")
    create(relay, upstream)
    upstream.reply(Reply(json=completion(usage=USAGE)))
    _chat(relay.url, stream=False)
    text = requests.get(relay.url + "/metrics", timeout=10).text
    (value,) = re.findall(
        r'^relay_cost_total\{key="-",model="priced:latest",team="-"\} (\S+)$', text, re.M
    )
    assert float(value) == pytest.approx(float(COST))
    assert usage_rows(relay, 1)[0]["currency"] == "EUR"


def cli(relay, *args, stdin=None):
    env = dict(os.environ, **relay.settings)
    return subprocess.run(
        [CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def test_cli_prices_models_and_loads_a_prices_file(relay, upstream, tmp_path):
    done = cli(
        relay,
        "models",
        "create",
        "a",
        "--from",
        "x",
        "--remote-type",
        "openai",
        "--remote-host",
        upstream.url + "/v1",
        "--price-input",
        "0.40",
        "--price-output",
        "1.60",
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(cli(relay, "models", "list", "--json").stdout)
    assert shown[0]["price"] == {"input": 0.4, "output": 1.6}
    bad = cli(
        relay,
        "models",
        "create",
        "b",
        "--from",
        "x",
        "--remote-host",
        upstream.url,
        "--price-input",
        "1",
    )
    assert bad.returncode == 2 and "--price-output" in bad.stderr

    create(relay, upstream, name="b", price=None)
    prices_file = tmp_path / "prices.yaml"
    prices_file.write_text("a:\n  input: 1\n  output: 2\nb: {input: 0.5, output: 0.75}\n")
    done = cli(relay, "prices", "load", str(prices_file))
    assert done.returncode == 0, done.stderr
    listed = {
        m["name"]: m["price"] for m in json.loads(cli(relay, "models", "list", "--json").stdout)
    }
    assert listed == {
        "a:latest": {"input": 1.0, "output": 2.0},
        "b:latest": {"input": 0.5, "output": 0.75},
    }

    # All or none: one unknown model, and no price changes.
    json_file = tmp_path / "prices.json"
    json_file.write_text(
        json.dumps({"a": {"input": 9, "output": 9}, "ghost": {"input": 1, "output": 1}})
    )
    failed = cli(relay, "prices", "load", str(json_file))
    assert failed.returncode == 1 and "ghost" in failed.stderr
    listed = {
        m["name"]: m["price"] for m in json.loads(cli(relay, "models", "list", "--json").stdout)
    }
    assert listed["a:latest"] == {"input": 1.0, "output": 2.0}
    json_file.write_text(json.dumps({"a": {"input": 1}}))
    failed = cli(relay, "prices", "load", str(json_file))
    assert failed.returncode == 2 and "a: output: required" in failed.stderr


def test_usage_by_model_as_csv_for_charge_back(relay, upstream):
    create(relay, upstream)
    create(relay, upstream, name="other", price={"input": 1, "output": 1})
    upstream.reply(Reply(json=completion(usage=USAGE)), Reply(json=completion(usage=USAGE)))
    _chat(relay.url, stream=False)
    openai.OpenAI(base_url=relay.url + "/v1", api_key="-").chat.completions.create(
        model="other", messages=CHAT
    )
    usage_rows(relay, 2)
    lines = cli(relay, "usage", "--by", "model", "--format", "csv").stdout.splitlines()
    assert lines == [
        "model,requests,input_tokens,output_tokens,errors,cost,currency,unpriced",
        "other:latest,1,11,7,0,0.000018,USD,false",
        "priced:latest,1,11,7,0,0.0000144,USD,false",
    ]
    table = cli(relay, "usage").stdout.splitlines()
    assert table[0].split("\t")[-2:] == ["cost", "currency"]
    assert table[1].split("\t")[-2] == "0.000018"  # rounded for reading
    by_model = requests.get(relay.url + "/api/usage", params={"by": "model"}, timeout=10).json()
    assert [row["cost"] for row in by_model["usage"]] == ["0.000018", "0.0000144"]
    refused = requests.get(relay.url + "/api/usage", params={"by": "colour"}, timeout=10)
    assert refused.status_code == 400 and "by" in refused.json()["error"]
