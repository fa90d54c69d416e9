"""What the workers of one run share: each module's index and import bindings, read by
the first worker that needs them and loaded by the others.

A run that checks files in a process pool gives each worker the same project, and each
read (parsed and indexed) every module its files asked about: on timm, two workers read
297 modules where one process read 200, and parsed the import bindings of as many again.
The runner makes a folder for the run (`tempfile.mkdtemp`: this user's alone) and deletes
it after; a worker writes what it read there (atomically), keyed by the file's bytes and
the module's name, and looks there before reading. Two workers asking at once both read
(the second write replaces the first, equal, file). Pickle is safe in this private
folder, unlike in the result cache, whose folder may be shared between users.
"""

from __future__ import annotations

import hashlib
import os
import pickle

_folder: str | None = None
MISSING = object()  # what `load` gives when nothing was stored


def share_through(folder: str | None) -> None:
    """Share what this process reads through `folder` (None: stop sharing)."""
    global _folder
    _folder = folder


def active() -> bool:
    return _folder is not None


def key(kind: str, data: bytes, *parts: str) -> str:
    digest = hashlib.blake2b(data, digest_size=20)
    digest.update("\0".join((kind, *parts)).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def load(name: str):
    """What another worker stored under `name`; `MISSING` when nothing (yet)."""
    if _folder is None:
        return MISSING
    try:
        with open(os.path.join(_folder, name), "rb") as stream:
            return pickle.load(stream)
    except Exception:  # not there yet, or unreadable: read it here
        return MISSING


def store(name: str, value) -> None:
    """Publish `value` for the other workers; a failure (a full disk, a value that does
    not pickle) only means they read it themselves."""
    if _folder is None:
        return
    path = os.path.join(_folder, name)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as stream:
            pickle.dump(value, stream, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)
    except Exception:
        try:
            os.unlink(temporary)
        except OSError:
            pass

