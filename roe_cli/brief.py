"""The account brief behind ``roe account ID``: one account and what a rep needs before a call.

:func:`find_account` resolves what the user typed (a CRM id, else a name or a domain, ignoring
case) to one account, or explains the choice. :func:`account_brief` gathers the brief as a plain
dictionary with stable keys (the ``--format json`` document, see the README):

- ``account``: id, source, name, domain, website, stage and since when, parent, territory
  (the first ``[[territories]]`` entry of rules.toml that fits), deleted.
- ``owner``: id, name, e-mail, active, CRM role, roe role, team (the first ``[[teams]]`` entry
  listing the e-mail, else the CRM's team).
- ``ownership_history``: newest first, who had it, who got it, when, and the change's origin.
- ``contacts``: the first ``contacts_limit`` live contacts by name, and how many there are.
- ``open_opportunities``: live deals not closed, largest amount first.
- ``engagement``: per user, the live activities of the last ``window_days`` days that count for
  the account as the rules count them (on the account itself, its live contacts or its live
  deals, each activity once), in all and by kind.
- ``findings`` (open and waived, on the account or its records) and ``waivers`` in force.
- ``team``: the live rows of ``account_team_members`` plus the owner, each with the CRM's team
  role and the roe role (the team role through ``[role_map]``, else the user's own roe role).

Every figure comes from SQL on indexed columns; a 50,000-contact account reads only the first
``contacts_limit`` contacts and one count.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, or_, select, union
from sqlalchemy.engine import Connection, Engine, Row

from .models import (
    account_team_members,
    accounts,
    activities,
    contacts,
    findings,
    opportunities,
    owners,
    ownership_changes,
    waivers,
)
from .shared.clock import iso_or_none, utc_text, utcnow
from .shared.errors import UsageError
from .shared.text import did_you_mean, or_list, visible

if TYPE_CHECKING:
    from .rulesfile import RulesConfig

SEVERITIES = ("high", "medium", "low")
WINDOW_DAYS = 90
DEFAULT_CONTACTS = 20
CHOICE_LIMIT = 20  # accounts listed when a name or domain matches several


def _iso(value: Any) -> str | None:
    return iso_or_none(value)


def _choice_line(r: Row[Any], owner_name: str | None) -> str:
    return (f"  {r.source}:{r.id}  {visible(r.name)}  {visible(r.domain or '-')}  "
            f"owner {visible(owner_name or r.owner_id or '-')}"
            + ("  (deleted)" if r.deleted else ""))


def find_account(conn: Connection, key: str, source: str | None = None) -> Row[Any]:
    """The one account ``key`` names: its CRM id, else its name or domain (ignoring case).

    Several matches: a :class:`UsageError` listing them (id, name, domain, owner) asking for the
    id (or ``--source`` when one id is in several sources). None: a :class:`UsageError` with a
    did-you-mean when a name, domain or id is close.
    """
    text = key.strip()
    if not text:
        raise UsageError("No account given.", "Pass an account id, name or domain.")
    a = accounts
    cols = [a.c.source, a.c.id, a.c.name, a.c.domain, a.c.owner_id, a.c.deleted, owners.c.name.label("owner_name")]
    base = select(*cols).outerjoin(owners, and_(owners.c.source == a.c.source, owners.c.id == a.c.owner_id))
    if source:
        base = base.where(a.c.source == source)
    order = (a.c.deleted, a.c.source, a.c.id)
    rows = list(conn.execute(base.where(a.c.id == text).order_by(*order)))
    if not rows:
        folded = text.casefold()
        rows = list(conn.execute(
            base.where(or_(func.lower(a.c.name) == folded, func.lower(a.c.domain) == folded))
            .order_by(*order).limit(CHOICE_LIMIT + 1)
        ))
    if len(rows) == 1:
        return rows[0]
    where = f" in {source}" if source else ""
    if not rows:
        raise UsageError(f"No account{where} has the id, name or domain {text!r}"
                         + _close(conn, text, source) ,
                         "Pass an account id, name or domain as `roe findings` shows it.")
    lines = "\n".join(_choice_line(r, r.owner_name) for r in rows[:CHOICE_LIMIT])
    more = "\n  ..." if len(rows) > CHOICE_LIMIT else ""
    same_id = all(r.id == rows[0].id for r in rows)
    todo = ("Pass --source to choose the CRM." if same_id
            else "Pass the account's id (the part after the colon) to choose one.")
    raise UsageError(f"{'More than ' + str(CHOICE_LIMIT) if more else len(rows)} accounts{where} "
                     f"match {text!r}:\n{lines}{more}", todo)


def _close(conn: Connection, text: str, source: str | None) -> str:
    """``; did you mean 'x'?`` over the names, domains and ids sharing the first letters."""
    a = accounts
    prefix = text[:3].casefold().replace("\\", "").replace("%", "").replace("_", "")
    if not prefix:
        return "."
    stmt = select(a.c.name, a.c.domain, a.c.id).where(or_(
        func.lower(a.c.name).startswith(prefix), func.lower(a.c.domain).startswith(prefix),
        a.c.id.startswith(text[:3]),
    )).limit(5000)
    if source:
        stmt = stmt.where(a.c.source == source)
    words = [w for r in conn.execute(stmt) for w in r if w]
    matches = did_you_mean(text, words)[:3]
    return f"; did you mean {or_list([visible(m) for m in matches])}?" if matches else "."


def _people(conn: Connection, source: str, ids: set[str | None]) -> dict[str, Row[Any]]:
    wanted = sorted(i for i in ids if i)
    if not wanted:
        return {}
    stmt = select(owners).where(owners.c.source == source, owners.c.id.in_(wanted))
    return {r.id: r for r in conn.execute(stmt)}


def _team_of(config: RulesConfig | None, email: str | None, crm_team: str | None) -> str | None:
    if config and email:
        folded = email.strip().lower()
        for team in config.teams:
            if folded in team.members:
                return team.name
    return crm_team


def _role_of_member(config: RulesConfig | None, team_role: str | None, who: Row[Any] | None) -> str | None:
    """The team role through ``[role_map]`` (exact, then ignoring case), else the user's role."""
    if config is None:
        return None
    if team_role:
        mapped = config.role_map.get(team_role)
        if mapped is None:
            mapped = {k.strip().casefold(): v for k, v in config.role_map.items()}.get(
                team_role.strip().casefold())
        if mapped is not None:
            return mapped
    return config.role_of(who.email, who.role) if who is not None else None


