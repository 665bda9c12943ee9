"""The relay's HTTP surface as an OpenAPI 3.1 document: GET /openapi.json.

Request bodies come from the marshmallow schemas the views load them with
(each surface's schemas.py), through apispec; the operations are listed in
app.surfaces.openapi.operations; answers from app.surfaces.openapi.answers.
Every status an operation can really answer is listed, in the error shape of
its surface (app.surfaces.*.errors). tests/surfaces/openapi/test_openapi.py
fails when a route is missing here, and runs schemathesis against a real relay with this document.
"""

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app, jsonify

from app.catalog.names import MODEL_NAME_PATTERN
from app.surfaces.admin import model_schemas as models
from app.surfaces.admin.health import OLLAMA_API_VERSION
from app.surfaces.openapi import answers as openapi_responses
from app.surfaces.openapi.operations import NAMES_A_MODEL, NDJSON, OPERATIONS, REQUESTS, SSE, WHY
from app.surfaces.schema import ModelName

bp = Blueprint("openapi", __name__)

# Answers (app.surfaces.openapi.answers) under the names the document gives them.
ANSWERS = {
    "OllamaError": "OLLAMA_ERROR",
    "OpenAIError": "OPENAI_ERROR",
    "AnthropicError": "ANTHROPIC_ERROR",
    "Version": "VERSION",
    "Health": "HEALTH",
    "Ready": "READY",
    "Tags": "TAGS",
    "Show": "SHOW",
    "Ps": "PS",
    "Status": "STATUS",
    "CloudStatus": "CLOUD_STATUS",
    "OllamaChat": "CHAT",
    "OllamaGenerate": "GENERATE",
    "OllamaEmbed": "EMBED",
    "OllamaEmbedding": "EMBEDDING",
    "Model": "MODEL",
    "ModelList": "MODEL_LIST",
    "ChatCompletion": "CHAT_COMPLETION",
    "Completion": "COMPLETION",
    "EmbeddingList": "EMBEDDING_LIST",
    "Response": "RESPONSE",
    "ResponseDeleted": "RESPONSE_DELETED",
    "InputItems": "INPUT_ITEMS",
    "AnthropicMessage": "MESSAGE",
    "TokenCount": "TOKEN_COUNT",
    "KeyCreated": "KEY_CREATED",
    "KeyList": "KEY_LIST",
    "KeyRevoked": "KEY_REVOKED",
    "Key": "KEY",
    "Team": "TEAM",
    "TeamList": "TEAM_LIST",
    "TeamDeleted": "TEAM_DELETED",
    "Usage": "USAGE",
    "RequestList": "REQUEST_LIST",
    "RequestDetail": "REQUEST_DETAIL",
    "ServerSentEvent": "SSE_EVENT",
}

SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A client key (orl-...) or RELAY_ADMIN_TOKEN.",
    },
    "xApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "api-key"},
}
# Any one scheme; `{}`: none at all, as on an open relay (RELAY_ADMIN_TOKEN unset).
_KEYED = [{"bearer": []}, {"xApiKey": []}, {"apiKey": []}, {}]


def _error_shape(path):
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return "AnthropicError"
    return "OpenAIError" if path.startswith("/v1/") else "OllamaError"


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _content(schema, media_type, stream, error):
    content = {}
    if media_type:
        content[media_type] = {"schema": _ref(schema)} if schema else {}
    if stream == SSE:
        # Before OpenAPI 3.2 (itemSchema), an event stream's schema describes one event.
        content[SSE] = {"schema": _ref("ServerSentEvent")}
    elif stream == NDJSON:
        content[NDJSON] = {
            "schema": {
                "description": "One such object per line; a stream that breaks ends with an "
                "error line.",
                "anyOf": [_ref(schema), _ref(error)],
            }
        }
    return content


def _responses(op):
    answers = {}
    for status, (schema, media_type) in op["ok"].items():
        answer = {"description": op["summary"]}
        content = _content(
            schema, media_type, op["stream"] if status == 200 else None, _error_shape(op["path"])
        )
        if content:
            answer["content"] = content
        answers[str(status)] = answer
    statuses = set(op["errors"]) | {403} | (set() if op["public"] else {401})
    error = {"application/json": {"schema": _ref(_error_shape(op["path"]))}}
    for status in sorted(statuses, key=str):
        answer = {"description": WHY[status], "content": error}
        if status == 401:
            answer["headers"] = {
                "WWW-Authenticate": {"required": True, "schema": {"type": "string"}}
            }
        answers[str(status)] = answer
    return answers


def _operation(op):
    operation = {
        "summary": op["summary"],
        "operationId": _operation_id(op),
        "responses": _responses(op),
    }
    if op["public"]:
        operation["security"] = [{}]
    parameters = [
        {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
        for name in op["params"]
    ]
    if op["query"] is not None:
        parameters.append({"in": "query", "schema": op["query"]})
    if parameters:
        operation["parameters"] = parameters
    if op["body"]:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op["body"])}},
        }
    return operation


def _operation_id(op):
    words = op["path"].strip("/").replace("{", "").replace("}", "").replace(".", "_")
    return f"{op['method']}_{words.replace('/', '_') or 'root'}"


def _patterns(converter, field, ret, **kwargs):
    """ModelName fields carry the pattern the relay checks them against. Python's
    end of string, \\Z, is a plain $ in the document's (ECMA-262) dialect."""
    if isinstance(field, ModelName):
        return {"pattern": MODEL_NAME_PATTERN}
    pattern = ret.get("pattern")
    if pattern and pattern.endswith("\\Z"):
        return {"pattern": pattern[:-2] + "$"}
    return {}


def build():
    """The whole document, as a dict."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="ollama-relay",
        version=OLLAMA_API_VERSION,
        openapi_version="3.1.0",
        plugins=[plugin],
        info={"description": __doc__.split("\n\n")[0]},
    )
    plugin.converter.add_attribute_function(_patterns)
    for name, schema in REQUESTS.items():
        component = NAMES_A_MODEL if issubclass(schema, models.ModelRefSchema) else None
        spec.components.schema(name, component, schema=schema)
    for name, attribute in ANSWERS.items():
        spec.components.schema(name, getattr(openapi_responses, attribute))
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    paths = {}
    for op in OPERATIONS:
        paths.setdefault(op["path"], {})[op["method"]] = _operation(op)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    document["security"] = _KEYED
    return document


@bp.get("/openapi.json")
def openapi_document():
    # Built once per app, on first use: the schemas do not change while it runs.
    document = current_app.extensions.get("relay.openapi")
    if document is None:
        document = current_app.extensions["relay.openapi"] = build()
    return jsonify(document)
