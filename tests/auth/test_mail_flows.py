"""Accounts a business can recover: recovery, sign-up confirmation and e-mail change, each
mailed through a real SMTP server (aiosmtpd) and completed through the official client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from auth.mail_support import Inbox, link_and_code, start_smtp
from auth.support import surfaces
from harness import ServerProcess
from supabase import Client, create_client
from supabase_auth.errors import AuthApiError

PUBLIC_URL = "http://shop.example.test"  # links are built on PB_PUBLIC_URL, not the bind address
SITE_URL = "http://app.example.test"


@pytest.fixture(scope="module")
def smtp() -> Iterator[Inbox]:
    controller, inbox = start_smtp()
    yield inbox
    controller.stop()


@pytest.fixture(scope="module")
def mail_server(
    owner_dsn: str, tmp_path_factory: pytest.TempPathFactory, smtp: Inbox
) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        owner_dsn,
        tmp_path_factory.mktemp("mail"),
        env_overrides={
            "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
            "PB_SMTP_HOST": "127.0.0.1",
            "PB_SMTP_PORT": str(smtp.port),
            "PB_SMTP_SENDER": "PocketBizz <no-reply@example.test>",
            "PB_MAILER_AUTOCONFIRM": "false",
            "PB_PUBLIC_URL": PUBLIC_URL,
            "PB_SITE_URL": SITE_URL,
            "PB_URI_ALLOW_LIST": "http://partner.example.test/*",
        },
    )
    proc.start()
    yield proc
    proc.stop()


def _email() -> str:
    return f"mail-{uuid.uuid4().hex[:10]}@example.com"


def _on_server(server: ServerProcess, link: str) -> str:
    assert link.startswith(f"{PUBLIC_URL}/auth/v1/verify?"), link
    return server.url + link.removeprefix(PUBLIC_URL)


def _confirmed_user(server: ServerProcess, **metadata: Any) -> tuple[Client, str, str, str]:
    """An account made through the admin API (confirmed), signed in: (client, email,
    password, access token)."""
    admin = create_client(server.url, server.service_key).auth.admin
    email, password = _email(), "old-password-1"
    admin.create_user(
        {"email": email, "password": password, "email_confirm": True, "user_metadata": metadata}
    )
    client = create_client(server.url, server.anon_key)
    session = client.auth.sign_in_with_password({"email": email, "password": password}).session
    assert session is not None
    return client, email, password, session.access_token


def _fragment(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).fragment).items()}


def test_recovery_link_sets_a_new_password_and_the_old_one_fails(
    mail_server: ServerProcess, smtp: Inbox
) -> None:
    client, email, old_password, old_token = _confirmed_user(mail_server)
    other_device = create_client(mail_server.url, mail_server.anon_key)
    other_device.auth.sign_in_with_password({"email": email, "password": old_password})

    client.auth.reset_password_for_email(
        email, {"redirect_to": "http://partner.example.test/reset"}
    )
    mail = smtp.wait_for(email)
    assert mail["Subject"] == "Reset your password"
    assert mail["From"] == "PocketBizz <no-reply@example.test>"
    link, _code = link_and_code(mail)
    assert parse_qs(urlsplit(link).query)["type"] == ["recovery"]

    followed = httpx.get(_on_server(mail_server, link), follow_redirects=False)
    assert followed.status_code == 303
    location = followed.headers["location"]
    assert location.startswith("http://partner.example.test/reset#")  # allowed redirect
    session = _fragment(location)
    assert session["type"] == "recovery" and session["token_type"] == "bearer"

    recovering = create_client(mail_server.url, mail_server.anon_key)
    recovering.auth.set_session(session["access_token"], session["refresh_token"])
    with pytest.raises(AuthApiError) as same:
        recovering.auth.update_user({"password": old_password})
    assert same.value.status == 422 and same.value.code == "same_password"
    recovering.auth.update_user({"password": "new-password-2"})

    with pytest.raises(AuthApiError) as old:
        create_client(mail_server.url, mail_server.anon_key).auth.sign_in_with_password(
            {"email": email, "password": old_password}
        )
    assert old.value.code == "invalid_credentials"
    fresh = create_client(mail_server.url, mail_server.anon_key).auth.sign_in_with_password(
        {"email": email, "password": "new-password-2"}
    )
    assert fresh.session is not None

    # A new password signs out every other session (GoTrue): the sessions of before are gone
    # on every surface, their refresh tokens too; the recovering session lives on.
    user_id = str(fresh.user.id)
    statuses = surfaces(mail_server, old_token, user_id)
    assert statuses == {"rest": 401, "rpc": 401, "storage": 401, "functions": 401, "user": 403}
    with pytest.raises(AuthApiError) as refreshed:
        other_device.auth.refresh_session()
    assert refreshed.value.code == "refresh_token_not_found"
    assert recovering.auth.get_user() is not None

    # The link works once.
    again = httpx.get(_on_server(mail_server, link), follow_redirects=False)
    assert again.status_code == 303
    assert _fragment(again.headers["location"]) == {
        "error": "access_denied",
        "error_code": "otp_expired",
        "error_description": "Email link is invalid or has expired",
    }


def test_recovery_code_in_malay_and_the_limits(mail_server: ServerProcess, smtp: Inbox) -> None:
    _client, email, _password, _token = _confirmed_user(mail_server, locale="ms-MY")
    anon = create_client(mail_server.url, mail_server.anon_key)
    anon.auth.reset_password_for_email(email, {"redirect_to": "http://evil.example.test/"})
    mail = smtp.wait_for(email)
    assert mail["Subject"] == "Tetapkan semula kata laluan anda"
    link, code = link_and_code(mail)
    # A redirect nobody allowed falls back to the site URL: links never carry tokens elsewhere.
    assert parse_qs(urlsplit(link).query)["redirect_to"] == [SITE_URL]

    with pytest.raises(AuthApiError) as too_soon:
        anon.auth.reset_password_for_email(email)
    assert too_soon.value.status == 429 and too_soon.value.code == "over_email_send_rate_limit"

    with pytest.raises(AuthApiError) as wrong:
        anon.auth.verify_otp(
            {
                "email": email,
                "token": "000000" if code != "000000" else "111111",
                "type": "recovery",
            }
        )
    assert wrong.value.status == 403 and wrong.value.code == "otp_expired"
    verified = anon.auth.verify_otp({"email": email, "token": code, "type": "recovery"})
    assert verified.session is not None and verified.user is not None
    assert verified.user.email == email

    # An address without an account gets the same answer and no mail.
    nobody = _email()
    anon.auth.reset_password_for_email(nobody)
    assert smtp.sent_to(nobody) == []


def test_sign_up_waits_for_the_confirmation_link(mail_server: ServerProcess, smtp: Inbox) -> None:
    client = create_client(mail_server.url, mail_server.anon_key)
    email = _email()
    signed_up = client.auth.sign_up({"email": email, "password": "first-password"})
    assert signed_up.session is None and signed_up.user is not None
    assert signed_up.user.email_confirmed_at is None
    assert signed_up.user.confirmation_sent_at is not None
    with pytest.raises(AuthApiError) as unconfirmed:
        client.auth.sign_in_with_password({"email": email, "password": "first-password"})
    assert unconfirmed.value.status == 400 and unconfirmed.value.code == "email_not_confirmed"

    mail = smtp.wait_for(email)
    assert mail["Subject"] == "Confirm your sign-up"
    link, _code = link_and_code(mail)
    token_hash = parse_qs(urlsplit(link).query)["token"][0]
    confirmed = client.auth.verify_otp({"token_hash": token_hash, "type": "signup"})
    assert confirmed.session is not None and confirmed.user is not None
    assert confirmed.user.email_confirmed_at is not None
    assert client.auth.sign_in_with_password({"email": email, "password": "first-password"}).session


def test_email_change_needs_the_new_address_confirmed_and_holds_it(
    mail_server: ServerProcess, smtp: Inbox
) -> None:
    client, email, password, _token = _confirmed_user(mail_server)
    new_email = _email()
    pending = client.auth.update_user({"email": new_email})
    assert pending.user.email == email and pending.user.new_email == new_email
    assert pending.user.email_change_sent_at is not None
    mail = smtp.wait_for(new_email)
    assert mail["Subject"] == "Confirm your new e-mail address"
    _link, code = link_and_code(mail)

    # While pending, the address is held: nobody else can sign up with it or move to it.
    with pytest.raises(AuthApiError) as taken:
        create_client(mail_server.url, mail_server.anon_key).auth.sign_up(
            {"email": new_email, "password": "someone-else"}
        )
    assert taken.value.status == 422 and taken.value.code == "user_already_exists"
    other, _, _, _ = _confirmed_user(mail_server)
    with pytest.raises(AuthApiError) as moving:
        other.auth.update_user({"email": new_email})
    assert moving.value.status == 422 and moving.value.code == "email_exists"
    # The old address still signs in.
    assert (
        create_client(mail_server.url, mail_server.anon_key)
        .auth.sign_in_with_password({"email": email, "password": password})
        .session
    )

    changed = client.auth.verify_otp({"email": new_email, "token": code, "type": "email_change"})
    assert changed.user is not None and changed.user.email == new_email
    assert not changed.user.new_email
    assert (
        create_client(mail_server.url, mail_server.anon_key)
        .auth.sign_in_with_password({"email": new_email, "password": password})
        .session
    )
    with pytest.raises(AuthApiError):
        create_client(mail_server.url, mail_server.anon_key).auth.sign_in_with_password(
            {"email": email, "password": password}
        )


def test_sign_in_by_mailed_code(mail_server: ServerProcess, smtp: Inbox) -> None:
    _client, email, _password, _token = _confirmed_user(mail_server)
    anon = create_client(mail_server.url, mail_server.anon_key)
    anon.auth.sign_in_with_otp({"email": email, "options": {"should_create_user": False}})
    mail = smtp.wait_for(email)
    assert mail["Subject"] == "Your sign-in link"
    link, code = link_and_code(mail)
    assert parse_qs(urlsplit(link).query)["type"] == ["magiclink"]
    signed_in = anon.auth.verify_otp({"email": email, "token": code, "type": "email"})
    assert signed_in.session is not None and signed_in.user is not None
    assert signed_in.user.email == email

    with pytest.raises(AuthApiError) as no_signup:
        anon.auth.sign_in_with_otp({"email": _email(), "options": {"should_create_user": False}})
    assert no_signup.value.status == 422 and no_signup.value.code == "otp_disabled"

    # A new address gets an account, confirmed by the code it receives.
    newcomer = _email()
    anon.auth.sign_in_with_otp({"email": newcomer, "options": {"data": {"locale": "ms"}}})
    welcome = smtp.wait_for(newcomer)
    assert welcome["Subject"] == "Sahkan pendaftaran anda"
    _link, code = link_and_code(welcome)
    joined = anon.auth.verify_otp({"email": newcomer, "token": code, "type": "email"})
    assert joined.user is not None and joined.user.email_confirmed_at is not None
    assert joined.user.user_metadata == {"locale": "ms"}


def test_without_smtp_mailed_flows_fail_alike(server: ServerProcess, make_user: Any) -> None:
    """No PB_SMTP_HOST: recovery answers GoTrue's error for every address, known or not."""
    user = make_user()
    for email in (user.email, _email()):
        with pytest.raises(AuthApiError) as failed:
            create_client(server.url, server.anon_key).auth.reset_password_for_email(email)
        assert failed.value.status == 500
        assert failed.value.message == "Error sending recovery email"


def test_invited_user_follows_the_link_and_chooses_a_password(
    mail_server: ServerProcess, smtp: Inbox
) -> None:
    admin = create_client(mail_server.url, mail_server.service_key).auth.admin
    email = _email()
    invited = admin.invite_user_by_email(email, {"data": {"locale": "ms"}}).user
    assert invited.email == email and invited.email_confirmed_at is None
    mail = smtp.wait_for(email)
    assert mail["Subject"] == "Anda telah dijemput"
    link, _code = link_and_code(mail)
    assert parse_qs(urlsplit(link).query)["type"] == ["invite"]
    followed = httpx.get(_on_server(mail_server, link), follow_redirects=False)
    session = _fragment(followed.headers["location"])
    assert session["type"] == "invite"
    client = create_client(mail_server.url, mail_server.anon_key)
    client.auth.set_session(session["access_token"], session["refresh_token"])
    client.auth.update_user({"password": "my-own-pass"})
    assert (
        create_client(mail_server.url, mail_server.anon_key)
        .auth.sign_in_with_password({"email": email, "password": "my-own-pass"})
        .session
    )
    with pytest.raises(AuthApiError) as again:
        admin.invite_user_by_email(email)
    assert again.value.status == 422 and again.value.code == "email_exists"
