"""Storage SQL: buckets and object metadata, run inside the caller's transaction (RLS applies).

Every function takes a connection already switched to the caller's role; nothing here decides
who may see what — the policies on storage.objects do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from pocketbizz.errors import ApiError, StorageCode

# ---------------------------------------------------------------------------------------------
# The errors Storage clients know, in Supabase's words.


def object_not_found() -> ApiError:
    # error "not_found" is what `exists()` needs to answer False.
    return ApiError(
        "Object not found", status=404, code=StorageCode.NO_SUCH_KEY, extra={"error": "not_found"}
    )


def bucket_not_found() -> ApiError:
    return ApiError(
        "Bucket not found",
        status=404,
        code=StorageCode.NO_SUCH_BUCKET,
        extra={"error": "Bucket not found"},
    )


def duplicate() -> ApiError:
    return ApiError(
        "The resource already exists",
        status=409,
        code=StorageCode.DUPLICATE,
        extra={"error": "Duplicate"},
    )


def store_full(message: str) -> ApiError:
    # Storage defines no answer of its own for a full disk: its InternalError, with a message
    # that says what happened and nothing of where.
    return ApiError(
        message, status=500, code=StorageCode.INTERNAL_ERROR, extra={"error": "InternalError"}
    )


def invalid_request(message: str) -> ApiError:
    return ApiError(
        message, status=400, code=StorageCode.INVALID_REQUEST, extra={"error": "Invalid Input"}
    )


# ---------------------------------------------------------------------------------------------
# Buckets


@dataclass(frozen=True)
class Bucket:
    id: str
    name: str
    owner: UUID | None
    public: bool
    file_size_limit: int | None
    allowed_mime_types: list[str] | None
    created_at: datetime
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "owner": str(self.owner) if self.owner else "",  # the client model refuses null
            "public": self.public,
            "type": "STANDARD",
            "file_size_limit": self.file_size_limit,
            "allowed_mime_types": self.allowed_mime_types,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def accepts_mime(self, mimetype: str) -> bool:
        if not self.allowed_mime_types:
            return True
        base = mimetype.split(";", 1)[0].strip().lower()
        for allowed in self.allowed_mime_types:
            allowed = allowed.strip().lower()
            if allowed == base or (
                allowed.endswith("/*") and base.startswith(allowed.removesuffix("*"))
            ):
                return True
        return False


_BUCKET_COLUMNS = (
    "id, name, owner, public, file_size_limit, allowed_mime_types, created_at, updated_at"
)


_BUCKET_SORT_COLUMNS = {"id", "name", "created_at", "updated_at"}


async def list_buckets(
    conn: asyncpg.Connection,
    *,
    search: str = "",
    sort_column: str = "name",
    descending: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[Bucket]:
    """Buckets whose name contains `search` (any case), sorted, one page of them."""
    if sort_column not in _BUCKET_SORT_COLUMNS:
        raise invalid_request(f"Cannot sort by {sort_column!r}")
    direction = "desc" if descending else "asc"
    # The column comes from the fixed set above; ties broken by id so pages never overlap.
    rows = await conn.fetch(
        f"""select {_BUCKET_COLUMNS} from storage.buckets
            where name ilike $1 escape '\\'
            order by {sort_column} {direction}, id {direction}
            limit $2 offset $3""",
        "%" + _like_escape(search) + "%",
        limit,
        offset,
    )
    return [Bucket(**dict(r)) for r in rows]


async def get_bucket(conn: asyncpg.Connection, bucket_id: str) -> Bucket:
    row = await conn.fetchrow(
        f"select {_BUCKET_COLUMNS} from storage.buckets where id = $1", bucket_id
    )
    if row is None:
        raise bucket_not_found()
    return Bucket(**dict(row))


async def create_bucket(
    conn: asyncpg.Connection,
    bucket_id: str,
    name: str,
    public: bool,
    file_size_limit: int | None,
    allowed_mime_types: list[str] | None,
) -> None:
    await conn.execute(
        """insert into storage.buckets
               (id, name, owner, public, file_size_limit, allowed_mime_types)
           values ($1, $2, auth.uid(), $3, $4, $5)""",
        bucket_id,
        name,
        public,
        file_size_limit,
        allowed_mime_types,
    )


async def update_bucket(conn: asyncpg.Connection, bucket_id: str, changes: dict[str, Any]) -> None:
    # Column names come from a fixed set chosen by the caller (routes), never from the request.
    allowed = {"public", "file_size_limit", "allowed_mime_types"}
    columns = [c for c in changes if c in allowed]
    if not columns:
        await get_bucket(conn, bucket_id)
        return
    assignments = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(columns))
    status = await conn.execute(
        f"update storage.buckets set {assignments} where id = $1",
        bucket_id,
        *(changes[c] for c in columns),
    )
    if status.endswith(" 0"):
        raise bucket_not_found()


async def empty_bucket(conn: asyncpg.Connection, bucket_id: str) -> list[UUID]:
    """Delete every object row of a bucket; returns the versions whose bytes to remove."""
    await get_bucket(conn, bucket_id)
    rows = await conn.fetch(
        "delete from storage.objects where bucket_id = $1 returning version", bucket_id
    )
    return [r["version"] for r in rows]


async def delete_bucket(conn: asyncpg.Connection, bucket_id: str) -> None:
    await get_bucket(conn, bucket_id)
    if await conn.fetchval(
        "select exists (select from storage.objects where bucket_id = $1)", bucket_id
    ):
        raise ApiError(
            "The bucket you tried to delete is not empty",
            status=409,
            code=StorageCode.INVALID_REQUEST,
            extra={"error": "InvalidRequest"},
        )
    await conn.execute("delete from storage.buckets where id = $1", bucket_id)


# ---------------------------------------------------------------------------------------------
# Objects


@dataclass(frozen=True)
class StoredRow:
    id: UUID
    bucket_id: str
    name: str
    version: UUID
    metadata: dict[str, Any]
    user_metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    last_accessed_at: datetime

    @property
    def mimetype(self) -> str:
        return str(self.metadata.get("mimetype") or "application/octet-stream")

    def info_json(self) -> dict[str, Any]:
        """The `info()` response, as Supabase Storage shapes it."""
        meta = self.metadata
        return {
            "id": self.id,
            "name": self.name,
            "bucket_id": self.bucket_id,
            "version": self.version,
            "size": meta.get("size"),
            "content_type": meta.get("mimetype"),
            "cache_control": meta.get("cacheControl"),
            "etag": meta.get("eTag"),
            "metadata": self.user_metadata,
            "last_modified": self.updated_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


_OBJECT_COLUMNS = (
    "id, bucket_id, name, version, metadata, user_metadata, created_at, updated_at, "
    "last_accessed_at"
)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def object_metadata(size: int, etag: str, mimetype: str, cache_control: str) -> dict[str, Any]:
    return {
        "eTag": f'"{etag}"',
        "size": size,
        "mimetype": mimetype,
        "cacheControl": cache_control,
        "lastModified": _now_iso(),
        "contentLength": size,
        "httpStatusCode": 200,
    }


async def find_object(conn: asyncpg.Connection, bucket_id: str, name: str) -> StoredRow:
    row = await conn.fetchrow(
        f"select {_OBJECT_COLUMNS} from storage.objects where bucket_id = $1 and name = $2",
        bucket_id,
        name,
    )
    if row is None:
        raise object_not_found()
    return StoredRow(**dict(row))


async def find_public_object(conn: asyncpg.Connection, bucket_id: str, name: str) -> StoredRow:
    """An object of a public bucket. Runs as service_role: the `b.public` test is the rule."""
    row = await conn.fetchrow(
        f"""select {", ".join("o." + c.strip() for c in _OBJECT_COLUMNS.split(","))}
            from storage.objects o join storage.buckets b on b.id = o.bucket_id
            where b.public and o.bucket_id = $1 and o.name = $2""",
        bucket_id,
        name,
    )
    if row is None:
        raise object_not_found()
    return StoredRow(**dict(row))


async def existing_names(
    conn: asyncpg.Connection, bucket_id: str, names: Sequence[str]
) -> set[str]:
    """Which of `names` the caller can see in the bucket."""
    rows = await conn.fetch(
        "select name from storage.objects where bucket_id = $1 and name = any($2::text[])",
        bucket_id,
        list(names),
    )
    return {r["name"] for r in rows}


@dataclass(frozen=True)
class SavedObject:
    id: UUID
    replaced_version: UUID | None


async def save_object(
    conn: asyncpg.Connection,
    bucket_id: str,
    name: str,
    version: UUID,
    metadata: dict[str, Any],
    user_metadata: dict[str, Any] | None,
    *,
    mode: str,
    owner: UUID | None = None,
) -> SavedObject:
    """Record new bytes for `name`. mode: "create" (409 if it exists), "upsert", or
    "replace" (404 if it does not exist). Returns the version the new one replaced."""
    existing = await conn.fetchrow(
        "select id, version from storage.objects where bucket_id = $1 and name = $2 for update",
        bucket_id,
        name,
    )
    if existing is not None:
        if mode == "create":
            raise duplicate()
        await conn.execute(
            """update storage.objects
               set version = $2, metadata = $3, user_metadata = $4, last_accessed_at = now()
               where id = $1""",
            existing["id"],
            version,
            metadata,
            user_metadata,
        )
        return SavedObject(existing["id"], existing["version"])
    if mode == "replace":
        raise object_not_found()
    object_id = await conn.fetchval(
        """insert into storage.objects (bucket_id, name, owner_id, version, metadata, user_metadata)
           values ($1, $2, coalesce($3, auth.uid()), $4, $5, $6) returning id""",
        bucket_id,
        name,
        owner,
        version,
        metadata,
        user_metadata,
    )
    return SavedObject(object_id, None)


async def check_can_create(
    conn: asyncpg.Connection, bucket_id: str, name: str, upsert: bool
) -> None:
    """Would the caller be allowed to upload `name`? Tried for real, then rolled back."""
    # A savepoint inside the request's transaction (which Database opened with a plain BEGIN).
    await conn.execute("savepoint can_create")
    try:
        await save_object(
            conn, bucket_id, name, UUID(int=0), {}, None, mode="upsert" if upsert else "create"
        )
    finally:
        await conn.execute("rollback to savepoint can_create")
        await conn.execute("release savepoint can_create")


async def delete_objects(
    conn: asyncpg.Connection, bucket_id: str, names: Sequence[str]
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""delete from storage.objects where bucket_id = $1 and name = any($2::text[])
            returning {_OBJECT_COLUMNS}, owner_id""",
        bucket_id,
        list(names),
    )
    return [
        {
            "bucket_id": r["bucket_id"],
            "name": r["name"],
            "id": r["id"],
            "owner": r["owner_id"] or "",
            "owner_id": r["owner_id"] or "",
            "version": r["version"],
            "metadata": r["metadata"],
            "user_metadata": r["user_metadata"],
            "created_at": r["created_at"],
            "updated_at": r["updated_at"],
            "last_accessed_at": r["last_accessed_at"],
        }
        for r in rows
    ]


