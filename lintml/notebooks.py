"""Jupyter notebooks: the code cells linted as one program, findings and fixes mapped
back to cells.

This is the one place that knows about notebooks' shape. The engine and the rules see
an ordinary Python program: the notebook's code cells joined in order (so a model put
in eval mode in one cell is known in the next), with IPython syntax (`%magic`, `!shell`,
`obj?`, `x = !cmd`, cell magics) replaced by harmless lines of the same indentation, so
that each line of the program is one line of a cell. Findings come back in that
program's coordinates and are mapped here to (cell, line in the cell, column); fixes
are mapped the same way and applied to the cells' own text, never to a magic line.

Cells are numbered from 1 over all cells (markdown and raw ones included), as Jupyter
and VS Code show them.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import json
import re
import tokenize
from dataclasses import dataclass, field
from functools import lru_cache

from lintml.engine import _syntax_error, apply_suppressions, lint_source
from lintml.files import NOTEBOOK_SUFFIX as SUFFIX
from lintml.files import is_notebook  # noqa: F401  (part of this module's interface)
from lintml.findings import Edit, Finding, Fix, InternalError, Position
from lintml.fixes import MAX_ROUNDS, apply_edits, parses
from lintml.registry import SYNTAX_ERROR

_LINES = re.compile(r"\r\n|\r|\n")

# Cell magics whose body is Python run as usual; the body of any other cell magic
# (%%bash, %%writefile, %%html, ...) is not Python and the whole cell is skipped.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture"})

# A line that IPython rewrites when it starts a logical line: line magics, shell
# escapes, `?help`, and the autocall escapes `/f x`, `,f x`, `;f x`.
_ESCAPED = re.compile(r"[ \t]*[%!?/,;]")
# `obj?`, `obj??`, `%magic?`: help at the end of a line
_HELP_END = re.compile(r"[ \t]*%{0,2}[\w*]+(?:\.[\w*]+)*\?\??[ \t]*$")
# `x = !ls`, `files, out = %sx ls`: a magic's or a shell command's value assigned
_ASSIGNED = re.compile(r"[ \t]*[^=#'\"!%\s][^=#'\"!%]*=[ \t]*[!%]")
_CELL_MAGIC = re.compile(r"%%(\w*)")


class NotebookError(ValueError):
    """The file is not a notebook lintml can read; one line for the user."""


# -- reading and writing ------------------------------------------------------------------


@dataclass
class CodeCell:
    number: int  # 1-based over all cells, as Jupyter shows it
    position: int  # index in the notebook's "cells" list
    source: str


@dataclass
class Notebook:
    data: dict
    text: str  # the file as read
    cells: list[CodeCell]  # the code cells, in order
    is_python: bool


def _joined(source) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(part, str) for part in source):
        return "".join(source)
    raise NotebookError("a cell's `source` is neither a string nor a list of strings")


def parse_notebook(text: str) -> Notebook:
    """The notebook in `text` (nbformat 4 JSON), or NotebookError."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        message = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        where = f" at line {error.lineno} column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise NotebookError(f"not valid JSON: {message}{where}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        if isinstance(data, dict) and data.get("nbformat") in (1, 2, 3):
            raise NotebookError(
                f"notebook format {data['nbformat']} is not supported; convert it to format 4 "
                "(`jupyter nbconvert --to notebook --inplace`)"
            )
        raise NotebookError("not a Jupyter notebook: no `cells` list")
    version = data.get("nbformat", 4)
    if version != 4:
        raise NotebookError(f"notebook format {version!r} is not supported (only format 4)")
    cells = []
    for position, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict):
            raise NotebookError(f"cell {position + 1} is not an object")
        if cell.get("cell_type") == "code":
            cells.append(CodeCell(position + 1, position, _joined(cell.get("source", ""))))
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    language = (metadata.get("language_info") or {}).get("name") or (metadata.get("kernelspec") or {}).get("language")
    is_python = not isinstance(language, str) or language.lower() in ("python", "python3", "ipython", "")
    return Notebook(data, text, cells, is_python)


@lru_cache(maxsize=16)
def _cell_sources(text: str) -> tuple[str | None, ...]:
    try:
        data = json.loads(text)
        return tuple(
            _joined(cell.get("source", "")) if isinstance(cell, dict) else None for cell in data["cells"]
        )
    except (ValueError, TypeError, KeyError, RecursionError):
        return ()


