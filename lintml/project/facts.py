"""The project a checked file belongs to: its layout, every module's index, the
summaries over them, and what a check of one file depended on.

`project_for(path)` gives the facts of the project around a path, built once per
process and root and rebuilt only for the modules whose bytes changed. `for_file`
gives the view a check of one text uses: that module's index is read from the text being
checked (an editor buffer, a fix in progress), the others from disk.

Findings of a file depend on the facts it asked for: `FileFacts.pending` lists
them (a module's index, the callers of a function), each with a digest, so the result
cache can tell whether a stored result still holds after another file was edited.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lintml.files import NOTEBOOK_SUFFIX
from lintml.project import shared
from lintml.project.layout import Layout, build_layout, find_root, forget_parsed, parse_source

if TYPE_CHECKING:
    from lintml.project.index import ModuleFacts
    from lintml.project.summaries import Summaries

# The index and the summaries are imported when a module is first read: a warm run,
# whose stored results still hold, compares digests and never needs them.

_lock = threading.Lock()
_WORD = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
# an import statement's head, anywhere (a match in a string or comment only keeps a module)
_IMPORT = re.compile(r"\bfrom[ \t]+(\.*)[ \t]*([\w.]*)[ \t]+import\b|\bimport[ \t]+([\w.]+(?:[ \t]+as[ \t]+\w+)?(?:[ \t]*,[ \t]*[\w.]+(?:[ \t]+as[ \t]+\w+)?)*)")
_projects: dict[tuple[str, object], "ProjectFacts"] = {}
_roots: dict[str, Path] = {}  # a checked file's folder -> its project root


UNREAD_FACTS = "?"  # a module dependency's facts digest when its index was not read


def digest_of(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# what follows a name a line assigns: `name = ...`, `name: T = ...` at the line's start,
# or `a, name = ...` (a tuple) anywhere before a comment
_ASSIGNED_AT_START = re.compile(rb"\s*(?::[^=\n]*)?=(?!=)")
_ASSIGNED_IN_TUPLE = re.compile(rb"\s*,[^=\n]*=(?!=)")
_ASSIGNED_LAST = re.compile(rb"\s*[)\]]?\s*=(?!=)")  # `a, name = ...`, `(a, name) = ...`


_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_AFTER_ASSIGNED = frozenset(b" \t\n\r\f\v,:=)]")


def assigns(data: bytes, name: str) -> bool:
    """Whether a line of `data` may assign `name`: at its start, or in a tuple (before
    any comment; a keyword argument `f(a, name=1)` counts too, which only makes the
    answer more careful). Looks only where the name is (one regex over the whole text, tried at every
    line, took 4.7 ms on a 230 KB module, and a project asks it of many names)."""
    word = name.encode()
    size = len(word)
    found = data.find(word)
    while found != -1:
        end = found + size
        if (found == 0 or data[found - 1] not in _WORD_BYTES) and end < len(data) and data[end] in _AFTER_ASSIGNED:
            line_start = data.rfind(b"\n", 0, found) + 1
            if found == line_start and _ASSIGNED_AT_START.match(data, end):
                return True
            before = data[line_start:found]
            if b"#" not in before and (
                _ASSIGNED_IN_TUPLE.match(data, end) or (b"," in before and _ASSIGNED_LAST.match(data, end))
            ):
                return True
        found = data.find(word, found + 1)
    return False


def parse_module(data: bytes | str, module: str, is_package: bool) -> ModuleFacts:
    """The index of one module's source; a file that does not parse has none."""
    from lintml.project.index import ModuleFacts, index_module

    tree = parse_source(data)
    if tree is None:
        return ModuleFacts(module)
    try:
        return index_module(tree, module, is_package, data)
    except RecursionError:
        return ModuleFacts(module)


class _Modules(dict):
    """Module id -> index, read from disk on first use."""

    def __init__(self, project: "ProjectFacts") -> None:
        super().__init__()
        self.project = project

    def __missing__(self, module: str) -> ModuleFacts:
        facts = self.project._read(module)
        if facts is None:
            raise KeyError(module)
        self[module] = facts
        return facts

    def get(self, module, default=None):
        try:
            return self[module]
        except KeyError:
            return default

    def __contains__(self, module) -> bool:
        return dict.__contains__(self, module) or module in self.project.layout.modules

    def items(self):
        for module in list(self.project.layout.modules):
            facts = self.get(module)
            if facts is not None:
                yield module, facts