async def move_object(conn: asyncpg.Connection, bucket_id: str, source: str, target: str) -> None:
    if source == target:
        await find_object(conn, bucket_id, source)
        return
    status = await conn.execute(
        "update storage.objects set name = $3 where bucket_id = $1 and name = $2",
        bucket_id,
        source,
        target,
    )
    if status.endswith(" 0"):
        raise object_not_found()


async def insert_copy(
    conn: asyncpg.Connection, source: StoredRow, target: str, version: UUID
) -> UUID:
    metadata = {**source.metadata, "lastModified": _now_iso()}
    object_id: UUID = await conn.fetchval(
        """insert into storage.objects (bucket_id, name, version, metadata, user_metadata)
           values ($1, $2, $3, $4, $5) returning id""",
        source.bucket_id,
        target,
        version,
        metadata,
        source.user_metadata,
    )
    return object_id


_SORT_COLUMNS = {"name", "created_at", "updated_at", "last_accessed_at"}

_LIST_SQL = """
with entries as (
    select split_part(substr(o.name, $3 + 1), '/', 1) as name,
           strpos(substr(o.name, $3 + 1), '/') > 0 as is_folder,
           o.id, o.created_at, o.updated_at, o.last_accessed_at, o.metadata
    from storage.objects o
    where o.bucket_id = $1 and starts_with(o.name, $2)
      -- the range lets the (bucket_id, name) index find the folder
      and o.name >= $2 and o.name < $2 || chr(1114111)
), listed as (
    select distinct on (name, is_folder) name, is_folder,
           case when is_folder then null else id end as id,
           case when is_folder then null else created_at end as created_at,
           case when is_folder then null else updated_at end as updated_at,
           case when is_folder then null else last_accessed_at end as last_accessed_at,
           case when is_folder then null else metadata end as metadata
    from entries
    where name <> '' and name ilike $4 escape '\\'
    order by name, is_folder, id
)
select name, id, created_at, updated_at, last_accessed_at, metadata from listed
order by {order}
limit $5 offset $6
"""


