"""The error family and its mapping to each protocol's error shape — in one place.

Handlers raise ``ApiError`` (or a subclass); each service mount renders it in its protocol's
shape: GoTrue for /auth, PostgREST for /rest, Storage for /storage, Functions for /functions.
Gateway-level errors (no API key, body too large, rate limited) use a body that every official
client parses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum, unique
from typing import Any

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response

AUTH_API_VERSION = "2024-01-01"


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: Any = None,
        hint: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.details = details
        self.hint = hint
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class Unprocessable(ApiError):
    status = 422
    code = "validation_failed"


class RateLimited(ApiError):
    status = 429
    code = "over_request_rate_limit"


@unique
class PostgrestCode(StrEnum):
    """PostgREST's own error codes that /rest answers (PostgREST's errors reference names
    them; each has one HTTP status, in POSTGREST_STATUS)."""

    DB_UNREACHABLE = "PGRST000"
    DB_CONNECTION_LOST = "PGRST001"
    NO_SCHEMA_CACHE = "PGRST002"
    POOL_TIMEOUT = "PGRST003"
    QUERY_PARAM = "PGRST100"
    INVALID_BODY = "PGRST102"
    UNACCEPTABLE_SCHEMA = "PGRST106"
    MEDIA_TYPE = "PGRST107"
    NOT_EMBEDDED = "PGRST108"
    SINGULARITY = "PGRST116"
    SPREAD_NOT_TO_ONE = "PGRST119"
    AGGREGATES_NOT_ALLOWED = "PGRST123"
    MAX_AFFECTED = "PGRST124"
    NO_RELATIONSHIP = "PGRST200"
    AMBIGUOUS_RELATIONSHIP = "PGRST201"
    NO_FUNCTION = "PGRST202"
    AMBIGUOUS_FUNCTION = "PGRST203"
    COLUMN_NOT_FOUND = "PGRST204"
    TABLE_NOT_FOUND = "PGRST205"
    JWT_INVALID = "PGRST301"
    JWT_CLAIMS = "PGRST303"


POSTGREST_STATUS: Mapping[PostgrestCode, int] = {
    PostgrestCode.DB_UNREACHABLE: 503,
    PostgrestCode.DB_CONNECTION_LOST: 503,
    PostgrestCode.NO_SCHEMA_CACHE: 503,
    PostgrestCode.POOL_TIMEOUT: 504,
    PostgrestCode.QUERY_PARAM: 400,
    PostgrestCode.INVALID_BODY: 400,
    PostgrestCode.UNACCEPTABLE_SCHEMA: 406,
    PostgrestCode.MEDIA_TYPE: 406,
    PostgrestCode.NOT_EMBEDDED: 400,
    PostgrestCode.SINGULARITY: 406,
    PostgrestCode.SPREAD_NOT_TO_ONE: 400,
    PostgrestCode.AGGREGATES_NOT_ALLOWED: 400,
    PostgrestCode.MAX_AFFECTED: 400,
    PostgrestCode.NO_RELATIONSHIP: 400,
    PostgrestCode.AMBIGUOUS_RELATIONSHIP: 300,
    PostgrestCode.NO_FUNCTION: 404,
    PostgrestCode.AMBIGUOUS_FUNCTION: 300,
    PostgrestCode.COLUMN_NOT_FOUND: 400,
    PostgrestCode.TABLE_NOT_FOUND: 404,
    PostgrestCode.JWT_INVALID: 401,
    PostgrestCode.JWT_CLAIMS: 401,
}


class PostgrestError(ApiError):
    """An error PostgREST itself raises (not the database): its code fixes its status."""

    def __init__(
        self,
        code: PostgrestCode,
        message: str,
        *,
        details: Any = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(
            message, status=POSTGREST_STATUS[code], code=code, details=details, hint=hint
        )


@unique
class StorageCode(StrEnum):
    """Supabase Storage's error `code`s that /storage answers. As in Storage, the raising site
    gives the status (InvalidRequest is 400, or 409 for a bucket that is not empty) and the
    `error` name clients read (ApiError.extra["error"])."""

    NO_SUCH_KEY = "NoSuchKey"
    NO_SUCH_BUCKET = "NoSuchBucket"
    DUPLICATE = "Duplicate"
    INVALID_REQUEST = "InvalidRequest"
    INVALID_KEY = "InvalidKey"
    INVALID_BUCKET_NAME = "InvalidBucketName"
    INVALID_JWT = "InvalidJWT"
    INVALID_MIME_TYPE = "InvalidMimeType"
    ENTITY_TOO_LARGE = "EntityTooLarge"
    ACCESS_DENIED = "AccessDenied"
    INTERNAL_ERROR = "InternalError"
    ROUTE_NOT_FOUND = "not_found"


@unique
class AuthCode(StrEnum):
    """GoTrue's `error_code`s that /auth answers (its errors reference lists them). GoTrue ties
    no status to a code (user_banned is 400 at sign-in, 403 elsewhere): the raising site's
    ApiError class gives the status, as GoTrue's handlers do."""

    ANONYMOUS_PROVIDER_DISABLED = "anonymous_provider_disabled"
    BAD_JSON = "bad_json"
    BAD_JWT = "bad_jwt"
    EMAIL_ADDRESS_INVALID = "email_address_invalid"
    EMAIL_EXISTS = "email_exists"
    EMAIL_NOT_CONFIRMED = "email_not_confirmed"
    FEATURE_DISABLED = "feature_disabled"
    INVALID_CREDENTIALS = "invalid_credentials"
    MFA_FACTOR_NOT_FOUND = "mfa_factor_not_found"
    MFA_PHONE_ENROLL_NOT_ENABLED = "mfa_phone_enroll_not_enabled"
    MFA_TOTP_ENROLL_NOT_ENABLED = "mfa_totp_enroll_not_enabled"
    MFA_WEBAUTHN_ENROLL_NOT_ENABLED = "mfa_webauthn_enroll_not_enabled"
    NO_AUTHORIZATION = "no_authorization"
    NOT_ADMIN = "not_admin"
    NOT_FOUND = "not_found"
    OTP_DISABLED = "otp_disabled"
    OTP_EXPIRED = "otp_expired"
    OVER_EMAIL_SEND_RATE_LIMIT = "over_email_send_rate_limit"
    PHONE_PROVIDER_DISABLED = "phone_provider_disabled"
    REFRESH_TOKEN_ALREADY_USED = "refresh_token_already_used"
    REFRESH_TOKEN_NOT_FOUND = "refresh_token_not_found"
    SAME_PASSWORD = "same_password"
    SAML_PROVIDER_DISABLED = "saml_provider_disabled"
    SESSION_EXPIRED = "session_expired"
    SESSION_NOT_FOUND = "session_not_found"
    UNEXPECTED_FAILURE = "unexpected_failure"
    USER_ALREADY_EXISTS = "user_already_exists"
    USER_BANNED = "user_banned"
    USER_NOT_FOUND = "user_not_found"
    VALIDATION_FAILED = "validation_failed"
    WEAK_PASSWORD = "weak_password"


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def universal_response(exc: ApiError) -> Response:
    """A body every official client parses: GoTrue, PostgREST, Storage and Functions keys."""
    body = {
        "code": exc.code,
        "error_code": exc.code,
        "msg": exc.message,
        "message": exc.message,
        "error": exc.message,
        "statusCode": str(exc.status),
        "details": exc.details,
        "hint": exc.hint,
    }
    headers = {"X-Supabase-Api-Version": AUTH_API_VERSION, **exc.headers}
    return _json(exc.status, body, headers)


