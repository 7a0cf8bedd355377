"""Routes of Storage at /storage/v1 (Supabase Storage-compatible)."""

from __future__ import annotations

from starlette.routing import Route

from pocketbizz.storage.buckets import (
    create_bucket,
    delete_bucket,
    empty_bucket,
    get_bucket,
    list_buckets,
    update_bucket,
)
from pocketbizz.storage.http import error_handlers, route_not_found
from pocketbizz.storage.objects import (
    copy_object,
    download_object,
    download_public,
    download_signed,
    list_objects,
    list_objects_v2,
    move_object,
    object_info,
    object_info_public,
    remove_object,
    remove_objects,
    sign_download,
    sign_downloads,
    sign_upload,
    update_object,
    upload_object,
    upload_signed,
)

# Specific routes first: `/object/{bucket}/{path}` would otherwise swallow `/object/sign/...`.
routes = [
    Route("/bucket", list_buckets, methods=["GET"]),
    Route("/bucket", create_bucket, methods=["POST"]),
    Route("/bucket/{bucket}", get_bucket, methods=["GET"]),
    Route("/bucket/{bucket}", update_bucket, methods=["PUT"]),
    Route("/bucket/{bucket}", delete_bucket, methods=["DELETE"]),
    Route("/bucket/{bucket}/empty", empty_bucket, methods=["POST"]),
    Route("/object/list/{bucket}", list_objects, methods=["POST"]),
    Route("/object/list-v2/{bucket}", list_objects_v2, methods=["POST"]),
    Route("/object/move", move_object, methods=["POST"]),
    Route("/object/copy", copy_object, methods=["POST"]),
    Route("/object/sign/{bucket}", sign_downloads, methods=["POST"]),
    Route("/object/sign/{bucket}/{path:path}", sign_download, methods=["POST"]),
    Route("/object/sign/{bucket}/{path:path}", download_signed, methods=["GET"]),
    Route("/object/upload/sign/{bucket}/{path:path}", sign_upload, methods=["POST"]),
    Route("/object/upload/sign/{bucket}/{path:path}", upload_signed, methods=["PUT"]),
    Route("/object/public/{bucket}/{path:path}", download_public, methods=["GET"]),
    Route("/object/info/public/{bucket}/{path:path}", object_info_public, methods=["GET"]),
    Route("/object/info/authenticated/{bucket}/{path:path}", object_info, methods=["GET"]),
    Route("/object/info/{bucket}/{path:path}", object_info, methods=["GET"]),
    Route("/object/authenticated/{bucket}/{path:path}", download_object, methods=["GET"]),
    Route("/object/{bucket}", remove_objects, methods=["DELETE"]),
    Route("/object/{bucket}/{path:path}", download_object, methods=["GET"]),
    Route("/object/{bucket}/{path:path}", upload_object, methods=["POST"]),
    Route("/object/{bucket}/{path:path}", update_object, methods=["PUT"]),
    Route("/object/{bucket}/{path:path}", remove_object, methods=["DELETE"]),
    # Last: everything else answers a storage-shaped 404.
    Route(
        "/{path:path}", route_not_found, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    ),
]

__all__ = ["error_handlers", "routes"]
