"""What the demo org's background is drawn from: countries, stages, industries, name parts, and
how often each comes up. :func:`pick` draws a key of a weights table in proportion to its weight."""

from __future__ import annotations

import bisect
import random
from typing import Any

COUNTRIES = {
    "US": 35, "CA": 5, "GB": 10, "DE": 10, "FR": 7, "NL": 3, "SE": 2, "ES": 3, "IT": 3, "IE": 2,
    "AU": 5, "NZ": 1, "JP": 4, "SG": 2, "IN": 3, "BR": 2, "MX": 1, "ZA": 1, "AE": 1,
}
STATES = {
    "US": ["CA", "WA", "OR", "NV", "AZ", "CO", "UT", "NY", "MA", "TX", "FL", "IL", "GA", "NC",
           "NJ", "PA", "OH", "MI", "MN", "VA"],
    "CA": ["BC", "AB", "ON", "QC"],
}
# Stage values as a CRM might hold them; rules compare stages case-insensitively.
STAGES = {"Lead": 30, "Opportunity": 30, "Customer": 35, "Evangelist": 5}
STAGE_OWNER_ROLES = {"Lead": ("SDR",), "Opportunity": ("AE",), "Customer": ("AM", "CSM"), "Evangelist": ("AM",)}
INDUSTRIES = ["Software", "Manufacturing", "Retail", "Healthcare", "Financial Services", "Logistics",
              "Education", "Energy", "Media", "Telecommunications", "Hospitality", "Construction"]
ADJ = ["Blue", "North", "Bright", "Silver", "Rapid", "Green", "Iron", "Clear", "Summit", "Harbor",
        "Golden", "Urban", "Prime", "Cedar", "Atlas", "Nova", "Stone", "Swift", "Lumen", "Vertex"]
NOUN = ["peak", "wind", "field", "bridge", "works", "point", "grid", "line", "forge", "labs",
         "path", "wave", "gate", "stack", "hub", "craft", "leaf", "port", "scale", "mark"]
SUFFIX = ["Inc", "GmbH", "Ltd", "SA", "BV", "AB", "Pty", "KK", "LLC", "Group", "Systems", "Partners"]
TLD = ["com", "io", "net", "co", "de", "fr", "co.uk", "com.au"]
FIRST_NAMES = ["Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Robin", "Kai",
          "Lena", "Marco", "Sofia", "Yuki", "Amir", "Ines", "Lars", "Mei", "Oren", "Pia"]
LAST_NAMES = ["Smith", "Müller", "García", "Rossi", "Tanaka", "Dubois", "Nowak", "Johansson", "O'Brien",
         "Chen", "Kumar", "Silva", "Kaya", "Novak", "Weber", "Fernández", "Ito", "Berg", "Hughes", "Ali"]
TITLES = ["VP Engineering", "CTO", "Head of Operations", "Procurement Manager", "CFO", "IT Director",
           "Product Manager", "Office Manager", "Data Analyst", "COO"]
FREE_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com"]
ACTIVITY_KINDS = {"call": 35, "email": 35, "meeting": 15, "task": 15}
ACTIVITY_LINKS = {"account": 40, "contact": 40, "opportunity": 20}
OPEN_STAGES = ["Prospecting", "Qualification", "Proposal", "Negotiation"]


_CUMULATIVE: dict[int, tuple[list, list[float]]] = {}


def pick(rng: random.Random, weights: dict[str, Any]) -> str:
    """A key of ``weights`` drawn in proportion to its weight."""
    table = _CUMULATIVE.get(id(weights))
    if table is None:
        keys, cum, total = list(weights), [], 0.0
        for w in weights.values():
            total += w
            cum.append(total)
        table = _CUMULATIVE[id(weights)] = (keys, cum)
    keys, cum = table
    return keys[bisect.bisect_right(cum, rng.random() * cum[-1])]

