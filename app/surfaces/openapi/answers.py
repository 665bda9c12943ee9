"""What the relay answers, as JSON Schema for its OpenAPI document (app.surfaces.openapi.views):
the bodies of successful answers and the three error shapes.

Request bodies are described by the marshmallow schemas beside this module;
answers are built by plain functions (app.catalog.describe, app.convert), so they are
described here by hand. Each object names the keys every client relies on and
allows more: providers add fields, and the relay passes many of them on.
"""

_TEXT = {"type": "string"}
_INT = {"type": "integer"}
_NUMBER = {"type": "number"}
_BOOL = {"type": "boolean"}
_ANY_OBJECT = {"type": "object"}
_NULLABLE_TEXT = {"type": ["string", "null"]}


def _object(required=(), **properties):
    """An object with these properties (the `required` ones always there), open to more."""
    return {"type": "object", "properties": properties, "required": list(required)}


def _list_of(item):
    return {"type": "array", "items": item}


# --- Errors: one shape per surface (app.errors) -----------------------------

OLLAMA_ERROR = _object(["error"], error=_TEXT)

OPENAI_ERROR = _object(
    ["error"],
    error=_object(
        ["message", "type", "param", "code"],
        message=_TEXT,
        type=_TEXT,
        param=_NULLABLE_TEXT,
        code=_NULLABLE_TEXT,
    ),
)

ANTHROPIC_ERROR = _object(
    ["type", "error"],
    type={"const": "error"},
    error=_object(["type", "message"], type=_TEXT, message=_TEXT),
)

# --- Streams -----------------------------------------------------------------

# One event of a text/event-stream answer: `data` is a JSON object (an error
# object when the stream breaks) or, last on /v1/chat/completions, [DONE].
SSE_EVENT = _object(
    ["data"],
    event=_TEXT,
    id=_TEXT,
    retry=_INT,
    data=dict(_TEXT, contentMediaType="application/json"),
)

# --- Health -----------------------------------------------------------------

VERSION = _object(["version"], version=_TEXT)
HEALTH = _object(["status"], status={"const": "ok"})
READY = _object(["status"], status={"enum": ["ok", "unavailable"]}, reason=_TEXT)

# --- Ollama's model management ----------------------------------------------

_DETAILS = _object(
    ["parent_model", "format", "family"],
    parent_model=_TEXT,
    format=_TEXT,
    family=_TEXT,
    families={"type": ["array", "null"]},
    parameter_size=_TEXT,
    quantization_level=_TEXT,
    context_length=_INT,
)
_CAPABILITIES = _list_of(_TEXT)

TAGS = _object(
    ["models"],
    models=_list_of(
        _object(
            ["name", "model", "modified_at", "size", "digest", "details"],
            name=_TEXT,
            model=_TEXT,
            remote_model=_TEXT,
            remote_host=_TEXT,
            modified_at=_TEXT,
            size=_INT,
            digest=_TEXT,
            details=_DETAILS,
            capabilities=_CAPABILITIES,
        )
    ),
)

SHOW = _object(
    ["modelfile", "parameters", "template", "details", "model_info", "capabilities"],
    modelfile=_TEXT,
    parameters=_TEXT,
    template=_TEXT,
    details=_DETAILS,
    model_info=_ANY_OBJECT,
    capabilities=_CAPABILITIES,
    remote_model=_TEXT,
    remote_host=_TEXT,
    remote_type=_TEXT,
    modified_at=_TEXT,
    system=_TEXT,
    fallbacks=_list_of(_TEXT),
    fallback_on_auth_errors=_BOOL,
    forward=_list_of(_TEXT),
    max_n=_INT,
)

PS = _object(["models"], models=_list_of(_ANY_OBJECT))

STATUS = _object(["status"], status=_TEXT)
CLOUD_STATUS = _object(
    ["cloud"], cloud=_object(["disabled", "source"], disabled=_BOOL, source=_TEXT)
)

# --- Ollama's inference -----------------------------------------------------

_OLLAMA_MESSAGE = _object(
    ["role", "content"], role=_TEXT, content=_TEXT, thinking=_TEXT, tool_calls=_list_of(_ANY_OBJECT)
)
_FINAL = dict(
    done=_BOOL,
    done_reason=_TEXT,
    total_duration=_INT,
    load_duration=_INT,
    prompt_eval_count=_INT,
    prompt_eval_duration=_INT,
    eval_count=_INT,
    eval_duration=_INT,
)

