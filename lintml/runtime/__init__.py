"""lintml's runtime checker: watch real PyTorch code run and confirm or refute the
static findings at their source lines with measured evidence.

    from lintml.runtime import watch

    with watch() as w:
        train()
    w.report()

Importing this package does not import torch; `watch` does (install `lintml[runtime]`).
"""

from __future__ import annotations

__all__ = ["watch", "Watch", "Observation", "PROBE_CODES"]


def __getattr__(name: str):
    if name in ("watch", "Watch"):
        from lintml.runtime import watcher as watch_module

        return getattr(watch_module, name)
    if name == "Observation":
        from lintml.runtime.observations import Observation

        return Observation
    if name == "PROBE_CODES":
        from lintml.runtime.probes import ALL_CODES

        return ALL_CODES
    raise AttributeError(f"module 'lintml.runtime' has no attribute {name!r}")
