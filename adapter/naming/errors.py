"""Errors of the naming layer, with the Go adapter's messages (`pkg/naming/errors.go`)."""

__all__ = [
    "LabelNotSpecifiedError",
    "MalformedQueryError",
    "NamingError",
    "QueryBuildError",
    "UnsupportedOperatorError",
    "UnsupportedValuesError",
    "UnusableQueryError",
]


class NamingError(ValueError):
    """A rule cannot name a series or build a query for a request."""


class QueryBuildError(NamingError):
    """A request's selector cannot be turned into PromQL matchers."""

    message = "unable to build query"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)


class LabelNotSpecifiedError(QueryBuildError):
    message = "label not specified"


class UnsupportedOperatorError(QueryBuildError):
    message = "operator not supported by prometheus"


class MalformedQueryError(QueryBuildError):
    message = "operator requires values"


class UnsupportedValuesError(QueryBuildError):
    message = "operator does not support values"


class UnusableQueryError(NamingError):
    """A rule whose query can never be built (an empty `metricsQuery`): a config problem, so
    its message names the rule, never PromQL."""
