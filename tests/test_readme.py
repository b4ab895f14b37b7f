"""The README stays true: the two commands first, and every setting the code reads is in its table."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_leads_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```", 2)[1]
    assert "make run" in first_block and "make test" in first_block
    assert readme.index("make run") < readme.index("## Configuration")


def test_every_environment_setting_is_documented():
    settings_source = "\n".join(p.read_text() for p in (ROOT / "equity_connect" / "settings").glob("*.py"))
    variables = set(re.findall(r'env\.[a-z]+\(\s*"([A-Z][A-Z0-9_]+)"', settings_source))
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", readme, flags=re.M))
    documented |= {
        name
        for row in re.findall(r"^\| (`[A-Z].*?) \|", readme, flags=re.M)
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)
    }
    assert variables, "no settings found"
    assert sorted(variables - documented) == []
    env_example = (ROOT / ".env.example").read_text()
    assert sorted(name for name in variables if f"{name}=" not in env_example and name != "TEST_DATABASE_NAME") == []


def test_the_secrets_recipe_makes_values_the_settings_accept():
    """Every command of README's secrets table prints a value the application accepts for that setting."""
    import base64
    import subprocess
    import sys

    from cryptography.fernet import Fernet

    from security.pii import _parse_keys

    readme = (ROOT / "README.md").read_text()
    recipe = readme[readme.index("**Secrets.**") : readme.index("3. **Release step**")]
    rows = dict(re.findall(r"^\s*\| `([A-Z_]+)` \| `(python3 -c .+?)`", recipe, flags=re.M))
    required = {"SECRET_KEY", "ENCRYPTION_KEY", "PII_ENCRYPTION_KEYS", "BLIND_INDEX_KEY", "FORM_LINK_SECRET"}
    assert required | {"METRICS_TOKEN", "INSTANTLY_WEBHOOK_SECRET"} <= set(rows)
    values = {}
    for name, command in rows.items():
        code = re.fullmatch(r'python3 -c "(.+)"', command).group(1)
        values[name] = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert len(values[name]) >= 32, name
    assert len(values["SECRET_KEY"]) >= 50
    Fernet(values["ENCRYPTION_KEY"].encode())
    assert _parse_keys([values["PII_ENCRYPTION_KEYS"]], "PII_ENCRYPTION_KEYS")[0][0] == "k2"
    assert _parse_keys([values["BLIND_INDEX_KEY"]], "BLIND_INDEX_KEY")[0][0] == "2"
    assert len(bytes.fromhex(values["FORM_LINK_SECRET"])) == 32
    assert len(base64.urlsafe_b64decode(values["METRICS_TOKEN"] + "==")) == 32
    assert "Leave `HMAC_SECRET_KEY` **empty**" in recipe
