"""docs/seed-checklist.md is true: every test it cites exists and is collected by pytest, and for a handful of rows
a small break of the code the row names makes the cited test fail (checked in a temporary copy of the code)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKLIST = ROOT / "docs" / "seed-checklist.md"


def _proof_cells() -> list[str]:
    """The last cell of every table row (the "proof" column), header rows left out."""
    cells = []
    for line in CHECKLIST.read_text().splitlines():
        if line.startswith("| ") and not line.startswith(("| item", "| metric", "|---")):
            cells.append(line.rstrip(" |").rsplit(" | ", 1)[-1])
    return cells


def cited_tests() -> list[str]:
    """Test ids as the document cites them: `tests/x.py`, `tests/x.py::name`, and `::name` or a bare `test_name`
    for the file cited just before it in the same cell."""
    cited = []
    for cell in _proof_cells():
        current = None
        for token in re.findall(r"`([^`]+)`", cell):
            if token.startswith("tests/"):
                current = token.split("::")[0]
                cited.append(token)
            elif re.fullmatch(r"(::)?(test_\w+|Test\w+)(::\w+)*", token):
                assert current, f"`{token}` without a file before it in: {cell}"
                cited.append(f"{current}::{token.removeprefix('::')}")
    return cited


def _collected(paths: list[str]) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {line.split("[", 1)[0] for line in result.stdout.splitlines() if "::" in line}


def test_every_row_cites_a_test():
    rows_without_tests = [cell for cell in _proof_cells() if "`tests/" not in cell]
    assert rows_without_tests == []


def test_every_cited_test_is_collected_by_pytest():
    cited = cited_tests()
    assert len(cited) > 60
    patterns = sorted({test.split("::")[0] for test in cited})
    assert [pattern for pattern in patterns if not list(ROOT.glob(pattern))] == []  # `tests/x_*.py` may match many
    files = sorted({str(path.relative_to(ROOT)) for pattern in patterns for path in ROOT.glob(pattern)})
    collected = _collected(files)
    missing = [
        test
        for test in cited
        if "::" in test and not any(node == test or node.startswith(test + "::") for node in collected)
    ]
    assert missing == []


# (row, file to break, exact text, replacement, the test the row cites): each break is small and plausible.
BREAKS = [
    (
        "4.1 X-Signature",
        "security/signing.py",
        'return f"v2\\n{method.upper()}\\n{path}\\n{timestamp}\\n{content_sha256}".encode()',
        'return f"v2\\n{method.upper()}\\n{path}\\n{content_sha256}".encode()',  # the timestamp unbound
        "tests/security/test_signing_api.py::test_upload_signature_table",
    ),
    (
        "5.1 backfill campaign_status",
        "leads/services.py",
        "WHEN status = 'contacted' THEN 'active'::campaign_status",
        "WHEN status = 'contacted' THEN 'queued'::campaign_status",
        "tests/leads/test_backfill_commands.py::test_backfill_campaign_status_maps_like_the_seed_and_is_idempotent",
    ),
    (
        "7.1 lead_verified",
        "leads/services.py",
        '"lead_verified"',
        '"lead_checked"',
        "tests/leads/test_lead_verified.py",
    ),
    (
        "Phase 10 environment variables set",
        "equity_connect/settings/production.py",
        "if not FORM_LINK_SECRET:",
        "if False:",
        "tests/equity_connect/test_settings.py::test_production_refuses_to_start_without_its_secrets",
    ),
]


def _copy_of_the_code(into: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", "var", ".git", "__pycache__", "node_modules", "*.pyc")
    shutil.copytree(ROOT, into, ignore=ignore)
    (into / ".venv").symlink_to(ROOT / ".venv")
    if (ROOT / ".env").exists():
        shutil.copy(ROOT / ".env", into / ".env")
    return into


@pytest.mark.slow  # copies the code and runs pytest in it, once per break
@pytest.mark.parametrize(("row", "path", "text", "replacement", "test"), BREAKS, ids=[b[0] for b in BREAKS])
def test_breaking_the_code_a_row_names_fails_its_cited_test(tmp_path, row, path, text, replacement, test):
    assert test in cited_tests(), f"{row}: {test} is not cited by docs/seed-checklist.md"
    copy = _copy_of_the_code(tmp_path / "copy")
    source = copy / path
    original = source.read_text()
    assert text in original, f"{row}: the text to break is not in {path}"

    def run() -> subprocess.CompletedProcess:
        # The copy runs in the current test database (--reuse-db): the cited tests roll back what they write.
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        return subprocess.run(
            [sys.executable, "-m", "pytest", "--reuse-db", "-p", "no:cacheprovider", "-q", "-x", test],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    unbroken = run()
    assert unbroken.returncode == 0, unbroken.stdout[-3000:]
    source.write_text(original.replace(text, replacement))
    broken = run()
    assert broken.returncode == 1, f"{row}: {test} still passes with {path} broken:\n{broken.stdout[-2000:]}"