# The database away reaches /auth as PostgREST's connection errors (raised below the handlers,
# by Database); GoTrue names every database failure unexpected_failure. The status (503, 504)
# stays: the clients retry those instead of dropping the session.
_AUTH_DATABASE_FAILURES = frozenset(
    {PostgrestCode.DB_UNREACHABLE, PostgrestCode.DB_CONNECTION_LOST, PostgrestCode.POOL_TIMEOUT}
)


def auth_response(exc: ApiError) -> Response:
    code = AuthCode.UNEXPECTED_FAILURE if exc.code in _AUTH_DATABASE_FAILURES else exc.code
    body: dict[str, Any] = {
        "code": code,
        "error_code": code,
        "msg": exc.message,
        "message": exc.message,
        **exc.extra,
    }
    headers = {"X-Supabase-Api-Version": AUTH_API_VERSION, **exc.headers}
    return _json(exc.status, body, headers)


def postgrest_response(exc: ApiError) -> Response:
    body = {"code": exc.code, "details": exc.details, "hint": exc.hint, "message": exc.message}
    return _json(exc.status, body, exc.headers)


def storage_response(exc: ApiError) -> Response:
    body = {
        "statusCode": str(exc.status),
        "error": exc.extra.get("error", exc.code),
        "message": exc.message,
        "code": exc.code,
    }
    return _json(exc.status, body, exc.headers)


