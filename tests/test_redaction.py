"""Secrets never show: database passwords in messages and logs; the CRM's own words always do.

The CLI runs in-process through the `roe` fixture (real argument parsing, real engine creation,
the one error printer); the log is a real file written by the CLI's own logging set-up.
"""
# The sf_emulator fixture arrives as an argument named like its import:
# ruff: noqa: F811

from __future__ import annotations

import logging

import pytest

from roe_cli import logsetup
from roe_cli.shared.errors import redact, register_secret
from tests.emulators.salesforce import sf_emulator  # noqa: F401

PASSWORD = "S3cretPassw0rd"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://roe:{PASSWORD}@db.internal:5432/roe",  # the URL: host unknown
        f"postgres://roe:{PASSWORD}@db.internal:5432/roe",  # a scheme SQLAlchemy does not know
        f"postgresql+psycopg://roe:{PASSWORD}@127.0.0.1:1/roe",  # nothing listening
        f"mysql://roe:{PASSWORD}@h/db",  # a driver that is not installed
        f"mysql://roe:{PASSWORD}@h:notaport/db",  # a URL that does not parse
        f"postgresql://roe:{PASSWORD[:6]}@{PASSWORD[6:]}@h/db",  # an unencoded @ in the password
    ],
)
def test_a_database_password_never_shows_in_the_error_or_the_log(roe, tmp_path, url):
    log = tmp_path / "roe.log"
    res = roe("-v", "--log-file", str(log), "audit", db=url)
    assert res.exit_code == 2, res.output
    assert "Error:" in res.stderr and "Traceback" not in res.output
    assert "***" in res.stderr  # the URL is still named, its password masked
    text = res.output + log.read_text(encoding="utf-8")
    assert PASSWORD not in text and PASSWORD[:6] not in text and PASSWORD[6:] not in text


def test_a_driver_that_is_not_installed_names_the_url_without_its_password(roe):
    res = roe("audit", db="mysql://u:pw@h/db")
    assert res.exit_code == 2
    assert "mysql://u:***@h/db" in res.stderr and "not installed" in res.stderr
    assert ":pw@" not in res.output


def test_a_log_line_that_quotes_a_database_url_hides_its_password(tmp_path):
    log = tmp_path / "roe.log"
    logsetup.setup_logging(False, str(log))
    try:
        logging.getLogger("roe.test").warning(
            "retrying postgresql+psycopg://roe:hunter2@db:5432/roe and mysql://u:p%40ss@h/db")
    finally:
        for handler in logging.getLogger().handlers:
            handler.close()
        logging.getLogger().handlers.clear()
    text = log.read_text(encoding="utf-8")
    assert "postgresql+psycopg://roe:***@db:5432/roe" in text and "mysql://u:***@h/db" in text
    assert "hunter2" not in text and "p%40ss" not in text


def test_a_password_read_from_a_url_is_hidden_wherever_it_appears_later(roe, monkeypatch):
    # Read from ROE_DB; a driver may echo it without the URL around it (a DSN, a quoted word).
    monkeypatch.setenv("ROE_DB", "postgresql://roe:Unusual%2FPw9@db.internal:5432/roe")
    from roe_cli.settings import database_url

    database_url(None)
    assert redact("auth failed for 'Unusual%2FPw9' and 'Unusual/Pw9'") == "auth failed for '***' and '***'"


@pytest.mark.parametrize(
    "crm_text",
    [
        "INVALID_SESSION_ID: Session expired or invalid",
        "INVALID_AUTH_TOKEN: Token expired",
        "EXPIRED_ACCESS_TOKEN: token: expired, sign in again",
        "REQUIRED_FIELD_MISSING: Password: must be set",
        "Bearer authentication failed",
    ],
)
def test_redaction_keeps_the_crms_words(crm_text):
    assert redact(crm_text) == crm_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer eyJhbGciOi.J9x2Yz8", "Authorization: Bearer ***"),
        ("https://x.my.salesforce.com/?access_token=abc&n=1", "https://x.my.salesforce.com/?access_token=***&n=1"),
        ('{"access_token": "short", "instance_url": "https://x"}', '{"access_token": "***", "instance_url": "https://x"}'),
        ("password=hunter2 host=db", "password=*** host=db"),
        ("GET /crm/v3/owners?hapikey=abc&limit=1", "GET /crm/v3/owners?hapikey=***&limit=1"),
        ("token: a1b2c3d4e5f6", "token: ***"),
        ("session 00D5e000000AbCdEAZ!AQ0AQH5kz0_7aB1cD2eF3gH4iJ5kL6mN7oP8 gone", "session *** gone"),
        ("pat-na1-00000000-0000-0000-0000-000000000000 refused", "*** refused"),
    ],
)
def test_redaction_removes_token_shaped_values(text, expected):
    assert redact(text) == expected


def test_a_registered_secret_is_removed_even_when_it_looks_like_a_word():
    register_secret("correcthorse")
    assert redact("INVALID_LOGIN: correcthorse was refused") == "INVALID_LOGIN: *** was refused"


def test_a_salesforce_401_keeps_its_words_and_never_shows_the_token(sf_emulator, roe, tmp_path):
    wrong = "00D000000000001EAA!AQ0AQWrongTokenThatMustNeverBePrinted.0123456789"
    log = tmp_path / "roe.log"
    res = roe("--log-file", str(log), "sync", "--source", "salesforce",
              env={"SALESFORCE_ACCESS_TOKEN": wrong})
    assert res.exit_code == 3
    text = res.output + log.read_text(encoding="utf-8")
    assert "INVALID_SESSION_ID: Session expired or invalid" in text
    assert wrong not in text and "WrongTokenThatMustNeverBePrinted" not in text
