"""`lintml verify` on fixtures/runtime: every seeded bug is confirmed at its static
finding's line, and its fixed twin confirms nothing. On CUDA too when a GPU is here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lintml.runtime.verify import verify

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "runtime"

# code -> (line of the static finding in bug.py, runtime-only observations of bug.py on CPU)
SEEDED = {
    "LML101": (30, set()),
    "LML102": (30, set()),
    "LML201": (24, set()),
    "LML202": (38, set()),
    "LML203": (27, set()),
    "LML301": (24, set()),
    "LML303": (20, set()),
    "LML401": (15, set()),
    "LML402": (25, set()),
    # the float16 model also runs its forwards on the CPU: LML401's condition, which the
    # static rule cannot see because the device comes from --device
    "LML403": (17, {(24, "LML401")}),
    "LML406": (27, set()),
    "LML501": (23, set()),
}

CASES = [
    pytest.param(code, device, id=f"{code}-{device}",
                 marks=[pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]
                 if device == "cuda" else [])
    for code in SEEDED
    for device in ("cpu", "cuda")
    if not (code == "LML401" and device == "cuda")  # float16 on the CPU is that bug itself
]


def _args(code: str, device: str) -> list[str]:
    return [] if code == "LML401" else ["--device", device]


def test_every_probe_has_a_seeded_bug():
    from lintml.runtime.probes import ALL_CODES

    assert sorted(SEEDED) == sorted(ALL_CODES)
    assert sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()) == sorted(SEEDED)


@pytest.mark.parametrize(("code", "device"), CASES)
def test_seeded_bug_is_confirmed_at_its_line(code, device):
    line, runtime_only = SEEDED[code]
    result = verify(FIXTURES / code / "bug.py", _args(code, device))
    assert not result.run.failed, result.run.error
    assert [(v.finding.start.line, v.finding.code, v.status) for v in result.verdicts] == [
        (line, code, "confirmed")
    ]
    observation = result.verdicts[0].observation
    assert observation.code == code and observation.count >= 1 and observation.evidence
    if device == "cpu":
        assert {(o.line, o.code) for o in result.runtime_only} == runtime_only
    assert result.exit_code == 1


@pytest.mark.parametrize(("code", "device"), CASES)
def test_fixed_twin_confirms_nothing(code, device):
    result = verify(FIXTURES / code / "fixed.py", _args(code, device))
    assert not result.run.failed, result.run.error
    assert result.verdicts == []
    assert [o.render() for o in result.observations if o.confirmed] == []
    assert result.exit_code == 0