def cell_source(notebook_text: str, number: int) -> str | None:
    """The text of cell `number` (1-based over all cells) of the notebook in
    `notebook_text`; None when there is no such cell. For outputs that show a line."""
    sources = _cell_sources(notebook_text)
    return sources[number - 1] if 0 < number <= len(sources) else None


def cell_line(notebook_text: str, number: int, line: int) -> str | None:
    source = cell_source(notebook_text, number)
    if source is None:
        return None
    lines = _LINES.split(source)
    return lines[line - 1] if 0 < line <= len(lines) else None


def dump_notebook(notebook: Notebook, sources: dict[int, str]) -> str:
    """The notebook's JSON with the code cells at `sources` (cell position -> text)
    replaced and everything else kept: key order, indentation, outputs, metadata, ids.
    A source stored as a list of lines stays a list of lines."""
    data = notebook.data
    for position, text in sources.items():
        cell = data["cells"][position]
        cell["source"] = text.splitlines(keepends=True) if isinstance(cell.get("source"), list) else text
    original = notebook.text
    match = re.match(r"\ufeff?\{\r?\n([ \t]+)\S", original)
    indent = match.group(1) if match else None
    ensure_ascii = original.isascii() and bool(re.search(r"\\u[0-9a-fA-F]{4}", original))
    out = json.dumps(data, indent=indent, ensure_ascii=ensure_ascii)
    if indent is None and ", " not in original and ": " not in original:
        out = json.dumps(data, separators=(",", ":"), ensure_ascii=ensure_ascii)
    if original.rstrip(" \t\r\n") != original:
        out += original[len(original.rstrip(" \t\r\n")):].replace("\r\n", "\n")
    if "\r\n" in original:
        out = out.replace("\n", "\r\n")
    if original.startswith("\ufeff"):
        out = "\ufeff" + out
    return out


# -- the joined program -------------------------------------------------------------------


def _at_statement_start(lines: list[str]) -> bool:
    """Whether the line after `lines` starts a logical line (not inside brackets, a
    multi-line string or a backslash continuation)."""
    try:
        for _ in tokenize.generate_tokens(io.StringIO("".join(lines)).readline):
            pass
    except tokenize.TokenError:
        return False
    except (SyntaxError, ValueError):
        return True
    return True


def _is_magic(line: str) -> bool:
    return bool(_ESCAPED.match(line) or _HELP_END.match(line) or _ASSIGNED.match(line))


def _harmless(line: str) -> str:
    indent = line[: len(line) - len(line.lstrip(" \t"))]
    return f"{indent}pass" if indent else ""


def transform_cell(source: str) -> tuple[list[str], set[int]]:
    """The cell's lines as Python (without line ends) and the 1-based numbers of the
    lines that were IPython syntax and replaced by `pass` or an empty line."""
    lines = _LINES.split(source)
    if lines and lines[-1] == "" and len(lines) > 1:
        lines.pop()  # the text ends with a line end
    if source == "":
        lines = []
    skipped: set[int] = set()
    out = list(lines)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].startswith("%%"):
        magic = _CELL_MAGIC.match(lines[first]).group(1)
        if magic not in PYTHON_CELL_MAGICS:
            return [""] * len(lines), set(range(1, len(lines) + 1))
        out[first] = ""
        skipped.add(first + 1)
    index = 0
    while index < len(lines):
        line = lines[index]
        if index + 1 in skipped or not _is_magic(line) or not _at_statement_start([f"{l}\n" for l in out[:index]]):
            index += 1
            continue
        # the magic, then the lines it continues with a trailing backslash (empty)
        out[index] = _harmless(line)
        skipped.add(index + 1)
        while lines[index].rstrip().endswith("\\") and index + 1 < len(lines):
            index += 1
            out[index] = ""
            skipped.add(index + 1)
        index += 1
    return out, skipped


@dataclass
class Program:
    """The code cells joined into one program, and the way back to the cells."""

    text: str
    cells: list[CodeCell]
    first_line: list[int]  # joined line of each code cell's line 1
    line_counts: list[int]
    skipped: list[frozenset[int]]  # per code cell: the lines that are IPython syntax
    broken: list[int] = field(default_factory=list)  # code cell indexes that do not parse alone

    def locate(self, line: int) -> int:
        """The code cell index that holds joined line `line` (the last cell for a line
        past the end)."""
        found = 0
        for index, first in enumerate(self.first_line):
            if first <= line and self.line_counts[index]:
                found = index
            elif first > line:
                break
        return found

    def to_cell(self, position: Position, index: int | None = None) -> tuple[int, Position]:
        """(code cell index, position in that cell); `index` forces the cell (for a
        position just past its last line)."""
        if index is None:
            index = self.locate(position.line)
        return index, Position(position.line - self.first_line[index] + 1, position.column)