def _person(people: dict[str, Row[Any]], user_id: str | None, config: RulesConfig | None) -> dict[str, Any] | None:
    if user_id is None:
        return None
    o = people.get(user_id)
    return {
        "id": user_id,
        "name": o.name if o else None,
        "email": o.email if o else None,
        "active": bool(o.active) if o else None,
        "crm_role": o.role if o else None,
        "role": config.role_of(o.email, o.role) if (o and config) else None,
        "team": _team_of(config, o.email, o.team) if o else None,
    }


def account_brief(
    engine: Engine,
    config: RulesConfig | None,
    key: str,
    *,
    source: str | None = None,
    contacts_limit: int = DEFAULT_CONTACTS,
    as_of: datetime | None = None,
    window_days: int = WINDOW_DAYS,
) -> dict[str, Any]:
    """The brief of the account ``key`` names (see the module docstring for its keys)."""
    if contacts_limit < 0:
        raise UsageError(f"--contacts {contacts_limit} is negative.", "Give 0 or more.")
    now = as_of or utcnow()
    with engine.connect() as conn:
        hit = find_account(conn, key, source)
        src, acc_id = hit.source, hit.id
        acc = conn.execute(select(accounts).where(accounts.c.source == src, accounts.c.id == acc_id)).one()
        parent = None
        if acc.parent_id:
            p = conn.execute(select(accounts.c.name).where(
                accounts.c.source == src, accounts.c.id == acc.parent_id)).first()
            parent = {"id": acc.parent_id, "name": p.name if p else None}
        territory = config.territory_of(acc.country, acc.state, acc.industry, acc.employees) if config else None

        oc = ownership_changes
        history = list(conn.execute(
            select(oc).where(oc.c.source == src, oc.c.object_type == "account", oc.c.object_id == acc_id)
            .order_by(oc.c.changed_at.desc(), oc.c.id.desc())
        ))
        c = contacts
        live_c = and_(c.c.source == src, c.c.account_id == acc_id, c.c.deleted.is_(False))
        contact_total = conn.execute(select(func.count()).where(live_c)).scalar_one()
        contact_rows = list(conn.execute(
            select(c.c.id, c.c.name, c.c.title, c.c.email, c.c.owner_id).where(live_c)
            .order_by(func.lower(c.c.name), c.c.id).limit(contacts_limit)
        )) if contacts_limit else []
        o = opportunities
        deals = list(conn.execute(
            select(o.c.id, o.c.name, o.c.stage, o.c.amount, o.c.close_date, o.c.owner_id)
            .where(o.c.source == src, o.c.account_id == acc_id, o.c.deleted.is_(False),
                   o.c.is_closed.is_(False))
            .order_by(o.c.amount.desc().nulls_last(), o.c.id)
        ))
        engagement = _engagement(conn, src, acc_id, now - timedelta(days=window_days), now)
        f = findings
        found = list(conn.execute(
            select(f).where(f.c.source == src, f.c.account_id == acc_id,
                            f.c.status.in_(("open", "waived")))
            .order_by(f.c.status, case(*((f.c.severity == s, n) for n, s in enumerate(SEVERITIES)), else_=9),
                      f.c.rule, f.c.object_id)
        ))
        w = waivers
        records = or_(
            and_(w.c.object_type == "account", w.c.object_id == acc_id),
            and_(w.c.object_type == "contact", w.c.object_id.in_(
                select(c.c.id).where(c.c.source == src, c.c.account_id == acc_id))),
            and_(w.c.object_type == "opportunity", w.c.object_id.in_(
                select(o.c.id).where(o.c.source == src, o.c.account_id == acc_id))),
        )
        waived = list(conn.execute(
            select(w).where(records, or_(w.c.source.is_(None), w.c.source == src),
                            or_(w.c.expires.is_(None), w.c.expires >= now.date()))
            .order_by(w.c.rule, w.c.object_type, w.c.object_id, w.c.id)
        ))
        t = account_team_members
        members = list(conn.execute(
            select(t.c.user_id, t.c.team_role, t.c.origin)
            .where(t.c.source == src, t.c.account_id == acc_id, t.c.deleted.is_(False))
            .order_by(t.c.team_role, t.c.user_id, t.c.origin)
        ))
        ids = {acc.owner_id, *(h.old_owner_id for h in history), *(h.new_owner_id for h in history),
               *(r.owner_id for r in contact_rows), *(d.owner_id for d in deals),
               *(e["user_id"] for e in engagement), *(m.user_id for m in members),
               *(x.owner_id for x in found), *(x.related_user_id for x in found if x.related_user_id)}
        people = _people(conn, src, ids)

    def who(user_id: str | None) -> dict[str, Any] | None:
        return _person(people, user_id, config)

    def short(user_id: str | None) -> dict[str, Any] | None:
        if user_id is None:
            return None
        p = people.get(user_id)
        return {"id": user_id, "name": p.name if p else None, "email": p.email if p else None}

    team = []
    if acc.owner_id:
        team.append({**short(acc.owner_id), "team_role": None, "origin": "owner", "is_owner": True,  # type: ignore[dict-item]
                     "role": _role_of_member(config, None, people.get(acc.owner_id))})
    for m in members:
        team.append({**short(m.user_id), "team_role": m.team_role, "origin": m.origin,  # type: ignore[dict-item]
                     "is_owner": m.user_id == acc.owner_id,
                     "role": _role_of_member(config, m.team_role, people.get(m.user_id))})
    return {
        "as_of": utc_text(now),
        "window_days": window_days,
        "account": {
            "source": src, "id": acc_id, "name": acc.name, "domain": acc.domain,
            "website": acc.website, "stage": acc.lifecycle_stage,
            "stage_since": _iso(acc.stage_changed_at), "parent": parent,
            "territory": territory.name if territory else None,
            "country": acc.country, "state": acc.state, "industry": acc.industry,
            "employees": acc.employees, "deleted": bool(acc.deleted),
        },
        "owner": who(acc.owner_id),
        "ownership_history": [
            {"changed_at": _iso(h.changed_at), "from": short(h.old_owner_id),
             "to": short(h.new_owner_id), "origin": h.origin}
            for h in history
        ],
        "contacts": {
            "total": contact_total,
            "shown": [{"id": r.id, "name": r.name, "title": r.title, "email": r.email,
                       "owner": short(r.owner_id)} for r in contact_rows],
        },
        "open_opportunities": [
            {"id": d.id, "name": d.name, "stage": d.stage, "amount": d.amount,
             "close_date": _iso(d.close_date), "owner": short(d.owner_id)}
            for d in deals
        ],
        "engagement": [{**e, "user": short(e.pop("user_id"))} for e in engagement],
        "findings": [
            {"id": x.id, "rule": x.rule, "severity": x.severity, "status": x.status,
             "object_type": x.object_type, "object_id": x.object_id,
             "related_user_id": x.related_user_id or None, "first_seen": _iso(x.first_seen),
             "details": json.loads(x.details) if x.details else None}
            for x in found
        ],
        "waivers": [
            {"id": x.id, "rule": x.rule, "object_type": x.object_type, "object_id": x.object_id,
             "related_user_id": x.related_user_id, "reason": x.reason,
             "approved_by": x.approved_by, "expires": _iso(x.expires), "origin": x.origin}
            for x in waived
        ],
        "team": team,
    }


