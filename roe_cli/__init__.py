"""roe: Rules of Engagement for the CRM, as code."""

__version__ = "0.1.0"
