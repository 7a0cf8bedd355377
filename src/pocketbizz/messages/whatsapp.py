"""A small client of the WhatsApp Cloud API (Graph API): media upload and template messages.

Errors come back as Meta's `{"error": {"code", "message", "error_data": {"details"}}}`; logic
keys on `code` and `details` (Meta stopped returning `error_subcode`). The token never reaches
a log line: it is only in the Authorization header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

# Rate limits: the account's (130429) and per recipient pair (131056). Worth trying again later.
RATE_LIMIT_CODES = frozenset({130429, 131056})


class GraphError(Exception):
    """The Cloud API refused a call, or could not be reached (status 0)."""

    def __init__(self, status: int, code: int | None, details: str) -> None:
        super().__init__(f"WhatsApp API error {code or status}: {details}")
        self.status = status
        self.code = code
        self.details = details

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status >= 500 or self.code in RATE_LIMIT_CODES


@dataclass(frozen=True)
class WhatsAppClient:
    api_url: str
    token: str
    phone_number_id: str
    timeout_s: float = 30.0

    async def upload_document(self, content: bytes, filename: str, media_type: str) -> str:
        """POST /{phone_number_id}/media (multipart) → the media id."""
        answer = await self._post(
            "media",
            data={"messaging_product": "whatsapp", "type": media_type},
            files={"file": (filename, content, media_type)},
        )
        return str(answer["id"])

    async def send_template(
        self,
        to: str,
        template: str,
        language: str,
        *,
        body_parameters: list[str],
        document_id: str | None = None,
        filename: str | None = None,
    ) -> str:
        """A template message, with a document header when `document_id` is given → Meta's
        message id (wamid)."""
        components: list[dict[str, Any]] = []
        if document_id is not None:
            document = {"id": document_id, "filename": filename or "document.pdf"}
            components.append(
                {"type": "header", "parameters": [{"type": "document", "document": document}]}
            )
        components.append(
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in body_parameters]}
        )
        message = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": {
                "name": template,
                "language": {"code": language},
                "components": components,
            },
        }
        answer = await self._post("messages", json=message)
        return str(answer["messages"][0]["id"])

    async def _post(self, edge: str, **request: Any) -> dict[str, Any]:
        url = f"{self.api_url.rstrip('/')}/{self.phone_number_id}/{edge}"
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(url, headers=headers, **request)
        except httpx.HTTPError as exc:
            raise GraphError(0, None, type(exc).__name__) from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.is_success and isinstance(answer, dict):
            return answer
        error = answer.get("error") if isinstance(answer, dict) else None
        if not isinstance(error, dict):
            raise GraphError(response.status_code, None, response.text[:500])
        code = error.get("code")
        data = error.get("error_data")
        details = data.get("details") if isinstance(data, dict) else None
        raise GraphError(
            response.status_code,
            code if isinstance(code, int) else None,
            str(details or error.get("message") or "")[:2000],
        )
