"""GoTrue features PocketBizz does not offer (MFA, SSO, the OAuth server, external providers,
phone): each answers GoTrue's own error body and status for a project that has it switched
off, so clients show a clear reason rather than a bare 404 page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pocketbizz.auth.http import Body, auth_endpoint, json_body, parse, user_claims
from pocketbizz.errors import ApiError, AuthCode, BadRequest, NotFound, Unprocessable


class FactorParams(Body):
    factor_type: str | None = None


@auth_endpoint
async def enroll_factor(request: Request) -> Response:
    user_claims(request)  # GoTrue authenticates before it looks at the factor
    factor_type = parse(FactorParams, await json_body(request)).factor_type
    if factor_type == "totp":
        raise Unprocessable(
            "MFA enroll is disabled for TOTP", code=AuthCode.MFA_TOTP_ENROLL_NOT_ENABLED
        )
    if factor_type == "phone":
        raise Unprocessable(
            "MFA enroll is disabled for Phone", code=AuthCode.MFA_PHONE_ENROLL_NOT_ENABLED
        )
    if factor_type == "webauthn":
        raise Unprocessable(
            "MFA enroll is disabled for WebAuthn", code=AuthCode.MFA_WEBAUTHN_ENROLL_NOT_ENABLED
        )
    raise BadRequest(
        "factor_type needs to be totp, phone or webauthn", code=AuthCode.VALIDATION_FAILED
    )


@auth_endpoint
async def factor(request: Request) -> Response:
    user_claims(request)
    raise NotFound("Factor not found", code=AuthCode.MFA_FACTOR_NOT_FOUND)


@auth_endpoint
async def sso(request: Request) -> Response:
    raise NotFound("SAML 2.0 is disabled", code=AuthCode.SAML_PROVIDER_DISABLED)


@auth_endpoint
async def oauth_server(request: Request) -> Response:
    raise NotFound("OAuth server is disabled", code=AuthCode.FEATURE_DISABLED)


@auth_endpoint
async def authorize(request: Request) -> Response:
    # External sign-in (Google, Apple...): no provider is enabled.
    raise BadRequest(
        "Unsupported provider: provider is not enabled", code=AuthCode.VALIDATION_FAILED
    )


@auth_endpoint
async def not_found(request: Request) -> Response:
    raise ApiError("Not Found", status=404, code=AuthCode.NOT_FOUND)


_ALL = ["GET", "POST", "PUT", "PATCH", "DELETE"]

routes = [
    Route("/factors", enroll_factor, methods=["POST"]),
    Route("/factors/{factor_id}", factor, methods=["DELETE"]),
    Route("/factors/{factor_id}/{action:path}", factor, methods=["POST"]),
    Route("/sso", sso, methods=["POST"]),
    Route("/sso/{rest:path}", sso, methods=_ALL),
    Route("/oauth/{rest:path}", oauth_server, methods=_ALL),
    Route("/admin/oauth/{rest:path}", oauth_server, methods=_ALL),
    Route("/authorize", authorize, methods=["GET"]),
    Route("/{rest:path}", not_found, methods=_ALL),
]
