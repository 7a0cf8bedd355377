"""Auth at /auth/v1 (GoTrue-compatible): accounts, sessions, rotating refresh tokens, JWTs."""

from pocketbizz.auth.revocation import token_is_revoked
from pocketbizz.auth.runtime import shutdown, startup

__all__ = ["shutdown", "startup", "token_is_revoked"]
