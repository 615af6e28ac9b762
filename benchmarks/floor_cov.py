"""The floor's SQL for roe's coverage rules (COV001-COV003), as ``roe_cli/rules/cov00*.py`` mean them.

An account's members (``roe_cli/rules/teams.py``, the README's "Account teams"): its owner and
the live rows of ``account_team_members`` on it, the account live; only members active in the
CRM (in ``owners``) count. A member's role is the team row's ``team_role`` through
``[role_map]`` (the temporary table ``f_team_role``, built with the floor's other lookups), else
the user's own role (``f_owner.role``); the owner's row has no team role. A person listed twice
is one member with both roles.

Access paths, pinned (``INDEXED BY``, ``CROSS JOIN`` order) so that they hold on any statistics
(:data:`PINNED_COV`): accounts scanned once; each account's team rows by the (source,
account_id, user_id) index; the window's activities (COV001) in one pass, each one's contact and
deal by primary key, as OWN004 does.
"""

from __future__ import annotations

from datetime import timedelta

from benchmarks.floor_own import WINDOW_REACH, lit, lits, ts

TEAM_INDEX = "ix_account_team_members_source_account_id_user_id"

# What each coverage query of the floor may read each big table by (see
# roe_cli/rules/plans_check.py: shapes name the mirror's tables; temporary tables are left out).
PINNED_COV: dict[str, frozenset[str]] = {
    "COV001": frozenset({"accounts SCAN", "accounts SEARCH PRIMARY KEY", "activities SCAN",
                         "contacts SEARCH PRIMARY KEY", "opportunities SEARCH PRIMARY KEY",
                         f"account_team_members SEARCH {TEAM_INDEX}"}),
    "COV002": frozenset({"accounts SCAN", f"account_team_members SEARCH {TEAM_INDEX}"}),
    "COV003": frozenset({"accounts SCAN", f"account_team_members SEARCH {TEAM_INDEX}"}),
}


def team_role_rows(conn, config) -> list[tuple[str, str, str | None]]:
    """(source, team_role, roe role or None) for each distinct live team role in the mirror."""
    try:
        rows = conn.execute("SELECT DISTINCT source, team_role FROM account_team_members "
                            "WHERE deleted = 0 AND team_role IS NOT NULL").fetchall()
    except Exception:  # a mirror from before account teams: no team rows
        return []
    return [(source, role, config.role_of(None, role)) for source, role in rows]


def _members() -> str:
    """A CTE body: (source, account_id, owner_id, user_id, role), one row per active member row
    of each live account (owner first, then each live team row)."""
    return f"""
      SELECT a.source, a.id AS account_id, a.owner_id, a.owner_id AS user_id, u.role AS role
      FROM accounts a
      JOIN f_owner u ON u.source = a.source AND u.id = a.owner_id AND u.active = 1
      WHERE a.deleted = 0 AND +a.owner_id IS NOT NULL
      UNION ALL
      SELECT a.source, a.id, a.owner_id, t.user_id, coalesce(tr.role, u.role)
      FROM accounts a
      CROSS JOIN account_team_members t INDEXED BY {TEAM_INDEX}
        ON t.source = a.source AND t.account_id = a.id
      JOIN f_owner u ON u.source = t.source AND u.id = t.user_id AND u.active = 1
      LEFT JOIN f_team_role tr ON tr.source = t.source AND tr.team_role = t.team_role
      WHERE a.deleted = 0 AND t.deleted = 0"""


def _flag(col: str, roles) -> str:
    roles = list(roles)
    return f"CASE WHEN {col} IN ({lits(roles)}) THEN 1 ELSE 0 END" if roles else "0"


