"""Domain exceptions. No Pyramid imports: views turn these into HTTP in one place."""

from __future__ import annotations


class RepoproxyError(Exception):
    """Base of every error the server reports to a user.

    ``status`` is the HTTP status the API answers with; ``code`` is a stable machine-readable
    word; ``reasons`` carries every individual problem when several were found at once.
    """

    status = 400
    code = "bad-request"
    #: seconds a client should wait before trying again (sent as ``Retry-After``), if any
    retry_after: int | None = None

    def __init__(self, message: str, *, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reasons = list(reasons or [])


class ConfigError(RepoproxyError):
    """Bad configuration: start-up stops with one line naming the key."""

    code = "config"


class InvalidPackage(RepoproxyError):
    """The archive or its metadata is unacceptable (truncated, hostile, inconsistent)."""

    status = 400
    code = "invalid-package"


class PackageRejected(RepoproxyError):
    """Plugins (policies, validators) refused an otherwise valid package."""

    status = 422
    code = "rejected"


class ChecksumMismatch(RepoproxyError):
    """The bytes received do not match the checksum the client announced."""

    status = 400
    code = "checksum-mismatch"


class PackageExists(RepoproxyError):
    status = 409
    code = "exists"


class TooLarge(RepoproxyError):
    status = 413
    code = "too-large"


class NotFound(RepoproxyError):
    status = 404
    code = "not-found"


class ChannelExists(RepoproxyError):
    status = 409
    code = "exists"


class InvalidName(RepoproxyError):
    status = 400
    code = "invalid-name"


class Conflict(RepoproxyError):
    status = 409
    code = "conflict"


class TooManyRequests(RepoproxyError):
    """Too many attempts (e.g. failed logins): refused until ``retry_after`` seconds pass."""

    status = 429
    code = "too-many-requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerBusy(RepoproxyError):
    """A bounded resource (e.g. password hashing) is saturated: try again shortly."""

    status = 503
    code = "busy"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CredentialsInvalid(Exception):
    """Credentials were given but are not acceptable (401)."""

    def __init__(self, message: str = "invalid credentials") -> None:
        super().__init__(message)
        self.message = message


class Forbidden(RepoproxyError):
    """The caller is known but may not do this (an operation's own rule, e.g. who may hold
    which token)."""

    status = 403
    code = "forbidden"
