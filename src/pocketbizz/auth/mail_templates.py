"""The auth e-mails in English and Malay, chosen by the user's `locale` or `lang` metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from typing import Any, Literal

Kind = Literal["confirmation", "invite", "recovery", "magiclink", "email_change"]


@dataclass(frozen=True)
class Letter:
    subject: str
    text: str


_TEMPLATES: dict[str, dict[Kind, tuple[str, str]]] = {
    "en": {
        "confirmation": (
            "Confirm your sign-up",
            "Welcome to PocketBizz.\n\n"
            "Follow this link to confirm your e-mail address:\n$link\n\n"
            "Or enter this code: $code\n\n"
            "The link and code expire in $minutes minutes. If you did not sign up, ignore "
            "this e-mail.\n",
        ),
        "invite": (
            "You have been invited",
            "You have been invited to a PocketBizz account.\n\n"
            "Follow this link to accept, then choose your password:\n$link\n\n"
            "Or enter this code: $code\n\n"
            "The link and code expire in $minutes minutes.\n",
        ),
        "recovery": (
            "Reset your password",
            "Someone asked to reset the password of your PocketBizz account.\n\n"
            "Follow this link to choose a new password:\n$link\n\n"
            "Or enter this code: $code\n\n"
            "The link and code expire in $minutes minutes. If you did not ask, ignore this "
            "e-mail: your password stays as it is.\n",
        ),
        "magiclink": (
            "Your sign-in link",
            "Follow this link to sign in to PocketBizz:\n$link\n\n"
            "Or enter this code: $code\n\n"
            "The link and code expire in $minutes minutes. If you did not ask to sign in, "
            "ignore this e-mail.\n",
        ),
        "email_change": (
            "Confirm your new e-mail address",
            "Your PocketBizz account is moving to this e-mail address.\n\n"
            "Follow this link to confirm it:\n$link\n\n"
            "Or enter this code: $code\n\n"
            "The link and code expire in $minutes minutes. Until then the account keeps its "
            "old address.\n",
        ),
    },
    "ms": {
        "confirmation": (
            "Sahkan pendaftaran anda",
            "Selamat datang ke PocketBizz.\n\n"
            "Ikut pautan ini untuk mengesahkan alamat e-mel anda:\n$link\n\n"
            "Atau masukkan kod ini: $code\n\n"
            "Pautan dan kod ini tamat tempoh dalam $minutes minit. Jika anda tidak mendaftar, "
            "abaikan e-mel ini.\n",
        ),
        "invite": (
            "Anda telah dijemput",
            "Anda telah dijemput ke akaun PocketBizz.\n\n"
            "Ikut pautan ini untuk menerima jemputan, kemudian pilih kata laluan anda:\n$link\n\n"
            "Atau masukkan kod ini: $code\n\n"
            "Pautan dan kod ini tamat tempoh dalam $minutes minit.\n",
        ),
        "recovery": (
            "Tetapkan semula kata laluan anda",
            "Seseorang telah meminta untuk menetapkan semula kata laluan akaun PocketBizz "
            "anda.\n\n"
            "Ikut pautan ini untuk memilih kata laluan baharu:\n$link\n\n"
            "Atau masukkan kod ini: $code\n\n"
            "Pautan dan kod ini tamat tempoh dalam $minutes minit. Jika anda tidak membuat "
            "permintaan ini, abaikan e-mel ini: kata laluan anda tidak berubah.\n",
        ),
        "magiclink": (
            "Pautan log masuk anda",
            "Ikut pautan ini untuk log masuk ke PocketBizz:\n$link\n\n"
            "Atau masukkan kod ini: $code\n\n"
            "Pautan dan kod ini tamat tempoh dalam $minutes minit. Jika anda tidak meminta "
            "untuk log masuk, abaikan e-mel ini.\n",
        ),
        "email_change": (
            "Sahkan alamat e-mel baharu anda",
            "Akaun PocketBizz anda akan berpindah ke alamat e-mel ini.\n\n"
            "Ikut pautan ini untuk mengesahkannya:\n$link\n\n"
            "Atau masukkan kod ini: $code\n\n"
            "Pautan dan kod ini tamat tempoh dalam $minutes minit. Sehingga itu, akaun anda "
            "kekal dengan alamat lama.\n",
        ),
    },
}


def language(user_metadata: Mapping[str, Any] | None) -> str:
    """'ms' for a Malay locale (ms, ms-MY, ms_MY, Malay), else 'en'."""
    meta = user_metadata or {}
    for key in ("locale", "lang", "language"):
        value = meta.get(key)
        if isinstance(value, str):
            tag = value.strip().lower().replace("_", "-")
            if tag == "ms" or tag.startswith("ms-") or tag in ("malay", "bahasa melayu"):
                return "ms"
    return "en"


def letter(kind: Kind, lang: str, *, link: str, code: str, minutes: int) -> Letter:
    subject, body = _TEMPLATES.get(lang, _TEMPLATES["en"])[kind]
    text = Template(body).substitute(link=link, code=code, minutes=minutes)
    return Letter(subject, text)