def cov001(p, config, now):
    sql = f"""
    WITH members AS MATERIALIZED ({_members()}),
    users AS (
      SELECT source, account_id, owner_id, user_id, max({_flag('role', p.exempt_roles)}) AS exempt,
             min(role) AS role
      FROM members GROUP BY source, account_id, owner_id, user_id
    ),
    shared AS (
      SELECT source, account_id, count(*) AS members FROM users
      GROUP BY source, account_id HAVING count(*) >= 2
    ),
    {WINDOW_REACH},
    totals AS MATERIALIZED (  -- per live account and activity owner
      SELECT r.source, r.account_id, r.owner_id, count(*) AS n FROM reached r
      JOIN accounts a ON a.source = r.source AND a.id = r.account_id AND a.deleted = 0
      GROUP BY r.source, r.account_id, r.owner_id
    ),
    per_account AS (
      SELECT source, account_id, sum(n) AS total FROM totals GROUP BY source, account_id
    )
    SELECT u.source, 'account', u.account_id, u.user_id, u.account_id, u.owner_id, NULL,
           json_object('member_activities', coalesce(mine.n, 0), 'account_activities', pa.total,
                       'member_role', u.role, 'members', s.members,
                       'window_days', {int(p.window_days)})
    FROM users u
    JOIN shared s ON s.source = u.source AND s.account_id = u.account_id
    JOIN per_account pa ON pa.source = u.source AND pa.account_id = u.account_id
    LEFT JOIN totals mine ON mine.source = u.source AND mine.account_id = u.account_id
                         AND mine.owner_id = u.user_id
    WHERE u.exempt = 0 AND pa.total >= {int(p.min_activities)}
      AND CAST(coalesce(mine.n, 0) AS REAL) / CAST(pa.total AS REAL) < :min_share
    """
    return sql, {"start": ts(now - timedelta(days=p.window_days)), "now": ts(now),
                 "min_share": float(p.min_share)}


def cov002(p, config, now):
    sql = f"""
    WITH members AS MATERIALIZED ({_members()}),
    users AS MATERIALIZED (  -- in id order: the order of the quarterbacks' id list
      SELECT source, account_id, owner_id, user_id,
             max({_flag('role', p.quarterback_roles)}) AS qb
      FROM members GROUP BY source, account_id, owner_id, user_id
      ORDER BY source, account_id, user_id
    ),
    per_account AS (
      SELECT source, account_id, owner_id, count(*) AS members, sum(qb) AS quarterbacks,
             group_concat(CASE WHEN qb = 1 THEN user_id END, ',') AS ids
      FROM users GROUP BY source, account_id, owner_id
    )
    SELECT source, 'account', account_id, '', account_id, owner_id, NULL,
           json_object('quarterbacks', quarterbacks, 'quarterback_ids', coalesce(ids, ''),
                       'members', members)
    FROM per_account WHERE members >= 2 AND quarterbacks <> 1
    """
    return sql, {}


def _matches(req) -> str:
    conds = []
    if req.stage is not None:
        conds.append(f"lower(a.lifecycle_stage) = {lit(req.stage.lower())}")
    if req.min_employees is not None:
        conds.append(f"a.employees >= {int(req.min_employees)}")
    if req.max_employees is not None:
        conds.append(f"a.employees <= {int(req.max_employees)}")
    return "(" + (" AND ".join(conds) or "1") + ")"


def cov003(p, config, now):
    roles: dict[str, list[int]] = {}  # each role required, with the requirements naming it
    for number, req in enumerate(p.requirements, start=1):
        for role in req.roles:
            roles.setdefault(role, []).append(number)
    parts = []
    for role, numbers in roles.items():
        reqs = [(n, p.requirements[n - 1]) for n in numbers]
        number = "CASE " + " ".join(f"WHEN {_matches(r)} THEN {n}" for n, r in reqs) + " END"
        parts.append(f"""
        SELECT a.source, 'account', a.id, {lit('role:' + role)}, a.id, a.owner_id, NULL,
               json_object('missing_role', {lit(role)}, 'requirement', {number})
        FROM accounts a
        WHERE a.deleted = 0 AND ({' OR '.join(_matches(r) for _, r in reqs)})
          AND NOT EXISTS (SELECT 1 FROM f_owner u WHERE u.source = a.source AND u.id = a.owner_id
                          AND u.active = 1 AND u.role = {lit(role)})
          AND NOT EXISTS (
            SELECT 1 FROM account_team_members t INDEXED BY {TEAM_INDEX}
            JOIN f_owner u ON u.source = t.source AND u.id = t.user_id AND u.active = 1
            LEFT JOIN f_team_role tr ON tr.source = t.source AND tr.team_role = t.team_role
            WHERE t.source = a.source AND t.account_id = a.id AND t.deleted = 0
              AND coalesce(tr.role, u.role) = {lit(role)})
        """)
    return " UNION ALL ".join(parts) or "SELECT 1, 2, 3, 4, 5, 6, 7, 8 WHERE 0", {}


COV_RULES = {"COV001": cov001, "COV002": cov002, "COV003": cov003}

