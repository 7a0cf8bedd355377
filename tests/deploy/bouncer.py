"""Debian's PgBouncer in transaction mode in front of a PostgreSQL socket, for the deployment
tests (see conftest.py). It runs on a free port with an auth file made for `authenticator`, and
as the user the embedded PostgreSQL runs as when the tests run as root (PgBouncer refuses root).
"""

from __future__ import annotations

import configparser
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DEPLOYED_INI = Path(__file__).resolve().parents[2] / "deploy" / "pgbouncer" / "pgbouncer.ini"
AUTHENTICATOR_PASSWORD = "test-authenticator"
# Few server sessions for many clients: every session serves many tenants' transactions in
# turn, so anything a transaction left behind would reach the next tenant.
SERVER_SESSIONS = 3


def _pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(found).exists():
        raise RuntimeError("pgbouncer is not installed: run `make pgbouncer` (Debian's package)")
    return found


@dataclass
class PgBouncer:
    """One PgBouncer process, configured as deployed (pool_mode=transaction), in front of a
    PostgreSQL socket."""

    socket_dir: str
    database: str
    port: int
    workdir: Path
    server_sessions: int = SERVER_SESSIONS
    proc: subprocess.Popen[bytes] | None = None

    def url(self, user: str = "authenticator", password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> None:
        owner = os.stat(self.socket_dir).st_uid
        # Its auth file holds the only login clients may use: the request pools' role.
        (self.workdir / "userlist.txt").write_text(f'"authenticator" "{AUTHENTICATOR_PASSWORD}"\n')
        # The deployment's own file (deploy/pgbouncer/pgbouncer.ini), so what is tested is
        # what is shipped; only where it listens, what it reaches and its files differ.
        ini = configparser.ConfigParser(interpolation=None)
        ini.read(DEPLOYED_INI)
        ini.remove_section("databases")
        ini["databases"] = {
            self.database: f"host={self.socket_dir} port=5432 dbname={self.database}"
        }
        ini["pgbouncer"].update(
            {
                "listen_addr": "127.0.0.1",
                "listen_port": str(self.port),
                "auth_file": str(self.workdir / "userlist.txt"),
                "default_pool_size": str(self.server_sessions),
                "reserve_pool_size": "0",
                "logfile": str(self.workdir / "pgbouncer.log"),
                "pidfile": str(self.workdir / "pgbouncer.pid"),
            }
        )
        with (self.workdir / "pgbouncer.ini").open("w") as out:
            ini.write(out)
        for path in (self.workdir, *self.workdir.iterdir()):
            os.chown(path, owner, -1)
            path.chmod(0o700 if path.is_dir() else 0o600)
        as_user = ["-u", pwd.getpwuid(owner).pw_name] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            [_pgbouncer_binary(), *as_user, str(self.workdir / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited early; see {self.workdir}/pgbouncer.log")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("pgbouncer did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
