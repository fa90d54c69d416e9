"""lintml: finds the mistakes that make PyTorch and Hugging Face code slow,
memory-hungry or silently wrong.

    >>> import lintml
    >>> [f.code for f in lintml.check_source("model.eval\\n", filename="x.py")]
    ['LML204']
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Finding", "check_paths", "check_source", "__version__"]


def check_source(text: str, filename: str = "<stdin>", config=None):
    """Findings for one source text. `config` is a `lintml.config.Config`; by default
    the one found from `filename` upward (or the defaults)."""
    from pathlib import Path

    from lintml import config as config_module
    from lintml.runner import lint_text

    if config is None:
        config = config_module.discover(Path(filename) if filename != "<stdin>" else Path.cwd())
    return lint_text(text, filename, config).findings


def check_paths(paths, config=None):
    """Findings for every Python file under `paths` (files or folders). A path that
    does not exist or a file that cannot be read raises `lintml.files.InputError`."""
    from pathlib import Path

    from lintml.files import InputError
    from lintml.runner import run

    result = run([Path(p) for p in paths], config)
    if result.input_errors:
        raise InputError("; ".join(result.input_errors))
    return result.findings


def __getattr__(name: str):
    # imported lazily so that `lintml --version` does not load the parser
    if name == "Finding":
        from lintml.findings import Finding

        return Finding
    raise AttributeError(f"module 'lintml' has no attribute {name!r}")
