"""pytest plugin: `pytest --lintml-runtime` runs every test under `watch()` and ends the
session with the confirmed observations, by test and call site;
`--lintml-runtime-fail` also fails a test that had one.

Registered through the `pytest11` entry point. Without either option it does nothing,
and importing it does not import torch.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser) -> None:
    group = parser.getgroup("lintml", "lintml runtime checker")
    group.addoption(
        "--lintml-runtime",
        action="store_true",
        default=False,
        help="watch each test with lintml's runtime probes and summarise what they confirmed",
    )
    group.addoption(
        "--lintml-runtime-fail",
        action="store_true",
        default=False,
        help="like --lintml-runtime, and fail a test in which a probe confirmed something",
    )


def pytest_configure(config) -> None:
    fail = config.getoption("--lintml-runtime-fail")
    if config.getoption("--lintml-runtime") or fail:
        config.pluginmanager.register(RuntimeWatch(fail), "lintml-runtime")


class RuntimeWatch:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.results: list[tuple[str, list]] = []
        self.tests = 0

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        from lintml.runtime.watcher import Watch

        watcher = Watch()
        watcher.__enter__()
        try:
            result = yield
        except BaseException:
            watcher.__exit__(None, None, None)
            self._record(item, watcher)
            raise
        watcher.__exit__(None, None, None)
        confirmed = self._record(item, watcher)
        if self.fail and confirmed:
            lines = "\n".join(o.render() for o in confirmed)
            pytest.fail(f"lintml runtime confirmed {len(confirmed)} problem(s):\n{lines}", pytrace=False)
        return result

    def _record(self, item, watcher) -> list:
        self.tests += 1
        confirmed = watcher.confirmed
        if confirmed:
            self.results.append((item.nodeid, confirmed))
        return confirmed

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.section("lintml runtime")
        total = sum(len(found) for _, found in self.results)
        for nodeid, found in self.results:
            terminalreporter.write_line(nodeid)
            for observation in found:
                terminalreporter.write_line(f"    {observation.render()}")
        terminalreporter.write_line(
            f"{total} confirmed observation{'s' if total != 1 else ''} in "
            f"{len(self.results)} of {self.tests} watched test{'s' if self.tests != 1 else ''}"
        )
