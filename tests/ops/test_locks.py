"""The runtime and dev locks agree on every shared package (`make test` runs the same check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "tools" / "check_locks.py"


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), *args], capture_output=True, text=True, timeout=30
    )


def test_the_repository_locks_agree() -> None:
    done = _check()
    assert done.returncode == 0, done.stderr


def test_a_drifted_pin_fails(tmp_path: Path) -> None:
    runtime = tmp_path / "requirements.lock"
    dev = tmp_path / "requirements-dev.lock"
    runtime.write_text("asyncpg==0.32.0\nPyJWT==2.15.1\ntyping_extensions==4.16.0\n")
    dev.write_text("asyncpg==0.32.0\npyjwt==2.15.0\ntyping-extensions==4.16.0\npytest==9.2.0\n")
    done = _check(str(runtime), str(dev))
    assert done.returncode == 1
    assert done.stderr == (
        "lock drift: pyjwt: requirements.lock pins 2.15.1, requirements-dev.lock pins 2.15.0\n"
    )
    dev.write_text("asyncpg==0.32.0\n")
    missing = _check(str(runtime), str(dev))
    assert (
        missing.returncode == 1
        and "pyjwt: pinned in requirements.lock but missing" in missing.stderr
    )