class ProjectFacts:
    def __init__(self, layout: Layout, base: "ProjectFacts | None" = None) -> None:
        """The facts of the project laid out in `layout`; with `base`, a view of it in
        which one module's text (set by `for_file`) stands for its file."""
        self.layout = layout
        self.base = base
        self.digests: dict[str, str] = dict(base.digests) if base else {}  # module -> digest of its bytes
        self.modules = _Modules(self)
        self._summaries: Summaries | None = None
        # what the files and folders were when the project was read (a view: its base's)
        self._stamps = base._stamps if base else self._disk_stamps()
        self._postings: dict | None = None  # identifier -> modules that have it (see _read_postings)
        self._module_names: list[str] = []
        self._overrides: dict[str, frozenset[bytes]] = {}  # a view's module -> its text's identifiers
        self._texts: dict[str, str] = {}  # module -> text that stands for its file (a view's)
        self._naming: dict[tuple, list[str]] = {}
        self._import_targets: dict[str, tuple[str | None, ...]] = {}
        self._assigned: dict[tuple, bool] = {}
        self._held: dict[tuple, bool] = {}  # (dependency, stored digest) -> still holds
        self._facts_digests: dict[str, str] = {}

    @property
    def summaries(self) -> Summaries:
        """The summaries over this project's modules, made on first use."""
        if self._summaries is None:
            from lintml.project.summaries import Summaries

            self._summaries = Summaries(self.modules, self.layout.resolve)
            self._summaries.candidates = self.modules_naming
            self._summaries.assigns = self.may_assign
        return self._summaries

    def modules_naming(self, name: str, defined_in: str | None = None) -> list[str]:
        """The modules that may call `name` of module `defined_in`: their text has `name`
        as a word, and the name of that module or of a package it is in (an import of
        it must name one), or they are that module."""
        key = (name, defined_in)
        cached = self._naming.get(key)
        if cached is not None:
            return cached
        if defined_in and defined_in.lower().endswith(NOTEBOOK_SUFFIX):
            # nothing imports a notebook (Python's import system does not load one):
            # its functions are called from its own cells alone (whose JSON text may
            # glue an escape to the name: `\ntrain(`)
            found = [defined_in]
            self._naming[key] = found
            return found
        having = self._modules_with(name)
        # an importer names the module, or a package whose `__init__` re-exports `name`
        places: set[str] = set()
        if defined_in:
            parts = defined_in.split(".")
            places |= self._modules_with(parts[-1])
            for depth in range(len(parts) - 1, 0, -1):
                package = ".".join(parts[:depth])
                if package in having:
                    places |= self._modules_with(parts[depth - 1])
        found = [
            module for module in self.layout.modules
            if module in having and (module == defined_in or not defined_in or module in places)
            and (module == defined_in or not defined_in or self._may_import(module, defined_in))
        ]  # fmt: skip
        self._naming[key] = found
        return found

    def _may_import(self, module: str, defined_in: str) -> bool:
        """Whether an import statement of `module` may reach `defined_in`: one that
        resolves to it or to a package it is in (which may re-export its names), or one
        that names a project folder resolution cannot follow (a namespace package). Read
        from the text (no parse): a word like `utils` is in nearly every PyTorch script
        (`torch.utils.data`), and the modules that name it are not all importers of a
        project's `utils` package, nor worth an index each."""
        targets = self._import_targets.get(module)
        if targets is None:
            targets = self._import_targets[module] = self._read_import_targets(module)
        return any(
            target is None or target == defined_in or defined_in.startswith(target + ".") for target in targets
        )

    def _read_import_targets(self, module: str) -> tuple[str | None, ...]:
        """The project modules and packages `module`'s import statements name (None for
        one that cannot be told: then it may import anything); imports of other
        libraries are left out. A notebook: (None,)."""
        path = self.layout.path_of(module)
        if path is None or path.suffix.lower() == ".ipynb":
            return (None,)
        layout = self.layout
        targets: set[str | None] = set()
        text = self._source_bytes(module).decode("utf-8", "replace")
        for dots, base, imported in _IMPORT.findall(text):
            if dots or base:  # `from <dots><base> import ...`
                names = [base]
                level = len(dots)
            else:  # `import a.b as c, d`
                names = [part.split()[0] for part in imported.split(",") if part.split()]
                level = 0
            for name in names:
                if level:
                    absolute = layout._absolute(module, name, level)  # None: above the top, where Python fails too
                    if absolute is not None:
                        targets.add(absolute)
                    continue
                resolved = layout.resolve_module(module, name)
                if resolved is not None:
                    targets.add(resolved)
                elif layout.names_project_folder(module, name.split(".", 1)[0]):
                    targets.add(None)
        return tuple(targets)

    def _modules_with(self, word: str) -> set[str]:
        """The modules whose text has `word` as an identifier (one scan of every file,
        the first time: an index from identifier to modules; a view shares its base's)."""
        if self.base is not None:
            found = self.base._modules_with(word)
        else:
            if self._postings is None:
                self._postings = self._read_postings()
            entry = self._postings.get(word.encode())
            if entry is None:
                found = set()
            elif isinstance(entry, str):
                found = {entry}
            else:
                names = self._module_names
                found = {names[number] for number in memoryview(entry).cast("I")}
        for module, words in self._overrides.items():  # a view's text for its module
            if word.encode() in words:
                found.add(module)
            else:
                found.discard(module)
        return found

    def _read_postings(self) -> dict:
        """Identifier -> the one module that has it, or an array of the numbers (in
        `_module_names`) of those that do: compact, a large project has 70,000 words."""
        from array import array

        self._module_names = names = list(self.layout.modules)
        numbers = {module: number for number, module in enumerate(names)}
        postings: dict = {}
        get = postings.get
        for number, module in enumerate(names):
            for word_found in set(_WORD.findall(self._source_bytes(module))):
                entry = get(word_found)
                if entry is None:
                    postings[word_found] = module
                elif isinstance(entry, str):
                    postings[word_found] = array("I", (numbers[entry], number))
                else:
                    entry.append(number)
        for word_found, entry in postings.items():
            if not isinstance(entry, str):
                postings[word_found] = entry.tobytes()  # exact size: an array grows by a margin
        return postings

    def _source_bytes(self, module: str) -> bytes:
        text = self._texts.get(module)
        if text is not None:
            return text.encode("utf-8", "surrogatepass")
        path = self.layout.path_of(module)
        try:
            return path.read_bytes()
        except (OSError, AttributeError):
            return b""

    def may_assign(self, module: str, name: str) -> bool:
        """Whether the module's text may bind `name` by an assignment at its top level (a
        line that starts with it), without reading its index."""
        key = (module, name)
        known = self._assigned.get(key)
        if known is None:
            known = self._assigned[key] = self._may_assign(module, name)
        return known

    def _may_assign(self, module: str, name: str) -> bool:
        path = self.layout.path_of(module)
        if path is None or (path.suffix.lower() == ".ipynb" and module not in self._texts):
            return True
        data = self._source_bytes(module)
        return assigns(data, name)

    def _read(self, module: str) -> ModuleFacts | None:
        from lintml.notebooks import program_text

        path = self.layout.path_of(module)
        if path is None:
            return None
        text = self._texts.get(module)
        if text is not None:  # the text being checked stands for the file
            return parse_module(text, module, self.layout.is_package(module))
        data = self._bytes(module)
        notebook = path.suffix.lower() == ".ipynb"
        package = not notebook and self.layout.is_package(module)
        name = shared.key("index", data, module, str(package)) if shared.active() else None
        if name is not None:
            facts = shared.load(name)  # another worker of this run read it
            if facts is not shared.MISSING:
                return facts
        facts = parse_module(program_text(data) if notebook else data, module, package)
        if name is not None:
            shared.store(name, facts)
        return facts

    def _disk_stamps(self) -> dict[str, tuple[int, int]]:
        stamps = {}
        folders = {str(self.layout.root)}
        for path in self.layout.modules.values():
            folders.add(os.path.dirname(path))
            try:
                stat = os.stat(path)
                stamps[str(path)] = (stat.st_size, stat.st_mtime_ns)
            except OSError:
                stamps[str(path)] = (-1, -1)
        for folder in folders:
            try:
                stamps[folder] = (0, os.stat(folder).st_mtime_ns)  # a file added or removed there
            except OSError:
                stamps[folder] = (-1, -1)
        return stamps

    def changed_on_disk(self) -> bool:
        return self._disk_stamps() != self._stamps

    def _bytes(self, module: str) -> bytes:
        path = self.layout.path_of(module)
        try:
            data = path.read_bytes()
        except (OSError, AttributeError):
            data = b""
        self.digests[module] = digest_of(data)
        return data

    def snapshot(self) -> str:
        """A digest of every project file's and folder's size and modification time when
        the project was read: equal snapshots mean nothing in the project changed."""
        found = getattr(self, "_snapshot", None)
        if found is None:
            text = repr(sorted(self._stamps.items()))
            found = self._snapshot = digest_of(text.encode("utf-8", "surrogateescape"))
        return found

    def dependency_digest(self, dependency: tuple) -> str:
        """The current digest of a fact a check used (see FileFacts.dependencies)."""
        kind = dependency[0]
        if kind == "module":
            # the bytes' digest (cheap to compare) and the index's (a change that leaves the
            # facts as they were, a comment or a docstring, is no change to the others)
            module = dependency[1]
            if module not in self.layout.modules:
                return "-"
            if module not in self.digests:
                self._bytes(module)
            if module not in dict.keys(self.modules):
                # named (an import resolved to it) but its index never read: the result
                # holds while its bytes do (reading an index only to digest it was a
                # fifth of a cold end-user run's index reads)
                return f"{self.digests.get(module, '-')}:{UNREAD_FACTS}"
            return f"{self.digests.get(module, '-')}:{self.facts_digest(module)}"
        if kind == "naming":
            return digest_of(repr(self.modules_naming(dependency[1], dependency[2])).encode("utf-8", "surrogateescape"))
        if kind == "resolve":
            return digest_of(repr(self.layout.resolve(dependency[1], dependency[2])).encode("utf-8", "surrogateescape"))
        return "-"

    def still_holds(self, dependencies: list, snapshot: str | None) -> bool:
        """Whether every fact a stored result depended on is as it was."""
        if snapshot is not None and snapshot == self.snapshot():
            return True
        saved = self.summaries.record
        self.summaries.record = None
        try:
            return all(self._holds(tuple(dependency[:-1]), dependency[-1]) for dependency in dependencies)
        finally:
            self.summaries.record = saved

    def _holds(self, dependency: tuple, digest: str) -> bool:
        known = self._held.get((dependency, digest))
        if known is None:
            if dependency[0] == "module" and dependency[1] in self.layout.modules:
                module = dependency[1]
                if module not in self.digests:
                    self._bytes(module)
                stored_bytes, _, stored_facts = digest.partition(":")
                # the same bytes: the same facts, without reading its index
                known = self.digests.get(module) == stored_bytes or (
                    stored_facts != UNREAD_FACTS and self.facts_digest(module) == stored_facts
                )
            else:
                known = self.dependency_digest(dependency) == digest
            self._held[(dependency, digest)] = known
        return known

    def facts_digest(self, module: str) -> str:
        found = self._facts_digests.get(module)
        if found is None:
            facts = self.modules.get(module)
            from lintml.project.index import facts_text

            found = self._facts_digests[module] = (
                digest_of(facts_text(facts).encode("utf-8", "surrogateescape")) if facts is not None else "-"
            )
        return found

    def for_file(self, path: Path | None, text: str) -> "FileFacts":
        """The facts a check of `text` (the file at `path`) uses."""
        module = self.layout.module_of(path) if path is not None else None
        if module is None:
            return FileFacts.alone(text)
        data = text.encode("utf-8", "surrogatepass")
        if module not in self.digests:
            self._bytes(module)  # its digest only: the index is read when a check asks
        if self.digests.get(module) == digest_of(data) or _same_text(self.layout.path_of(module), text):
            self.summaries.record = set()
            return FileFacts(self, module, self.summaries)
        # the text differs from the file on disk: a view with this module read from it
        view = ProjectFacts(self.layout, base=self)
        for name in dict.keys(self.modules):
            if name != module:
                dict.__setitem__(view.modules, name, dict.__getitem__(self.modules, name))
        view._texts = {module: text}
        view.digests[module] = digest_of(data)
        view._overrides = {module: frozenset(_WORD.findall(data))}
        view.summaries.record = set()
        return FileFacts(view, module, view.summaries)


