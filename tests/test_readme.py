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
