"""OpenAI's error object, on /v1/* (Chat Completions, Responses, models, embeddings)."""


def openai_error(message, kind="api_error", param=None, code=None):
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_body(error):
    return openai_error(error.message, error.openai_type, error.param, error.code)
