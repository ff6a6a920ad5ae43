"""Every refusal votestream makes, each carrying the code and HTTP status the API returns.

The HTTP layer maps these; it never re-decides them.
"""

from __future__ import annotations


class VotestreamError(Exception):
    """Base of all votestream errors: `code` is the stable machine-readable reason."""

    code = "error"
    status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class MalformedError(VotestreamError):
    code, status = "malformed", 400


class UnauthorizedError(VotestreamError):
    code, status = "unauthorized", 401


class ForbiddenError(VotestreamError):
    code, status = "forbidden", 403


class NotFoundError(VotestreamError):
    code, status = "not_found", 404


class ConflictError(VotestreamError):
    """The request is well formed but the state forbids it (e.g. `campaign_closed`)."""

    code, status = "conflict", 409


class TooLargeError(VotestreamError):
    code, status = "too_large", 413


class RuleError(VotestreamError):
    """A ballot rule is broken: `too_many_selections`, `unknown_candidate`, ..."""

    code, status = "rule_broken", 422


class RateLimitedError(VotestreamError):
    code, status = "rate_limited", 429

    def __init__(self, message: str, *, retry_after: float, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class UnavailableError(VotestreamError):
    """A dependency (the broker, the database) cannot take the request now; retry later."""

    code, status = "unavailable", 503

    def __init__(self, message: str, *, retry_after: float = 1.0, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class CampaignInvalidError(VotestreamError):
    """A campaign definition with errors; `errors` names every one of them."""

    code, status = "invalid_campaign", 422

    def __init__(self, errors: list[str]) -> None:
        super().__init__("campaign has errors: " + "; ".join(errors))
        self.errors = errors


class SettingsError(VotestreamError):
    """A bad VOTESTREAM_* setting; the message names the variable."""

    code, status = "bad_setting", 500
