"""What `roe rules test` prints: PASS or FAIL per case, what differed, and a count."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import literal

if TYPE_CHECKING:
    from ...rulecases import CasesReport


def print_case_results(report: CasesReport) -> None:
    """One line per case (``PASS`` / ``FAIL``), each failure followed by its differences, then the
    totals. Names and ids from the case files print literally."""
    for result in report.results:
        literal(f"{'PASS' if result.passed else 'FAIL'}  {result.case.file}  #{result.case.index} "
                f"{result.case.name}")
        for line in result.diff():
            literal(f"      {line}")
    failed = len(report.failed)
    total = len(report.results)
    rules = report.rules_file or "the rules' defaults"
    literal(f"{total} case{'' if total == 1 else 's'}: {total - failed} passed, {failed} failed "
            f"(rules: {rules}; {report.seconds:.1f}s)")
