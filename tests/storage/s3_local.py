"""A small S3-compatible server for tests: path-style PUT/GET/DELETE and server-side copy,
refusing any request whose AWS Signature V4 does not verify. Objects live in memory."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from datetime import UTC, datetime

import uvicorn
from harness import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pocketbizz.storage.s3 import sigv4_headers

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/s3/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<sig>[0-9a-f]{64})"
)


class LocalS3:
    def __init__(self, access_key: str, secret_key: str, region: str = "us-east-1") -> None:
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.requests: list[str] = []
        self.port = free_port()
        app = Starlette(
            routes=[Route("/{path:path}", self.handle, methods=["GET", "PUT", "DELETE"])]
        )
        self.server = uvicorn.Server(uvicorn.Config(app, port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalS3:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)

    def _verified(self, request: Request) -> bool:
        match = _AUTH.fullmatch(request.headers.get("authorization", ""))
        if not match or match["key"] != self.access_key:
            return False
        signed = match["signed"].split(";")
        headers = {
            h: request.headers[h]
            for h in signed
            if h not in ("host", "x-amz-date", "x-amz-content-sha256")
        }
        now = datetime.strptime(request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        raw_path = request.scope["raw_path"].decode()
        query = request.scope["query_string"].decode()
        url = f"http://{request.headers['host']}{raw_path}" + (f"?{query}" if query else "")
        expected = sigv4_headers(
            method=request.method,
            url=url,
            headers=headers,
            payload_hash=request.headers["x-amz-content-sha256"],
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            now=now,
        )
        return expected["authorization"] == request.headers["authorization"]

    async def handle(self, request: Request) -> Response:
        self.requests.append(f"{request.method} {request.url.path}")
        if not self._verified(request):
            return Response("<Error><Code>SignatureDoesNotMatch</Code></Error>", status_code=403)
        key = request.url.path
        if request.method == "PUT":
            source = request.headers.get("x-amz-copy-source")
            if source:
                if source not in self.objects:
                    return Response("<Error><Code>NoSuchKey</Code></Error>", status_code=404)
                self.objects[key] = self.objects[source]
                return Response("<CopyObjectResult/>")
            body = await request.body()
            if len(body) != int(request.headers["content-length"]):
                return Response("<Error><Code>IncompleteBody</Code></Error>", status_code=400)
            self.objects[key] = (body, request.headers.get("content-type", ""))
            return Response(headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
        if request.method == "DELETE":
            self.objects.pop(key, None)
            return Response(status_code=204)
        if key not in self.objects:
            return Response("<Error><Code>NoSuchKey</Code></Error>", status_code=404)
        body, content_type = self.objects[key]
        return Response(body, media_type=content_type)
