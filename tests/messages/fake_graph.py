"""A local stand-in for the WhatsApp Cloud API (Graph API), over real HTTP.

It speaks the documented protocol: `POST /{phone_number_id}/media` takes multipart fields
`file`, `type` and `messaging_product` and answers `{"id"}`; `POST /{phone_number_id}/messages`
takes a JSON message and answers `{"messaging_product", "contacts", "messages": [{"id"}]}`;
errors come as `{"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}`.
Answers can be scripted per edge; every request is recorded.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What the test server is configured with.
TOKEN = "EAAG-test-system-user-token"
PHONE_NUMBER_ID = "106540352242922"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"


@dataclass
class Received:
    edge: str
    phone_number_id: str
    authorization: str
    json: Any = None
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)


def graph_error(status: int, code: int, details: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "error": {
            "message": f"(#{code}) {details.split('.')[0]}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": "AbCdEf123",
        }
    }


class FakeGraph:
    def __init__(self, token: str, phone_number_id: str) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.received: list[Received] = []
        self.scripts: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v23.0"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, edge: str, *answers: tuple[int, dict[str, Any]]) -> None:
        with self.lock:
            self.scripts.setdefault(edge, []).extend(answers)

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.scripts.clear()

    def sent(self, edge: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.edge == edge]

    def _answer(self, request: Received) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.received.append(request)
            scripted = self.scripts.get(request.edge)
            if scripted:
                return scripted.pop(0)
        if request.authorization != f"Bearer {self.token}":
            return graph_error(401, 190, "Invalid OAuth access token.")
        if request.phone_number_id != self.phone_number_id:
            return graph_error(400, 100, "Unsupported post request.")
        if request.edge == "media":
            ok = request.fields.get("messaging_product") == "whatsapp" and "file" in request.files
            if not ok:
                return graph_error(400, 100, "Param file is required.")
            return 200, {"id": str(uuid.uuid4().int)[:16]}
        message = request.json or {}
        to = message.get("to", "")
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": f"wamid.{uuid.uuid4().hex}"}],
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")  # v23.0/{id}/{edge}
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = Received(
                    edge=parts[-1],
                    phone_number_id=parts[-2] if len(parts) >= 2 else "",
                    authorization=self.headers.get("Authorization", ""),
                )
                content_type = self.headers.get("Content-Type", "")
                if content_type.startswith("application/json"):
                    request.json = json.loads(body)
                elif content_type.startswith("multipart/form-data"):
                    head = f"Content-Type: {content_type}\r\n\r\n".encode()
                    message = BytesParser(policy=HTTP).parsebytes(head + body)
                    for part in message.iter_parts():
                        name = part.get_param("name", header="content-disposition")
                        filename = part.get_filename()
                        payload = part.get_payload(decode=True) or b""
                        if filename is not None:
                            request.files[str(name)] = (
                                filename,
                                part.get_content_type(),
                                payload,
                            )
                        else:
                            request.fields[str(name)] = payload.decode()
                status, answer = fake._answer(request)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
