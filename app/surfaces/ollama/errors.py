"""Ollama's error shape, on /api/*."""

from app.errors import RelayError


def error_body(error: RelayError) -> dict[str, str]:
    return {"error": error.message}
