"""`pocketbizz backup` and `pocketbizz restore`: a running instance with two tenants is backed up,
restored into a new data dir and served again — the same rows, files, passwords and keys, and
tenant B still cannot read tenant A."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pgserver
import pytest
from harness import TEST_JWT_SECRET, ServerProcess, free_port
from storage.s3_local import LocalS3
from supabase import Client, create_client

from pocketbizz.gateway.tokens import api_keys

PASSWORD = "correct horse battery"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40  # any bytes will do; the type is checked
RECEIPT = b"Receipt #1\nRoti canai x2 ... RM 4.20\n"


def _env(home: Path) -> dict[str, str]:
    """The embedded database (no DATABASE_URL), secrets kept in the data dir."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "PB_DATABASE_URL", "PB_JWT_SECRET", "PB_DATA_DIR"}
    }
    env.update(
        {
            "XDG_DATA_HOME": str(home / "xdg-data"),
            "XDG_STATE_HOME": str(home / "state"),
            "PB_LOG_LEVEL": "warning",
            "PB_LOG_FORMAT": "json",
            "PB_RATE_LIMIT_PER_MINUTE": "1000000",
            "PB_RATE_LIMIT_SIGN_IN_PER_MINUTE": "1000000",
            "PB_RATE_LIMIT_SIGN_UP_PER_MINUTE": "1000000",
        }
    )
    return env


