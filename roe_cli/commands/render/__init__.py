"""Everything the CLI prints, by area: :mod:`.base` (the consoles, the one error printer,
progress bars, literal text and cells), :mod:`.runs` (sync, audit, findings, nightly, doctor),
:mod:`.writeback` (plans, approvals, applies), :mod:`.account` (`roe account`), :mod:`.realign`,
:mod:`.report`, :mod:`.rules`, :mod:`.rulecases`
(`roe rules test`) and :mod:`.whatif`.

Commands compute, then hand their result here. Text from files or the CRM is printed literally
and visibly: never as rich markup, control characters shown as escapes.
"""

from typing import Any

from . import base
from .account import print_account_brief  # noqa: F401
from .base import (  # noqa: F401
    SEVERITY_COLORS,
    STATUS_STYLES,
    cell,
    interactive,
    literal,
    messages_to_stderr,
    print_error,
    print_json,
    print_json_document,
    progress_bar,
    set_widths,
)
from .realign import print_realign_balance, print_realign_left_out  # noqa: F401
from .report import print_report  # noqa: F401
from .rulecases import print_case_results  # noqa: F401
from .rules import (  # noqa: F401
    print_rule_explained,
    print_rules_table,
    reflow,
    setting_text,
)
from .runs import (  # noqa: F401
    print_audit_table,
    print_doctor,
    print_findings_table,
    print_nightly_summary,
    print_not_stored,
    print_sync_report,
)
from .whatif import print_whatif  # noqa: F401
from .writeback import (  # noqa: F401
    OwnerLabel,
    print_apply_interrupted,
    print_apply_report,
    print_approval,
    print_changes,
    print_plan,
    print_plan_saved,
    print_plan_written_to_stdout,
    why_text,
)


def __getattr__(name: str) -> Any:
    """``render.console`` and ``render.err_console`` are read from :mod:`.base` at each use:
    :func:`~.base.messages_to_stderr` swaps them while stdout carries data."""
    if name in ("console", "err_console"):
        return getattr(base, name)
    raise AttributeError(name)
