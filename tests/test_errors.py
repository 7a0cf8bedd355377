"""The error family: each protocol's codes with their statuses, and each renderer's shape."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response

from pocketbizz.errors import (
    AUTH_API_VERSION,
    POSTGREST_STATUS,
    ApiError,
    AuthCode,
    PostgrestCode,
    PostgrestError,
    StorageCode,
    Unprocessable,
    api_error_handlers,
    auth_response,
    functions_response,
    postgrest_response,
    storage_response,
    universal_response,
)


def _body(response: Response) -> Any:
    return orjson.loads(bytes(response.body))


def test_every_postgrest_code_has_a_status() -> None:
    assert set(POSTGREST_STATUS) == set(PostgrestCode)
    assert all(100 <= status <= 599 for status in POSTGREST_STATUS.values())
    # The codes are PostgREST's own: "PGRST" and three digits.
    assert all(re.fullmatch(r"PGRST\d{3}", code) for code in PostgrestCode)


@pytest.mark.parametrize("code", list(PostgrestCode))
def test_a_postgrest_error_takes_its_status_from_its_code(code: PostgrestCode) -> None:
    error = PostgrestError(code, "m", details="d", hint="h")
    assert (error.status, error.code, error.details, error.hint) == (
        POSTGREST_STATUS[code],
        code.value,
        "d",
        "h",
    )
    response = postgrest_response(error)
    assert response.status_code == POSTGREST_STATUS[code]
    assert _body(response) == {"code": code.value, "details": "d", "hint": "h", "message": "m"}


def test_postgrest_statuses_match_postgrest_for_the_documented_codes() -> None:
    # As PostgREST's errors reference gives them.
    assert POSTGREST_STATUS[PostgrestCode.QUERY_PARAM] == 400
    assert POSTGREST_STATUS[PostgrestCode.COLUMN_NOT_FOUND] == 400
    assert POSTGREST_STATUS[PostgrestCode.TABLE_NOT_FOUND] == 404
    assert POSTGREST_STATUS[PostgrestCode.NO_FUNCTION] == 404
    assert POSTGREST_STATUS[PostgrestCode.UNACCEPTABLE_SCHEMA] == 406
    assert POSTGREST_STATUS[PostgrestCode.SINGULARITY] == 406
    assert POSTGREST_STATUS[PostgrestCode.JWT_INVALID] == 401
    assert POSTGREST_STATUS[PostgrestCode.JWT_CLAIMS] == 401


def test_postgrest_body_is_exactly_its_four_keys_in_order() -> None:
    response = postgrest_response(ApiError("boom", status=409, code="23505", details="dup"))
    assert response.status_code == 409
    assert response.body == b'{"code":"23505","details":"dup","hint":null,"message":"boom"}'


def test_auth_body_is_gotrue_shaped_with_extras_and_version_header() -> None:
    error = Unprocessable(
        "Password should be at least 8 characters.",
        code="weak_password",
        extra={"weak_password": {"reasons": ["length"]}},
    )
    response = auth_response(error)
    assert response.status_code == 422
    assert response.headers["x-supabase-api-version"] == AUTH_API_VERSION
    assert _body(response) == {
        "code": "weak_password",
        "error_code": "weak_password",
        "msg": "Password should be at least 8 characters.",
        "message": "Password should be at least 8 characters.",
        "weak_password": {"reasons": ["length"]},
    }


def test_storage_body_has_a_string_status_and_names_the_error() -> None:
    error = ApiError("Object not found", status=404, code="NoSuchKey", extra={"error": "not_found"})
    response = storage_response(error)
    assert response.status_code == 404
    assert _body(response) == {
        "statusCode": "404",
        "error": "not_found",
        "message": "Object not found",
        "code": "NoSuchKey",
    }
    # Without an explicit error name, the code stands in.
    assert _body(storage_response(ApiError("x", code="InvalidKey")))["error"] == "InvalidKey"


def test_functions_body_is_error_and_code_with_details_only_when_given() -> None:
    assert _body(functions_response(ApiError("nope", status=404, code="not_found"))) == {
        "error": "nope",
        "code": "not_found",
    }
    with_details = functions_response(ApiError("bad", code="invalid", details={"field": "x"}))
    assert _body(with_details) == {"error": "bad", "code": "invalid", "details": {"field": "x"}}


def test_universal_body_carries_every_clients_keys() -> None:
    response = universal_response(ApiError("slow down", status=429, code="rate_limited"))
    assert response.status_code == 429
    assert response.headers["x-supabase-api-version"] == AUTH_API_VERSION
    assert _body(response) == {
        "code": "rate_limited",
        "error_code": "rate_limited",
        "msg": "slow down",
        "message": "slow down",
        "error": "slow down",
        "statusCode": "429",
        "details": None,
        "hint": None,
    }


async def test_a_sub_apps_handler_renders_api_errors_in_its_shape_and_nothing_else() -> None:
    handlers = api_error_handlers(functions_response)
    assert list(handlers) == [ApiError]
    handle = handlers[ApiError]
    request = Request({"type": "http", "method": "GET", "path": "/x", "headers": []})
    response = await handle(request, ApiError("nope", status=404, code="not_found"))
    assert (response.status_code, _body(response)) == (404, {"error": "nope", "code": "not_found"})
    with pytest.raises(KeyError):
        await handle(request, KeyError("not an ApiError"))


def test_enum_codes_reach_the_wire_as_their_plain_strings() -> None:
    auth = auth_response(ApiError("User is banned", code=AuthCode.USER_BANNED))
    assert b'"code":"user_banned","error_code":"user_banned"' in bytes(auth.body)
    storage = storage_response(
        ApiError("Object not found", status=404, code=StorageCode.NO_SUCH_KEY)
    )
    assert _body(storage)["code"] == "NoSuchKey"
    assert _body(storage)["error"] == "NoSuchKey"