def _pocketbizz(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pocketbizz", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


class _Served:
    def __init__(self, env: dict[str, str], data_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pocketbizz", "serve", *self._args(data_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(log, "a"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited; see {log}"
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("server not ready in time")

    def _args(self, data_dir: Path) -> list[str]:
        return ["--port", str(self.port), "--data-dir", str(data_dir)]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def _keys(env: dict[str, str], data_dir: Path) -> dict[str, str]:
    done = _pocketbizz("keys", "--json", "--data-dir", str(data_dir), env=env)
    assert done.returncode == 0, done.stderr
    keys: dict[str, str] = json.loads(done.stdout)
    return keys


def _signed_in(url: str, anon_key: str, email: str) -> tuple[Client, str]:
    client = create_client(url, anon_key)
    res = client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert res.user is not None
    return client, res.user.id


def _snapshot(service: Client) -> dict[str, Any]:
    """Every row the round trip must keep, as the service role reads it."""
    tables = ("products", "sales", "sale_items", "stock_movements", "users", "business_profiles")
    return {t: service.table(t).select("*").order("id").execute().data for t in tables}


_SECURITY = """
select 'relation' as kind, c.oid::regclass::text as name, pg_get_userbyid(c.relowner) as owner,
       coalesce(c.relacl, acldefault('r', c.relowner))::text as acl,
       c.relrowsecurity::text || c.relforcerowsecurity::text as detail
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname in ('public', 'storage', 'auth', 'pb_internal', 'realtime', 'procrastinate')
union all
select 'function', p.oid::regprocedure::text, pg_get_userbyid(p.proowner),
       coalesce(p.proacl, acldefault('f', p.proowner))::text,
       p.prosecdef::text
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname in ('public', 'storage', 'auth', 'pb_internal', 'realtime', 'procrastinate')
union all
select 'policy', schemaname || '.' || tablename || '.' || policyname, cmd, roles::text,
       coalesce(qual, '') || coalesce(with_check, '')
  from pg_policies
union all
select 'member', r.rolname || ' in ' || g.rolname, r.rolinherit::text, m.inherit_option::text,
       m.set_option::text
  from pg_auth_members m join pg_roles r on r.oid = m.member join pg_roles g on g.oid = m.roleid
 where r.rolname !~ '^pg_'
order by 1, 2
"""


def _security_catalog(data_dir: Path) -> list[tuple[str, ...]]:
    server = pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop")
    try:
        output = server.psql(f"copy ({_SECURITY}) to stdout")
    finally:
        server.cleanup()
    return [tuple(line.split("\t")) for line in output.splitlines()]


def test_backup_restore_round_trip_keeps_rows_files_passwords_keys_and_isolation(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path)
    source, target = tmp_path / "source", tmp_path / "target"
    archive = tmp_path / "backups" / "pocketbizz.tar"
    log = tmp_path / "serve.log"

    server = _Served(env, source, log)
    try:
        keys = _keys(env, source)
        tenants: dict[str, dict[str, Any]] = {}
        for name in ("a", "b"):
            client = create_client(server.url, keys["anon_key"])
            email = f"{name}@example.com"
            signed_up = client.auth.sign_up({"email": email, "password": PASSWORD})
            assert signed_up.user is not None
            uid = signed_up.user.id
            product = (
                client.table("products")
                .insert({"sku": f"ROTI-{name}", "name": f"Roti {name}", "sale_price": "2.10"})
                .execute()
                .data[0]
            )
            client.rpc(
                "adjust_stock",
                {"product_id": product["id"], "counted_quantity": 10, "reason": "count"},
            ).execute()
            sale = client.rpc(
                "create_sale",
                {"items": [{"product_id": product["id"], "quantity": 3}], "payment_method": "cash"},
            ).execute()
            image_path = f"{uid}/products/{product['id']}.png"
            client.storage.from_("product-images").upload(
                image_path, PNG, {"content-type": "image/png"}
            )
            receipt_path = f"{uid}/receipts/1.txt"
            client.storage.from_("receipts").upload(
                receipt_path, RECEIPT + name.encode(), {"content-type": "text/plain"}
            )
            tenants[name] = {
                "uid": uid,
                "email": email,
                "product": product["id"],
                "sale": sale.data["id"],
                "image": image_path,
                "receipt": receipt_path,
            }
        # A's own ToyyibPay key, sealed under the data dir's secrets key (made on first use).
        owner_a = create_client(server.url, keys["anon_key"])
        owner_a.auth.sign_in_with_password({"email": "a@example.com", "password": PASSWORD})
        owner_a.functions.invoke(
            "payment-settings",
            {
                "method": "PUT",
                "body": {
                    "secret_key": "a1b2c3d4-aaaa-4bbb-8ccc-0123456789ab",
                    "category_code": "c1",
                },
            },
        )
        assert (source / "secrets_key").exists()
        service = create_client(server.url, keys["service_role_key"])
        before = _snapshot(service)

        done = _pocketbizz("backup", "--out", str(archive), "--data-dir", str(source), env=env)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["objects"] == 4 and summary["missing_objects"] == []
        # Progress on stderr: the dump, then the files.
        assert "pocketbizz backup: dumping the database" in done.stderr
        assert "pocketbizz backup: files 4/4" in done.stderr
        assert oct(archive.stat().st_mode & 0o777) == "0o600"  # it holds the JWT secret

        # Written after the backup: not in it.
        tenants_a = create_client(server.url, keys["anon_key"])
        tenants_a.auth.sign_in_with_password({"email": "a@example.com", "password": PASSWORD})
        tenants_a.table("products").insert(
            {"sku": "LATE", "name": "Late", "sale_price": "1.00"}
        ).execute()
    finally:
        server.stop()

    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        names = set(tar.getnames())
    assert manifest["format"] == "pocketbizz-backup"
    assert manifest["migration_level"] == manifest["migrations"][-1]
    assert set(manifest["files"]) | {"manifest.json"} == names
    assert {"database.dump", "roles.json", "secrets/jwt_secret", "secrets/secrets_key"} <= names

    # The server is stopped: a backup starts the embedded database itself, and stops it again.
    offline = _pocketbizz(
        "backup", "--out", str(tmp_path / "offline.tar"), "--data-dir", str(source), env=env
    )
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["objects"] == 4
    assert not (source / "pgdata" / "postmaster.pid").exists()

    refused = _pocketbizz("restore", str(archive), "--data-dir", str(source), env=env)
    assert refused.returncode == 2
    assert "is not empty: restore only into a new or empty directory" in refused.stderr

    restored = _pocketbizz("restore", str(archive), "--data-dir", str(target), env=env)
    assert restored.returncode == 0, restored.stderr
    result = json.loads(restored.stdout)
    assert result["objects"] == 4
    assert {"authenticator", "anon", "authenticated", "service_role", "pb_definer"} <= set(
        result["roles_created"]
    )
    # Owners, grants, forced RLS, policies and role memberships as they were.
    assert _security_catalog(target) == _security_catalog(source)
    assert "pocketbizz restore: files 4/4" in restored.stderr

    server = _Served(env, target, log)
    try:
        # The same keys: the same secret came back.
        again = _keys(env, target)
        assert again["anon_key"] == keys["anon_key"]
        assert again["service_role_key"] == keys["service_role_key"]
        service = create_client(server.url, again["service_role_key"])
        assert _snapshot(service) == before  # the late product is not there either

        a, a_id = _signed_in(server.url, again["anon_key"], "a@example.com")
        b, b_id = _signed_in(server.url, again["anon_key"], "b@example.com")
        assert (a_id, b_id) == (tenants["a"]["uid"], tenants["b"]["uid"])
        for name, client in (("a", a), ("b", b)):
            mine = tenants[name]
            products = client.table("products").select("id, current_stock").execute().data
            assert products == [{"id": mine["product"], "current_stock": 7}]
            assert client.storage.from_("receipts").download(mine["receipt"]) == (
                RECEIPT + name.encode()
            )
            public = httpx.get(
                f"{server.url}/storage/v1/object/public/product-images/{mine['image']}"
            )
            assert public.status_code == 200 and public.content == PNG

        # The key that seals A's payment-gateway key came back with it: the same bytes.
        assert (target / "secrets_key").read_bytes() == (source / "secrets_key").read_bytes()

        # Tenant isolation survived: B reads, changes and downloads nothing of A's.
        a_product, a_sale = tenants["a"]["product"], tenants["a"]["sale"]
        assert b.table("products").select("*").eq("id", a_product).execute().data == []
        assert b.table("sales").select("*").eq("id", a_sale).execute().data == []
        changed = b.table("products").update({"name": "mine"}).eq("id", a_product).execute()
        assert changed.data == []
        with pytest.raises(Exception) as caught:
            b.storage.from_("receipts").download(tenants["a"]["receipt"])
        assert "not found" in str(caught.value).lower()
        assert a.table("products").select("name").eq("id", a_product).execute().data == [
            {"name": "Roti a"}
        ]
        # Sales still work on the restored instance, numbered after the restored ones.
        sale = a.rpc("create_sale", {"items": [{"product_id": a_product, "quantity": 1}]}).execute()
        assert sale.data["sale_number"] != before["sales"][0]["sale_number"]
    finally:
        server.stop()


def test_backup_from_database_url_and_s3_restores_into_an_embedded_data_dir(
    owner_dsn: str, tmp_path: Path
) -> None:
    """A deployment on DATABASE_URL, PB_JWT_SECRET set and files in an S3-compatible bucket: the
    dump comes from that server, the secret from the environment, the bytes from the bucket; the
    restore is an embedded instance with files on local disk and the same keys."""
    source = tmp_path / "source"
    source.mkdir()
    email = f"url-{uuid.uuid4().hex[:10]}@example.com"
    with LocalS3("backup-access", "backup-secret-key") as s3:
        s3_env = {
            "PB_STORAGE_BACKEND": "s3",
            "PB_S3_ENDPOINT": s3.endpoint,
            "PB_S3_BUCKET": "pb-objects",
            "PB_S3_ACCESS_KEY": "backup-access",
            "PB_S3_SECRET_KEY": "backup-secret-key",
        }
        server = ServerProcess(
            owner_dsn,
            source,
            env_overrides={"PB_AUTHENTICATOR_PASSWORD": "test-authenticator", **s3_env},
        )
        server.start()
        try:
            client = create_client(server.url, server.anon_key)
            signed_up = client.auth.sign_up({"email": email, "password": PASSWORD})
            assert signed_up.user is not None
            uid = signed_up.user.id
            client.storage.from_("receipts").upload(
                f"{uid}/r.txt", RECEIPT, {"content-type": "text/plain"}
            )
        finally:
            server.stop()
        assert any(r.startswith("PUT /pb-objects/receipts/") for r in s3.requests)

        env = {
            **_env(tmp_path),
            **s3_env,
            "DATABASE_URL": owner_dsn,
            "PB_JWT_SECRET": TEST_JWT_SECRET,
        }
        archive = tmp_path / "url.tar"
        done = _pocketbizz("backup", "--out", str(archive), "--data-dir", str(source), env=env)
        assert done.returncode == 0, done.stderr

        # Behind a transaction pooler the dump (a snapshot shared with pg_dump) must reach the
        # server directly: DATABASE_URL is the pooler's address (here nothing listens, so a
        # backup that used it would fail), DATABASE_DIRECT_URL the server's.
        pooled_env = {
            **env,
            "DATABASE_URL": f"postgresql://authenticator@127.0.0.1:{free_port()}/postgres",
            "DATABASE_DIRECT_URL": owner_dsn,
            "PB_STATEMENT_CACHE_SIZE": "0",
        }
        direct = tmp_path / "direct.tar"
        done = _pocketbizz(
            "backup", "--out", str(direct), "--data-dir", str(source), env=pooled_env
        )
        assert done.returncode == 0, done.stderr
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["jwt_secret_from"] == "environment"
    assert any(name.startswith("storage/receipts/") for name in manifest["files"])
    with tarfile.open(direct) as tar:
        direct_manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert direct_manifest["migration_level"] == manifest["migration_level"]
    assert set(direct_manifest["files"]) == set(manifest["files"])

    refused = _pocketbizz("restore", str(archive), "--data-dir", str(tmp_path / "t"), env=env)
    assert refused.returncode == 2 and "unset DATABASE_URL" in refused.stderr

    target = tmp_path / "target"
    plain = _env(tmp_path)  # no DATABASE_URL, no PB_JWT_SECRET, local files: all from the archive
    restored = _pocketbizz("restore", str(archive), "--data-dir", str(target), env=plain)
    assert restored.returncode == 0, restored.stderr
    served = _Served(plain, target, tmp_path / "serve.log")
    try:
        keys = _keys(plain, target)
        assert keys["anon_key"] == api_keys(TEST_JWT_SECRET)["anon_key"]
        client, user_id = _signed_in(served.url, keys["anon_key"], email)
        assert user_id == uid
        assert client.storage.from_("receipts").download(f"{uid}/r.txt") == RECEIPT
    finally:
        served.stop()


def _archive(path: Path, members: dict[str, bytes], manifest: dict[str, Any]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in [*members.items(), ("manifest.json", json.dumps(manifest).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_restore_refuses_a_foreign_or_damaged_archive_and_leaves_the_dir_empty(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path)
    target = tmp_path / "target"

    foreign = tmp_path / "foreign.tar"
    _archive(foreign, {"x.txt": b"x"}, {"format": "something-else"})
    done = _pocketbizz("restore", str(foreign), "--data-dir", str(target), env=env)
    assert done.returncode == 2 and "is not a PocketBizz backup" in done.stderr

    dump = b"not really a dump"
    manifest = {
        "format": "pocketbizz-backup",
        "format_version": 1,
        "migrations": ["0001"],
        "migration_level": "0001",
        "files": {"database.dump": {"size": len(dump), "sha256": hashlib.sha256(dump).hexdigest()}},
    }
    damaged = tmp_path / "damaged.tar"
    _archive(damaged, {"database.dump": dump.upper()}, manifest)
    done = _pocketbizz("restore", str(damaged), "--data-dir", str(target), env=env)
    assert done.returncode == 2 and "database.dump is damaged" in done.stderr
    assert not target.exists()  # made by the restore, removed with what it wrote

    target.mkdir()  # an empty dir given by the user stays, empty
    newer = tmp_path / "newer.tar"
    _archive(newer, {}, {**manifest, "migrations": ["0001", "9999"], "files": {}})
    done = _pocketbizz("restore", str(newer), "--data-dir", str(target), env=env)
    assert done.returncode == 2 and "migrations this PocketBizz" in done.stderr
    assert "9999" in done.stderr and list(target.iterdir()) == []

    traversal = tmp_path / "traversal.tar"
    _archive(traversal, {"../escape": dump}, {**manifest, "files": {"../escape": {}}})
    done = _pocketbizz("restore", str(traversal), "--data-dir", str(target), env=env)
    assert done.returncode == 2 and "unexpected archive member '../escape'" in done.stderr
    assert not (tmp_path / "escape").exists() and list(target.iterdir()) == []
