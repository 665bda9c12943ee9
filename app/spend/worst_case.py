"""A request's worst-case cost: what a budget reserves before the call.

Input: at most one token per byte of the request body as received (tokenizers
make a token of one byte or more, and a chat template adds fewer tokens than
the JSON around each message has bytes). Output: the limit the request sets
(max_tokens, max_completion_tokens, max_output_tokens, options.num_predict),
else the model's default parameters' num_predict, else the deployment's cap,
which is then set on the request so that the remote cannot pass it.
Embeddings have no output. A Chat Completions request for `n` choices is
billed for the output of each: the limit counts n times.
"""

from app.chat import forwarding
from app.spend import prices

# Where each surface's body says how many tokens may come out, most specific first.
_LIMIT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


def _positive(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def output_limit(body, model_parameters):
    for name in _LIMIT_FIELDS:
        if _positive(body.get(name)):
            return body[name]
    options = body.get("options")
    if isinstance(options, dict) and _positive(options.get("num_predict")):
        return options["num_predict"]
    return _positive((model_parameters or {}).get("num_predict"))


def cap(body, route, tokens):
    """Set the output limit `tokens` on a body (of a request to `route`) that has none."""
    if route.startswith("/api/"):
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        body["options"] = dict(options, num_predict=tokens)
    elif route.startswith("/v1/responses"):
        body["max_output_tokens"] = tokens
    else:
        body["max_tokens"] = tokens


def reservation(price, body, body_bytes, route, model_parameters, default_cap):
    """pico-units to reserve for `body` at `price`, capping its output if it
    sets no limit (the body is changed then)."""
    if price is None:
        return 0
    out = 0
    if "embed" not in route:
        out = output_limit(body, model_parameters)
        if out is None:
            out = default_cap
            cap(body, route, default_cap)
        if route.startswith("/v1/chat/"):
            out *= forwarding.choices(body)
        elif route == "/v1/completions":
            # best_of answers are made (and billed) to return the n best.
            out *= max(forwarding.choices(body), forwarding.choices({"n": body.get("best_of")}))
    return prices.cost(price, {"prompt_tokens": body_bytes, "completion_tokens": out})
