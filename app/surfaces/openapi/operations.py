"""The operations of /openapi.json: every route with the request schema it
loads, its answers, and each status it can really answer and why."""

from app.surfaces.admin import key_schemas as keys
from app.surfaces.admin import model_schemas as models
from app.surfaces.admin import request_schemas
from app.surfaces.anthropic import schemas as messages
from app.surfaces.ollama import schemas as ollama
from app.surfaces.openai import schemas as openai
from app.surfaces.responses import schemas as responses

JSON, NDJSON, SSE = "application/json", "application/x-ndjson", "text/event-stream"

# The request schemas, under the names the document gives them.
REQUESTS = {
    # Nested schemas first, so that the others refer to them by these names.
    "OllamaFunctionCall": ollama.FunctionCallSchema,
    "OllamaToolCall": ollama.ToolCallSchema,
    "OllamaMessage": ollama.MessageSchema,
    "ResponseTextFormat": responses.TextFormatSchema,
    "ResponseText": responses.TextSchema,
    "ResponseReasoning": responses.ReasoningSchema,
    "CreateModel": models.CreateSchema,
    "ModelRef": models.ModelRefSchema,
    "CopyModel": models.CopySchema,
    "OllamaChatRequest": ollama.ChatSchema,
    "OllamaGenerateRequest": ollama.GenerateSchema,
    "OllamaEmbedRequest": ollama.EmbedSchema,
    "OllamaEmbeddingsRequest": ollama.EmbeddingsSchema,
    "ChatCompletionRequest": openai.ChatCompletionSchema,
    "CompletionRequest": openai.CompletionSchema,
    "EmbeddingsRequest": openai.EmbeddingsSchema,
    "CreateResponseRequest": responses.CreateResponseSchema,
    "CreateMessageRequest": messages.CreateMessageSchema,
    "CountTokensRequest": messages.CountTokensSchema,
    "CreateKeyRequest": keys.CreateKeySchema,
    "UpdateKeyRequest": keys.UpdateKeySchema,
    "KeyName": keys.KeyNameSchema,
    "CreateTeamRequest": keys.CreateTeamSchema,
    "UpdateTeamRequest": keys.UpdateTeamSchema,
}
# Requests that name a model as `model` or `name` (ModelRefSchema's own check).
NAMES_A_MODEL = {"anyOf": [{"required": ["model"]}, {"required": ["name"]}]}

# What each kind of operation may answer besides its success, and why.
WHY = {
    400: "The request is not valid: the message (and `param` on /v1) names the field.",
    401: "No API key, or one unknown, revoked or expired (when RELAY_ADMIN_TOKEN is set).",
    403: "A browser Origin or Host that is not allowed, a key that may not use this model, "
    "or a client key on an admin's operation.",
    404: "No such model (or stored response, or key).",
    409: "A key of that name exists, or is already revoked.",
    413: "The body is larger than RELAY_MAX_BODY_BYTES (once decompressed, too).",
    429: "The key's rpm or tpm limit is spent (Retry-After says when to come back), "
    "or the remote's own 429.",
    502: "The remote could not be reached (refused, DNS, TLS, redirect) or answered "
    "something that is not an answer.",
    503: "The relay's database is unavailable, or the model's remote cools down "
    "after repeated failures (Retry-After).",
    504: "The remote timed out (RELAY_CONNECT_TIMEOUT, RELAY_READ_TIMEOUT).",
    "4XX": "The remote's own client error, passed on: `API error (<status>): <message>`.",
    "5XX": "The remote's own server error, passed on after the relay's retries.",
}


def _op(
    method,
    path,
    summary,
    ok,
    errors=(),
    body=None,
    query=None,
    params=(),
    public=False,
    stream=None,
):
    """One operation: `ok` maps a success status to (schema name or None, default media type).

    `stream` is the media type of the streamed answer the same status may be.
    """
    return dict(
        method=method,
        path=path,
        summary=summary,
        ok=ok,
        errors=errors,
        body=body,
        query=query,
        params=params,
        public=public,
        stream=stream,
    )


