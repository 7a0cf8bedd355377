"""The official JavaScript client (`@supabase/supabase-js`, pinned in package-lock.json) against
a real server.

Every `tests/js/*.test.mjs` is one pytest case, run with `node --test` and pointed at the session
server through PB_URL, PB_ANON_KEY and PB_SERVICE_KEY. The npm packages are installed with
`npm ci` when node_modules is missing or was installed from another lock file. A machine without
Node.js fails these tests rather than skipping them: the JS client is part of what we claim.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from harness import ServerProcess

JS_DIR = Path(__file__).resolve().parent
LOCK_FILE = JS_DIR / "package-lock.json"
# Inside node_modules, so `npm ci` (which deletes node_modules first) also drops a stale stamp.
STAMP_FILE = JS_DIR / "node_modules" / ".pocketbizz-lock.sha256"
TEST_FILES = sorted(p.name for p in JS_DIR.glob("*.test.mjs"))
INSTALL_TIMEOUT_S = 600
TEST_TIMEOUT_S = 300


def _missing_tools() -> str | None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return (
                f"`{tool}` not found on PATH: the supabase-js tests need Node.js 20+ and npm "
                f"(e.g. `apt-get install nodejs npm`)"
            )
    return None


def _lock_digest() -> str:
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()


def _npm_ci() -> str | None:
    """`npm ci` unless node_modules was installed from this very lock file; the problem if any.
    Several test runs may share this checkout at once: check-and-install under a file lock."""
    path_key = hashlib.sha256(str(JS_DIR).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"pocketbizz-npm-{path_key}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        digest = _lock_digest()
        if STAMP_FILE.exists() and STAMP_FILE.read_text().strip() == digest:
            return None
        try:
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=JS_DIR,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return f"npm ci did not finish within {INSTALL_TIMEOUT_S} s"
        if done.returncode != 0:
            return f"npm ci failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        STAMP_FILE.write_text(digest + "\n")
    return None


@pytest.fixture(scope="session")
def js_setup_problem() -> str | None:
    """Why the JS tests cannot run (no Node.js, npm ci failed), or None once installed. Returned
    rather than raised so each test FAILS with the message instead of erroring in setup."""
    return _missing_tools() or _npm_ci()


def test_js_suite_is_present() -> None:
    # Guards the parametrization below: with no files it would silently collect nothing.
    assert "day.test.mjs" in TEST_FILES


@pytest.mark.parametrize("test_file", TEST_FILES)
def test_js_sdk(test_file: str, js_setup_problem: str | None, server: ServerProcess) -> None:
    if js_setup_problem is not None:
        pytest.fail(js_setup_problem, pytrace=False)
    env = {
        **os.environ,
        "PB_URL": server.url,
        "PB_ANON_KEY": server.anon_key,
        "PB_SERVICE_KEY": server.service_key,
        "NO_COLOR": "1",
    }
    # Node 20 has WebSocket only behind this flag (global from Node 22); realtime-js needs it
    # to run with default client options, i.e. without a `transport`. --test-force-exit: fetch
    # keeps idle keep-alive sockets open, which would hold the process ~10 s after the tests.
    cmd = [
        "node",
        "--experimental-websocket",
        "--test",
        "--test-force-exit",
        "--test-reporter=spec",
        test_file,
    ]
    try:
        done = subprocess.run(
            cmd,
            cwd=JS_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=TEST_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(
            f"{test_file} timed out after {TEST_TIMEOUT_S} s; output:\n{out}", pytrace=False
        )
    if done.returncode != 0:
        pytest.fail(
            f"`node --test {test_file}` exited {done.returncode}; output:\n{done.stdout}",
            pytrace=False,
        )
    # `node --test` exits 0 for a file that defines no tests or skips them; neither counts.
    summary = dict(re.findall(r"^ℹ (pass|skipped|todo|cancelled) (\d+)$", done.stdout, re.M))
    assert int(summary.get("pass", "0")) > 0, done.stdout
    assert summary.get("skipped") == "0" and summary.get("todo") == "0", done.stdout
