"""Call sites: the user's line behind a model call, an optimizer step or a backward.

The site of an event is the first frame on the stack, from the innermost outwards,
whose file is not part of torch, transformers, accelerate, lintml or the standard
library. A call that went through transformers' generation code is marked so, which
tells `model.generate(...)` (LML301) from a hand-written decoding loop (LML303).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from typing import NamedTuple

#: packages whose frames are never a call site (the issue's list, plus lintml itself)
INTERNAL_PACKAGES = ("torch", "transformers", "accelerate", "lintml")


class Site(NamedTuple):
    """A call site. A named tuple: sites are dictionary keys on every model call, and a
    tuple hashes in C."""

    filename: str  # absolute path, as the code object names it
    line: int
    function: str

    def display(self) -> str:
        return f"{display_path(self.filename)}:{self.line}"


def display_path(filename: str) -> str:
    """Relative to the working directory when the file is under it, else as given."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        return filename
    return filename if relative.startswith("..") else relative


def _package_dirs(names) -> tuple[str, ...]:
    dirs: list[str] = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            dirs.extend(_norm_dir(path) for path in spec.submodule_search_locations)
    return tuple(dirs)


def _norm_dir(path: str) -> str:
    return os.path.normcase(os.path.realpath(path)).rstrip(os.sep) + os.sep


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple({_norm_dir(paths[key]) for key in ("stdlib", "platstdlib") if paths.get(key)})


class SiteFinder:
    """Finds call sites; memoises, per file name, whether a file is internal."""

    def __init__(self, extra_packages=()) -> None:
        self._internal = _package_dirs(INTERNAL_PACKAGES + tuple(extra_packages))
        self._stdlib = _stdlib_dirs()
        transformers = _package_dirs(("transformers",))
        self._generation = tuple(d + "generation" + os.sep for d in transformers)
        self._kind: dict[str, int] = {}  # filename -> 0 user, 1 internal, 2 generation code
        self._sites: dict[tuple, Site] = {}  # (filename, line, function) -> Site

    def _classify(self, filename: str) -> int:
        if filename.startswith("<"):
            # <stdin>, <string> and notebook cells are the user's; <frozen ...> is not
            return 1 if filename.startswith("<frozen") else 0
        path = os.path.normcase(os.path.realpath(filename))
        if path.startswith(self._generation):
            return 2
        if path.startswith(self._internal):
            return 1
        if path.startswith(self._stdlib) and "-packages" + os.sep not in path:
            return 1
        return 0

    def find(self, skip: int = 1) -> tuple[Site | None, bool]:
        """(site, went through transformers' generation code)."""
        frame = sys._getframe(skip + 1)
        kind_of = self._kind
        generation = False
        while frame is not None:
            filename = frame.f_code.co_filename
            kind = kind_of.get(filename)
            if kind is None:
                kind = kind_of[filename] = self._classify(filename)
            if kind == 0:
                key = (filename, frame.f_lineno, frame.f_code.co_name)
                site = self._sites.get(key)
                if site is None:
                    site = self._sites[key] = Site(*key)
                return site, generation
            if kind == 2:
                generation = True
            frame = frame.f_back
        return None, generation
