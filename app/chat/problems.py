"""What a converter raises for a request a Chat Completions remote cannot take."""


class RequestProblem(Exception):
    """`message` for the client, naming the field at `param` (a dotted path)."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message, self.param = message, param
