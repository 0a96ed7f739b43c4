"""The errors a Go template raises: at compile time and at render time."""

__all__ = ["TemplateError", "TemplateExecError"]


class TemplateError(Exception):
    """A template that cannot be compiled: bad syntax, unknown function, field or variable."""


class TemplateExecError(Exception):
    """A template failed while rendering (e.g. `index` out of range)."""
