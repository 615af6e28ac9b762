"""``roe waive``: accept one finding as an exception, with a reason, an approver and an end date."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from . import options, render


def waive_command(
    ctx: typer.Context,
    finding_id: Annotated[int, typer.Argument(help="The finding's id, as `roe findings` shows it.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the finding is accepted.")],
    by: Annotated[str, typer.Option("--by", help="Who approved the exception (e.g. an e-mail).")],
    until: Annotated[
        str | None,
        typer.Option("--until", help="Last day the waiver holds (YYYY-MM-DD, inclusive); none: no end."),
    ] = None,
) -> None:
    """Waive a finding: it is reported as waived and never fails `roe audit`, until the waiver ends.

    The waiver holds for every audit whose --as-of date is on or before --until; after that the
    finding comes back as open. A waiver follows the finding's identity (rule, record, related
    user), so it survives re-runs. For exceptions you want reviewed in git, use [[exceptions]] in
    rules.toml instead.

    Example: roe waive 42 --reason "Partner account, owned by channel" --by vp-sales@example.com --until 2027-03-31
    """
    from ..shared.clock import parse_date
    from ..shared.vocab import FindingStatus

    end = parse_date(until, "--until date") if until else None
    waiver = options.workspace(ctx).waive(finding_id, reason, by, end)
    obj = f"{waiver['object_type']}:{waiver['object_id']}"
    who = f" (related user {waiver['related_user_id']})" if waiver["related_user_id"] else ""
    span = f"until {end.isoformat()} inclusive" if end else "with no end date"
    render.literal(
        f"Waived finding {finding_id} ({waiver['rule']} on {obj}{who}) {span}, approved by "
        f"{waiver['approved_by']}: {waiver['reason']}"
    )
    if waiver.get("finding_status") == FindingStatus.RESOLVED:
        render.console.print("The finding is resolved now; the waiver applies if it comes back.",
                             markup=False)
    elif end:
        render.console.print(f"From {end + timedelta(days=1)} on, `roe audit` reports it as open again.",
                             markup=False)