_TOKEN_LOGPROB = _object(["token", "logprob"], token=_TEXT, logprob=_NUMBER, bytes=_list_of(_INT))
_LOGPROB = _object(
    ["token", "logprob"],
    token=_TEXT,
    logprob=_NUMBER,
    bytes=_list_of(_INT),
    top_logprobs=_list_of(_TOKEN_LOGPROB),
)
CHAT = _object(
    ["model", "created_at", "message", "done"],
    model=_TEXT,
    created_at=_TEXT,
    message=_OLLAMA_MESSAGE,
    logprobs=_list_of(_LOGPROB),
    **_FINAL,
)
GENERATE = _object(
    ["model", "response", "done"],
    model=_TEXT,
    created_at=_TEXT,
    response=_TEXT,
    thinking=_TEXT,
    context=_list_of(_INT),
    **_FINAL,
)
EMBED = _object(
    ["model", "embeddings"],
    model=_TEXT,
    embeddings=_list_of(_list_of(_NUMBER)),
    total_duration=_INT,
    load_duration=_INT,
    prompt_eval_count=_INT,
)
EMBEDDING = _object(["embedding"], embedding=_list_of(_NUMBER))

# --- OpenAI -----------------------------------------------------------------

MODEL = _object(
    ["id", "object", "created", "owned_by"],
    id=_TEXT,
    object={"const": "model"},
    created=_INT,
    owned_by=_TEXT,
)
MODEL_LIST = _object(["object", "data"], object={"const": "list"}, data=_list_of(MODEL))

CHAT_COMPLETION = _object(
    ["id", "object", "created", "model", "choices"],
    id=_TEXT,
    object={"const": "chat.completion"},
    created=_INT,
    model=_TEXT,
    choices=_list_of(
        _object(["index", "message"], index=_INT, message=_ANY_OBJECT, finish_reason=_NULLABLE_TEXT)
    ),
    usage={"type": ["object", "null"]},
)

COMPLETION = _object(
    ["id", "object", "created", "model", "choices"],
    id=_TEXT,
    object={"const": "text_completion"},
    created=_INT,
    model=_TEXT,
    choices=_list_of(
        _object(
            ["index", "text", "logprobs", "finish_reason"],
            index=_INT,
            text=_TEXT,
            logprobs={"type": ["object", "null"]},
            finish_reason=_NULLABLE_TEXT,
        )
    ),
    usage={"type": ["object", "null"]},
)

EMBEDDING_LIST = _object(
    ["object", "data", "model"],
    object={"const": "list"},
    model=_TEXT,
    data=_list_of(
        _object(
            ["index", "embedding"],
            object=_TEXT,
            index=_INT,
            embedding={"type": ["array", "string"]},
        )
    ),
    usage=_ANY_OBJECT,
)

# --- OpenAI's Responses API --------------------------------------------------

RESPONSE = _object(
    ["id", "object", "created_at", "status", "model", "output"],
    id=_TEXT,
    object={"const": "response"},
    created_at=_NUMBER,
    status=_TEXT,
    model=_TEXT,
    output=_list_of(_ANY_OBJECT),
    usage={"type": ["object", "null"]},
    error={"type": ["object", "null"]},
)
RESPONSE_DELETED = _object(
    ["id", "object", "deleted"], id=_TEXT, object={"const": "response"}, deleted={"const": True}
)
INPUT_ITEMS = _object(
    ["object", "data", "first_id", "last_id", "has_more"],
    object={"const": "list"},
    data=_list_of(_ANY_OBJECT),
    first_id=_TEXT,
    last_id=_TEXT,
    has_more=_BOOL,
)

# --- Anthropic's Messages API ------------------------------------------------

MESSAGE = _object(
    ["id", "type", "role", "content", "model", "stop_reason", "usage"],
    id=_TEXT,
    type={"const": "message"},
    role={"const": "assistant"},
    content=_list_of(_object(["type"], type=_TEXT)),
    model=_TEXT,
    stop_reason=_NULLABLE_TEXT,
    stop_sequence=_NULLABLE_TEXT,
    usage=_object(["input_tokens", "output_tokens"], input_tokens=_INT, output_tokens=_INT),
)
TOKEN_COUNT = _object(["input_tokens"], input_tokens=_INT)

# --- The admin's keys and usage ----------------------------------------------