def build_program(cells: list[CodeCell]) -> Program:
    """Join the cells' Python. A cell that does not parse on its own becomes empty lines
    (and is listed in `broken`), so the rest of the notebook is still checked."""
    parts: list[str] = []
    first_line, counts, skipped_all, broken = [], [], [], []
    line = 1
    for index, cell in enumerate(cells):
        count, skipped, text = _cell_program(cell.source)
        if text is None:
            broken.append(index)
            text = "\n" * count
        parts.append(text)
        first_line.append(line)
        counts.append(count)
        skipped_all.append(skipped)
        line += count
    return Program("".join(parts), cells, first_line, counts, skipped_all, broken)


# cell source -> (its line count, its IPython lines, its Python text or None where it
# does not parse): a notebook's cells are read for its check and for its project index
# (and again after each fix), and this is the costly part
_CELLS: dict[str, tuple[int, frozenset[int], str | None]] = {}
_CELLS_LIMIT = 1 << 21  # characters of source kept
_cells_size = 0


def _cell_program(source: str) -> tuple[int, frozenset[int], str | None]:
    global _cells_size
    found = _CELLS.get(source)
    if found is None:
        lines, skipped = transform_cell(source)
        text = "".join(f"{l}\n" for l in lines)
        found = (len(lines), frozenset(skipped), text if parses(text) else None)
        if _cells_size + len(source) > _CELLS_LIMIT:
            _CELLS.clear()
            _cells_size = 0
        _CELLS[source] = found
        _cells_size += len(source)
    return found


def program_text(data: bytes) -> str:
    """The Python of a notebook file's bytes: its code cells joined, IPython lines left
    out, as lintml checks it. Empty for a notebook lintml cannot read or that is not
    Python."""
    try:
        notebook = parse_notebook(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, NotebookError):
        return ""
    return build_program(notebook.cells).text if notebook.is_python else ""


# -- mapping findings and fixes -----------------------------------------------------------


def _edit_lines(edit: Edit) -> range:
    """The lines whose text an edit changes (an insertion at a line's start changes none)."""
    if edit.start == edit.end:
        return range(edit.start.line, edit.start.line + (edit.start.column > 1))
    last = edit.end.line if edit.end.column > 1 else edit.end.line - 1
    return range(edit.start.line, max(last, edit.start.line) + 1)


def _map_fix(program: Program, fix: Fix | None, index: int) -> Fix | None:
    """The fix in cell `index`'s coordinates, or None where it cannot apply to the cell
    alone: it reaches into another cell or changes a line of IPython syntax."""
    if fix is None:
        return None
    edits = []
    for edit in fix.edits:
        cell, start = program.to_cell(edit.start)
        past_end = edit.end.line == program.first_line[index] + program.line_counts[index] and edit.end.column == 1
        end_cell, end = program.to_cell(edit.end, index if past_end else None)
        if cell != index and not (edit.start == edit.end and past_end):
            return None
        if end_cell != index:
            return None
        if cell != index:  # an insertion just after the cell's last line
            start = end
        mapped = Edit(start, end, edit.content)
        if any(line in program.skipped[index] for line in _edit_lines(mapped)):
            return None
        edits.append(mapped)
    return Fix(fix.message, tuple(edits), fix.applicability)


def map_finding(program: Program, finding: Finding) -> Finding:
    """A finding of the joined program, at its cell."""
    index, start = program.to_cell(finding.start)
    end_index, end = program.to_cell(finding.end)
    if end_index != index or end < start:
        count = max(program.line_counts[index], 1)
        last = _cell_lines(program.cells[index].source)
        end = Position(count, len(last[count - 1]) + 1 if len(last) >= count else 1)
        end = max(end, start)
    noqa_index, noqa = program.to_cell(Position(finding.noqa_line or finding.start.line, 1))
    return dataclasses.replace(
        finding,
        start=start,
        end=end,
        fix=_map_fix(program, finding.fix, index),
        noqa_line=noqa.line if noqa_index == index else start.line,
        cell=program.cells[index].number,
    )


def _cell_lines(source: str) -> list[str]:
    lines = _LINES.split(source)
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


# -- linting and fixing -------------------------------------------------------------------


