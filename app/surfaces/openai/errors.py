"""OpenAI's error object, on /v1/* (Chat Completions, Responses, models, embeddings)."""

from typing import Any

from app.errors import RelayError


def openai_error(
    message: str, kind: str = "api_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_body(error: RelayError) -> dict[str, Any]:
    return openai_error(error.message, error.openai_type, error.param, error.code)
