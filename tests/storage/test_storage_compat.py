"""Storage behaviours the official JavaScript and Python clients' own suites expect (issues 14 B.1,
B.9 and 8 C.5, C.6): metadata headers, size units, timestamps, download names, paged listing."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from harness import ServerProcess
from storage3.exceptions import StorageApiError
from supabase import Client

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _headers(server: ServerProcess, token: str) -> dict[str, str]:
    return {"apikey": server.anon_key, "Authorization": f"Bearer {token}"}


def _raw_upload(
    server: ServerProcess, token: str, path: str, x_metadata: str | None
) -> httpx.Response:
    headers = {**_headers(server, token), "content-type": "text/plain"}
    if x_metadata is not None:
        headers["x-metadata"] = x_metadata
    return httpx.post(
        f"{server.url}/storage/v1/object/receipts/{path}", content=b"x", headers=headers
    )


def test_x_metadata_header_is_read_base64_encoded(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    bucket = user.client.storage.from_("receipts")
    metadata = {"sale_id": str(uuid.uuid4()), "note": "Resit kedai ☕", "copies": 2}
    # supabase-js sends the JSON base64-encoded in the header of a raw-body upload.
    encoded = base64.b64encode(json.dumps(metadata).encode()).decode()
    res = _raw_upload(server, user.access_token, f"{user.id}/b64.txt", encoded)
    assert res.status_code == 200, res.text
    assert bucket.info(f"{user.id}/b64.txt")["metadata"] == metadata

    # Plain JSON (what older clients sent) is still read.
    res = _raw_upload(server, user.access_token, f"{user.id}/json.txt", '{"plain": true}')
    assert res.status_code == 200, res.text
    assert bucket.info(f"{user.id}/json.txt")["metadata"] == {"plain": True}

    # The multipart form field (the Python client, and supabase-js with a Blob) as before.
    bucket.upload(f"{user.id}/form.txt", b"x", {"metadata": {"from": "form"}})
    assert bucket.info(f"{user.id}/form.txt")["metadata"] == {"from": "form"}

    for bad in (
        "not base64!",
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(b"{").decode(),
    ):
        refused = _raw_upload(server, user.access_token, f"{user.id}/bad.txt", bad)
        assert refused.status_code == 400, (bad, refused.text)
        assert refused.json()["statusCode"] == "400"
    assert bucket.exists(f"{user.id}/bad.txt") is False


def test_file_size_limit_units_are_decimal_and_timestamps_end_in_z(
    server: ServerProcess, service_client: Client
) -> None:
    storage = service_client.storage
    name = f"sizes-{uuid.uuid4().hex[:8]}"
    storage.create_bucket(name, options={"file_size_limit": "20mb"})
    assert storage.get_bucket(name).file_size_limit == 20_000_000
    for given, stored in (("2KB", 2_000), ("1.5GB", 1_500_000_000), ("300b", 300), (4096, 4096)):
        storage.update_bucket(name, {"file_size_limit": given})
        assert storage.get_bucket(name).file_size_limit == stored, given
    # Three significant digits, as the storage API keeps them.
    storage.update_bucket(name, {"file_size_limit": "1.2345MB"})
    assert storage.get_bucket(name).file_size_limit == 1_230_000
    for bad in ("20 mb", "5XB", "-1", "mb", "0kb"):
        with pytest.raises(StorageApiError) as refused:
            storage.update_bucket(name, {"file_size_limit": bad})
        assert str(refused.value.status) == "400", bad
    assert storage.get_bucket(name).file_size_limit == 1_230_000

    raw = httpx.get(
        f"{server.url}/storage/v1/bucket/{name}", headers=_headers(server, server.service_key)
    ).json()
    assert raw["created_at"].endswith("Z") and raw["updated_at"].endswith("Z")
    listed = httpx.get(
        f"{server.url}/storage/v1/bucket", headers=_headers(server, server.service_key)
    ).json()
    assert all(b["created_at"].endswith("Z") for b in listed)
    storage.delete_bucket(name)


def test_download_names_the_file_as_storage_does(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    key = f"{user.id}/INV-0001.txt"
    bucket = user.client.storage.from_("receipts")
    bucket.upload(key, b"invoice")
    signed = bucket.create_signed_url(key, 60)["signedURL"]
    authed = f"{server.url}/storage/v1/object/receipts/{key}"

    for base, headers in ((signed + "&", {}), (authed + "?", _headers(server, user.access_token))):
        named = httpx.get(f"{base}download=resit.txt", headers=headers)
        assert named.status_code == 200 and named.content == b"invoice"
        assert (
            named.headers["content-disposition"]
            == "attachment; filename=resit.txt; filename*=UTF-8''resit.txt;"
        )
        # Encoded as JavaScript's encodeURIComponent encodes (spaces, non-ASCII; not !'()*~).
        odd = httpx.get(f"{base}download=Resit (1) café!.txt", headers=headers)
        encoded = "Resit%20(1)%20caf%C3%A9!.txt"
        assert (
            odd.headers["content-disposition"]
            == f"attachment; filename={encoded}; filename*=UTF-8''{encoded};"
        )
        bare = httpx.get(f"{base}download", headers=headers)
        assert bare.headers["content-disposition"] == "attachment;"
        plain = httpx.get(base.rstrip("?&"), headers=headers)
        assert "content-disposition" not in plain.headers

    # The Python client's own download option builds the same URL.
    via_client = bucket.create_signed_url(key, 60, {"download": "x.txt"})["signedURL"]
    assert httpx.get(via_client).headers["content-disposition"].startswith("attachment; filename=x")


def test_list_v2_is_a_listing_not_an_upload(
    server: ServerProcess, make_user: Callable[..., Any], service_client: Client
) -> None:
    user = make_user()
    user.client.storage.from_("receipts").upload(f"{user.id}/a.txt", b"a")
    res = httpx.post(
        f"{server.url}/storage/v1/object/list-v2/receipts",
        json={"prefix": f"{user.id}/"},
        headers=_headers(server, user.access_token),
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert (body["hasNext"], body["folders"], "nextCursor" in body) == (False, [], False)
    [listed] = body["objects"]
    assert listed["name"] == f"{user.id}/a.txt" and listed["metadata"]["size"] == 1
    assert {"id", "created_at", "updated_at", "last_accessed_at"} <= listed.keys()
    assert listed["created_at"].endswith("Z")
    # No bucket may take the route's name.
    with pytest.raises(StorageApiError) as refused:
        service_client.storage.create_bucket("list-v2")
    assert str(refused.value.status) == "400"


def _walk(bucket: Any, options: dict[str, Any]) -> tuple[list[str], list[str], int]:
    """Every page of a listing: (object names, folder names, pages)."""
    objects: list[str] = []
    folders: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        page = bucket.list_v2({**options, **({"cursor": cursor} if cursor else {})})
        objects += [o.name for o in page.objects]
        folders += [f.name for f in page.folders]
        pages += 1
        assert len(page.objects) + len(page.folders) <= options.get("limit", 1000)
        if not page.hasNext:
            assert page.nextCursor is None
            return objects, folders, pages
        cursor = page.nextCursor
        assert cursor and pages < 50


def test_list_v2_pages_prefixes_folders_and_sorts(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    other = make_user()
    bucket = user.client.storage.from_("receipts")
    root = f"{user.id}/"
    # Created in this order; "aal.txt" beside the folder "aal/" as in storage-api's own suite.
    names = ["b.txt", "aal/2.txt", "aal.txt", "c/x/deep.txt", "aal/1.txt", "A.txt", "aal!.txt"]
    for name in names:
        bucket.upload(root + name, b"x")
    other.client.storage.from_("receipts").upload(f"{other.id}/b.txt", b"other tenant")
    full = [root + n for n in names]

    # Flat: every object under the prefix, full keys, byte order; limit counts entries.
    objects, folders, pages = _walk(bucket, {"prefix": root, "limit": 2})
    assert (objects, folders, pages) == (sorted(full), [], 4)
    objects, _, _ = _walk(
        bucket, {"prefix": root, "limit": 3, "sortBy": {"column": "name", "order": "desc"}}
    )
    assert objects == sorted(full, reverse=True)

    # Delimited: one level, folders named with their trailing "/", in the same ordered stream.
    objects, folders, pages = _walk(bucket, {"prefix": root, "with_delimiter": True, "limit": 2})
    assert objects == [root + n for n in ("A.txt", "aal!.txt", "aal.txt", "b.txt")]
    assert folders == [root + "aal/", root + "c/"]
    assert pages == 3
    # A prefix need not end at a folder boundary.
    objects, folders, _ = _walk(bucket, {"prefix": root + "aal", "with_delimiter": True})
    assert (objects, folders) == ([root + "aal!.txt", root + "aal.txt"], [root + "aal/"])
    objects, folders, _ = _walk(bucket, {"prefix": root + "aal/", "with_delimiter": True})
    assert (objects, folders) == ([root + "aal/1.txt", root + "aal/2.txt"], [])

    # By creation time: objects by their own, folders by their first object's.
    objects, _, _ = _walk(bucket, {"prefix": root, "limit": 2, "sortBy": {"column": "created_at"}})
    assert objects == full
    objects, folders, _ = _walk(
        bucket,
        {
            "prefix": root,
            "with_delimiter": True,
            "limit": 1,
            "sortBy": {"column": "created_at", "order": "desc"},
        },
    )
    assert objects == [root + n for n in ("aal!.txt", "A.txt", "aal.txt", "b.txt")]
    assert folders == [root + "c/", root + "aal/"]

    # Wildcards in a prefix are literal; another tenant's objects never appear.
    assert _walk(bucket, {"prefix": root + "%"})[0] == []
    assert _walk(bucket, {"prefix": root + "aa_"})[0] == []
    assert _walk(bucket, {"prefix": f"{other.id}/"})[0] == []
    assert all(n.startswith(root) for n in _walk(bucket, {})[0])


def test_list_v2_refuses_foreign_cursors_and_bad_options(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    bucket = user.client.storage.from_("receipts")
    for n in range(3):
        bucket.upload(f"{user.id}/{n}.txt", b"x")
    cursor = bucket.list_v2({"prefix": f"{user.id}/", "limit": 1}).nextCursor
    assert cursor
    url = f"{server.url}/storage/v1/object/list-v2/receipts"
    headers = _headers(server, user.access_token)
    bad_requests: list[dict[str, Any]] = [
        # a cursor made for another listing (prefix, order), or not a cursor at all
        {"prefix": f"{user.id}/0", "cursor": cursor},
        {"prefix": f"{user.id}/", "cursor": cursor, "sortBy": {"column": "name", "order": "desc"}},
        {"prefix": f"{user.id}/", "cursor": "bm90IGEgY3Vyc29y"},
        {"prefix": f"{user.id}/", "cursor": "%%%"},
        {"limit": 0},
        {"limit": "ten"},
        {"with_delimiter": "yes"},
        {"sortBy": {"column": "size"}},
        {"sortBy": {"column": "name", "order": "sideways"}},
        {"prefix": 7},
    ]
    for body in bad_requests:
        res = httpx.post(url, json=body, headers=headers)
        assert res.status_code == 400, (body, res.text)
        assert {"statusCode", "error", "message"} <= res.json().keys()
    missing = httpx.post(
        f"{server.url}/storage/v1/object/list-v2/no-such-bucket", json={}, headers=headers
    )
    assert missing.status_code == 404


def test_bucket_list_takes_storage_js_options(
    server: ServerProcess, service_client: Client
) -> None:
    storage = service_client.storage
    tag = uuid.uuid4().hex[:8]
    names = [f"opts-{tag}-{n}" for n in ("b", "a", "c")]
    for name in names:
        storage.create_bucket(name)
    url = f"{server.url}/storage/v1/bucket"
    headers = _headers(server, server.service_key)

    def ids(**query: Any) -> list[str]:
        res = httpx.get(url, params=query, headers=headers)
        assert res.status_code == 200, res.text
        return [b["id"] for b in res.json()]

    assert ids(search=f"OPTS-{tag}") == sorted(names)
    assert ids(search=f"opts-{tag}", sortOrder="desc") == sorted(names, reverse=True)
    assert ids(search=f"opts-{tag}", sortColumn="created_at") == names
    assert ids(search=f"opts-{tag}", sortColumn="created_at", limit=1, offset=1) == names[1:2]
    assert ids(search="%") == [] and ids(search="_") == []  # wildcards are literal
    for bad in ({"limit": 0}, {"offset": -1}, {"sortColumn": "owner"}, {"sortOrder": "up"}):
        res = httpx.get(url, params=bad, headers=headers)
        assert res.status_code == 400, (bad, res.text)
    for name in names:
        storage.delete_bucket(name)


def test_info_and_html_as_storage_serves_them(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    bucket = user.client.storage.from_("receipts")
    key = f"{user.id}/page.html"
    bucket.upload(key, b"<script>alert(1)</script>", {"content-type": "text/html"})
    info = bucket.info(key)
    # No user metadata reads as null, and last_modified is the row's update time.
    assert info["metadata"] is None and info["content_type"] == "text/html"
    assert info["last_modified"] == info["updated_at"] and info["last_modified"].endswith("Z")
    # Uploaded HTML never runs as a page of this origin: it is served as plain text.
    for url, headers in (
        (bucket.create_signed_url(key, 60)["signedURL"], {}),
        (f"{server.url}/storage/v1/object/receipts/{key}", _headers(server, user.access_token)),
    ):
        res = httpx.get(url, headers=headers)
        assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")


def test_info_routes_public_and_authenticated(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    key = f"{user.id}/logo.png"
    user.client.storage.from_("product-images").upload(key, PNG, {"content-type": "image/png"})
    user.client.storage.from_("receipts").upload(key, PNG, {"content-type": "image/png"})
    base = f"{server.url}/storage/v1/object/info"
    # A public bucket's info needs no credentials, as its bytes need none.
    public = httpx.get(f"{base}/public/product-images/{key}")
    assert public.status_code == 200, public.text
    assert (public.json()["name"], public.json()["size"]) == (key, len(PNG))
    # A private bucket's object is not found on the public route.
    assert httpx.get(f"{base}/public/receipts/{key}").status_code == 404
    authed = httpx.get(
        f"{base}/authenticated/receipts/{key}", headers=_headers(server, user.access_token)
    )
    assert authed.status_code == 200 and authed.json()["content_type"] == "image/png"
    other = make_user()
    theirs = httpx.get(
        f"{base}/authenticated/receipts/{key}", headers=_headers(server, other.access_token)
    )
    assert theirs.status_code == 404


def test_unknown_storage_routes_answer_in_storage_shape(server: ServerProcess) -> None:
    headers = _headers(server, server.anon_key)
    for method, path in (
        ("GET", "/render/image/public/product-images/x/a.png?width=10"),
        ("POST", "/upload/resumable"),
        ("GET", "/no/such/thing"),
    ):
        res = httpx.request(method, f"{server.url}/storage/v1{path}", headers=headers)
        assert res.status_code == 404, (path, res.text)
        body = res.json()
        assert (body["statusCode"], body["error"]) == ("404", "Not Found")
        assert body["message"] == f"Route {method}:{path.split('?')[0]} not found"
