"""Which files make up the project, what each is called as a module, and which module an
import means.

The project root is the folder of the nearest `pyproject.toml`, `setup.py`, `setup.cfg`
or `.git` above a checked path. Every `.py` file under it gets a module id, named as
Python names it from the root or from `root/src`; notebooks get an id too, but only
import, they are never imported. Imports are resolved as Python would: from the
importer's own folder (a script's folder is first on `sys.path`), then the root, then
`root/src`; packages with or without `__init__.py`. What cannot be resolved (torch, a
typo, a relative import above the top) is None: unknown, never guessed.

Laying out reads no file: the walk gives the paths, and a path gives the id. A module's
imports are read only when a re-export is followed through it, with CPython's `ast`,
at most once per module.
"""

from __future__ import annotations

import ast
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from lintml.config import Config
from lintml.files import NOTEBOOK_SUFFIX, is_notebook, iter_python_files
from lintml.project import shared

ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")

# Re-exports followed before giving up; real chains are a few hops, and the visited
# set already stops cycles.
MAX_HOPS = 1000

_INIT = "__init__.py"


def find_root(path: Path) -> Path:
    """The project root for a checked path (file or folder): the nearest folder at or above it
    (a file's own folder first) holding one of ROOT_MARKERS; else the checked folder itself
    (a file's parent folder). Returns a resolved absolute path."""
    try:
        start = path.resolve()
    except (OSError, RuntimeError):  # a loop of symbolic links (RuntimeError before 3.13)
        start = Path(os.path.abspath(path))
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        if any(os.path.exists(os.path.join(candidate, marker)) for marker in ROOT_MARKERS):
            return candidate
    return folder


@dataclass
class _Bindings:
    """What a module binds at module level, as far as following a re-export needs."""

    imports: dict[str, str] = field(default_factory=dict)  # name -> absolute dotted target
    local: set[str] = field(default_factory=set)  # bound some other way: def, class, assignment
    stars: list[str] = field(default_factory=list)  # `from X import *`: absolute X
    exported: frozenset[str] | None = None  # a literal `__all__`, which limits `import *`


