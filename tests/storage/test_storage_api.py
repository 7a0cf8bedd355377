"""Storage through the official sync client (and plain httpx where browsers would fetch)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from harness import ServerProcess
from storage3.exceptions import StorageApiError
from supabase import Client

from pocketbizz.gateway.tokens import encode_token

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _headers(server: ServerProcess, token: str) -> dict[str, str]:
    return {"apikey": server.anon_key, "Authorization": f"Bearer {token}"}


def test_bucket_lifecycle(service_client: Client, make_user: Callable[..., Any]) -> None:
    storage = service_client.storage
    name = f"docs-{uuid.uuid4().hex[:8]}"
    created = storage.create_bucket(
        name, options={"public": False, "file_size_limit": 1024, "allowed_mime_types": ["text/*"]}
    )
    assert created == {"name": name}
    bucket = storage.get_bucket(name)
    assert (bucket.id, bucket.owner, bucket.public) == (name, "", False)
    assert (bucket.file_size_limit, bucket.allowed_mime_types) == (1024, ["text/*"])
    ids = {b.id for b in storage.list_buckets()}
    assert {"product-images", "logos", "receipts", name} <= ids
    assert storage.get_bucket("receipts").file_size_limit is None

    with pytest.raises(StorageApiError) as dup:
        storage.create_bucket(name)
    assert dup.value.status in (409, "409")

    storage.update_bucket(name, {"public": True, "file_size_limit": "2KB"})
    assert storage.get_bucket(name).public is True
    assert storage.get_bucket(name).file_size_limit == 2000  # decimal units, as Storage

    # Tenants may read bucket settings but never create, change or delete buckets.
    user = make_user()
    assert name in {b.id for b in user.client.storage.list_buckets()}
    for attempt in (
        lambda: user.client.storage.create_bucket(f"mine-{uuid.uuid4().hex[:6]}"),
        lambda: user.client.storage.update_bucket(name, {"public": False}),
        lambda: user.client.storage.delete_bucket(name),
    ):
        with pytest.raises(StorageApiError) as denied:
            attempt()
        assert str(denied.value.status) == "403"
    assert storage.get_bucket(name).public is True

    storage.from_(name).upload(f"{uuid.uuid4()}/x.txt", b"abc")
    with pytest.raises(StorageApiError) as not_empty:
        storage.delete_bucket(name)
    assert str(not_empty.value.status) == "409"
    assert storage.empty_bucket(name) == {"message": "Successfully emptied"}
    assert storage.delete_bucket(name) == {"message": "Successfully deleted"}
    with pytest.raises(StorageApiError) as gone:
        storage.get_bucket(name)
    assert str(gone.value.status) == "404"


def test_upload_download_list_sign_remove(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    bucket = user.client.storage.from_("receipts")
    key = f"{user.id}/2026/r-1.txt"
    res = bucket.upload(key, b"receipt one", {"content-type": "text/plain"})
    assert res.full_path == f"receipts/{key}"
    bucket.upload(f"{user.id}/top.txt", b"top")
    bucket.upload(f"{user.id}/2026/r-2.txt", b"receipt two")

    assert bucket.download(key) == b"receipt one"
    info = bucket.info(key)
    assert info["size"] == 11 and info["content_type"] == "text/plain"
    assert bucket.exists(key) is True
    assert bucket.exists(f"{user.id}/nope.txt") is False

    root = bucket.list(user.id)
    assert [(i["name"], i["id"] is None) for i in root] == [("2026", True), ("top.txt", False)]
    assert root[1]["metadata"]["size"] == 3 and root[1]["metadata"]["mimetype"]
    folder = bucket.list(f"{user.id}/2026", {"sortBy": {"column": "name", "order": "desc"}})
    assert [i["name"] for i in folder] == ["r-2.txt", "r-1.txt"]
    assert [i["name"] for i in bucket.list(f"{user.id}/2026", {"limit": 1, "offset": 1})] == [
        "r-2.txt"
    ]
    assert [i["name"] for i in bucket.list(f"{user.id}/2026", {"search": "r-2"})] == ["r-2.txt"]

    signed = bucket.create_signed_url(key, 60)
    url = signed["signedURL"]
    assert url.startswith(f"{server.url}/storage/v1/object/sign/receipts/")
    fetched = httpx.get(url)  # no apikey, no bearer: a browser following a link
    assert fetched.status_code == 200 and fetched.content == b"receipt one"
    assert fetched.headers["content-type"].startswith("text/plain")
    assert fetched.headers["etag"].strip('"')
    # The token is bound to its object, and to being intact.
    other = url.replace("r-1.txt", "r-2.txt")
    assert httpx.get(other).status_code == 400
    assert httpx.get(url[:-3] + "abc").status_code == 400
    many = bucket.create_signed_urls([key, f"{user.id}/missing.txt"], 60)
    assert many[0]["error"] is None and httpx.get(many[0]["signedURL"]).content == b"receipt one"
    assert many[1]["signedURL"] is None

    # Names with spaces, brackets and non-ASCII survive the round trip, signed URLs included.
    odd = f"{user.id}/my file (1) résumé.txt"
    bucket.upload(odd, b"odd name")
    assert bucket.download(odd) == b"odd name"
    assert httpx.get(bucket.create_signed_url(odd, 60)["signedURL"]).content == b"odd name"
    bucket.remove([odd])

    removed = bucket.remove([key, f"{user.id}/top.txt"])
    assert sorted(r["name"] for r in removed) == sorted([key, f"{user.id}/top.txt"])
    assert [i["name"] for i in bucket.list(f"{user.id}/2026")] == ["r-2.txt"]
    with pytest.raises(StorageApiError) as missing:
        bucket.download(key)
    assert str(missing.value.status) == "404"
    assert httpx.get(url).status_code == 404  # the signed URL dies with its object


def test_upsert_update_move_copy(make_user: Callable[..., Any]) -> None:
    user = make_user()
    bucket = user.client.storage.from_("receipts")
    key = f"{user.id}/note.txt"
    bucket.upload(key, b"v1")
    with pytest.raises(StorageApiError) as dup:
        bucket.upload(key, b"v2")
    assert str(dup.value.status) == "409"
    bucket.upload(key, b"v2", {"upsert": "true"})
    assert bucket.download(key) == b"v2"
    bucket.update(key, b"v3", {"content-type": "text/markdown"})
    assert bucket.download(key) == b"v3"
    assert bucket.info(key)["content_type"] == "text/markdown"
    with pytest.raises(StorageApiError) as absent:
        bucket.update(f"{user.id}/absent.txt", b"x")
    assert str(absent.value.status) == "404"

    assert bucket.move(key, f"{user.id}/moved/note.txt") == {"message": "Successfully moved"}
    assert bucket.exists(key) is False
    copied = bucket.copy(f"{user.id}/moved/note.txt", f"{user.id}/copy.txt")
    assert copied["Key"] == f"receipts/{user.id}/copy.txt"
    bucket.remove([f"{user.id}/moved/note.txt"])
    assert bucket.download(f"{user.id}/copy.txt") == b"v3"  # the copy has bytes of its own


def test_public_url_serves_without_auth(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    images = user.client.storage.from_("product-images")
    key = f"{user.id}/products/p1.png"
    images.upload(key, PNG, {"content-type": "image/png"})
    public = httpx.get(images.get_public_url(key))
    assert public.status_code == 200 and public.content == PNG
    assert public.headers["content-type"] == "image/png"
    again = httpx.get(images.get_public_url(key), headers={"If-None-Match": public.headers["etag"]})
    assert again.status_code == 304

    receipts = user.client.storage.from_("receipts")
    receipts.upload(f"{user.id}/private.txt", b"private")
    hidden = httpx.get(receipts.get_public_url(f"{user.id}/private.txt"))
    assert hidden.status_code == 404
    assert hidden.json()["statusCode"] == "404"


def test_tenant_b_cannot_touch_a_objects(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a, b = make_user(), make_user()
    key = f"{a.id}/secret.txt"
    a.client.storage.from_("receipts").upload(key, b"A's secret")
    theirs = b.client.storage.from_("receipts")

    assert theirs.list(a.id) == []
    assert theirs.exists(key) is False
    for attempt in (
        lambda: theirs.download(key),
        lambda: theirs.info(key),
        lambda: theirs.create_signed_url(key, 60),
        lambda: theirs.move(key, f"{b.id}/stolen.txt"),
        lambda: theirs.copy(key, f"{b.id}/stolen.txt"),
    ):
        with pytest.raises(StorageApiError) as hidden:
            attempt()
        assert str(hidden.value.status) == "404"
    for attempt in (
        lambda: theirs.upload(key, b"overwritten"),
        lambda: theirs.upload(key, b"overwritten", {"upsert": "true"}),
        lambda: theirs.upload(f"{a.id}/new.txt", b"planted"),
        lambda: theirs.create_signed_upload_url(f"{a.id}/planted.txt"),
    ):
        with pytest.raises(StorageApiError) as denied:
            attempt()
        assert str(denied.value.status) == "403"
    assert theirs.remove([key]) == []
    # Even in a public bucket, B cannot write into A's folder.
    with pytest.raises(StorageApiError):
        b.client.storage.from_("product-images").upload(
            f"{a.id}/x.png", PNG, {"content-type": "image/png"}
        )
    # Anonymous callers see nothing of a private bucket either.
    anon = httpx.get(
        f"{server.url}/storage/v1/object/receipts/{key}",
        headers={"apikey": server.anon_key},
    )
    assert anon.status_code == 404

    assert a.client.storage.from_("receipts").download(key) == b"A's secret"


def test_oversize_and_wrong_mime_refused(make_user: Callable[..., Any]) -> None:
    user = make_user()
    images = user.client.storage.from_("product-images")
    with pytest.raises(StorageApiError) as big:
        images.upload(
            f"{user.id}/big.png", b"\0" * (5 * 1024 * 1024 + 1), {"content-type": "image/png"}
        )
    assert str(big.value.status) == "413"
    # Far over the limit: refused from its Content-Length, before the body is read.
    with pytest.raises(StorageApiError) as huge:
        images.upload(
            f"{user.id}/huge.png", b"\0" * (12 * 1024 * 1024), {"content-type": "image/png"}
        )
    assert str(huge.value.status) == "413"
    with pytest.raises(StorageApiError) as mime:
        images.upload(f"{user.id}/notes.txt", b"hello", {"content-type": "text/plain"})
    assert str(mime.value.status) == "415" and mime.value.code == "invalid_mime_type"
    assert images.list(user.id) == []


def test_traversal_and_bad_names_refused(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    headers = {**_headers(server, user.access_token), "content-type": "text/plain"}
    base = f"{server.url}/storage/v1/object/receipts"
    for path in (
        f"{user.id}/%2E%2E/%2E%2E/etc/passwd",
        f"{user.id}/%2E/x.txt",
        f"{user.id}//x.txt",
        f"{user.id}/x%00.txt",
        f"{user.id}/" + "a" * 1100,
    ):
        res = httpx.post(f"{base}/{path}", content=b"x", headers=headers)
        assert res.status_code == 400, path
        assert res.json()["error"] == "InvalidKey"
    broken = httpx.post(
        f"{base}/{user.id}/broken.txt",
        content=b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\nno end',
        headers={**headers, "content-type": "multipart/form-data; boundary=xyz"},
    )
    assert broken.status_code == 400 and broken.json()["statusCode"] == "400"
    no_file = httpx.post(
        f"{base}/{user.id}/empty.txt",
        data={"cacheControl": "3600"},
        files={"note": (None, "just a field")},
        headers=_headers(server, user.access_token),
    )
    assert no_file.status_code == 400
    bucket = user.client.storage.from_("receipts")
    bucket.upload(f"{user.id}/ok.txt", b"ok")
    with pytest.raises(StorageApiError) as moved:
        bucket.move(f"{user.id}/ok.txt", f"{user.id}/../../escaped.txt")
    assert str(moved.value.status) == "400"
    # The server keeps serving.
    assert bucket.download(f"{user.id}/ok.txt") == b"ok"


def test_raw_body_and_signed_upload(server: ServerProcess, make_user: Callable[..., Any]) -> None:
    user = make_user()
    raw = httpx.post(
        f"{server.url}/storage/v1/object/receipts/{user.id}/raw.csv",
        content=b"a,b\n1,2\n",
        headers={**_headers(server, user.access_token), "content-type": "text/csv"},
    )
    assert raw.status_code == 200, raw.text
    assert raw.json()["Key"] == f"receipts/{user.id}/raw.csv"
    bucket = user.client.storage.from_("receipts")
    assert bucket.info(f"{user.id}/raw.csv")["content_type"] == "text/csv"

    signed = bucket.create_signed_upload_url(f"{user.id}/via-link.txt")
    assert "token=" in signed["signed_url"]
    uploaded = bucket.upload_to_signed_url(f"{user.id}/via-link.txt", signed["token"], b"link")
    assert uploaded.full_path == f"receipts/{user.id}/via-link.txt"
    assert bucket.download(f"{user.id}/via-link.txt") == b"link"
    # Anyone holding the link may upload to that one path with no other credentials — once,
    # since the link was made without upsert.
    again = httpx.put(
        signed["signed_url"], content=b"again", headers={"content-type": "text/plain"}
    )
    assert again.status_code == 409, again.text
    fresh = bucket.create_signed_upload_url(f"{user.id}/anonymous-put.txt")
    put = httpx.put(fresh["signed_url"], content=b"no auth", headers={"content-type": "text/plain"})
    assert put.status_code == 200, put.text
    assert bucket.download(f"{user.id}/anonymous-put.txt") == b"no auth"
    elsewhere = httpx.put(
        signed["signed_url"].replace("via-link.txt", "other.txt"),
        content=b"x",
        headers={"content-type": "text/plain"},
    )
    assert elsewhere.status_code == 400
    # A storage token is not an API key.
    token = signed["token"]
    as_key = httpx.get(f"{server.url}/storage/v1/bucket", headers={"apikey": token})
    assert as_key.status_code == 401


def test_bad_tokens_are_refused_in_storage_shape(server: ServerProcess) -> None:
    forged = encode_token(
        {"sub": str(uuid.uuid4()), "role": "authenticated", "exp": 4102444800}, "not-the-secret"
    )
    res = httpx.get(f"{server.url}/storage/v1/bucket", headers=_headers(server, forged))
    assert res.status_code == 401
    body = res.json()
    assert (body["statusCode"], body["error"]) == ("401", "InvalidJWT") and body["message"]
    missing = httpx.get(f"{server.url}/storage/v1/object/receipts/x/y.txt")
    assert missing.status_code == 401 and missing.json()["statusCode"] == "401"
