"""The one error every transcript parser raises for malformed input."""

from __future__ import annotations


class TranscriptError(ValueError):
    """A transcript file could not be parsed; ``str(e)`` is ``path:line: reason``."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}")

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"

    def __reduce__(self):  # keeps the error picklable (e.g. across process pools)
        return (type(self), (self.path, self.line, self.reason))
