"""Secrets the server keeps for a tenant (its own ToyyibPay secret key), sealed at rest.

AES-256-GCM under a key derived (HKDF-SHA256) from PB_SECRETS_KEY, with the tenant's id as
associated data: a sealed value copied into another tenant's row does not open there. Layout:
one version byte, a random 12-byte nonce, then the ciphertext with its 16-byte tag. The version
byte leaves room to change the scheme or rotate the key later.
"""

from __future__ import annotations

import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"
_NONCE_BYTES = 12
_INFO = b"pocketbizz tenant secrets v1"


class SealError(Exception):
    """A sealed value that does not open: another server key, another tenant, or tampered."""


def _cipher(key_material: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        key_material.encode()
    )
    return AESGCM(key)


def seal(key_material: str, tenant: uuid.UUID, secret: str) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return VERSION + nonce + _cipher(key_material).encrypt(nonce, secret.encode(), tenant.bytes)


def unseal(key_material: str, tenant: uuid.UUID, sealed: bytes) -> str:
    if sealed[:1] != VERSION or len(sealed) <= 1 + _NONCE_BYTES:
        raise SealError("unknown sealed-secret format")
    nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return _cipher(key_material).decrypt(nonce, body, tenant.bytes).decode()
    except InvalidTag:
        raise SealError("the sealed secret does not open with this server's key") from None
