"""Sending the auth e-mails (sign-up confirmation, password recovery, e-mail change) by SMTP.

The standard library's smtplib runs in a worker thread, so a slow mail server never blocks the
event loop. Port 465 speaks TLS from the start; otherwise STARTTLS is used when the server
offers it, and the login (when PB_SMTP_USER is set) is refused over a connection without TLS
unless the server is on this machine.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

import anyio.to_thread

from pocketbizz.auth.mail_templates import Letter
from pocketbizz.settings import Settings

_TIMEOUT_SECONDS = 15
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class MailNotConfigured(Exception):
    """PB_SMTP_HOST is not set."""


class MailFailed(Exception):
    """The SMTP server refused the message or could not be reached."""


@dataclass(frozen=True)
class Mailer:
    host: str | None
    port: int
    user: str | None
    password: str | None
    sender: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer:
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_user,
            settings.smtp_pass,
            settings.smtp_sender,
        )

    @property
    def configured(self) -> bool:
        return bool(self.host)

    async def send(self, to: str, letter: Letter) -> None:
        if not self.host:
            raise MailNotConfigured
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = letter.subject
        message["Message-ID"] = make_msgid(domain="pocketbizz")
        message.set_content(letter.text)
        try:
            await anyio.to_thread.run_sync(self._deliver, self.host, message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailFailed(str(exc)) from exc

    def _deliver(self, host: str, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.port == 465:
            smtp = smtplib.SMTP_SSL(host, self.port, timeout=_TIMEOUT_SECONDS, context=context)
        else:
            smtp = smtplib.SMTP(host, self.port, timeout=_TIMEOUT_SECONDS)
        with smtp:
            smtp.ehlo()
            secure = self.port == 465
            if not secure and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
                secure = True
            if self.user:
                if not secure and host not in _LOCAL_HOSTS:
                    raise MailFailed("refusing to send SMTP credentials without TLS")
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)
