"""docs/api.md's signing examples are the code partners copy: this runs them as printed.

Each example's signer is checked against the page's test vector (and the server's own signer), and the whole
example uploads a file to the live test server and reads its status."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from equity_connect.db import service_context
from pipeline.models import Upload
from security import signing
from tests.factories import PartnerKeyFactory

API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _section(title: str) -> str:
    text = API_MD.read_text()
    start = text.index(f"### {title}")
    end = text.find("\n### ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _blocks(title: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _section(title), flags=re.DOTALL)


def _vector() -> dict[str, str]:
    """The two tables of "Checking your signer", as {name: value} with the backticks removed."""
    rows = re.findall(r"^\| (`?[^|`]+`?) \| `?([^|`]+)`? \|", _section("Checking your signer"), flags=re.M)
    return {name.strip("` "): value.strip() for name, value in rows}


VECTOR_BODY = b"mak\nM1\n"


def test_the_vector_is_what_the_server_computes():
    vector = _vector()
    assert "the 7 bytes `mak\\nM1\\n`" in _section("Checking your signer")
    digest = vector["X-Content-SHA256"]
    assert digest == hashlib.sha256(VECTOR_BODY).hexdigest()
    expected = signing.sign_v2(
        vector["secret"],
        method=vector["method"],
        path=vector["path"],
        timestamp=vector["timestamp"],
        content_sha256=digest,
    )
    assert vector["X-Signature"] == f"v2={expected}"


def test_python_signer_matches_the_vector():
    signer, _ = _blocks("Python (standard library)", "python")
    namespace: dict = {}
    exec(compile(signer, "docs/api.md (Python signer)", "exec"), namespace)  # noqa: S102 - our own document
    vector = _vector()
    headers = namespace["signed_headers"](
        vector["secret"], vector["key id"], vector["method"], vector["path"], VECTOR_BODY, vector["timestamp"]
    )
    assert headers == {
        "X-Content-SHA256": vector["X-Content-SHA256"],
        "X-Signature-Timestamp": vector["timestamp"],
        "X-Signature": vector["X-Signature"],
        "X-Key-Id": vector["key id"],
    }


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    return node


def test_node_signer_matches_the_vector(tmp_path):
    signer, _ = _blocks("Node.js (18+, no dependencies)", "js")
    vector = _vector()
    script = tmp_path / "vector.mjs"
    script.write_text(
        signer
        + "\nconsole.log(JSON.stringify(signedHeaders("
        + ", ".join(json.dumps(vector[k]) for k in ("secret", "key id", "method", "path"))
        + f', Buffer.from("mak\\nM1\\n"), {json.dumps(vector["timestamp"])})));\n'
    )
    result = subprocess.run([_node(), str(script)], capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(result.stdout) == {
        "X-Content-SHA256": vector["X-Content-SHA256"],
        "X-Signature-Timestamp": vector["timestamp"],
        "X-Signature": vector["X-Signature"],
        "X-Key-Id": vector["key id"],
    }


def _uploads() -> list[Upload]:
    with service_context():
        return list(Upload.objects.order_by("created_at"))


def _run_example(command: list[str], live_server, tmp_path) -> tuple[str, object]:
    key = PartnerKeyFactory()
    leads = tmp_path / "leads.csv"
    leads.write_bytes(b"mak,first_name\nDOC-1,Ada\nDOC-2,Grace\n")
    env = {**os.environ, "EC_URL": live_server.url, "EC_KEY_ID": key.key_id, "EC_SECRET": key.plain_secret}
    result = subprocess.run([*command, str(leads)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout, key


@pytest.mark.slow  # a live server and a child process
@pytest.mark.django_db(transaction=True)
def test_python_example_uploads_to_the_live_server(live_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    signer, sender = _blocks("Python (standard library)", "python")
    script = tmp_path / "upload.py"
    script.write_text(signer + "\n" + sender)
    stdout, key = _run_example([sys.executable, str(script)], live_server, tmp_path)
    (upload,) = _uploads()
    assert upload.partner_key_id == key.pk
    first, second = stdout.strip().splitlines()
    assert first.startswith("202 ") and str(upload.id) in first
    assert second.startswith("(200, ") and "'status': 'received'" in second


@pytest.mark.slow  # a live server and a child process
@pytest.mark.django_db(transaction=True)
def test_node_example_uploads_to_the_live_server(live_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    signer, sender = _blocks("Node.js (18+, no dependencies)", "js")
    script = tmp_path / "upload.mjs"
    script.write_text(signer + "\n" + sender)
    stdout, key = _run_example([_node(), str(script)], live_server, tmp_path)
    (upload,) = _uploads()
    assert upload.partner_key_id == key.pk
    # Node prints objects over several lines: the POST's answer, then the status request's.
    assert stdout.startswith("202 {") and f"upload_id: '{upload.id}'" in stdout
    assert "\n200 {" in stdout and "status: 'received'" in stdout.split("\n200 {")[1]