@dataclass
class Layout:
    root: Path  # resolved
    modules: dict[str, Path]  # module id -> resolved file path (every .py under root, and notebooks)
    # how many modules' imports were parsed: each at most once
    parses: int = field(default=0, init=False)
    # id -> its file where Python finds it (below root, a link not followed)
    _location: dict[str, str] = field(init=False, repr=False)
    # such a place -> its id; None for a file whose id an earlier file took
    _at: dict[str, str | None] = field(init=False, repr=False)
    _by_path: dict[str, str] = field(init=False, repr=False)  # resolved path -> id
    _bindings: dict[str, _Bindings] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._place({module: str(path) for module, path in self.modules.items()}, [])

    def _place(self, locations: dict[str, str], shadowed: list[str]) -> None:
        """Index the files by where Python finds them; `shadowed`: the places of files
        whose id an earlier file took."""
        self._location = locations
        self._at = dict.fromkeys(shadowed)
        self._at.update((location, module) for module, location in locations.items() if not is_notebook(location))
        self._by_path = {}
        for module, path in self.modules.items():
            self._by_path.setdefault(str(path), module)

    # -- files and ids -----------------------------------------------------------------

    def module_of(self, path: Path) -> str | None:
        """The id of a file, None if it is not in the project."""
        found = self._by_path.get(os.path.abspath(path))
        if found is not None:
            return found
        try:
            return self._by_path.get(str(Path(path).resolve()))
        except (OSError, RuntimeError):
            return None

    def path_of(self, module: str) -> Path | None:
        return self.modules.get(module)

    def is_package(self, module: str) -> bool:
        location = self._location.get(module)
        return location is not None and location.endswith(os.sep + _INIT)

    # -- resolution --------------------------------------------------------------------

    def resolve_module(self, importer: str | None, name: str, level: int = 0) -> str | None:
        """The module id that `import name` (level 0) or `from <level dots><name> import ...` means
        inside module `importer` (None: code not in the project, e.g. stdin: only root-based absolute
        resolution). `name` may be "" for `from . import x`. None when it is not a project module
        (torch, numpy, a typo...)."""
        parts = name.split(".") if name else []
        if level:
            package = self._package(importer, level)
            if package is None:
                return None
            folder, _ = package
            if not parts:
                return self._at.get(folder + os.sep + _INIT)
            folders = [folder]
        elif not parts:
            return None
        else:
            folders = self._search_path(importer)
        found = self._deepest(folders, parts)
        return found[1] if found is not None and found[0] == len(parts) else None

    def resolve(self, importer: str | None, qualified: str) -> tuple[str, str] | None:
        """An absolute dotted name as an import table gives it (`models.unet.UNet` for
        `from models.unet import UNet`; `pkg.models.UNet` for a relative import already made absolute)
        -> (module id, rest): the longest prefix that is a project module, and the remaining dotted
        attribute path ("" when the name is the module itself, "Trainer.fit" for a method).
        Follows re-exports: when `rest`'s first part is not defined in that module but imported there
        at module level (`from .unet import UNet` in models/__init__.py, `from models import get_model`
        in utils.py, `import pkg.mod as m` then `m.X`), continue in the module it comes from.
        Chains are bounded and cycle-safe (import cycles between two __init__.py files must terminate).
        None when no prefix is a project module.

        Where a chain leaves the project (`from torch import nn` re-exported), the answer is
        the last project module on it, with the name it imports there."""
        found = self._prefix(importer, qualified)
        if found is None:
            return None
        seen: set[tuple[str, str]] = set()
        for _ in range(MAX_HOPS):
            module, rest = found
            if not rest:
                return found
            first, _, tail = rest.partition(".")
            if (module, first) in seen:  # an import cycle
                return found
            seen.add((module, first))
            target = self._origin(module, first)
            if target is None:
                return found
            following = self._prefix(module, f"{target}.{tail}" if tail else target)
            if following is None:  # it comes from outside the project
                return found
            found = following
        return found

    def module_imports(self, module: str) -> dict[str, str]:
        """Module-level names bound by imports in `module` -> absolute dotted target (relative
        imports made absolute). `import a.b` binds `a`."""
        return dict(self._bindings_of(module).imports)

    def names_project_folder(self, importer: str | None, first: str) -> bool:
        """Whether an absolute import's first name is a folder or module of the project
        where `importer` searches (so an import of it that does not resolve may still
        reach project code, through a namespace package)."""
        for folder in self._search_path(importer):
            base = folder + os.sep + first
            if base + ".py" in self._at or os.path.isdir(base):
                return True
        return False

    # -- how resolution is done ----------------------------------------------------------

    def _search_path(self, importer: str | None) -> list[str]:
        """The folders an absolute import searches, as `sys.path` would order them."""
        root = str(self.root)
        folders = [root, root + os.sep + "src"]
        location = self._location.get(importer) if importer is not None else None
        if location is None:
            return folders
        own = os.path.dirname(location)
        return [own, *(folder for folder in folders if folder != own)]

    def _package(self, importer: str | None, level: int) -> tuple[str, list[str]] | None:
        """The folder and dotted parts of the package that `level` dots mean in `importer`;
        None above the top, and for code that is in no package (stdin, a notebook)."""
        location = self._location.get(importer) if importer is not None else None
        if location is None or is_notebook(location):
            return None
        parts = importer.split(".")
        if not self.is_package(importer):
            parts.pop()
        elif location == str(self.root) + os.sep + _INIT:  # the root itself is no package
            parts = []
        if level > len(parts):
            return None
        folder = os.path.dirname(location)
        for _ in range(level - 1):
            folder = os.path.dirname(folder)
        return folder, parts[: len(parts) - level + 1]

    def _deepest(self, folders: list[str], parts: list[str]) -> tuple[int, str] | None:
        """(how many of `parts`, module id) of the longest prefix of `parts` that is a project
        module, searched as Python's path finder searches `folders`: a regular package or a
        module in an earlier folder wins; folders without `__init__.py` are namespace packages
        and merge."""
        best = None
        for count, part in enumerate(parts, 1):
            found = None
            portions = []
            for folder in folders:
                base = folder + os.sep + part
                for candidate in (base + os.sep + _INIT, base + ".py"):
                    if candidate in self._at:
                        found = candidate
                        break
                if found is not None:
                    break
                portions.append(base)  # a folder that holds no project file finds nothing below
            if found is None:
                folders = portions
                continue
            module = self._at[found]
            if module is not None:
                best = (count, module)
            if not found.endswith(_INIT):  # a module has no submodules
                break
            folders = [os.path.dirname(found)]
        return best

    def _prefix(self, importer: str | None, qualified: str) -> tuple[str, str] | None:
        parts = qualified.split(".") if qualified else []
        found = self._deepest(self._search_path(importer), parts) if parts else None
        if found is None:
            return None
        count, module = found
        return module, ".".join(parts[count:])

    def _origin(self, module: str, name: str) -> str | None:
        """The absolute dotted name that `name` in `module` is imported from; None when the
        module defines it itself or does not bind it."""
        bindings = self._bindings_of(module)
        if name in bindings.local:
            return None
        target = bindings.imports.get(name)
        if target is not None:
            return target
        source = self._star_source(module, name)
        return f"{source}.{name}" if source is not None else None

    def _star_source(self, module: str, name: str) -> str | None:
        """The module that binds `name` and that `from X import *` in `module` (or in the
        modules it star-imports, and so on) takes it from. A loop, not a recursion: star
        chains can be as long as a generated tree makes them."""
        if name.startswith("_"):  # not taken by `import *` without an `__all__` naming it
            return None
        seen = {module}
        stack = list(reversed(self._star_modules(module)))
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            bindings = self._bindings_of(current)
            if bindings.exported is not None and name not in bindings.exported:
                continue
            if name in bindings.local or name in bindings.imports:
                return current
            stack.extend(reversed(self._star_modules(current)))
        return None

    def _star_modules(self, module: str) -> list[str]:
        found = (self.resolve_module(module, star) for star in self._bindings_of(module).stars)
        return [source for source in found if source is not None]

    # -- reading a module's imports ------------------------------------------------------

    def _bindings_of(self, module: str) -> _Bindings:
        bindings = self._bindings.get(module)
        if bindings is not None:
            return bindings
        bindings = _Bindings()
        self._bindings[module] = bindings
        path = self.modules.get(module)
        if path is None:
            return bindings
        try:
            data = path.read_bytes()
        except OSError:
            return bindings
        name = shared.key("bindings", data, module, str(self.root)) if shared.active() else None
        if name is not None:
            found = shared.load(name)  # another worker of this run parsed it
            if found is not shared.MISSING:
                self._bindings[module] = found
                return found
        self.parses += 1
        tree = _tree(path, data)
        if tree is not None:
            _collect(tree.body, bindings, lambda name, level: self._absolute(module, name, level))
        if name is not None:
            shared.store(name, bindings)
        return bindings

    def _absolute(self, module: str, name: str, level: int) -> str | None:
        """`from <level dots><name>` in `module` as an absolute dotted name."""
        if not level:
            return name
        package = self._package(module, level)
        if package is None:
            return None
        parts = package[1] + (name.split(".") if name else [])
        return ".".join(parts) or None


