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


def apt_install(*packages: str, start_services: bool = True) -> None:
    """`apt-get install` the packages (as root). `start_services=False` keeps their packaged system services
    from starting (a daemon on its default port that nothing here uses): Debian's policy-rc.d hook, in place
    only while apt runs, unless the machine has one of its own."""
    if not (is_root() and shutil.which("apt-get")):
        raise SystemExit(f"please install {' '.join(packages)} (apt-get install {' '.join(packages)})")
    say(f"installing {' '.join(packages)} with apt-get")
    policy = Path("/usr/sbin/policy-rc.d")
    if start_services or policy.exists():
        _apt_install(packages)
        return
    policy.write_text("#!/bin/sh\n# written by scripts/bootstrap.py while apt-get runs: start no service\nexit 101\n")
    policy.chmod(0o755)
    try:
        _apt_install(packages)
    finally:
        policy.unlink(missing_ok=True)


def _apt_install(packages: tuple[str, ...]) -> None:
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