async def list_objects(
    conn: asyncpg.Connection,
    bucket_id: str,
    prefix: str,
    *,
    search: str,
    limit: int,
    offset: int,
    sort_column: str,
    descending: bool,
) -> list[dict[str, Any]]:
    await get_bucket(conn, bucket_id)
    if sort_column not in _SORT_COLUMNS:
        raise invalid_request(f"Cannot sort by {sort_column!r}")
    direction = "desc" if descending else "asc"
    order = f"{sort_column} {direction}" + ("" if sort_column == "name" else ", name asc")
    pattern = _like_escape(search) + "%"
    rows = await conn.fetch(
        _LIST_SQL.format(order=order), bucket_id, prefix, len(prefix), pattern, limit, offset
    )
    return [dict(r) for r in rows]


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---------------------------------------------------------------------------------------------
# Paged listing (list-v2): a cursor instead of an offset, so a page boundary stays put while
# objects are added or removed, and the folders of a delimited listing come with their objects
# in one ordered stream.

_V2_SORT_COLUMNS = {"name", "created_at", "updated_at"}

# $1 bucket, $2 prefix (literal, not a LIKE pattern), $3 its length, $4 delimited listing,
# $5 rows to fetch; after a cursor, $6 its name (sorting by name) or $6, $7 its timestamp and name.
_LIST_V2_SQL = """
with matched as (
    select o.name, o.id, o.version, o.created_at, o.updated_at, o.last_accessed_at, o.metadata,
           case when $4 then strpos(substr(o.name, $3 + 1), '/') else 0 end as slash
    from storage.objects o
    where o.bucket_id = $1 and starts_with(o.name, $2)
      and o.name >= $2 and o.name < $2 || chr(1114111)
), entries as (
    select name, false as is_folder, id, version, created_at, updated_at, last_accessed_at,
           metadata, date_trunc('milliseconds', {column}) as ts
    from matched where slash = 0
    union all
    -- A folder sorts by when its first object was made, whichever time column is asked for.
    select substr(name, 1, $3 + slash), true, null, null, null, null, null, null,
           date_trunc('milliseconds', min(created_at))
    from matched where slash > 0
    group by substr(name, 1, $3 + slash)
)
select name, is_folder, id, version, created_at, updated_at, last_accessed_at, metadata, ts
from entries
{after}
order by {order}
limit $5
"""


