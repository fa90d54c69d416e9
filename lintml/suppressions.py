"""Suppression comments: `# noqa`, `# noqa: LML204`, `# lintml: ignore[LML204]`,
and `# lintml: noqa` (optionally `: CODES`) on a line of its own for a whole file.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field

_CODE = r"[A-Z]+[0-9]+"
_CODE_LIST = rf"{_CODE}(?:[\s,]+{_CODE})*"
NOQA = re.compile(rf"#\s*noqa(?::\s*(?P<codes>{_CODE_LIST}))?", re.I)
LINTML_IGNORE = re.compile(rf"#\s*lintml:\s*ignore\[\s*(?P<codes>{_CODE_LIST})\s*,?\s*\]")
_MAYBE_SUPPRESSION = re.compile("noqa|lintml", re.I)
FILE_NOQA = re.compile(rf"^#\s*lintml:\s*noqa(?::\s*(?P<codes>{_CODE_LIST}))?\s*$")


@dataclass
class Suppression:
    """One suppression comment; `codes` None means every code."""

    line: int
    column: int  # 1-based, where the comment's directive starts
    codes: frozenset[str] | None
    used: set[str] = field(default_factory=set)

    def silences(self, code: str) -> bool:
        return self.codes is None or code in self.codes


@dataclass
class Suppressions:
    by_line: dict[int, list[Suppression]] = field(default_factory=dict)
    file_level: list[Suppression] = field(default_factory=list)

    def silencer(self, code: str, line: int) -> Suppression | None:
        for suppression in self.file_level:
            if suppression.silences(code):
                return suppression
        for suppression in self.by_line.get(line, ()):
            if suppression.silences(code):
                return suppression
        return None

    def all(self) -> list[Suppression]:
        return [*self.file_level, *(s for line in self.by_line.values() for s in line)]


def _codes(text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    return frozenset(code.upper() for code in re.findall(_CODE, text, re.I))


def _comments(source: str):
    """(line, column, text, alone_on_line) for each comment; strings never count."""
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                line, column = token.start
                yield line, column, token.string, token.line[:column].strip() == ""
    except (tokenize.TokenError, SyntaxError):
        return


def parse_suppressions(source: str) -> Suppressions:
    result = Suppressions()
    if not _MAYBE_SUPPRESSION.search(source):  # `# NOQA` counts too
        return result
    for line, column, comment, alone in _comments(source):
        if alone:
            file_match = FILE_NOQA.match(comment)
            if file_match:
                result.file_level.append(Suppression(line, column + 1, _codes(file_match.group("codes"))))
                continue
        for pattern in (NOQA, LINTML_IGNORE):
            for match in pattern.finditer(comment):
                result.by_line.setdefault(line, []).append(
                    Suppression(line, column + match.start() + 1, _codes(match.group("codes")))
                )
    return result
