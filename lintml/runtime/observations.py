"""What the probes saw: one observation per (code, call site), with its evidence."""

from __future__ import annotations

from dataclasses import dataclass, field

from lintml.runtime.sites import Site, display_path

CONFIRMED = "confirmed"
REFUTED = "refuted"


@dataclass
class Observation:
    """A probe's verdict at one call site, over every event it saw there.

    `status` is "confirmed" when at least one event there met the rule's condition
    (`count` of them), "refuted" when the probe checked the condition there and it never
    held (`checked` events). `evidence` holds the measured figures, `message` says them
    in a sentence.
    """

    code: str
    status: str
    site: Site
    count: int
    checked: int
    message: str
    evidence: dict = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return self.site.filename

    @property
    def line(self) -> int:
        return self.site.line

    @property
    def confirmed(self) -> bool:
        return self.status == CONFIRMED

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "status": self.status,
            "filename": display_path(self.site.filename),
            "line": self.site.line,
            "function": self.site.function,
            "count": self.count,
            "checked": self.checked,
            "message": self.message,
            "evidence": self.evidence,
        }

    def render(self) -> str:
        return f"{self.site.display()}: {self.code} {self.status}: {self.message}"


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def format_names(names, limit: int = 4) -> str:
    names = list(names)
    shown = ", ".join(f"`{name}`" for name in names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"