_NULLABLE_INT = {"type": ["integer", "null"]}
# Amounts of money are exact decimal strings ("0.0000044") in RELAY_CURRENCY.
_MONEY = {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"}
_NULLABLE_MONEY = {"type": ["string", "null"], "pattern": "^[0-9]+(\\.[0-9]+)?$"}
_PERIOD = {"type": ["string", "null"], "enum": ["day", "month", "total", None]}
KEY = _object(
    ["name", "models", "rpm", "tpm", "expires", "created_at", "revoked", "team", "budget"],
    name=_TEXT,
    models={"type": ["array", "null"], "items": _TEXT},
    rpm=_NULLABLE_INT,
    tpm=_NULLABLE_INT,
    expires=_NULLABLE_TEXT,
    created_at=_NULLABLE_TEXT,
    last_used_at=_NULLABLE_TEXT,
    revoked=_BOOL,
    team=_NULLABLE_TEXT,
    budget=_NULLABLE_MONEY,
    period=_PERIOD,
    capture={"type": ["string", "null"], "enum": ["off", "errors", "all", None]},
)
KEY_CREATED = {"allOf": [KEY, _object(["key"], key=_TEXT)]}
KEY_LIST = _object(["keys"], keys=_list_of(KEY))
KEY_REVOKED = _object(["name", "revoked"], name=_TEXT, revoked={"const": True})
TEAM = _object(
    ["name", "models", "rpm", "tpm", "budget", "period", "created_at"],
    name=_TEXT,
    models={"type": ["array", "null"], "items": _TEXT},
    rpm=_NULLABLE_INT,
    tpm=_NULLABLE_INT,
    budget=_NULLABLE_MONEY,
    period=_PERIOD,
    created_at=_TEXT,
)
TEAM_LIST = _object(["teams"], teams=_list_of(TEAM))
TEAM_DELETED = _object(["name", "deleted"], name=_TEXT, deleted={"const": True})
USAGE = _object(
    ["usage"],
    usage=_list_of(
        _object(
            ["requests", "input_tokens", "output_tokens", "errors", "cost", "currency", "unpriced"],
            key=_TEXT,
            team=_TEXT,
            model=_TEXT,
            day=_TEXT,
            requests=_INT,
            input_tokens=_INT,
            output_tokens=_INT,
            errors=_INT,
            cost=_MONEY,
            currency=_TEXT,
            unpriced=_BOOL,
        )
    ),
    # A client key's own budgets (its key's and its team's), where they stand.
    budgets=_list_of(
        _object(
            ["scope", "name", "period", "window", "budget", "spent", "remaining", "resets_at"],
            scope={"enum": ["key", "team"]},
            name=_TEXT,
            period={"enum": ["day", "month", "total"]},
            window=_TEXT,
            budget=_MONEY,
            spent=_MONEY,
            remaining=_MONEY,
            resets_at=_NULLABLE_TEXT,
        )
    ),
)

# --- The request log ---------------------------------------------------------

REQUEST_ROW = _object(
    ["id", "time", "request_id", "key", "team", "model", "surface", "stream", "status"],
    id=_INT,
    time=_TEXT,
    request_id=_TEXT,
    trace_id=_NULLABLE_TEXT,
    key=_TEXT,
    team=_TEXT,
    model=_TEXT,
    remote_model=_NULLABLE_TEXT,
    surface={"enum": ["ollama", "openai", "responses", "anthropic"]},
    route=_TEXT,
    stream=_BOOL,
    status=_INT,
    error_code=_NULLABLE_TEXT,
    latency_ms=_INT,
    ttfb_ms=_NULLABLE_INT,
    input_tokens=_NULLABLE_INT,
    output_tokens=_NULLABLE_INT,
    cost=_NULLABLE_MONEY,
    currency=_TEXT,
    retries=_INT,
    fallback=_NULLABLE_TEXT,
    captured=_BOOL,
)
REQUEST_LIST = _object(
    ["requests", "next_cursor"], requests=_list_of(REQUEST_ROW), next_cursor=_NULLABLE_TEXT
)
REQUEST_DETAIL = {
    "allOf": [
        REQUEST_ROW,
        _object(
            ["capture"],
            capture={
                "type": ["object", "null"],
                "properties": {
                    "request": _NULLABLE_TEXT,
                    "answer": _NULLABLE_TEXT,
                    "request_bytes": _INT,
                    "answer_bytes": _INT,
                },
            },
        ),
    ]
}
