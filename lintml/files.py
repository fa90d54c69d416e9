"""Finding the files to check, reading them as Python reads source, writing them back
atomically."""

from __future__ import annotations

import errno
import io
import os
import tempfile
import tokenize
from dataclasses import dataclass
from pathlib import Path

from lintml.config import Config


class InputError(Exception):
    """A path or file the user gave that cannot be checked; one line for the user."""


NOTEBOOK_SUFFIX = ".ipynb"


def is_notebook(filename: str) -> bool:
    return filename.lower().endswith(NOTEBOOK_SUFFIX)


def iter_python_files(path: Path, config: Config, force_exclude: bool = False, *, notebooks: bool = False):
    """The file itself, or the `.py` files (and with `notebooks`, the `.ipynb` files)
    under a folder, skipping excluded files and folders (and virtual environments) met
    on the way, in sorted order. With `force_exclude`, a path named by the caller is
    skipped too when it is excluded."""
    suffixes = (".py", NOTEBOOK_SUFFIX) if notebooks else (".py",)
    if not path.exists():
        if os.path.islink(path):  # a link to nothing, or a loop of links
            raise InputError(f"{path}: cannot read: {_link_problem(path)}")
        raise InputError(f"{path}: no such file or directory")
    if force_exclude and config.is_excluded_named(path):
        return
    if not path.is_dir():
        yield path
        return
    excluded, join, exists = config.exclusion_test(), os.path.join, os.path.exists
    for folder, folder_names, file_names in os.walk(path):  # text, not Path objects: a layout walks every file
        folder_names[:] = sorted(
            name
            for name in folder_names
            if not excluded(join(folder, name))
            and not exists(join(folder, name, "pyvenv.cfg"))
            and not (notebooks and name == ".ipynb_checkpoints")  # Jupyter's autosave copies
        )
        for name in sorted(file_names):
            if name.endswith(suffixes) and not excluded(location := join(folder, name)):
                yield Path(location)


@dataclass
class SourceFile:
    text: str
    encoding: str
    bom: bool


def _link_problem(path: Path) -> str:
    """Why a symbolic link cannot be read: it points nowhere, or into a loop of links."""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "it is a loop of symbolic links; fix or remove the link"
        return f"it is a symbolic link to {os.readlink(path)}, which does not exist; fix or remove the link"
    return "it is a symbolic link that cannot be followed"  # pragma: no cover - raced


def _undecodable(data: bytes, encoding: str, error: UnicodeDecodeError, name: str) -> InputError:
    """The one line for bytes that are not in the file's encoding: where, and what to do."""
    line = data.count(b"\n", 0, error.start) + 1
    column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
    byte = data[error.start : error.start + 1].hex()
    if encoding in ("utf-8", "utf-8-sig"):
        advice = "save it as UTF-8, or declare its encoding on line 1 or 2 (`# -*- coding: latin-1 -*-`)"
        what = "not valid UTF-8"
    else:
        advice = "save it in that encoding, or correct its coding comment"
        what = f"not valid {encoding} (the encoding its coding comment declares)"
    return InputError(f"{name}: cannot decode: {what}: byte 0x{byte} at line {line}, column {column}; {advice}")


def decode_source(data: bytes, name: str) -> SourceFile:
    """Decode as Python does: a BOM, a coding cookie, else UTF-8. Line ends are kept."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        message = str(error.msg if hasattr(error, "msg") else error)
        if message.startswith("invalid or missing encoding declaration"):
            # the first two lines are not UTF-8 and no coding comment says what they are
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as decode_error:
                raise _undecodable(data, "utf-8", decode_error, name) from None
        raise InputError(f"{name}: cannot decode: {message}; correct the file's coding comment") from None
    bom = encoding == "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        raise _undecodable(data, encoding, error, name) from None
    except LookupError as error:  # pragma: no cover - detect_encoding checks the name
        raise InputError(f"{name}: cannot decode: {error}") from None
    return SourceFile(text, encoding, bom)


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise InputError(f"{path}: cannot read: {_link_problem(path)}") from None
        if error.errno == errno.ENOENT and os.path.islink(path):
            raise InputError(f"{path}: cannot read: {_link_problem(path)}") from None
        raise InputError(f"{path}: cannot read: {error.strerror or error}") from None


def source_from_bytes(data: bytes, path: Path) -> SourceFile:
    """A Python file's bytes decoded as Python does; a notebook's (`.ipynb`, JSON) as UTF-8."""
    if is_notebook(path.name):
        bom = data.startswith(b"\xef\xbb\xbf")
        try:
            return SourceFile(data.decode("utf-8-sig" if bom else "utf-8"), "utf-8-sig" if bom else "utf-8", bom)
        except UnicodeDecodeError as error:
            raise InputError(f"{path}: cannot decode as utf-8: {error.reason}") from None
    return decode_source(data, str(path))


def read_source(path: Path) -> SourceFile:
    """A Python file decoded as Python does; a notebook (`.ipynb`, JSON) as UTF-8."""
    return source_from_bytes(read_bytes(path), path)


def write_atomically(path: Path, source: SourceFile, text: str) -> None:
    """Write next to the file and rename over it: the file is never half-written,
    and keeps its permissions and encoding; a symbolic link stays a link."""
    data = text.encode(source.encoding)
    # through a symbolic link, the file it points to is replaced, and the link kept
    path = Path(os.path.realpath(path))
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".lintml-tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
