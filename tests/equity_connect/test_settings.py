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


PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(60),
    "ENCRYPTION_KEY": "Tl5k1xM2Pn9fQx3Jx0m0F6QWvLkq1b2Yt8eU0wq3h1E=",
    "FORM_LINK_SECRET": secrets.token_hex(32),
    "ALLOWED_HOSTS": "leads.example.com",
    "SENDER_POSTAL_ADDRESS": "Equity Connect, 1 Market St, San Francisco, CA 94105",
}


def check_deploy(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}, **env},
    )


def test_production_settings_pass_check_deploy():
    result = check_deploy(PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_requires_the_senders_postal_address():
    result = check_deploy({**PRODUCTION_ENV, "SENDER_POSTAL_ADDRESS": " "})
    assert result.returncode != 0
    assert "equity_connect.E004" in result.stderr and "SENDER_POSTAL_ADDRESS" in result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ENCRYPTION_KEY", "FORM_LINK_SECRET"])
def test_production_refuses_to_start_without_its_secrets(missing):
    env = {**PRODUCTION_ENV, missing: ""}
    result = django_setting("DEBUG", env, module="equity_connect.settings.production")
    assert result.returncode != 0
    assert missing in result.stderr
