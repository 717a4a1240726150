"""Domain errors, shared by the CLI and the API (which maps each to an HTTP status)."""

from __future__ import annotations


class EcpaError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **detail: object) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidInput(EcpaError):
    status = 422
    code = "invalid_input"


class NotFound(EcpaError):
    status = 404
    code = "not_found"


class PermissionDenied(EcpaError):
    status = 403
    code = "forbidden"


class Conflict(EcpaError):
    status = 409
    code = "conflict"


class NotAuthenticated(EcpaError):
    status = 401
    code = "not_authenticated"


class ConfigurationError(EcpaError):
    status = 500
    code = "configuration"