def _same_text(path: Path | None, text: str) -> bool:
    if path is None:
        return False
    try:
        return path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


@dataclass
class FileFacts:
    """What one checked module can ask of its project."""

    project: ProjectFacts | None
    module: str
    summaries: Summaries

    @classmethod
    def alone(cls, text: str, module: str = "__main__") -> "FileFacts":
        """A file outside any project (stdin, a test's text): its own facts only."""
        from lintml.project.summaries import Summaries

        facts = parse_module(text, module, False)
        summaries = Summaries({module: facts}, lambda importer, absolute: None)
        return cls(None, module, summaries)

    def pending(self) -> "PendingDependencies":
        """What the check asked for, its digests computed only when needed (a result
        that is not stored in the cache needs none): [kind, subject..., digest] of every
        project fact but the checked module's own text (the cache key holds that)."""
        recorded = self.summaries.record or set()
        self.summaries.record = None
        return PendingDependencies(self.project, self.module, frozenset(recorded))


@dataclass(frozen=True)
class PendingDependencies:
    project: ProjectFacts | None
    module: str
    recorded: frozenset

    def resolve(self) -> list[list]:
        if self.project is None:
            return []
        found = []
        for dependency in sorted(self.recorded, key=repr):
            if dependency[0] == "module" and dependency[1] == self.module:
                continue
            found.append([*dependency, self.project.dependency_digest(dependency)])
        return found


