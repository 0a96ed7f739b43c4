"""Config errors that name the file, the path inside it, the line and the reason."""

import re
from dataclasses import dataclass

__all__ = ["ConfigError", "ConfigIssue", "IssueList"]

_LAST_SEGMENT = re.compile(r"(\.[^.\[]*|\[\d+\])$")


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    path: str  # e.g. `rules[2].name.matches`; "" for the document itself
    reason: str
    line: int | None = None  # 1-based, when known

    def format(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line is not None else file
        return f"{where}: {self.path}: {self.reason}" if self.path else f"{where}: {self.reason}"


class IssueList(list[ConfigIssue]):
    """Collects issues while a config is decoded and compiled, so that all are reported at once.

    `lines` maps each decoded path to its line, so later checks that only know a path
    (`rules[2].name.matches`) still point at the right line. `warnings` collects the problems
    that do not stop the config from being used.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[str, int] = {}
        self.warnings: list[ConfigIssue] = []

    def add(self, path: str, reason: str, line: int | None = None) -> None:
        self.append(self._issue(path, reason, line))

    def warn(self, path: str, reason: str, line: int | None = None) -> None:
        self.warnings.append(self._issue(path, reason, line))

    def _issue(self, path: str, reason: str, line: int | None) -> ConfigIssue:
        return ConfigIssue(path, reason, line if line is not None else self.line_of(path))

    def line_of(self, path: str) -> int | None:
        """The line of `path`, or of its nearest ancestor (a missing field is reported at the
        line of the object that lacks it)."""
        while path not in self.lines:
            parent = _LAST_SEGMENT.sub("", path)
            if parent == path:
                return None
            path = parent
        return self.lines[path]


class ConfigError(Exception):
    """A config file that cannot be used; carries every problem found, not just the first."""

    def __init__(self, file: str, issues: list[ConfigIssue]) -> None:
        self.file = file
        self.issues = tuple(issues)
        super().__init__(self.describe())

    def describe(self) -> str:
        count = len(self.issues)
        head = f"invalid config file {self.file} ({count} error{'s' if count != 1 else ''}):"
        return "\n".join([head, *(f"  {issue.format(self.file)}" for issue in self.issues)])
