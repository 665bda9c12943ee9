"""The relay's error types: a status and a message meant for the client.
Each surface writes them in its own shape (app.surfaces.*.errors)."""

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


class RelayError(Exception):
    """An error with a status and a message meant for the client."""

    status = 500
    # OpenAI's error `type`, when the status alone does not decide it.
    type = None

    def __init__(
        self,
        message: str,
        status: int | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.param = param
        self.code = code
        self.headers = headers or {}

    @property
    def openai_type(self):
        return self.type or _OPENAI_TYPES.get(self.status, "api_error")


class BadRequest(RelayError):
    status = 400


class NotFound(RelayError):
    status = 404


class ModelNotFound(NotFound):
    def __init__(self, name):
        super().__init__(f"model '{name}' not found", param="model", code="model_not_found")


class Unauthorized(RelayError):
    """No key, or one that is unknown, revoked or expired."""

    status = 401

    def __init__(self, message):
        super().__init__(
            message,
            code="invalid_api_key",
            headers={"WWW-Authenticate": 'Bearer realm="ollama-relay"'},
        )


class Forbidden(RelayError):
    status = 403


class RateLimited(RelayError):
    """Over a key's rpm or tpm; headers say when to come back."""

    status = 429

    def __init__(self, message, kind, headers):
        super().__init__(message, code="rate_limit_exceeded", headers=headers)
        # OpenAI names the limit that was hit: "requests" or "tokens".
        self.type = kind


class UpstreamError(RelayError):
    """The remote answered with an error, or could not be reached."""

    status = 502


class ClientGone(UpstreamError):
    """The client closed its connection while the relay waited on a remote.

    499, nginx's "client closed request": no one reads the answer, but the
    log line and the metrics say who ended the call."""

    status = 499

    def __init__(self, message: str) -> None:
        super().__init__(message, code="client_gone")