def _tree(path: Path, data: bytes) -> ast.Module | None:
    """The file (its bytes `data`) parsed by CPython (a notebook: its code cells as lintml
    joins them, those that do not parse left out); None for a file that does not parse."""
    if is_notebook(path.name):
        from lintml.notebooks import program_text

        data = program_text(data)
    return parse_source(data)


# The last few files parsed, by their source: a module's imports are read here and its
# index in lintml.project.facts, most often one right after the other; one parse serves
# both. Bounded by the sources' total size (a tree takes some 50 times its text), and
# kept small: at 512 KB (25 MB of trees a process) a cold end-user run was about 10%
# slower than at 32 KB (1.6 MB), for 120 parses against 125 (the retained trees push
# every later allocation onto memory that is not in the CPU's caches).
_PARSED: dict = {}
_PARSED_BYTES = 1 << 15
_parsed_size = 0
_parsed_lock = threading.Lock()
tree_parses = 0  # CPython parses made by parse_source in this process (a work count, for tests)


def parse_source(source: bytes | str) -> ast.Module | None:
    """`source` parsed by CPython (None: it does not parse), the tree shared with the
    other readers of the same text; never to be changed."""
    global _parsed_size, tree_parses
    found = _PARSED.get(source, _PARSED)
    if found is not _PARSED:
        return found
    tree_parses += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like: not ours to report
            tree = ast.parse(source)
    except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
        tree = None
    with _parsed_lock:  # the language server's threads
        if source not in _PARSED:
            _parsed_size += len(source)
            _PARSED[source] = tree
        while _parsed_size > _PARSED_BYTES and len(_PARSED) > 1:
            oldest = next(iter(_PARSED))
            _parsed_size -= len(oldest)
            del _PARSED[oldest]
    return tree


def forget_parsed() -> None:
    """Drop the trees kept by parse_source."""
    global _parsed_size
    with _parsed_lock:
        _PARSED.clear()
        _parsed_size = 0


