"""Prices per million tokens, and the cost of a request.

A model's price is stored as pico-units per token (app.spend.money): a price
per million tokens with at most six decimal places, so every cost is exact.
Cost = uncached input x input price + cached input x cached price (the input
price when the model has none) + output x output price. Cached input tokens
are those the remote reports as read from its cache: OpenAI's
`prompt_tokens_details.cached_tokens`, Anthropic-style
`cache_read_input_tokens`, DeepSeek's `prompt_cache_hit_tokens`; they are
part of the prompt tokens.
"""

from dataclasses import dataclass

from app.spend.money import MoneyError, from_pico, to_pico

PER_TOKENS = 1_000_000
PRICE_PLACES = 6  # decimals of a price per million tokens
PARTS = ("input", "output", "cached_input")


@dataclass(frozen=True)
class Price:
    """pico-units per token; cached_input None: cached tokens at the input price."""

    input: int
    output: int
    cached_input: int | None = None

    def per_million(self):
        """As clients give and read it: {"input": ..., "output": ...[, "cached_input"]}."""
        shown = {"input": self.input, "output": self.output, "cached_input": self.cached_input}
        return {k: float(from_pico(v * PER_TOKENS)) for k, v in shown.items() if v is not None}


class PriceError(MoneyError):
    """A price that cannot be taken: `part` (input, output, cached_input; None:
    the whole) and why."""

    def __init__(self, part, reason):
        super().__init__(f"{part}: {reason}" if part else reason)
        self.part, self.reason = part, reason


def parse(spec):
    """A Price from {"input": .., "output": ..[, "cached_input": ..]} per million tokens."""
    if not isinstance(spec, dict):
        raise PriceError(None, "must be an object with input and output")
    unknown = sorted(set(spec) - set(PARTS))
    if unknown:
        raise PriceError(unknown[0], "unknown price part (input, output, cached_input)")
    per_token = {}
    for part in PARTS:
        value = spec.get(part)
        if value is None:
            if part != "cached_input":
                raise PriceError(part, "required")
            continue
        try:
            pico = to_pico(value, places=PRICE_PLACES)
        except MoneyError as exc:
            raise PriceError(part, str(exc)) from None
        per_token[part] = pico // PER_TOKENS
    return Price(**per_token)


def of(model):
    """The price of a RemoteModel row, or None when it has none."""
    if model.price_input is None or model.price_output is None:
        return None
    return Price(model.price_input, model.price_output, model.price_cached_input)


def columns(price):
    """A Price (or None) as RemoteModel's columns."""
    if price is None:
        return {"price_input": None, "price_output": None, "price_cached_input": None}
    return {
        "price_input": price.input,
        "price_output": price.output,
        "price_cached_input": price.cached_input,
    }


def _count(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def cached_tokens(usage):
    """Input tokens the remote read from its cache, per its usage object."""
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return (
        cached
        or _count(usage.get("cache_read_input_tokens"))
        or _count(usage.get("prompt_cache_hit_tokens"))
    )


def cost(price, usage):
    """pico-units that `usage` (a Chat Completions usage object) costs at `price`."""
    if price is None or not usage:
        return 0
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    cached = min(cached_tokens(usage), prompt)
    cached_price = price.input if price.cached_input is None else price.cached_input
    return (prompt - cached) * price.input + cached * cached_price + completion * price.output