@dataclass(frozen=True)
class ListPosition:
    """Where a page ended: the last entry's sort timestamp (None when sorting by name) and name."""

    ts: datetime | None
    name: str


@dataclass(frozen=True)
class ListPage:
    folders: list[dict[str, Any]]
    objects: list[dict[str, Any]]
    next_position: ListPosition | None


async def list_objects_v2(
    conn: asyncpg.Connection,
    bucket_id: str,
    prefix: str,
    *,
    delimited: bool,
    limit: int,
    sort_column: str,
    descending: bool,
    after: ListPosition | None,
) -> ListPage:
    await get_bucket(conn, bucket_id)
    if sort_column not in _V2_SORT_COLUMNS:
        raise invalid_request(f"Cannot sort by {sort_column!r}")
    direction, compare = ("desc", "<") if descending else ("asc", ">")
    # The column and direction come from the fixed sets above, never from the request.
    if sort_column == "name":
        order = f'name collate "C" {direction}'
        after_sql = f'where name collate "C" {compare} $6' if after else ""
    else:
        order = f'ts {direction}, name collate "C" {direction}'
        after_sql = f'where (ts, name collate "C") {compare} ($6, $7)' if after else ""
    ts_column = "created_at" if sort_column == "name" else sort_column  # ts unused by name
    sql = _LIST_V2_SQL.format(column=ts_column, after=after_sql, order=order)
    args: list[Any] = [bucket_id, prefix, len(prefix), delimited, limit + 1]
    if after:
        args += [after.name] if sort_column == "name" else [after.ts, after.name]
    rows = await conn.fetch(sql, *args)
    page, more = rows[:limit], len(rows) > limit
    folders = [{"name": r["name"]} for r in page if r["is_folder"]]
    objects = [
        {
            "name": r["name"],
            "id": r["id"],
            "version": r["version"],
            "updated_at": r["updated_at"],
            "created_at": r["created_at"],
            "last_accessed_at": r["last_accessed_at"],
            "metadata": r["metadata"],
        }
        for r in page
        if not r["is_folder"]
    ]
    last = page[-1] if more else None
    position = (
        ListPosition(None if sort_column == "name" else last["ts"], last["name"]) if last else None
    )
    return ListPage(folders, objects, position)