def functions_response(exc: ApiError) -> Response:
    body: dict[str, Any] = {"error": exc.message, "code": exc.code}
    if exc.details is not None:
        body["details"] = exc.details
    return _json(exc.status, body, exc.headers)


ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


def api_error_handlers(
    render: Callable[[ApiError], Response],
) -> dict[type[Exception], ErrorHandler]:
    """The exception handler of a sub-app whose failures are all ApiError (the server mounts
    each service with its `error_handlers`): `render` draws them in that API's shape."""

    async def handle(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, ApiError):  # registered for ApiError only
            raise exc
        return render(exc)

    return {ApiError: handle}


# SQLSTATE → HTTP status, as PostgREST maps them.
_SQLSTATE_STATUS = {
    "23505": 409,  # unique_violation
    "23503": 409,  # foreign_key_violation
    "23502": 400,  # not_null_violation
    "23514": 400,  # check_violation
    "22P02": 400,  # invalid_text_representation
    "22003": 400,  # numeric_value_out_of_range
    "22001": 400,  # string_data_right_truncation
    "22007": 400,  # invalid_datetime_format
    "22008": 400,  # datetime_field_overflow
    "22023": 400,  # invalid_parameter_value
    "P0001": 400,  # raise_exception
    "42883": 404,  # undefined_function
    "42P01": 404,  # undefined_table
    "42703": 400,  # undefined_column
    "57014": 400,  # query_canceled (statement timeout) — not 503, the client would retry
    "40001": 409,  # serialization_failure
    "40P01": 409,  # deadlock_detected
    "25006": 405,  # read_only_sql_transaction
}


def from_postgres(exc: asyncpg.PostgresError, *, anonymous: bool) -> ApiError:
    """Turn a database error into an ApiError carrying its SQLSTATE, PostgREST-style."""
    sqlstate = getattr(exc, "sqlstate", None) or "XX000"
    if sqlstate == "42501":
        status = 401 if anonymous else 403
    elif sqlstate in _SQLSTATE_STATUS:
        status = _SQLSTATE_STATUS[sqlstate]
    elif sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        # RAISE ... USING ERRCODE = 'PT409' sets the HTTP status, as in PostgREST.
        status = int(sqlstate[2:])
    elif sqlstate.startswith(("22", "23")):
        status = 400
    elif sqlstate.startswith("08") or (sqlstate.startswith("53") and sqlstate != "53400"):
        # Connection exceptions and insufficient resources (too many clients, disk full, out of
        # memory) are the server's passing state: 503, which clients retry, as in PostgREST.
        status = 503
    else:
        status = 500
    message = getattr(exc, "message", None) or str(exc)
    hint = getattr(exc, "hint", None)
    if sqlstate == "23514":
        hint = _allowed_values_hint(getattr(exc, "constraint_name", None)) or hint
    elif sqlstate == "42501" and not anonymous:
        message, hint = _explain_write_refusal(message, hint)
    return ApiError(
        message,
        status=status,
        code=sqlstate,
        details=getattr(exc, "detail", None),
        hint=hint,
    )