@dataclass
class NotebookOutcome:
    findings: list[Finding] = field(default_factory=list)  # as the notebook stands (after fixes)
    errors: list[InternalError] = field(default_factory=list)
    fixed: list[Finding] = field(default_factory=list)
    text: str | None = None  # the new notebook JSON when a fix changed it
    diffs: list[str] = field(default_factory=list)  # one unified diff per changed cell
    # the project facts the findings depend on, as for a file (see FileResult)
    dependencies: list | None = field(default_factory=list)
    snapshot: str | None = None


def _lint_cells(
    cells: list[CodeCell], filename: str, enabled: frozenset[str], errors: list, facts: list | None = None
) -> tuple[Program, list[Finding]]:
    """The notebook's findings; `facts`, when given, receives what they depend on."""
    program = build_program(cells)
    result = lint_source(program.text, filename, enabled)
    errors.extend(result.errors)
    if facts is not None:
        facts[:] = [result.dependencies, result.snapshot]
    findings = [map_finding(program, finding) for finding in result.findings]
    if SYNTAX_ERROR in enabled:
        for index in program.broken:
            cell = cells[index]
            lines, _ = transform_cell(cell.source)
            # not the notebook's name: CPython would read the error's line from that file
            syntax = _syntax_error("".join(f"{l}\n" for l in lines), "<cell>", None)
            if syntax is None:
                continue
            syntax = dataclasses.replace(
                syntax,
                filename=filename,
                message=syntax.message.replace("this file", "this cell"),
                cell=cell.number,
            )
            findings.extend(apply_suppressions([syntax], cell.source, filename, enabled))
    findings.sort(key=Finding.sort_key)
    return program, findings


def _with_line_end(source: str) -> str:
    return source if source == "" or source.endswith(("\n", "\r")) else source + "\n"


def lint_notebook(
    text: str, filename: str, enabled: frozenset[str], *, fix: bool = False, unsafe: bool = False, diff: bool = False
) -> NotebookOutcome:
    """Lint (and with `fix` or `diff`, fix) the notebook in `text`; NotebookError when it
    cannot be read."""
    notebook = parse_notebook(text)
    outcome = NotebookOutcome()
    if not notebook.is_python:
        return outcome
    cells = notebook.cells
    facts: list = []
    _, findings = _lint_cells(cells, filename, enabled, outcome.errors, facts)
    outcome.dependencies, outcome.snapshot = facts
    if not (fix or diff):
        outcome.findings = findings
        return outcome
    original = findings
    current = [dataclasses.replace(cell) for cell in cells]
    for _ in range(MAX_ROUNDS):
        applied_any = False
        for index, cell in enumerate(current):
            mine = [f for f in findings if f.cell == cell.number]
            if not mine:
                continue
            source = _with_line_end(cell.source)
            new_source, applied = apply_edits(source, mine, unsafe)
            if not applied:
                continue
            if source != cell.source and new_source.endswith("\n"):
                new_source = new_source[:-1]  # the cell had no final line end: keep it so
            current[index] = dataclasses.replace(cell, source=new_source)
            outcome.fixed.extend(applied)
            applied_any = True
        if not applied_any:
            break
        _, findings = _lint_cells(current, filename, enabled, outcome.errors)
    changed = {cell.position: cell.source for cell, old in zip(current, cells) if cell.source != old.source}
    if not changed:
        outcome.findings = original
        outcome.fixed = []
        return outcome
    if any(
        parses("".join(f"{l}\n" for l in transform_cell(old.source)[0]))
        and not parses("".join(f"{l}\n" for l in transform_cell(cell.source)[0]))
        for cell, old in zip(current, cells)
    ):
        outcome.errors.append(InternalError(filename, "fix", "a fix produced code that does not parse; file left unchanged"))
        outcome.findings = original
        outcome.fixed = []
        return outcome
    if diff:
        for cell, old in zip(current, cells):
            if cell.source != old.source:
                outcome.diffs.append(
                    "".join(
                        difflib.unified_diff(
                            _with_line_end(old.source).splitlines(keepends=True),
                            _with_line_end(cell.source).splitlines(keepends=True),
                            fromfile=f"a/{filename}:cell {cell.number}",
                            tofile=f"b/{filename}:cell {cell.number}",
                        )
                    )
                )
        outcome.findings = original
        outcome.fixed = []
        return outcome
    outcome.findings = findings
    outcome.text = dump_notebook(notebook, changed)
    return outcome
