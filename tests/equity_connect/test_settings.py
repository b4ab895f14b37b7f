"""Configuration: the process environment overrides .env; production settings pass `check --deploy`."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def django_setting(name: str, env: dict, module: str = "equity_connect.settings.local") -> subprocess.CompletedProcess:
    code = f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": module, **env},
    )


def test_process_environment_overrides_dotenv():
    assert (ROOT / ".env").exists(), "the bootstrap writes .env"
    result = django_setting("FEEDER_DAILY_LIMIT", {"FEEDER_DAILY_LIMIT": "17"})
    assert result.stdout.strip() == "17"
    dotenv_secret = next(
        line.split("=", 1)[1]
        for line in (ROOT / ".env").read_text().splitlines()
        if line.startswith("FORM_LINK_SECRET=")
    )
    assert django_setting("FORM_LINK_SECRET", {}).stdout.strip() == dotenv_secret
    assert django_setting("FORM_LINK_SECRET", {"FORM_LINK_SECRET": "from-env"}).stdout.strip() == "from-env"


# What the production settings refuse to start without.
PRODUCTION_SECRETS = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(60),
    "ENCRYPTION_KEY": "Tl5k1xM2Pn9fQx3Jx0m0F6QWvLkq1b2Yt8eU0wq3h1E=",
    "PII_ENCRYPTION_KEYS": "k1:3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "BLIND_INDEX_KEY": "1:YmxpbmQtaW5kZXgtdGVzdC1rZXktMDEyMzQ1Njc4OWE=",
    "FORM_LINK_SECRET": secrets.token_hex(32),
    "ALLOWED_HOSTS": "leads.example.com",
    "SENDER_POSTAL_ADDRESS": "Equity Connect, 1 Market St, San Francisco, CA 94105",
}
# … and what `check --deploy` wants besides (README, "Deploying").
PRODUCTION_ENV = {
    **PRODUCTION_SECRETS,
    "METRICS_TOKEN": secrets.token_hex(16),
    "METRICS_ALLOWED_NETWORKS": "",
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "CONSENT_FORM_URL": "https://leads.example.com",
    "INSTANTLY_API_KEY": "instantly-key",
    "INSTANTLY_CAMPAIGN_ID": "campaign-1",
    "INSTANTLY_WEBHOOK_SECRET": secrets.token_hex(32),
    "ALERT_EMAILS": "ops@example.com",
    "ALERT_WEBHOOK_URL": "",
    "SUPPORT_CONTACTS": "on-call=+1 415 555 0100",
    "HMAC_SECRET_KEY": "",
}
# The environment of this test run, without its own settings module (and .env's values stay beneath these).
BASE_ENV = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}


def check_deploy(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**BASE_ENV, **env},
    )


def test_production_settings_pass_check_deploy():
    result = check_deploy(PRODUCTION_ENV, "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_with_errors_on_an_incomplete_production_config():
    incomplete = {
        **PRODUCTION_ENV,
        "METRICS_TOKEN": "",
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "CONSENT_FORM_URL": "http://127.0.0.1:8000",
        "INSTANTLY_API_KEY": "",
        "INSTANTLY_CAMPAIGN_ID": "",
        "INSTANTLY_WEBHOOK_SECRET": "",
        "ALERT_EMAILS": "",
        "HMAC_SECRET_KEY": "too-short",
    }
    result = check_deploy(incomplete)  # the default fail level: errors only
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "ERRORS:" in output
    for check_id in ("E010", "E011", "E012", "E013", "E014", "E015"):
        assert f"equity_connect.{check_id}" in output, (check_id, output)
    assert output.count("equity_connect.E013") == 3  # each Instantly setting by name


COMPLETE = {
    "METRICS_TOKEN": "t0ken",
    "METRICS_ALLOWED_NETWORKS": [],
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "CONSENT_FORM_URL": "https://leads.example.com",
    "INSTANTLY_API_KEY": "key",
    "INSTANTLY_CAMPAIGN_ID": "campaign",
    "INSTANTLY_WEBHOOK_SECRET": "secret",
    "ALERT_EMAILS": ["ops@example.com"],
    "ALERT_WEBHOOK_URL": "",
    "HMAC_SECRET_KEY": "",
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, []),
        ({"METRICS_TOKEN": ""}, ["E010"]),
        ({"METRICS_TOKEN": "", "METRICS_ALLOWED_NETWORKS": ["10.0.0.0/8"]}, []),
        ({"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}, ["E011"]),
        ({"EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}, ["E011"]),
        ({"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}, ["E011"]),
        ({"CONSENT_FORM_URL": "http://127.0.0.1:8000"}, ["E012"]),
        ({"CONSENT_FORM_URL": "https://localhost"}, ["E012"]),
        ({"CONSENT_FORM_URL": "https://[::1]:8443"}, ["E012"]),
        ({"CONSENT_FORM_URL": "http://leads.example.com"}, ["E012"]),
        ({"CONSENT_FORM_URL": ""}, ["E012"]),
        ({"INSTANTLY_API_KEY": ""}, ["E013"]),
        ({"INSTANTLY_CAMPAIGN_ID": ""}, ["E013"]),
        ({"INSTANTLY_WEBHOOK_SECRET": ""}, ["E013"]),
        ({"ALERT_EMAILS": []}, ["E014"]),
        ({"ALERT_EMAILS": [], "ALERT_WEBHOOK_URL": "https://hooks.example.com/x"}, []),
        ({"HMAC_SECRET_KEY": "x" * 31}, ["E015"]),
        ({"HMAC_SECRET_KEY": "é" * 16}, []),  # 32 bytes
        ({"HMAC_SECRET_KEY": "x" * 32}, []),
    ],
)
def test_each_deploy_check(settings, change, expected):
    from equity_connect.checks import production_settings_are_complete

    for name, value in {**COMPLETE, **change}.items():
        setattr(settings, name, value)
    found = production_settings_are_complete()
    assert [error.id.split(".")[1] for error in found] == expected
    assert all(error.is_serious() for error in found)  # errors, not warnings


def test_check_deploy_requires_the_senders_postal_address():
    result = check_deploy({**PRODUCTION_ENV, "SENDER_POSTAL_ADDRESS": " "}, "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "equity_connect.E004" in result.stderr and "SENDER_POSTAL_ADDRESS" in result.stderr


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "ENCRYPTION_KEY", "PII_ENCRYPTION_KEYS", "BLIND_INDEX_KEY", "FORM_LINK_SECRET"]
)
def test_production_refuses_to_start_without_its_secrets(missing):
    env = {**PRODUCTION_SECRETS, missing: ""}
    result = django_setting("DEBUG", env, module="equity_connect.settings.production")
    assert result.returncode != 0
    assert missing in result.stderr