_MODEL_USE = (400, 403, 404, 413, 429, 502, 503, 504, "4XX", "5XX")
_ADMIN = (400, 403, 413, 503)

OPERATIONS = [
    _op("get", "/", "Liveness, as Ollama answers it", {200: (None, "text/plain")}, public=True),
    _op(
        "get",
        "/api/version",
        "The Ollama API version the relay implements",
        {200: ("Version", JSON)},
        public=True,
    ),
    _op(
        "get",
        "/api/status",
        "Ollama's cloud status: disabled, as on a server run with OLLAMA_NO_CLOUD",
        {200: ("CloudStatus", JSON)},
        public=True,
    ),
    _op("get", "/healthz", "Liveness", {200: ("Health", JSON)}, public=True),
    _op(
        "get",
        "/readyz",
        "Readiness: the database answers and its schema is current",
        {200: ("Ready", JSON), 503: ("Ready", JSON)},
        public=True,
    ),
    _op("get", "/metrics", "Prometheus metrics", {200: (None, "text/plain")}, public=True),
    _op("get", "/openapi.json", "This document", {200: (None, JSON)}, public=True),
    # Ollama's model management.
    _op(
        "post",
        "/api/create",
        "Create (or replace) a remote model",
        {200: ("Status", JSON)},
        _ADMIN + (404,),
        body="CreateModel",
        stream=NDJSON,
    ),
    _op("get", "/api/tags", "The models the caller may use", {200: ("Tags", JSON)}, (503,)),
    _op(
        "post",
        "/api/show",
        "One model, as Ollama describes it",
        {200: ("Show", JSON)},
        (400, 403, 404, 413, 503),
        body="ModelRef",
    ),
    _op(
        "delete",
        "/api/delete",
        "Delete a model",
        {200: (None, None)},
        _ADMIN + (404,),
        body="ModelRef",
    ),
    _op(
        "post",
        "/api/copy",
        "Copy a model under another name",
        {200: (None, None)},
        _ADMIN + (404,),
        body="CopyModel",
    ),
    _op("get", "/api/ps", "Loaded models: always none", {200: ("Ps", JSON)}, (503,)),
    _op(
        "post",
        "/api/pull",
        "Refused: the relay stores no weights",
        {},
        (400, 403, 413, 503),
        body="ModelRef",
    ),
    _op(
        "post",
        "/api/push",
        "Refused: the relay stores no weights",
        {},
        (400, 403, 413, 503),
        body="ModelRef",
    ),
    # Ollama's inference.
    _op(
        "post",
        "/api/chat",
        "Chat (streamed as NDJSON unless stream is false)",
        {200: ("OllamaChat", JSON)},
        _MODEL_USE,
        body="OllamaChatRequest",
        stream=NDJSON,
    ),
    _op(
        "post",
        "/api/generate",
        "Generate (streamed as NDJSON unless stream is false; a one-turn chat on OpenAI remotes)",
        {200: ("OllamaGenerate", JSON)},
        _MODEL_USE,
        body="OllamaGenerateRequest",
        stream=NDJSON,
    ),
    _op(
        "post",
        "/api/embed",
        "Embeddings",
        {200: ("OllamaEmbed", JSON)},
        _MODEL_USE,
        body="OllamaEmbedRequest",
    ),
    _op(
        "post",
        "/api/embeddings",
        "One embedding (Ollama's older API)",
        {200: ("OllamaEmbedding", JSON)},
        _MODEL_USE,
        body="OllamaEmbeddingsRequest",
    ),
    # OpenAI.
    _op("get", "/v1/models", "The models the caller may use", {200: ("ModelList", JSON)}, (503,)),
    _op(
        "get",
        "/v1/models/{model}",
        "One model",
        {200: ("Model", JSON)},
        (403, 404, 503),
        params=("model",),
    ),
    _op(
        "post",
        "/v1/chat/completions",
        "Chat Completions (SSE when stream is true)",
        {200: ("ChatCompletion", JSON)},
        _MODEL_USE,
        body="ChatCompletionRequest",
        stream=SSE,
    ),
    _op(
        "post",
        "/v1/completions",
        "Legacy completions, relayed to the remote's own (SSE when stream is true)",
        {200: ("Completion", JSON)},
        _MODEL_USE,
        body="CompletionRequest",
        stream=SSE,
    ),
    _op(
        "post",
        "/v1/embeddings",
        "Embeddings",
        {200: ("EmbeddingList", JSON)},
        _MODEL_USE,
        body="EmbeddingsRequest",
    ),
    _op(
        "post",
        "/v1/responses",
        "Create a response (SSE when stream is true)",
        {200: ("Response", JSON)},
        _MODEL_USE,
        body="CreateResponseRequest",
        stream=SSE,
    ),
    # 400: an id the database cannot hold (a NUL character).
    _op(
        "get",
        "/v1/responses/{response_id}",
        "A stored response",
        {200: ("Response", JSON)},
        (400, 404, 503),
        params=("response_id",),
    ),
    _op(
        "delete",
        "/v1/responses/{response_id}",
        "Delete a stored response",
        {200: ("ResponseDeleted", JSON)},
        (400, 404, 503),
        params=("response_id",),
    ),
    _op(
        "get",
        "/v1/responses/{response_id}/input_items",
        "The input items of a stored response",
        {200: ("InputItems", JSON)},
        (400, 404, 503),
        query=responses.InputItemsQuerySchema,
        params=("response_id",),
    ),
    # Anthropic.
    _op(
        "post",
        "/v1/messages",
        "Create a message (SSE when stream is true)",
        {200: ("AnthropicMessage", JSON)},
        _MODEL_USE,
        body="CreateMessageRequest",
        stream=SSE,
    ),
    _op(
        "post",
        "/v1/messages/count_tokens",
        "Estimate a request's input tokens",
        {200: ("TokenCount", JSON)},
        (400, 403, 404, 413, 503),
        body="CountTokensRequest",
    ),
    # The admin's keys and usage.
    _op(
        "post",
        "/api/keys",
        "Create a client key (its secret is shown once)",
        {200: ("KeyCreated", JSON)},
        _ADMIN + (409,),
        body="CreateKeyRequest",
    ),
    _op("get", "/api/keys", "Every client key", {200: ("KeyList", JSON)}, (403, 503)),
    _op(
        "delete",
        "/api/keys",
        "Revoke a client key",
        {200: ("KeyRevoked", JSON)},
        _ADMIN + (404, 409),
        body="KeyName",
    ),
    _op(
        "patch",
        "/api/keys",
        "Change a client key (only the fields given)",
        {200: ("Key", JSON)},
        _ADMIN + (404,),
        body="UpdateKeyRequest",
    ),
    _op(
        "get",
        "/api/usage",
        "Usage and cost per key, team, model and day (a client key: its own, and its budgets)",
        {200: ("Usage", JSON)},
        (400, 403, 503),
        query=keys.UsageQuerySchema,
    ),
    # The request log.
    _op(
        "get",
        "/api/requests",
        "The request log, newest first, a page at a time (a client key: its own rows)",
        {200: ("RequestList", JSON)},
        (400, 503),
        query=request_schemas.RequestQuerySchema,
    ),
    _op(
        "get",
        "/api/requests/{row_id}",
        "One row of the request log with its captured payloads (the admin only)",
        {200: ("RequestDetail", JSON)},
        (403, 404, 503),
        params=("row_id",),
    ),
    # The admin's teams.
    _op(
        "post",
        "/api/teams",
        "Create a team of client keys",
        {200: ("Team", JSON)},
        _ADMIN + (409,),
        body="CreateTeamRequest",
    ),
    _op("get", "/api/teams", "Every team", {200: ("TeamList", JSON)}, (403, 503)),
    _op(
        "patch",
        "/api/teams",
        "Change a team (only the fields given)",
        {200: ("Team", JSON)},
        _ADMIN + (404,),
        body="UpdateTeamRequest",
    ),
    _op(
        "delete",
        "/api/teams",
        "Delete a team that no key belongs to",
        {200: ("TeamDeleted", JSON)},
        _ADMIN + (404, 409),
        body="KeyName",
    ),
]
