"""``pcgen check NAME``: the model contract run through pytest, each failure explained in words."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class CheckResult:
    """One contract test's outcome, with what it checks, what was seen and how to fix a failure."""

    test: str
    outcome: str
    """'passed', 'failed' or 'skipped'."""
    what: str
    seen: str = ""
    fix: str = ""


def explain(doc: str | None) -> tuple[str, str]:
    """(what is checked, how to fix it) from a contract test's docstring (first line, ``Fix:`` paragraph)."""
    text = (doc or "").strip()
    what = text.splitlines()[0] if text else ""
    fix = " ".join(text.split("Fix:", 1)[1].split()) if "Fix:" in text else ""
    return what, fix


class _Collector:
    """pytest plugin object gathering one :class:`CheckResult` per test."""

    def __init__(self, echo: Any) -> None:
        self.results: list[CheckResult] = []
        self.echo = echo

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.failed or report.skipped):
            return
        what, fix = explain(getattr(getattr(report, "_function", None), "__doc__", None))
        name = report.nodeid.split("::")[-1]
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            result = CheckResult(name, "skipped", what, reason.removeprefix("Skipped: "))
        elif report.failed:
            result = CheckResult(name, "failed", what, getattr(report, "_seen", "") or report.longreprtext[-500:], fix)
        else:
            result = CheckResult(name, "passed", what)
        self.results.append(result)
        self.echo(result)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        report._function = getattr(item, "function", None)
        err = call.excinfo.value if call.excinfo else None
        if err is not None:
            plain = isinstance(err, AssertionError | pytest.fail.Exception)
            report._seen = (str(err).strip() if plain else f"{type(err).__name__}: {err}").split("\nassert ")[0]


def run_contract(model: str, echo: Any = lambda result: None, extra_args: tuple[str, ...] = ()) -> list[CheckResult]:
    """Run the contract against ``model`` in this process; ``echo(result)`` is called after each test.

    pytest runs isolated from the working directory's configuration (its own empty ini file, no cache).
    """
    from pcgen.testing.pytest_plugin import contract_path

    collector = _Collector(echo)
    with tempfile.TemporaryDirectory(prefix="pcgen-check-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        code = pytest.main(
            [str(contract_path()), "--pcgen-model", model, "-c", str(ini), "--rootdir", tmp, "-p", "no:cacheprovider",
             "-p", "no:terminal", "--basetemp", str(Path(tmp) / "t"), *extra_args],
            plugins=[collector],
        )
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not collector.results:
        raise RuntimeError(f"pytest could not run the contract for {model!r} (exit status {int(code)})")
    return collector.results
