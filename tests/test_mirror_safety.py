"""Issue 15, "Data loss and false all-clears": the mirror is never emptied, created or rewritten
by mistake. A full sync refuses a mass delete, only sync/demo/db upgrade create a mirror, a past
``audit --as-of`` does not rewrite the history, a broken mirror file is a clear error, and
Ctrl-C on ``roe demo`` leaves a mirror that says it is partial."""
# The hs_emulator fixture arrives as an argument named like its import:
# ruff: noqa: F811

from __future__ import annotations

from sqlalchemy import func, select

from roe_cli.models import accounts
from tests.conftest import AS_OF, RULES
from tests.emulators.hubspot import FAST_SETTINGS_TOML, hs_emulator  # noqa: F401


def _rules(tmp_path, extra: str = "") -> str:
    path = tmp_path / "rules-hs.toml"
    path.write_text(RULES.read_text() + FAST_SETTINGS_TOML + "detect_archived = false\n" + extra)
    return str(path)


def _live_accounts(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(accounts).where(
            accounts.c.source == "hubspot", accounts.c.deleted.is_(False))).scalar_one()


def _drop_companies(emulator, share: float | None = None) -> int:
    """Make companies vanish from the CRM's answers (lost sharing): a share of them, or all."""
    ids = list(emulator.records["companies"])
    gone = ids if share is None else ids[: int(len(ids) * share)]
    with emulator.lock:
        for rid in gone:
            del emulator.records["companies"][rid]
        emulator.changed("companies")
    return len(gone)


# ---- the full sync's mass-delete guard ------------------------------------------------------------

def test_a_full_sync_that_loses_a_third_of_the_accounts_keeps_them_and_exits_3(
        hs_emulator, roe, tmp_path, engine):
    hs_emulator.load_demo(40, seed=2, as_of=AS_OF)
    rules = _rules(tmp_path)
    assert roe("sync", "--source", "hubspot", rules=rules).exit_code == 0
    before = _live_accounts(engine)
    gone = _drop_companies(hs_emulator, 0.3)

    result = roe("sync", "--source", "hubspot", "--full", rules=rules)

    assert result.exit_code == 3, result.output
    assert _live_accounts(engine) == before
    assert f"account: {before:,} live in the mirror, {before - gone:,} returned by the CRM, " \
           f"{gone:,} would be marked deleted" in result.stderr
    assert "--allow-mass-delete" in result.stderr


def test_a_full_sync_with_allow_mass_delete_marks_the_vanished_accounts_deleted(
        hs_emulator, roe, tmp_path, engine):
    hs_emulator.load_demo(40, seed=2, as_of=AS_OF)
    rules = _rules(tmp_path)
    assert roe("sync", "--source", "hubspot", rules=rules).exit_code == 0
    before = _live_accounts(engine)
    gone = _drop_companies(hs_emulator, 0.3)

    result = roe("sync", "--source", "hubspot", "--full", "--allow-mass-delete", rules=rules)

    assert result.exit_code == 0, result.output
    assert _live_accounts(engine) == before - gone


def test_a_full_sync_that_gets_no_accounts_back_never_marks_any_deleted(
        hs_emulator, roe, tmp_path, engine):
    hs_emulator.load_demo(40, seed=2, as_of=AS_OF)
    # Even with the limit at 100%, an empty pull of a non-empty object is never acted on.
    rules = _rules(tmp_path, "\n[sync]\nmax_delete_share = 1.0\n")
    assert roe("sync", "--source", "hubspot", rules=rules).exit_code == 0
    before = _live_accounts(engine)
    _drop_companies(hs_emulator)

    result = roe("sync", "--source", "hubspot", "--full", rules=rules)

    assert result.exit_code == 3, result.output
    assert f"account: {before:,} live in the mirror, 0 returned by the CRM" in result.stderr
    assert _live_accounts(engine) == before


def test_max_delete_share_in_rules_toml_raises_the_limit(hs_emulator, roe, tmp_path, engine):
    hs_emulator.load_demo(40, seed=2, as_of=AS_OF)
    rules = _rules(tmp_path, "\n[sync]\nmax_delete_share = 0.5\n")
    assert roe("sync", "--source", "hubspot", rules=rules).exit_code == 0
    before = _live_accounts(engine)
    gone = _drop_companies(hs_emulator, 0.3)

    assert roe("sync", "--source", "hubspot", "--full", rules=rules).exit_code == 0
    assert _live_accounts(engine) == before - gone


def test_a_max_delete_share_outside_0_to_1_or_a_typo_in_sync_is_a_rules_error(roe, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.read_text() + "\n[sync]\nmax_delete_share = 1.5\nmax_delete_shares = 0.2\n")
    result = roe("rules", "--check", rules=bad)
    assert result.exit_code == 2, result.output
    assert "max_delete_share" in result.output and "max_delete_shares" in result.output


def test_sync_of_the_demo_source_is_refused_and_leaves_the_demo_org_alone(roe, org):
    with org.connect() as conn:
        before = conn.execute(select(func.count()).select_from(accounts).where(
            accounts.c.deleted.is_(False))).scalar_one()
    result = roe("sync", "--source", "demo", "--full")
    assert result.exit_code == 2, result.output
    assert "roe demo" in result.stderr
    with org.connect() as conn:
        assert conn.execute(select(func.count()).select_from(accounts).where(
            accounts.c.deleted.is_(False))).scalar_one() == before
