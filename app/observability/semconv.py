"""Every span attribute and metric name the relay emits, in one place.

The GenAI names follow the OpenTelemetry semantic conventions 1.44.0 (the
names opentelemetry-semantic-conventions 0.66b2 ships); the GenAI part is
still marked Development there, and may be renamed: a rename is made here,
and tests/observability/test_semconv.py checks each name against that
package. The HTTP, server and error names are stable. The relay's own facts
go under `relay.*`.
"""

VERSION = "1.44.0"

# HTTP server spans (stable).
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_ROUTE = "http.route"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
URL_PATH = "url.path"
URL_SCHEME = "url.scheme"
CLIENT_ADDRESS = "client.address"
USER_AGENT_ORIGINAL = "user_agent.original"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
# error.type when no more precise class applies.
OTHER_ERROR = "_OTHER"

# GenAI client spans (Development).
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"

# gen_ai.operation.name values.
CHAT = "chat"
TEXT_COMPLETION = "text_completion"
EMBEDDINGS = "embeddings"

# gen_ai.provider.name values: the well-known ones the relay can tell from a
# remote's host, and `ollama` (no well-known value) for Ollama remotes.
PROVIDER_OPENAI = "openai"
PROVIDER_AZURE_OPENAI = "azure.ai.openai"
PROVIDER_OLLAMA = "ollama"
PROVIDERS_BY_HOST = {
    "api.openai.com": PROVIDER_OPENAI,
    "api.anthropic.com": "anthropic",
    "api.deepseek.com": "deepseek",
    "api.groq.com": "groq",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
    "api.moonshot.ai": "moonshot_ai",
    "generativelanguage.googleapis.com": "gcp.gemini",
}

# The relay's own facts.
RELAY_MODEL = "relay.model"
RELAY_KEY = "relay.key"
RELAY_TEAM = "relay.team"
RELAY_COST = "relay.cost"
RELAY_CURRENCY = "relay.currency"
RELAY_RETRY = "relay.retry"
RELAY_FALLBACK_FROM = "relay.fallback_from"
RELAY_SURFACE = "relay.surface"
RELAY_REQUEST_ID = "relay.request_id"

# Metrics, as Prometheus names them (dots become underscores; the unit is a suffix).
METRIC_TOKEN_USAGE = "gen_ai_client_token_usage"
METRIC_OPERATION_DURATION = "gen_ai_client_operation_duration_seconds"
METRIC_TIME_TO_FIRST_CHUNK = "gen_ai_client_operation_time_to_first_chunk_seconds"
LABEL_TOKEN_TYPE = "gen_ai_token_type"
LABEL_OPERATION_NAME = "gen_ai_operation_name"
LABEL_PROVIDER_NAME = "gen_ai_provider_name"
LABEL_REQUEST_MODEL = "gen_ai_request_model"
LABEL_ERROR_TYPE = "error_type"
TOKEN_INPUT = "input"
TOKEN_OUTPUT = "output"
# The bucket boundaries the conventions advise for each histogram.
TOKEN_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
SECONDS_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