def _engagement(conn: Connection, src: str, acc_id: str, after: datetime,
                until: datetime) -> list[dict[str, Any]]:
    """Per user, the live activities in ``(after, until]`` on the account, its live contacts or
    its live deals, by kind, most first. Three index seeks (account; contact ids; deal ids)
    joined by UNION, which keeps each activity once however many ways it is linked."""
    from .rules.context import unindexed

    a, c, o = activities, contacts, opportunities
    links = (
        a.c.account_id == acc_id,
        a.c.contact_id.in_(select(c.c.id).where(c.c.source == src, c.c.account_id == acc_id,
                                                c.c.deleted.is_(False))),
        a.c.opportunity_id.in_(select(o.c.id).where(o.c.source == src, o.c.account_id == acc_id,
                                                    o.c.deleted.is_(False))),
    )
    when = unindexed(a.c.occurred_at)  # seek by the link, not by a range of the time index
    linked = union(*(
        select(a.c.id, a.c.owner_id, a.c.kind)
        .where(a.c.source == src, a.c.deleted.is_(False), when > after, when <= until, link)
        for link in links
    )).subquery("engaged")
    rows = conn.execute(
        select(linked.c.owner_id, linked.c.kind, func.count().label("n"))
        .group_by(linked.c.owner_id, linked.c.kind)
    )
    per: dict[str | None, dict[str, int]] = {}
    for r in rows:
        per.setdefault(r.owner_id, {})[r.kind] = r.n
    ranked = sorted(per.items(), key=lambda item: (-sum(item[1].values()), item[0] or ""))
    return [{"user_id": uid, "activities": sum(kinds.values()), "by_kind": dict(sorted(kinds.items()))}
            for uid, kinds in ranked]
