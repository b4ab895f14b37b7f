"""What every part of the bootstrap (`scripts/bootstrap.py`, `scripts/pgcluster.py`) shares: the paths, the
`[bootstrap]` messages, running a command, and installing Debian packages when nothing else will do.

Standard library only: this runs before the virtualenv exists.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


def say(message: str) -> None:
    print(f"[bootstrap] {message}", flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kwargs)


def is_root() -> bool:
    return os.geteuid() == 0


def apt_install(*packages: str) -> None:
    if not (is_root() and shutil.which("apt-get")):
        raise SystemExit(f"please install {' '.join(packages)} (apt-get install {' '.join(packages)})")
    say(f"installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    stamp = Path("/var/lib/apt/periodic/update-success-stamp")
    lists = glob.glob("/var/lib/apt/lists/*_Packages")
    if not lists or (stamp.exists() and time.time() - stamp.stat().st_mtime > 86400):
        run(["apt-get", "update", "-qq"], env=env)
    try:
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], env=env)
    except subprocess.CalledProcessError:
        run(["apt-get", "update", "-qq"], env=env)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], env=env)
