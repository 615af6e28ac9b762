"""The smaller promises of issue 15: no empty success on a typo, `-o -`, `--version`, a lock
message in words, ISO 8601 dates in findings' details, and a CRM nobody answers for reported as
unreachable at once."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import time

import pytest
from sqlalchemy import and_, func, select

from roe_cli.db import run_lock
from roe_cli.models import accounts, owners

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- --version and the lock ------------------------------------------------------------------------


def test_version_prints_the_package_version(roe):
    from importlib.metadata import version

    result = roe("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"roe {version('roe')}"


def test_the_lock_message_is_a_sentence_naming_command_pid_host_and_time(org, roe):
    with run_lock(org, "sync hubspot"):
        result = roe("audit", "--fail-on", "never")
    assert result.exit_code == 4
    first = result.stderr.splitlines()[0]
    assert "{" not in result.stderr and '"pid"' not in result.stderr
    assert f"`roe sync hubspot` (pid {os.getpid()} on {socket.gethostname()}, since " in first
    assert re.search(r"since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)", first)
