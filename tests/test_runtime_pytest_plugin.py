"""`pytest --lintml-runtime` and `--lintml-runtime-fail`, run by a real pytest in a
subprocess that loads the plugin through its `pytest11` entry point."""

from __future__ import annotations

pytest_plugins = ["pytester"]

TESTS = """
import torch

model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))


def test_predicts():
    model.eval()
    assert model(torch.randn(2, 4)).shape == (2, 4)


def test_clean():
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 4)).shape == (2, 4)
"""


def _run(pytester, *args):
    pytester.makepyfile(test_model=TESTS)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_without_the_option_nothing_is_watched(pytester):
    result = _run(pytester)
    result.assert_outcomes(passed=2)
    assert "lintml runtime" not in result.stdout.str()


def test_summary_lists_observations_by_test_and_call_site(pytester):
    result = _run(pytester, "--lintml-runtime")
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*= lintml runtime =*",
            "test_model.py::test_predicts",
            "    test_model.py:8: LML101 confirmed: 1 forward ran with grad enabled and no backward used the graph; *",
            "1 confirmed observation in 1 of 2 watched tests",
        ]
    )
    assert "test_clean" not in result.stdout.str().split("lintml runtime")[1]


def test_fail_option_fails_the_test_with_a_confirmed_observation(pytester):
    result = _run(pytester, "--lintml-runtime-fail")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*lintml runtime confirmed 1 problem(s):",
            "test_model.py:8: LML101 confirmed: *",
            "FAILED test_model.py::test_predicts*",
        ]
    )


def test_a_failing_test_keeps_its_own_error(pytester):
    pytester.makepyfile(
        test_boom="""
import torch

def test_boom():
    torch.nn.Linear(2, 2)(torch.randn(1, 2))
    raise AssertionError("the test's own failure")
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--lintml-runtime-fail")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: the test's own failure*"])
    assert "lintml runtime confirmed" not in result.stdout.str()
