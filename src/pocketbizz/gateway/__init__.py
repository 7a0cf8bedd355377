"""The gateway: API keys and JWTs to roles, request ids, logs, metrics and body limits."""

from pocketbizz.gateway.identity import identify, request_identity
from pocketbizz.gateway.tokens import api_keys, decode_token, encode_token

__all__ = ["api_keys", "decode_token", "encode_token", "identify", "request_identity"]
