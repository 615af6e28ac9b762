"""The write-back calls of a :class:`~roe_cli.workspace.Workspace`: build and save a plan,
approve it, apply it. Each call opens, through the workspace, only what it needs: the mirror, the
lock, the connector. Every one of them logs who, which plan (its hash), when and how many.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .logsetup import area_log, counts_text, os_user
from .progress import Progress, no_progress

if TYPE_CHECKING:
    from .apply import ApplyReport
    from .plans import Approval, BuildResult, Plan
    from .workspace import Workspace


class WriteBack:
    """Plans, approvals and applies on the mirror and CRM of ``ws``."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def approve(self, plan_file: Path, by: str, note: str | None, *,
                self_approve: bool = False) -> tuple[Plan, Approval | None, dict[str, str | None]]:
        """Approve the plan in ``plan_file`` and save it: the approved plan, the earlier
        approval, if any (plans are frozen: approving gives a new one), and the plan's owners'
        names by id (to show what was approved)."""
        from .plans import approve_plan, check_against_mirror, load_plan, save_plan

        plan = load_plan(plan_file)
        previous = plan.approval
        plan = approve_plan(self.ws.engine, plan, by, note, self_approve=self_approve)
        save_plan(plan, plan_file)
        approval = plan.approval
        area_log("approve").info(
            "plan %s (%s, %s, %d change(s), built by %s) approved by %s at %s%s%s",
            plan.hash, plan_file, plan.source, len(plan.changes), plan.created_by or "unknown", by,
            approval.at if approval else "?", f"; note: {note}" if note else "",
            f"; replaces the approval by {previous.by} at {previous.at}" if previous else "")
        with self.ws.engine.connect() as conn:
            owners = check_against_mirror(conn, plan)
        return plan, previous, {i: o.name for i, o in owners.items()}

    def save_plan(self, plan: Plan, output: str | Path, *, force: bool = False) -> Path:
        """Save a built plan to ``output``. An existing file is refused unless ``force``, and a
        plan that was approved or applied is never replaced (its approval and journal name it)."""
        from .plans import save_new_plan

        return save_new_plan(plan, Path(output), force=force, recorded=self._plan_recorded)

    def _plan_recorded(self, plan_hash: str) -> bool:
        """True when the mirror holds an approval or an apply of ``plan_hash``."""
        from .plans import plan_recorded

        with self.ws.engine.connect() as conn:
            return plan_recorded(conn, plan_hash)

    def apply(self, plan_file: Path, results: Path | None = None,
              progress: Progress = no_progress) -> tuple[ApplyReport, Path]:
        """Apply an approved plan and write its results CSV: the report and the CSV's path.

        The results never overwrite a file: by default the first free name of
        ``<plan>.results.csv``, ``<plan>.results-2.csv``...; an existing ``--results`` file, or
        the plan itself, is refused before anything is sent."""
        from .apply import apply_plan, results_target, write_results
        from .plans import load_plan, owner_names, verify_approval

        results_path = results_target(plan_file, results)
        plan = load_plan(plan_file)
        engine = self.ws.engine
        verify_approval(engine, plan)  # before anything talks to the CRM
        log = area_log("apply")
        started = time.monotonic()
        approval = plan.approval
        log.info("apply of plan %s (%s, %s, %d change(s), approved by %s at %s) started by %s",
                 plan.hash, plan_file, plan.source, len(plan.changes),
                 approval.by if approval else "nobody", approval.at if approval else "-",
                 os_user())
        with self.ws.connector(plan.source) as connector:
            with self.ws.lock(f"apply {plan_file.name}"), \
                    progress(f"Applying {len(plan.changes):,} changes", len(plan.changes)) \
                    as advance:
                report = apply_plan(engine, plan, connector, on_progress=advance)
        with engine.connect() as conn:
            names = owner_names(conn, plan.source)
        write_results(report, results_path, names)
        log.info("apply of plan %s done in %.2fs: %s; sent=%d settled_earlier=%d "
                 "read_calls=%d write_calls=%d; results in %s%s", plan.hash,
                 time.monotonic() - started, counts_text(report.counts()), report.sent,
                 report.earlier, report.read_calls, report.write_calls, results_path,
                 f"; stopped by a CRM error: {report.crm_error.what}" if report.crm_error else "")
        return report, results_path

    def plan(self, builder: Callable[..., BuildResult], *args: Any,
             progress: Progress = no_progress, **kwargs: Any) -> BuildResult:
        """Build a plan with one of :mod:`roe_cli.plans`' builders, on this mirror."""
        engine = self.ws.engine
        started = time.monotonic()
        with progress("Planning", None):
            result = builder(engine, *args, **kwargs)
        plan = result.plan
        kind = plan.origin.get("kind", builder.__name__)
        extra = ""
        if kind == "revert":
            extra = (f" reverting the apply of plan(s) {', '.join(plan.origin.get('plans', []))}"
                     f" from {plan.origin.get('results')}")
        area_log("revert" if kind == "revert" else "plan").info(
            "%s plan %s built by %s at %s%s in %.2fs: %d change(s) (%s), %d unchanged, "
            "%d left out", kind, plan.hash, plan.created_by or "unknown", plan.created_at, extra,
            time.monotonic() - started, len(plan.changes),
            counts_text(Counter(c.object_type for c in plan.changes)), result.unchanged,
            len(result.skipped))
        return result
