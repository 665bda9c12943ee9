"""Ollama's error shape, on /api/*."""


def error_body(error):
    return {"error": error.message}