# Enum-like CHECK constraints (`col in (...)`) by name: a refused value is answered with the
# allowed ones. tests/docs/test_error_wording.py keeps this equal to the catalog.
ENUM_CHECKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sales_channel_check": ("channel", ("walk-in", "online", "delivery")),
    "sales_status_check": ("status", ("completed", "void")),
    "sales_payment_method_check": (
        "payment_method",
        ("cash", "card", "ewallet", "qr", "bank_transfer", "toyyibpay", "credit", "other"),
    ),
    "sales_payment_status_check": ("payment_status", ("pending", "paid", "failed", "refunded")),
    "stock_movements_movement_type_check": ("movement_type", ("in", "out")),
    "stock_movements_reference_type_check": (
        "reference_type",
        ("sale", "void", "refund", "purchase", "adjustment", "production", "waste", "opening"),
    ),
    "products_negative_stock_policy_check": ("negative_stock_policy", ("block", "allow")),
    "business_profiles_negative_stock_policy_check": ("negative_stock_policy", ("block", "allow")),
    "outbound_messages_status_check": (
        "status",
        ("queued", "sent", "delivered", "read", "failed"),
    ),
    "subscription_payments_status_check": ("status", ("pending", "paid", "failed", "flagged")),
    "payment_links_status_check": ("status", ("open", "paid", "failed", "flagged")),
}


def _allowed_values_hint(constraint: str | None) -> str | None:
    if constraint not in ENUM_CHECKS:
        return None
    column, values = ENUM_CHECKS[constraint]
    return f"{column} must be one of: {', '.join(values)}"


# Tables whose rows (or some columns) only SQL functions write: a refused write says which
# function to call instead. PostgreSQL names only the table when a column grant is missing.
FUNCTION_ONLY_WRITES: dict[str, tuple[str, str | None]] = {
    "products": (
        "current_stock changes only through the RPCs adjust_stock, record_purchase and "
        "record_production (create_sale and void_sale move it too); id, business_owner_id, "
        "created_at and updated_at are set by the server",
        "To record a stock count: rpc('adjust_stock', "
        "{product_id, counted_quantity, reason: 'count'})",
    ),
    "sales": (
        "sales and their totals are written only by the RPCs create_sale and void_sale",
        "rpc('create_sale', {items: [{product_id, quantity}], ...}) prices, numbers and "
        "totals a sale; rpc('void_sale', {sale_id, reason}) voids it",
    ),
    "sale_items": ("sale lines are written only by the RPC create_sale", None),
    "subscription_payments": (
        "subscription payments are written only by the server (the subscribe function and "
        "ToyyibPay's verified callback)",
        "functions.invoke('subscribe', {plan, months}) starts a payment",
    ),
    "payment_settings": (
        "payment settings are written only by the payment-settings function (the secret key "
        "is kept encrypted on the server)",
        "functions.invoke('payment-settings', {secret_key, category_code}, method PUT)",
    ),
    "payment_links": (
        "payment links are written only by the server (the payment-link function and "
        "ToyyibPay's verified callback)",
        "functions.invoke('payment-link', {sale_id}) makes one",
    ),
    "stock_movements": (
        "the stock ledger is written only by the RPCs create_sale, void_sale, record_purchase, "
        "adjust_stock and record_production",
        None,
    ),
    "sale_number_counters": ("sale numbers are kept by the RPC create_sale", None),
    "users": (
        "a client may update only full_name and phone; subscription_plan, "
        "subscription_expires_at and is_active change through the payment flow, email through "
        "the auth API",
        None,
    ),
    "business_profiles": (
        "the business profile is created at sign-up and cannot be inserted or deleted: update "
        "it instead; id, business_owner_id, created_at and updated_at are set by the server",
        None,
    ),
    "plans": ("plans are managed by the operator (service_role)", None),
    "recipe_items": (
        "only quantity can be updated: delete the line and insert a new one to change "
        "product_id or ingredient_id",
        None,
    ),
    "customers": ("id, business_owner_id, created_at and updated_at are set by the server", None),
}
_PERMISSION_DENIED = "permission denied for table "


def _explain_write_refusal(message: str, hint: str | None) -> tuple[str, str | None]:
    if not message.startswith(_PERMISSION_DENIED):
        return message, hint
    rule = FUNCTION_ONLY_WRITES.get(message[len(_PERMISSION_DENIED) :])
    if rule is None:
        return message, hint
    return f"{message}: {rule[0]}", rule[1] or hint
