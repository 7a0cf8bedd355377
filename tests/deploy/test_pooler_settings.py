"""The settings of a deployment behind a transaction pooler: DATABASE_DIRECT_URL for the
session-scoped connections, and the statement cache refused unless off (checked at start)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness import free_port
from pydantic import ValidationError

from pocketbizz.settings import Settings

POOLED = "postgresql://authenticator@pgbouncer:6432/pocketbizz"
DIRECT = "postgresql://owner:secret@db:5432/pocketbizz"


def test_the_direct_url_defaults_to_database_url() -> None:
    assert Settings(database_url=DIRECT).direct_database_url == DIRECT
    assert Settings().direct_database_url is None
    pooled = Settings(database_url=POOLED, database_direct_url=DIRECT, statement_cache_size=0)
    assert (pooled.database_url, pooled.direct_database_url) == (POOLED, DIRECT)


def test_a_pooler_with_the_statement_cache_on_is_refused() -> None:
    with pytest.raises(ValidationError, match="PB_STATEMENT_CACHE_SIZE must be 0"):
        Settings(database_url=POOLED, database_direct_url=DIRECT)
    with pytest.raises(ValidationError, match="DATABASE_DIRECT_URL needs DATABASE_URL"):
        Settings(database_direct_url=DIRECT, statement_cache_size=0)
    with pytest.raises(ValidationError):
        Settings(statement_cache_size=-1)


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PB_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "-m", "pocketbizz", "serve", "--port", str(free_port())],
        env={**base, "XDG_DATA_HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_says_in_one_line_what_is_wrong(tmp_path: Path) -> None:
    closed = free_port()
    done = _serve(
        tmp_path,
        DATABASE_URL=f"postgresql://authenticator@127.0.0.1:{closed}/db",
        DATABASE_DIRECT_URL=f"postgresql://owner:hunter2@127.0.0.1:{closed}/db",
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        "pocketbizz: invalid settings: PB_STATEMENT_CACHE_SIZE must be 0 when DATABASE_DIRECT_URL"
    )
    assert len(done.stderr.splitlines()) == 1

    # Migrations go to the direct URL, so that is the one whose failure is reported.
    done = _serve(
        tmp_path,
        DATABASE_URL=f"postgresql://authenticator@127.0.0.1:{free_port()}/db",
        DATABASE_DIRECT_URL=f"postgresql://owner:hunter2@127.0.0.1:{closed}/db",
        PB_STATEMENT_CACHE_SIZE="0",
    )
    assert done.returncode == 2
    assert done.stderr.startswith("pocketbizz: cannot connect to DATABASE_DIRECT_URL: ")
    assert "hunter2" not in done.stderr
