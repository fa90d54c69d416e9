"""What a check reports: plain data, shared by every output and integration."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Applicability(str, enum.Enum):
    """Whether a fix may be applied without the user reviewing it."""

    SAFE = "safe"  # applied by --fix
    UNSAFE = "unsafe"  # applied only with --unsafe-fixes: it can change behaviour


@dataclass(frozen=True, order=True)
class Position:
    """A place in a source file (or a notebook cell): line 1-based, column 1-based (in
    characters)."""

    line: int
    column: int


@dataclass(frozen=True)
class Edit:
    """Replace the text between `start` and `end` (end exclusive) with `content`."""

    start: Position
    end: Position
    content: str


@dataclass(frozen=True)
class Fix:
    message: str
    edits: tuple[Edit, ...]
    applicability: Applicability = Applicability.SAFE


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    filename: str
    start: Position
    end: Position
    fix: Fix | None = None
    # the line whose `# noqa` comment may silence this finding
    noqa_line: int = field(default=0, compare=False)
    # in a notebook: the cell (1-based over all cells), and `start`, `end`, `noqa_line`
    # and the fix's edits are within that cell; None in a plain Python file
    cell: int | None = None

    @property
    def line(self) -> int:
        return self.start.line

    @property
    def column(self) -> int:
        return self.start.column

    def sort_key(self) -> tuple:
        return (self.filename, self.cell or 0, self.start.line, self.start.column, self.code)


@dataclass
class InternalError:
    """A check crashed on a file: reported to the user, never raised through."""

    filename: str
    code: str
    error: str


@dataclass
class FileResult:
    filename: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[InternalError] = field(default_factory=list)
    # the project facts the findings depend on ([kind, subject..., digest]; None: all of
    # them), and the project's snapshot when they were computed (see lintml.project.facts)
    dependencies: list | None = field(default_factory=list)
    snapshot: str | None = None
