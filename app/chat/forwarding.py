"""Which of a client's Chat Completions fields may reach a model's remote.

The relay calls remotes on the company's key, so a client must not be able
to make the provider store data or bill beyond the token price the relay
counts. These fields do one or the other (see OpenAI's Chat Completions
reference) and are dropped from what the remote receives, silently, unless
the model's `forward` setting names them:

- store: the provider keeps the completion (for distillation and evals);
- metadata: tags kept with a stored completion, shown in the provider's dashboard;
- service_tier: "priority" (or "scale") is billed at a higher rate per token;
- prediction: rejected prediction tokens are billed as output the client never sees;
- web_search_options: billed per search on top of the tokens;
- prompt_cache_retention, prompt_cache_options: the provider keeps the prompt's
  cache longer (up to a day).

`n` asks for n answers billed as n: it is refused above the model's `max_n`
(default 1) rather than dropped, since a client that asked for n choices
reads n of them.
"""

from typing import Any

from app.chat.problems import RequestProblem

GOVERNED = (
    "store",
    "metadata",
    "service_tier",
    "prediction",
    "web_search_options",
    "prompt_cache_retention",
    "prompt_cache_options",
)
DEFAULT_MAX_N = 1
# OpenAI's own maximum for n.
MOST_N = 128


def allowed(request: dict[str, Any], forward: list[str] | None) -> dict[str, Any]:
    """`request` (a Chat Completions request for a remote) without the
    governed fields that `forward` does not name."""
    permitted = set(forward or ())
    dropped = [name for name in GOVERNED if name in request and name not in permitted]
    if not dropped:
        return request
    return {key: value for key, value in request.items() if key not in dropped}


def check_n(body: dict[str, Any], max_n: int | None) -> None:
    """RequestProblem naming `n` if the request asks for more choices than
    the model allows."""
    n = body.get("n")
    most = max_n or DEFAULT_MAX_N
    if isinstance(n, int) and not isinstance(n, bool) and n > most:
        raise RequestProblem(
            f"n: at most {most} choices per request for this model (its max_n setting)", "n"
        )


def choices(body: dict[str, Any]) -> int:
    """How many answers `body` asks for (each is billed)."""
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
