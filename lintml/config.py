"""`[tool.lintml]` in pyproject.toml: discovery, validation, and command-line overrides."""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path, PurePosixPath

from lintml.registry import RULES, SYNTAX_ERROR, codes_matching

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

OUTPUT_FORMATS = ("full", "concise", "json", "sarif", "github", "gitlab")

DEFAULT_EXCLUDE = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".env",
    "env",
    ".tox",
    ".nox",
    ".eggs",
    "*.egg-info",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".lintml_cache",
    "__pycache__",
    "__pypackages__",
    "build",
    "dist",
    "node_modules",
    "site-packages",
)

LIST_KEYS = ("select", "extend-select", "ignore", "exclude", "extend-exclude")
KNOWN_KEYS = (*LIST_KEYS, "per-file-ignores", "output-format")
CODE_KEYS = ("select", "extend-select", "ignore")


class ConfigError(Exception):
    """A configuration mistake; its text is the one line the user sees."""


@dataclass(frozen=True)
class Config:
    select: tuple[str, ...] | None = None  # None: the rules that are on by default
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    output_format: str = "full"
    # the folder paths in the configuration are relative to (the pyproject's folder)
    root: Path = field(default_factory=Path.cwd)
    source: Path | None = None  # the pyproject.toml it came from

    # -- which rules run ------------------------------------------------------------

    def enabled_codes(self) -> frozenset[str]:
        if self.select is None:
            chosen = {code for code, rule in RULES.items() if rule.default_enabled}
        else:
            chosen = {code for selector in self.select for code in codes_matching(selector)}
        chosen |= {code for selector in self.extend_select for code in codes_matching(selector)}
        chosen.add(SYNTAX_ERROR)  # a file that does not parse is always news, unless ignored
        chosen -= {code for selector in self.ignore for code in codes_matching(selector)}
        return frozenset(chosen)

    def enabled_codes_for(self, path: Path | str) -> frozenset[str]:
        codes = self.enabled_codes()
        if not self.per_file_ignores:
            return codes
        relative = self.relative(path)
        for pattern, selectors in self.per_file_ignores:
            if _glob_matches(pattern, relative, any_component=True):
                codes -= {code for selector in selectors for code in codes_matching(selector)}
        return codes

    # -- which files are checked ----------------------------------------------------

    def is_excluded(self, path: Path | str) -> bool:
        """Whether a file or folder met while walking a folder is skipped. Paths named
        on the command line are always checked (as Ruff does)."""
        return self.exclusion_test()(os.fspath(path))

    def exclusion_test(self):
        """`is_excluded` as one function of a path's text, for a walk that asks it of
        every file: paths below the root are cut to their relative text, no Path made."""
        matches = _exclude_matcher((*self.exclude, *self.extend_exclude))
        root_prefix = str(self.root) + os.sep
        relative = self.relative

        def excluded(path: str) -> bool:
            absolute = os.path.abspath(path)
            if absolute.startswith(root_prefix):
                text = absolute[len(root_prefix) :]
                return matches(text.replace(os.sep, "/") if os.sep != "/" else text)
            return matches(str(relative(path)))

        return excluded

    def is_excluded_named(self, path: Path) -> bool:
        """Whether a path named on the command line is skipped under `--force-exclude`:
        it, or a folder it is in (below the project root), matches an exclude pattern.
        For tools that pass every file by name, such as pre-commit."""
        if self.is_excluded(path):
            return True
        absolute = Path(os.path.abspath(path))
        for parent in absolute.parents:
            if parent == self.root or parent == parent.parent:
                break
            if self.is_excluded(parent):
                return True
        return False

    def relative(self, path: Path | str) -> PurePosixPath:
        # normalized (`../proj/src` must match patterns too), then with symlinks resolved
        absolute_text, root_text = os.path.abspath(path), str(self.root)
        if absolute_text.startswith(root_text + os.sep):  # the usual case, without Path objects
            return PurePosixPath(absolute_text[len(root_text) + 1 :].replace(os.sep, "/"))
        absolute = Path(absolute_text)
        # resolving symlinks costs a system call per path part: only when needed
        for candidate in (absolute, None):
            candidate = candidate or absolute.resolve()
            for base in (self.root, Path.cwd()):
                try:
                    return PurePosixPath(candidate.relative_to(base).as_posix())
                except ValueError:
                    continue
        # outside the project: only the file's own name can match a pattern
        return PurePosixPath(absolute.name)


@lru_cache(maxsize=32)
def _exclude_matcher(patterns: tuple[str, ...]):
    """`_glob_matches(pattern, relative)` for any of `patterns`, as one compiled test of a
    root-relative POSIX path: walking a large folder asks it of every file."""
    by_name, by_path = [], []
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if pattern.startswith("./"):
            pattern = pattern[2:]
        (by_path if "/" in pattern else by_name).append(fnmatch.translate(pattern))
    name_matches = re.compile("|".join(by_name)).match if by_name else None
    path_matches = re.compile("|".join(by_path)).match if by_path else None

    def matches(relative: str) -> bool:
        if relative in ("", "."):  # the root itself: no name to match
            return False
        if name_matches is not None and name_matches(relative.rpartition("/")[2]):
            return True
        while path_matches is not None and relative:
            if path_matches(relative):  # the path, or a folder above it
                return True
            relative = relative.rpartition("/")[0]
        return False

    return matches