def project_for(path: Path, config=None, refresh: bool = False) -> ProjectFacts:
    """The facts of the project around `path`, cached per root and configuration for
    this process. With `refresh` (a long-lived process: the language server), a project
    whose files changed on disk since they were read is read again."""
    folder = os.path.dirname(os.path.abspath(path))
    root = _roots.get(folder)
    if root is None:  # one walk up a folder, not one a file
        root = _roots[folder] = find_root(path)
    key = (str(root), _config_key(config))
    with _lock:
        project = _projects.get(key)
        if project is None or (refresh and project.changed_on_disk()):
            project = ProjectFacts(build_layout(root, config))
            _projects[key] = project
        return project


def _config_key(config) -> object:
    if config is None:
        from lintml.config import Config

        config = Config()
    return (tuple(getattr(config, "exclude", ()) or ()), tuple(getattr(config, "extend_exclude", ()) or ()))


# -- the facts of the file being checked now ---------------------------------------------

_current = contextvars.ContextVar("lintml_project", default=None)


class _Checked:
    """The file being checked and its project, read on the first question: a file whose
    checks ask nothing of the project (most small files) never lays it out."""

    def __init__(self, path: Path | None, config) -> None:
        self.path = Path(path) if path is not None else None
        self.config = config
        self._project: ProjectFacts | None | bool = False  # False: not read yet

    @property
    def project(self) -> ProjectFacts | None:
        if self._project is False:
            self._project = None
            if self.path is not None:
                try:
                    if os.path.isfile(self.path):
                        self._project = project_for(self.path, self.config)
                except (OSError, RuntimeError, ValueError):  # an unreadable tree: the file on its own
                    self._project = None
        return self._project


