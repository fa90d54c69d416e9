"""The result cache in the test suite: every test gets its own cache folder
(`LINTML_CACHE_DIR`, inherited by the subprocesses tests start), so no test reads
another's entries; fixtures shared by a module or the session, which run before any
test's own fixtures, share one folder for the session. The suite never writes
`.lintml_cache` into the repository."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_SESSION_DIR: str | None = None
_PREVIOUS: str | None = None


def pytest_configure(config):
    global _SESSION_DIR, _PREVIOUS
    _PREVIOUS = os.environ.get("LINTML_CACHE_DIR")
    _SESSION_DIR = tempfile.mkdtemp(prefix="lintml-cache-session-")
    os.environ["LINTML_CACHE_DIR"] = _SESSION_DIR


def pytest_unconfigure(config):
    if _PREVIOUS is None:
        os.environ.pop("LINTML_CACHE_DIR", None)
    else:
        os.environ["LINTML_CACHE_DIR"] = _PREVIOUS
    if _SESSION_DIR:
        shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def _own_lintml_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LINTML_CACHE_DIR", str(tmp_path_factory.mktemp("lintml-cache")))
