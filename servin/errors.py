"""Error categories every layer raises, with Docker's own wording.

The API layer maps each category to an HTTP status in one table (api/errors.py);
nothing below the API knows about HTTP.
"""


class ServinError(Exception):
    """Base of every error that carries a user-facing message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServinError):
    pass


class InvalidArgument(ServinError):
    pass


class InvalidParameter(InvalidArgument):
    """A query parameter out of its range (the management API's INVALID_PARAMETER; Docker's 400)."""


class Conflict(ServinError):
    pass


class NotModified(ServinError):
    pass


class Forbidden(ServinError):
    pass


class Unauthorized(ServinError):
    pass


class AuthenticationFailed(Unauthorized):
    """The caller's own credential is missing, unknown, expired or revoked (401 with WWW-Authenticate);
    a registry refusing the daemon is a plain Unauthorized."""


class ScopeRefused(Forbidden):
    """The caller is known but its scope is below what the request needs."""

    def __init__(self, message: str, *, scope: str, required: str) -> None:
        super().__init__(message)
        self.details = {"scope": scope, "required": required}


class RateLimited(ServinError):
    """Over a rate limit: try again in `retry_after` seconds (429 with Retry-After)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ServinError):
    pass


class NotImplementedYet(ServinError):
    pass


class SystemError_(ServinError):
    """An internal failure (500)."""


class OperationFailed(SystemError_):
    """The engine tried an operation and it failed (the runtime refused it, the supervisor did not answer):
    500 with the management API's OPERATION_FAILED; an unexpected failure stays INTERNAL_ERROR."""


class UpstreamFailed(SystemError_):
    """A registry could not be reached or answered an error: the management API's 502 DOCKER_ERROR. Raised
    only by /api/v1 handlers (Docker's API answers the registry's failures 500, as dockerd)."""


class ExecFailed(InvalidArgument):
    """The container's command could not be executed (docker exits 126/127)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