@contextmanager
def checking(path: Path | None, config=None):
    """Within this block, `lint_source` reads the project around `path` (a file on
    disk) when a check asks for it; without it, a text is checked on its own."""
    token = _current.set(_Checked(path, config))
    try:
        yield
    finally:
        _current.reset(token)


def facts_for_text(text: str) -> FileFacts:
    """The facts for the text `lint_source` is about to check."""
    current = _current.get()
    project = current.project if current is not None else None
    if project is None:
        return FileFacts.alone(text)
    return project.for_file(current.path, text)


def current_package() -> str | None:
    """The package of the file being checked, for its relative imports."""
    current = _current.get()
    if current is None or current.path is None:
        return None
    project = current.project
    if project is None:
        return None
    module = project.layout.module_of(current.path)
    if module is None:
        return None
    from lintml.project.index import package_of

    return package_of(module, project.layout.is_package(module))


def refresh() -> None:
    """Forget the projects whose files or folders changed on disk since they were read
    (a file edited, added or removed): the next question reads them anew. Cheap: one
    `stat` a file and a folder."""
    with _lock:
        _roots.clear()  # a marker file may have come or gone
        for key, project in list(_projects.items()):
            if project.changed_on_disk():
                del _projects[key]


def clear() -> None:
    """Forget every project, and the refs the indexes shared (a long-lived process, the
    language server, would otherwise keep every ref it ever read)."""
    from lintml.project import index

    with _lock:
        _projects.clear()
        _roots.clear()
        index._REFS.clear()
        forget_parsed()