def _collect(body: list[ast.stmt], bindings: _Bindings, absolute) -> None:
    """Module-level bindings of `body`, into the blocks of if/try/with/for/while (they run
    at module level) but not into functions and classes."""
    for statement in body:
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.asname:
                    bindings.imports[alias.asname] = alias.name
                else:
                    first = alias.name.partition(".")[0]
                    bindings.imports[first] = first
        elif isinstance(statement, ast.ImportFrom):
            base = absolute(statement.module or "", statement.level)
            for alias in statement.names:
                if alias.name == "*":
                    if base is not None:
                        bindings.stars.append(base)
                    continue
                bound = alias.asname or alias.name
                if base is None:  # above the top: an import of nothing we can name
                    bindings.local.add(bound)
                else:
                    bindings.imports[bound] = f"{base}.{alias.name}"
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bindings.local.add(statement.name)
        elif isinstance(statement, ast.Assign):
            for target in statement.targets:
                _bind_target(target, bindings.local)
            if _is_name(statement.targets, "__all__"):
                bindings.exported = _strings(statement.value)
        elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
            if not isinstance(statement, ast.AnnAssign) or statement.value is not None:
                _bind_target(statement.target, bindings.local)
        elif isinstance(statement, (ast.For, ast.AsyncFor, ast.While, ast.If)):
            if not isinstance(statement, (ast.While, ast.If)):
                _bind_target(statement.target, bindings.local)
            _collect(statement.body, bindings, absolute)
            _collect(statement.orelse, bindings, absolute)
        elif isinstance(statement, (ast.With, ast.AsyncWith)):
            for item in statement.items:
                if item.optional_vars is not None:
                    _bind_target(item.optional_vars, bindings.local)
            _collect(statement.body, bindings, absolute)
        elif isinstance(statement, ast.Try) or type(statement).__name__ == "TryStar":
            _collect(statement.body, bindings, absolute)
            for handler in statement.handlers:
                if handler.name:
                    bindings.local.add(handler.name)
                _collect(handler.body, bindings, absolute)
            _collect(statement.orelse, bindings, absolute)
            _collect(statement.finalbody, bindings, absolute)
        elif type(statement).__name__ == "Match":
            for case in statement.cases:
                _collect(case.body, bindings, absolute)
        elif type(statement).__name__ == "TypeAlias":  # `type X = ...` (3.12)
            _bind_target(statement.name, bindings.local)


def _bind_target(target: ast.expr, names: set[str]) -> None:
    if isinstance(target, ast.Name):
        names.add(target.id)
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            _bind_target(element, names)
    elif isinstance(target, ast.Starred):
        _bind_target(target.value, names)


def _is_name(targets: list[ast.expr], name: str) -> bool:
    return len(targets) == 1 and isinstance(targets[0], ast.Name) and targets[0].id == name


def _strings(value: ast.expr) -> frozenset[str] | None:
    """The names in a literal `__all__` list or tuple; None for anything computed."""
    if not isinstance(value, (ast.List, ast.Tuple)):
        return None
    names = [element.value for element in value.elts if isinstance(element, ast.Constant)]
    if len(names) != len(value.elts) or not all(isinstance(name, str) for name in names):
        return None
    return frozenset(names)


def build_layout(root: Path, config: Config | None = None) -> Layout:
    """Every `.py` file and `.ipynb` notebook under root, skipping what `config` excludes
    (and virtual environments)."""
    root = Path(root).resolve()
    if config is None:
        config = Config(root=root)  # the default excludes, relative to this root
    root_text = str(root)
    src = root_text + os.sep + "src"
    has_src = os.path.isdir(src)
    named: list[tuple[str, str, Path]] = []  # (path below root, id, the file)
    for path in iter_python_files(root, config, notebooks=True):
        location = str(path)
        relative = location[len(root_text) + 1 :]
        named.append((relative.replace(os.sep, "/"), _module_id(relative, has_src), path))
    named.sort(key=lambda entry: entry[0])
    modules: dict[str, Path] = {}
    locations: dict[str, str] = {}
    shadowed: list[str] = []
    for _, module, path in named:
        location = str(path)
        if module in modules:
            if not is_notebook(location):
                shadowed.append(location)
            continue
        if os.path.islink(location):
            try:
                path = path.resolve()
            except (OSError, RuntimeError):  # a loop of links, or one to nothing: no module
                continue
        modules[module] = path
        locations[module] = location
    layout = Layout(root, modules)
    layout._place(locations, shadowed)
    return layout


def _module_id(relative: str, has_src: bool) -> str:
    """`models/unet.py` -> `models.unet`, `models/__init__.py` -> `models`, `src/pkg/mod.py`
    -> `pkg.mod`, `notebooks/eval.ipynb` -> `notebooks.eval.ipynb`."""
    parts = relative.split(os.sep)
    if has_src and len(parts) > 1 and parts[0] == "src":
        if parts[1:] == [_INIT]:
            return "src"  # `src` is then a package of the root, and nothing else names it
        parts = parts[1:]
    if parts[-1].lower().endswith(NOTEBOOK_SUFFIX):
        return ".".join(parts)
    parts[-1] = parts[-1][: -len(".py")]
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)
