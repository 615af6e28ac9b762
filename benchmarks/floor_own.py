"""The floor's SQL for roe's ownership and handoff rules (OWN001-OWN006, HND001-HND003).

Each function takes (params, config, now) and returns (sql, binds): one ``SELECT`` whose columns
are the finding columns in order (source, object type, object id, related user, account, owner,
suggested owner, details). See ``benchmarks/audit_floor.py`` for how they are run; the coverage
rules are in ``benchmarks/floor_cov.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta


def ts(value: datetime) -> str:
    """A time as the mirror stores it (SQLAlchemy's SQLite format for naive UTC values)."""
    return value.isoformat(sep=" ", timespec="microseconds")


def lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def lits(values: Iterable[str]) -> str:
    return ", ".join(lit(v) for v in values)


def role_not_in(col: str, roles: Iterable[str]) -> str:
    """A user with no role is in no list; an empty list excludes nobody."""
    roles = list(roles)
    if not roles:
        return "1"
    return f"({col} IS NULL OR {col} NOT IN ({lits(roles)}))"


def territory_case(config, a: str) -> str:
    """The ordinal of the first territory whose match fits account ``a``, else NULL."""
    whens = []
    for ordinal, territory in enumerate(config.territories):
        m = territory.match
        conds = []
        for column, wanted in (("country", m.country), ("state", m.state), ("industry", m.industry)):
            if wanted is not None:
                conds.append(f"lower({a}.{column}) IN ({lits(w.lower() for w in wanted)})")
        if m.min_employees is not None:
            conds.append(f"{a}.employees >= {int(m.min_employees)}")
        if m.max_employees is not None:
            conds.append(f"{a}.employees <= {int(m.max_employees)}")
        whens.append(f"WHEN {' AND '.join(conds) or '0'} THEN {ordinal}")
    return f"(CASE {' '.join(whens)} END)" if whens else "NULL"


def owner_activity_absent(a: str, window: str) -> str:
    """SQL true when the owner of account ``a`` has no live activity in ``window`` (a condition
    on ``x.occurred_at``) that counts for the account: linked to it directly, or to one of its live
    contacts or deals. Each branch is a seek on a (source, link, owner, occurred_at) index, pinned
    (``INDEXED BY``, contacts/deals first by ``CROSS JOIN``): on sampled statistics SQLite may
    otherwise range over the time index or scan activities per account (see
    roe_cli/rules/pins.py)."""
    by_owner = f"x.owner_id = {a}.owner_id AND {window} AND x.deleted = 0"
    return f"""NOT EXISTS (
        SELECT 1 FROM activities x INDEXED BY {ACT_INDEX['account']}
        WHERE x.source = {a}.source AND x.account_id = {a}.id AND {by_owner})
      AND NOT EXISTS (
        SELECT 1 FROM contacts c INDEXED BY ix_contacts_source_account_id
        CROSS JOIN activities x INDEXED BY {ACT_INDEX['contact']}
          ON x.source = c.source AND x.contact_id = c.id
        WHERE c.source = {a}.source AND c.account_id = {a}.id AND c.deleted = 0 AND {by_owner})
      AND NOT EXISTS (
        SELECT 1 FROM opportunities o INDEXED BY ix_opportunities_source_account_id
        CROSS JOIN activities x INDEXED BY {ACT_INDEX['opportunity']}
          ON x.source = o.source AND x.opportunity_id = o.id
        WHERE o.source = {a}.source AND o.account_id = {a}.id AND o.deleted = 0 AND {by_owner})"""


# The composite activity index of each path (the mirror's names; roe_cli/models.py).
ACT_INDEX = {path: f"ix_activities_source_{path}_id_owner_id_occurred_at"
             for path in ("account", "contact", "opportunity")}
# "Owned" is a filter on accounts, never a range of the owner index to drive by (``+``).
OWNED = "+a.owner_id IS NOT NULL"


# -- the rules ---------------------------------------------------------------------------------
# Each returns (sql, params); the SELECT's columns are FINDING_COLUMNS in order.


def own001(p, config, now):
    return f"""
    SELECT c.source, 'contact', c.id, '', c.account_id, c.owner_id,
           CASE WHEN ao.active = 1 THEN a.owner_id END,
           json_object('owner_role', co.role, 'account_owner_id', a.owner_id)
    FROM contacts c  -- every contact once, its account by key (CROSS JOIN: in that order)
    CROSS JOIN accounts a ON a.source = c.source AND a.id = c.account_id
    LEFT JOIN f_owner co ON co.source = c.source AND co.id = c.owner_id
    LEFT JOIN f_owner ao ON ao.source = a.source AND ao.id = a.owner_id
    WHERE c.deleted = 0 AND +c.owner_id IS NOT NULL
      AND a.deleted = 0 AND {OWNED}
      AND c.owner_id <> a.owner_id
      AND {role_not_in('co.role', p.allowed_roles)}
    """, {}


def own002(p, config, now):
    fallback = p.fallback
    if fallback == "territory":
        fallback_owner = "CASE WHEN d.active = 1 THEN d.id END"
    elif fallback == "manager":
        fallback_owner = "CASE WHEN m.active = 1 THEN m.id END"
    else:
        fallback_owner = (
            "(SELECT f.id FROM f_owner f WHERE f.source = rec.source "
            f"AND f.email = {lit(fallback.lower())} AND f.active = 1 LIMIT 1)"
        )
    parts = []
    for object_type in p.objects:
        table = {"account": "accounts", "contact": "contacts", "opportunity": "opportunities"}[object_type]
        if object_type == "account":
            acct_join = ""  # the account is the record itself (live, as the WHERE asks)
            acct = "rec"
            suggested = fallback_owner
        else:
            acct_join = (
                "LEFT JOIN accounts acct ON acct.source = rec.source AND acct.id = rec.account_id "
                "AND acct.deleted = 0"
            )
            acct = "acct"
            suggested = f"coalesce(CASE WHEN ao.active = 1 THEN ao.id END, {fallback_owner})"
        open_only = "AND rec.is_closed = 0" if object_type == "opportunity" else ""
        parts.append(f"""
        SELECT rec.source, {lit(object_type)}, rec.id, '', {acct}.id, rec.owner_id, {suggested},
               json_object('inactive_owner_id', rec.owner_id, 'fallback', {lit(fallback)},
                           'territory', t.name)
        FROM f_owner o  -- from the few inactive owners into the (source, owner_id) index
        CROSS JOIN {table} rec INDEXED BY ix_{table}_source_owner_id
          ON rec.source = o.source AND rec.owner_id = o.id
        {acct_join}
        LEFT JOIN f_owner ao ON ao.source = {acct}.source AND ao.id = {acct}.owner_id
        LEFT JOIN f_terr t ON t.source = {acct}.source AND t.ordinal = {territory_case(config, acct)}
        LEFT JOIN f_owner d ON d.source = t.source AND d.id = t.default_owner_id
        LEFT JOIN f_owner m ON m.source = o.source AND m.id = o.manager_id
        WHERE o.active = 0 AND rec.deleted = 0 {open_only}
        """)
    return " UNION ALL ".join(parts) or "SELECT 1 WHERE 0", {}


def own003(p, config, now):
    free = lits(d.lower() for d in config.free_email_domains) or "NULL"
    live_owned = f"a.deleted = 0 AND {OWNED}"
    if p.prefer == "most_active":
        # Distinct live activities in the last 365 days that count for the clustered account,
        # whichever way (UNION drops an activity reached twice): a correlated subquery, i.e. index
        # seeks from each of the few clustered accounts. (Written as a join, SQLite 3.38+ first
        # scans all of activities to build a Bloom filter for it, 30 times slower here.) ``+``:
        # the window filters; it is not the index to drive by.
        window = "+x.occurred_at > :start AND +x.occurred_at <= :now AND x.deleted = 0"
        n = f"""(SELECT count(*) FROM (
            SELECT x.rowid FROM activities x INDEXED BY {ACT_INDEX['account']}
            WHERE x.source = cl.source AND x.account_id = cl.account_id AND {window}
            UNION
            SELECT x.rowid FROM contacts c INDEXED BY ix_contacts_source_account_id
            CROSS JOIN activities x INDEXED BY {ACT_INDEX['contact']}
              ON x.source = c.source AND x.contact_id = c.id
            WHERE c.source = cl.source AND c.account_id = cl.account_id AND c.deleted = 0 AND {window}
            UNION
            SELECT x.rowid FROM opportunities o INDEXED BY ix_opportunities_source_account_id
            CROSS JOIN activities x INDEXED BY {ACT_INDEX['opportunity']}
              ON x.source = o.source AND x.opportunity_id = o.id
            WHERE o.source = cl.source AND o.account_id = cl.account_id AND o.deleted = 0 AND {window}
          ))"""
        order = "activities DESC, cl.created_at IS NULL, cl.created_at, cl.account_id"
    else:
        n = "NULL"
        order = "cl.created_at IS NULL, cl.created_at, cl.account_id"
    sql = f"""
    WITH domains AS MATERIALIZED (
      SELECT a.source, a.id AS account_id, a.domain, a.owner_id, a.created_at FROM accounts a
      WHERE {live_owned} AND a.website IS NOT NULL AND trim(a.website) <> ''
        AND a.domain IS NOT NULL AND a.domain NOT IN ({free})
      UNION ALL
      SELECT source, account_id, domain, owner_id, created_at FROM (
        SELECT c.source, c.account_id, c.email_domain AS domain, a.owner_id, a.created_at,
               row_number() OVER (PARTITION BY c.source, c.account_id
                                  ORDER BY count(*) DESC, c.email_domain) AS rn
        FROM accounts a
        CROSS JOIN contacts c INDEXED BY ix_contacts_source_account_id
          ON c.source = a.source AND c.account_id = a.id
        WHERE {live_owned} AND (a.website IS NULL OR trim(a.website) = '')
          AND c.deleted = 0 AND c.email_domain IS NOT NULL AND c.email_domain NOT IN ({free})
        GROUP BY c.source, c.account_id, c.email_domain
      ) WHERE rn = 1
    ),
    split AS (  -- two or more distinct owners (owned accounts only: no NULL owner)
      SELECT source, domain FROM domains GROUP BY source, domain HAVING min(owner_id) <> max(owner_id)
    ),
    cluster AS MATERIALIZED (
      SELECT d.* FROM split s JOIN domains d ON d.source = s.source AND d.domain = s.domain
    ),
    counted AS MATERIALIZED (SELECT cl.*, {n} AS activities FROM cluster cl),
    ranked AS MATERIALIZED (
      SELECT *, row_number() OVER (PARTITION BY source, domain ORDER BY {order}) AS rank
      FROM counted cl
    )
    SELECT m.source, 'account', m.account_id, '', m.account_id, m.owner_id,
           CASE WHEN po.active = 1 THEN pref.owner_id END,
           json_object('domain', m.domain, 'preferred_account_id', pref.account_id,
                       'prefer', {lit(p.prefer)}, 'account_activities', m.activities,
                       'preferred_activities', pref.activities)
    FROM ranked m
    JOIN ranked pref ON pref.source = m.source AND pref.domain = m.domain AND pref.rank = 1
    LEFT JOIN f_owner po ON po.source = pref.source AND po.id = pref.owner_id
    WHERE m.owner_id <> pref.owner_id
    """
    return sql, {"start": ts(now - timedelta(days=365)), "now": ts(now)}


# The window's activities (``:start`` < occurred_at <= ``:now``), each with its candidate accounts
# (its own, its live contact's, its live deal's), then one row per distinct (account, activity):
# the CTEs ``linked`` and ``reached``, shared by OWN004 and COV001.
WINDOW_REACH = """linked AS MATERIALIZED (
      SELECT x.source, x.owner_id, x.account_id AS a1, c.account_id AS a2, o.account_id AS a3
      FROM activities x
      LEFT JOIN contacts c ON c.source = x.source AND c.id = x.contact_id AND c.deleted = 0
      LEFT JOIN opportunities o ON o.source = x.source AND o.id = x.opportunity_id AND o.deleted = 0
      WHERE +x.occurred_at > :start AND +x.occurred_at <= :now AND x.deleted = 0
    ),
    reached AS (
      SELECT source, a1 AS account_id, owner_id FROM linked WHERE a1 IS NOT NULL
      UNION ALL
      SELECT source, a2, owner_id FROM linked WHERE a2 IS NOT NULL AND a2 IS NOT a1
      UNION ALL
      SELECT source, a3, owner_id FROM linked WHERE a3 IS NOT NULL AND a3 IS NOT a1 AND a3 IS NOT a2
    )"""


def own004(p, config, now):
    # One scan of the activities (the 30-day window is a sixth of them: reading the table in order
    # beats 370,000 random seeks from the time index), each activity's accounts beside it (its own,
    # its live contact's, its live deal's), then one row per distinct (account, activity).
    sql = f"""
    WITH {WINDOW_REACH},
    totals AS (
      SELECT source, account_id, owner_id, count(*) AS n FROM reached
      GROUP BY source, account_id, owner_id
    ),
    per_user AS (
      SELECT t.source, t.account_id, t.owner_id AS user_id, t.n, a.owner_id AS account_owner_id,
             max(CASE WHEN t.owner_id = a.owner_id THEN t.n ELSE 0 END)
               OVER (PARTITION BY t.source, t.account_id) AS owner_n
      FROM totals t JOIN accounts a ON a.source = t.source AND a.id = t.account_id
      WHERE a.deleted = 0 AND {OWNED}
    )
    SELECT pu.source, 'account', pu.account_id, pu.user_id, pu.account_id, pu.account_owner_id, NULL,
           json_object('user_activities', pu.n, 'owner_activities', pu.owner_n,
                       'window_days', {int(p.window_days)})
    FROM per_user pu
    LEFT JOIN f_owner u ON u.source = pu.source AND u.id = pu.user_id
    WHERE pu.user_id IS NOT NULL AND pu.user_id <> pu.account_owner_id
      AND pu.n >= {int(p.min_activities)} AND pu.n > pu.owner_n
      AND {role_not_in('u.role', p.exempt_roles)}
    """
    return sql, {"start": ts(now - timedelta(days=p.window_days)), "now": ts(now)}


def own005(p, config, now):
    sql = f"""
    SELECT a.source, 'account', a.id, '', a.id, a.owner_id,
           CASE WHEN d.active = 1 THEN d.id END,
           json_object('territory', t.name, 'team', t.team)
    FROM accounts a
    JOIN f_terr t ON t.source = a.source AND t.ordinal = {territory_case(config, 'a')}
    LEFT JOIN f_owner d ON d.source = t.source AND d.id = t.default_owner_id
    WHERE a.deleted = 0 AND {OWNED}
      AND NOT EXISTS (SELECT 1 FROM f_member fm
                      WHERE fm.team = t.team AND fm.source = a.source AND fm.owner_id = a.owner_id)
    """
    return sql, {}


def own006(p, config, now):
    return f"""
    SELECT o.source, 'opportunity', o.id, '', o.account_id, o.owner_id,
           CASE WHEN ao.active = 1 THEN a.owner_id END,
           json_object('owner_role', oo.role, 'account_owner_id', a.owner_id,
                       'stage', o.stage)
    FROM opportunities o  -- every deal once, its account by key (CROSS JOIN: in that order)
    CROSS JOIN accounts a ON a.source = o.source AND a.id = o.account_id
    LEFT JOIN f_owner oo ON oo.source = o.source AND oo.id = o.owner_id
    LEFT JOIN f_owner ao ON ao.source = a.source AND ao.id = a.owner_id
    WHERE o.deleted = 0 AND o.is_closed = 0 AND +o.owner_id IS NOT NULL
      AND a.deleted = 0 AND {OWNED}
      AND o.owner_id <> a.owner_id
      AND {role_not_in('oo.role', p.allowed_roles)}
    """, {}


def hnd001(p, config, now):
    sql = f"""
    WITH latest AS (
      SELECT source, object_id, max(changed_at) AS changed_at FROM ownership_changes
      WHERE object_type = 'account' AND changed_at <= :now
      GROUP BY source, object_id
    )
    SELECT a.source, 'account', a.id, '', a.id, a.owner_id, NULL,
           json_object('changed_at', strftime('%Y-%m-%dT%H:%M:%SZ', l.changed_at), 'sla_days', {int(p.sla_days)})
    FROM latest l
    JOIN accounts a ON a.source = l.source AND a.id = l.object_id
    WHERE l.changed_at <= :cut
      AND a.deleted = 0 AND {OWNED}
      AND EXISTS (SELECT 1 FROM ownership_changes h
                  WHERE h.source = a.source AND h.object_type = 'account' AND h.object_id = a.id
                    AND h.changed_at = l.changed_at AND h.new_owner_id = a.owner_id)
      AND {owner_activity_absent('a', 'x.occurred_at >= l.changed_at AND x.occurred_at <= :now')}
    """
    return sql, {"now": ts(now), "cut": ts(now - timedelta(days=p.sla_days))}


def hnd002(p, config, now):
    wrong = " OR ".join(
        f"(lower(a.lifecycle_stage) = {lit(stage.lower())} AND {role_not_in('r.role', roles)})"
        for stage, roles in p.stage_roles.items()
    ) or "0"
    sql = f"""
    SELECT a.source, 'account', a.id, '', a.id, a.owner_id, NULL,
           json_object('stage', a.lifecycle_stage, 'owner_role', r.role,
                       'stage_changed_at',
                       strftime('%Y-%m-%dT%H:%M:%SZ', a.stage_changed_at))
    FROM accounts a
    LEFT JOIN f_owner r ON r.source = a.source AND r.id = a.owner_id
    WHERE a.deleted = 0 AND {OWNED} AND ({wrong})
      AND (a.stage_changed_at IS NULL OR a.stage_changed_at <= :cut)
    """
    return sql, {"cut": ts(now - timedelta(days=p.grace_days))}


def hnd003(p, config, now):
    sql = f"""
    SELECT a.source, 'account', a.id, '', a.id, a.owner_id, NULL,
           json_object('max_idle_days', {int(p.max_idle_days)})
    FROM accounts a
    WHERE a.deleted = 0 AND {OWNED}
      AND EXISTS (SELECT 1 FROM opportunities o INDEXED BY ix_opportunities_source_account_id
                  WHERE o.source = a.source AND o.account_id = a.id AND o.deleted = 0
                    AND o.is_closed = 0)
      AND {owner_activity_absent('a', 'x.occurred_at > :start AND x.occurred_at <= :now')}
    """
    return sql, {"start": ts(now - timedelta(days=p.max_idle_days)), "now": ts(now)}


OWN_RULES = {
    "OWN001": own001, "OWN002": own002, "OWN003": own003, "OWN004": own004, "OWN005": own005,
    "OWN006": own006, "HND001": hnd001, "HND002": hnd002, "HND003": hnd003,
}
