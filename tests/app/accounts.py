"""An account made through the API for the app tests that are not about signing up: the
browser opens the app already signed in, from the session kept in its storage, as it would
after a sign-up on that device. The sign-up and setup screens themselves are driven by
test_counter_flow (and the kept session's own behaviour by test_mounted_restart)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from app.driver import PHONE, AppPage
from harness import ServerProcess
from playwright.sync_api import Browser
from supabase import create_client

PASSWORD = "correct horse battery"


def kept_session_key(server_url: str) -> str:
    """Where Flutter's shared_preferences keeps the app's session on the web: `flutter.`
    and supabase-js's `sb-<first label of the API's host>-auth-token`."""
    host = urlsplit(server_url).hostname or "localhost"
    return f"flutter.sb-{host.split('.')[0]}-auth-token"


def open_signed_up(
    browser: Browser,
    server: ServerProcess,
    email: str,
    business: str,
    viewport: dict[str, int] = PHONE,
) -> AppPage:
    """A new account with its business named (what the setup screen saves), and the app
    open on its first screen for it."""
    api = create_client(server.url, server.anon_key)
    signed_up = api.auth.sign_up({"email": email, "password": PASSWORD})
    assert signed_up.session is not None
    profiles = api.table("business_profiles")
    profile: dict[str, str] = profiles.select("id").single().execute().data  # type: ignore[assignment]
    profiles.update({"business_name": business}).eq("id", profile["id"]).execute()
    # shared_preferences stores each value JSON-encoded; the app keeps the session's JSON.
    kept = {kept_session_key(server.url): json.dumps(signed_up.session.model_dump_json())}
    app = AppPage.open(browser, server.url + "/app/", viewport, local_storage={server.url: kept})
    app.destination("Sell").wait_for()
    return app
