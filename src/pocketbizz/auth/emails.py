"""The e-mailed flows: issue a one-time token, build its link on PB_PUBLIC_URL, pick the
user's language, send. Called inside the request's transaction, as GoTrue does: a mail that
cannot be sent rolls the change back (no token exists that nobody received)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import asyncpg
import structlog

from pocketbizz.auth import mail_templates, service
from pocketbizz.auth.mailer import Mailer, MailFailed, MailNotConfigured
from pocketbizz.errors import ApiError, AuthCode
from pocketbizz.settings import Settings

log = structlog.get_logger("pocketbizz.auth.mail")

# The mail a token goes out in, by default, and the verification type its link names
# (GoTrue's types, as in POST /verify).
_KIND: dict[service.TokenType, mail_templates.Kind] = {
    "confirmation_token": "confirmation",
    "recovery_token": "recovery",
    "email_change_token_new": "email_change",
}
_LINK_TYPE: dict[mail_templates.Kind, str] = {
    "confirmation": "signup",
    "invite": "invite",
    "recovery": "recovery",
    "magiclink": "magiclink",
    "email_change": "email_change",
}
_FAILURE: dict[service.TokenType, str] = {  # GoTrue's messages
    "confirmation_token": "Error sending confirmation email",
    "recovery_token": "Error sending recovery email",
    "email_change_token_new": "Error sending email change email",
}


def require_mail(settings: Settings, token_type: service.TokenType) -> None:
    """Without SMTP a flow that mails cannot work: say so to every caller alike (answering
    only for existing accounts would tell which addresses have one)."""
    if not Mailer.from_settings(settings).configured:
        raise ApiError(_FAILURE[token_type], status=500, code=AuthCode.UNEXPECTED_FAILURE)


def verify_link(settings: Settings, token_hash: str, link_type: str, redirect_to: str) -> str:
    query = urlencode({"token": token_hash, "type": link_type, "redirect_to": redirect_to})
    return f"{settings.url}/auth/v1/verify?{query}"


async def send_token(
    conn: asyncpg.Connection,
    settings: Settings,
    *,
    user_id: UUID,
    user_metadata: dict[str, Any] | None,
    token_type: service.TokenType,
    to: str,
    redirect_to: str,
    kind: mail_templates.Kind | None = None,
) -> None:
    """Issue the token and mail it; `kind` overrides the token's usual mail (a recovery token
    sent as a sign-in link is GoTrue's magic link; a confirmation sent as an invitation)."""
    require_mail(settings, token_type)
    mailer = Mailer.from_settings(settings)
    issued = await service.issue_token(
        conn, user_id, token_type, to, max_frequency=settings.smtp_max_frequency
    )
    kind = kind or _KIND[token_type]
    letter = mail_templates.letter(
        kind,
        mail_templates.language(user_metadata),
        link=verify_link(settings, issued.token_hash, _LINK_TYPE[kind], redirect_to),
        code=issued.code,
        minutes=max(settings.mailer_otp_exp // 60, 1),
    )
    try:
        await mailer.send(to, letter)
    except (MailFailed, MailNotConfigured) as exc:
        log.error("auth mail not sent", kind=token_type, error=str(exc))
        raise ApiError(_FAILURE[token_type], status=500, code=AuthCode.UNEXPECTED_FAILURE) from exc
