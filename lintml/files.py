"""Finding the files to check, reading them as Python reads source, writing them back
atomically."""

from __future__ import annotations

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
        raise InputError(f"{path}: no such file or directory")
    if force_exclude and config.is_excluded_named(path):
        return
    if not path.is_dir():
        yield path
        return
    for folder, folder_names, file_names in os.walk(path):
        here = Path(folder)
        folder_names[:] = sorted(
            name
            for name in folder_names
            if not config.is_excluded(here / name)
            and not (here / name / "pyvenv.cfg").exists()
            and not (notebooks and name == ".ipynb_checkpoints")  # Jupyter's autosave copies
        )
        for name in sorted(file_names):
            if name.endswith(suffixes) and not config.is_excluded(here / name):
                yield here / name


@dataclass
class SourceFile:
    text: str
    encoding: str
    bom: bool


def decode_source(data: bytes, name: str) -> SourceFile:
    """Decode as Python does: a BOM, a coding cookie, else UTF-8. Line ends are kept."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as error:
        raise InputError(f"{name}: cannot decode: {error}") from None
    bom = encoding == "utf-8-sig"
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as error:
        raise InputError(f"{name}: cannot decode as {encoding}: {error.reason if hasattr(error, 'reason') else error}") from None
    return SourceFile(text, encoding, bom)


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
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
    and keeps its permissions and encoding."""
    data = text.encode(source.encoding)
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