def _glob_matches(pattern: str, relative: PurePosixPath, *, any_component: bool = False) -> bool:
    """A pattern with a `/` matches the root-relative path or a folder above it; one
    without matches the file or folder name (with `any_component`, any folder above it
    too: per-file-ignores `"tests"` covers everything under tests/)."""
    pattern = pattern.rstrip("/")
    if pattern.startswith("./"):
        pattern = pattern[2:]
    if "/" in pattern:
        candidates = [str(relative), *(str(parent) for parent in relative.parents if str(parent) != ".")]
        return any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates)
    names = relative.parts if any_component else relative.parts[-1:]
    return any(fnmatch.fnmatchcase(name, pattern) for name in names)


# -- discovery and parsing -----------------------------------------------------------


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml with a [tool.lintml] table, from `start` upward."""
    try:
        start = start.resolve()
    except (OSError, RuntimeError):  # a loop of symbolic links (RuntimeError before 3.13)
        start = Path(os.path.abspath(start))
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and _has_lintml_table(pyproject):
            return pyproject
    return None


def _has_lintml_table(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if "lintml" not in text:
        return False
    try:
        tool = tomllib.loads(text).get("tool", {})
    except tomllib.TOMLDecodeError:
        return True  # ours, and broken: loading it will say where
    return isinstance(tool, dict) and "lintml" in tool


def load_config(pyproject: Path) -> Config:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{pyproject}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{pyproject}: not valid UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{pyproject}: invalid TOML: {error}") from None
    tool = data.get("tool", {})
    table = tool.get("lintml", {}) if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.lintml] must be a table")
    return config_from_table(table, pyproject)


def config_from_table(table: dict, source: Path | None, base: Config | None = None) -> Config:
    where = str(source) if source else "command line"
    for key in table:
        if key not in KNOWN_KEYS:
            raise ConfigError(
                f"{where}: unknown key `{key}` in [tool.lintml]; known keys: {', '.join(KNOWN_KEYS)}"
            )
    values: dict = {}
    for key in LIST_KEYS:
        if key in table:
            items = table[key]
            if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
                raise ConfigError(f"{where}: `{key}` must be a list of strings")
            if key in CODE_KEYS:
                validate_selectors(items, key, where)
            else:
                for pattern in items:
                    validate_glob(pattern, key, where)
            values[key.replace("-", "_")] = tuple(items)
    if "per-file-ignores" in table:
        mapping = table["per-file-ignores"]
        if not isinstance(mapping, dict):
            raise ConfigError(f"{where}: `per-file-ignores` must be a table of glob = [codes]")
        pairs = []
        for pattern, codes in mapping.items():
            if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
                raise ConfigError(f"{where}: `per-file-ignores` entry `{pattern}` must be a list of codes")
            validate_glob(pattern, "per-file-ignores", where)
            validate_selectors(codes, f"per-file-ignores.{pattern}", where)
            pairs.append((pattern, tuple(codes)))
        values["per_file_ignores"] = tuple(pairs)
    if "output-format" in table:
        fmt = table["output-format"]
        if fmt not in OUTPUT_FORMATS:
            raise ConfigError(
                f"{where}: `output-format` must be one of {', '.join(OUTPUT_FORMATS)}, not {fmt!r}"
            )
        values["output_format"] = fmt
    base = base or Config()
    if source is not None:
        values["root"] = source.parent.resolve()
        values["source"] = source
    return replace(base, **values)


def validate_glob(pattern: str, key: str, where: str) -> None:
    """A pattern that cannot mean what was written: empty, a `[` that never closes
    (fnmatch would match a literal `[`), or a class with nothing in it (`[z-a]`)."""
    stripped = pattern.rstrip("/")
    if stripped.startswith("./"):
        stripped = stripped[2:]
    if not stripped:
        raise ConfigError(f"{where}: `{key}` has an empty pattern {pattern!r}; remove it")
    index = 0
    while index < len(stripped):
        if stripped[index] == "[":
            end = index + 1
            if end < len(stripped) and stripped[end] == "!":
                end += 1
            if end < len(stripped) and stripped[end] == "]":
                end += 1
            while end < len(stripped) and stripped[end] != "]":
                end += 1
            if end >= len(stripped):
                raise ConfigError(
                    f"{where}: `{key}` pattern `{pattern}` has a `[` that is never closed; "
                    "write `[[]` to match a `[`"
                )
            if fnmatch.translate(stripped[index : end + 1]).startswith("(?s:(?!)"):
                raise ConfigError(
                    f"{where}: `{key}` pattern `{pattern}` can never match: "
                    f"`{stripped[index : end + 1]}` is an empty range"
                )
            index = end
        index += 1


def validate_selectors(selectors, key: str, where: str) -> None:
    for selector in selectors:
        if not isinstance(selector, str) or not selector.startswith("LML") or not codes_matching(selector):
            raise ConfigError(f"{where}: `{key}` names unknown rule code `{selector}` (see `lintml rules`)")


def discover(start: Path, explicit: Path | None = None) -> Config:
    """The configuration for files under `start`: an explicit file, the nearest
    pyproject.toml with [tool.lintml], or the defaults rooted at the current folder."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"{explicit}: configuration file not found")
        return load_config(explicit)
    pyproject = find_pyproject(start)
    if pyproject is None:
        return Config()
    return load_config(pyproject)
