"""The admin API through the official client's `auth.admin` (service_role only), bans as
GoTrue answers them, and GoTrue's errors for the features PocketBizz leaves off."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from auth.support import headers, surfaces
from harness import ServerProcess
from supabase import create_client
from supabase_auth.errors import AuthApiError


def _email() -> str:
    return f"admin-{uuid.uuid4().hex[:10]}@example.com"


def test_admin_create_get_list_update(server: ServerProcess, service_client: Any) -> None:
    admin = service_client.auth.admin
    email = _email()
    created = admin.create_user(
        {
            "email": email.upper(),
            "password": "counter-pass-1",
            "email_confirm": True,
            "user_metadata": {"full_name": "Kedai Ali", "locale": "ms"},
            "app_metadata": {"plan_note": "trial"},
        }
    ).user
    assert created.email == email and created.email_confirmed_at is not None
    assert created.user_metadata == {"full_name": "Kedai Ali", "locale": "ms"}
    assert created.app_metadata == {
        "plan_note": "trial",
        "provider": "email",
        "providers": ["email"],
    }
    # The tenant was made with the account, as at sign-up.
    shop = create_client(server.url, server.anon_key)
    shop.auth.sign_in_with_password({"email": email, "password": "counter-pass-1"})
    profile = shop.table("users").select("full_name").execute().data
    assert profile == [{"full_name": "Kedai Ali"}]

    assert admin.get_user_by_id(created.id).user.email == email
    with pytest.raises(AuthApiError) as duplicate:
        admin.create_user({"email": email, "password": "another-pass"})
    assert duplicate.value.status == 422 and duplicate.value.code == "email_exists"

    updated = admin.update_user_by_id(
        created.id,
        {
            "user_metadata": {"locale": None, "phone": "0123"},
            "app_metadata": {"plan_note": "paid"},
            "password": "counter-pass-2",
        },
    ).user
    assert updated.user_metadata == {"full_name": "Kedai Ali", "phone": "0123"}
    assert updated.app_metadata["plan_note"] == "paid"
    # A password set by the admin ends the user's sessions (GoTrue).
    with pytest.raises(AuthApiError):
        shop.auth.refresh_session()
    assert (
        create_client(server.url, server.anon_key)
        .auth.sign_in_with_password({"email": email, "password": "counter-pass-2"})
        .session
    )

    unconfirmed = admin.create_user({"email": _email(), "password": "pending-pass"}).user
    assert unconfirmed.email_confirmed_at is None
    confirmed = admin.update_user_by_id(unconfirmed.id, {"email_confirm": True}).user
    assert confirmed.email_confirmed_at is not None

    # Newest first, paged; headers as GoTrue's.
    first = admin.list_users(page=1, per_page=1)
    assert [u.id for u in first] == [unconfirmed.id]
    second = admin.list_users(page=2, per_page=1)
    assert [u.id for u in second] == [created.id]
    raw = httpx.get(
        f"{server.url}/auth/v1/admin/users?page=1&per_page=1",
        headers=headers(server, server.service_key) | {"apikey": server.service_key},
    )
    assert raw.status_code == 200 and raw.json()["aud"] == "authenticated"
    assert int(raw.headers["x-total-count"]) >= 2 and 'rel="next"' in raw.headers["link"]


def test_admin_api_is_for_service_role_only(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    for bearer, status, code in (
        (user.access_token, 403, "not_admin"),
        (server.anon_key, 403, "not_admin"),
    ):
        answer = httpx.get(
            f"{server.url}/auth/v1/admin/users",
            headers={"apikey": server.anon_key, "Authorization": f"Bearer {bearer}"},
        )
        assert (answer.status_code, answer.json()["code"]) == (status, code)
    bare = httpx.get(f"{server.url}/auth/v1/admin/users", headers={"apikey": server.anon_key})
    assert (bare.status_code, bare.json()["code"]) == (401, "no_authorization")
    with pytest.raises(AuthApiError) as refused:
        user.client.auth.admin.delete_user(user.id)
    assert refused.value.status in (401, 403)


def test_ban_refuses_sign_in_and_ends_sessions_until_lifted(
    server: ServerProcess, service_client: Any, make_user: Callable[..., Any]
) -> None:
    admin = service_client.auth.admin
    user = make_user()
    banned = admin.update_user_by_id(user.id, {"ban_duration": "24h"}).user
    until = datetime.fromisoformat(str(banned.banned_until).replace("Z", "+00:00"))
    assert timedelta(hours=23, minutes=59) < until - datetime.now(UTC) <= timedelta(hours=24)

    client = create_client(server.url, server.anon_key)
    with pytest.raises(AuthApiError) as refused:
        client.auth.sign_in_with_password({"email": user.email, "password": user.password})
    assert refused.value.status == 400 and refused.value.code == "user_banned"
    assert refused.value.message == "User is banned"
    # A wrong password learns nothing about the ban.
    with pytest.raises(AuthApiError) as guessed:
        client.auth.sign_in_with_password({"email": user.email, "password": "wrong-password"})
    assert guessed.value.code == "invalid_credentials"
    # The sessions of before are over on every surface, the refresh token too.
    assert surfaces(server, user.access_token, user.id)["rest"] == 401
    with pytest.raises(AuthApiError) as refresh:
        user.client.auth.refresh_session()
    assert refresh.value.status == 400

    with pytest.raises(AuthApiError) as bad:
        admin.update_user_by_id(user.id, {"ban_duration": "a while"})
    assert bad.value.status == 400 and "invalid format for ban duration" in bad.value.message

    lifted = admin.update_user_by_id(user.id, {"ban_duration": "none"}).user
    assert not lifted.banned_until
    assert client.auth.sign_in_with_password(
        {"email": user.email, "password": user.password}
    ).session


def test_switched_off_features_answer_gotrue_errors(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    h = headers(server, user.access_token)
    anon = {"apikey": server.anon_key}
    cases = [
        ("POST", "/factors", h, {"factor_type": "totp"}, 422, "mfa_totp_enroll_not_enabled"),
        ("POST", "/factors", h, {"factor_type": "phone"}, 422, "mfa_phone_enroll_not_enabled"),
        ("POST", f"/factors/{uuid.uuid4()}/challenge", h, {}, 404, "mfa_factor_not_found"),
        ("DELETE", f"/factors/{uuid.uuid4()}", h, None, 404, "mfa_factor_not_found"),
        ("POST", "/sso", anon, {"domain": "example.com"}, 404, "saml_provider_disabled"),
        ("GET", "/oauth/authorize", anon, None, 404, "feature_disabled"),
        ("GET", "/admin/oauth/clients", anon, None, 404, "feature_disabled"),
        ("POST", "/signup", anon, {"data": {}}, 422, "anonymous_provider_disabled"),
        ("GET", "/authorize?provider=google", anon, None, 400, "validation_failed"),
        ("GET", "/no-such-endpoint", anon, None, 404, "not_found"),
    ]
    for method, path, hdrs, body, status, code in cases:
        answer = httpx.request(method, f"{server.url}/auth/v1{path}", headers=hdrs, json=body)
        assert (answer.status_code, answer.json()["code"]) == (status, code), path
        assert answer.json()["msg"]
        assert answer.headers["x-supabase-api-version"] == "2024-01-01"
    # The official client shows the reason.
    with pytest.raises(AuthApiError, match=r"SAML 2\.0 is disabled"):
        user.client.auth.sign_in_with_sso({"domain": "example.com"})
    with pytest.raises(AuthApiError, match="Anonymous sign-ins are disabled"):
        create_client(server.url, server.anon_key).auth.sign_in_anonymously()


def test_generate_link_gives_what_a_mail_would_carry(
    server: ServerProcess, service_client: Any
) -> None:
    admin = service_client.auth.admin
    email = _email()
    signup = admin.generate_link({"type": "signup", "email": email, "password": "link-pass-1"})
    assert signup.user.email == email and signup.user.email_confirmed_at is None
    props = signup.properties
    assert props.verification_type == "signup" and len(props.email_otp) == 6
    assert props.action_link.startswith(f"{server.url}/auth/v1/verify?token={props.hashed_token}")
    client = create_client(server.url, server.anon_key)
    confirmed = client.auth.verify_otp({"token_hash": props.hashed_token, "type": "signup"})
    assert confirmed.user is not None and confirmed.user.email_confirmed_at is not None

    recovery = admin.generate_link({"type": "recovery", "email": email}).properties
    recovered = client.auth.verify_otp(
        {"email": email, "token": recovery.email_otp, "type": "recovery"}
    )
    assert recovered.session is not None

    invited = _email()
    invite = admin.generate_link({"type": "invite", "email": invited}).properties
    joined = client.auth.verify_otp({"token_hash": invite.hashed_token, "type": "invite"})
    assert joined.user is not None and joined.user.email == invited
    client.auth.update_user({"password": "chosen-pass-1"})
    assert (
        create_client(server.url, server.anon_key)
        .auth.sign_in_with_password({"email": invited, "password": "chosen-pass-1"})
        .session
    )

    moved = _email()
    change = admin.generate_link({"type": "email_change_new", "email": invited, "new_email": moved})
    assert change.user.new_email == moved
    client.auth.verify_otp(
        {"email": moved, "token": change.properties.email_otp, "type": "email_change"}
    )
    assert admin.get_user_by_id(change.user.id).user.email == moved

    with pytest.raises(AuthApiError) as unknown:
        admin.generate_link({"type": "recovery", "email": _email()})
    assert unknown.value.status == 404 and unknown.value.code == "user_not_found"
