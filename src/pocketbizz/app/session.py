"""One app session (a browser tab, or the app on a device): who is signed in, the language,
the business profile, and which screen shows."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import flet as ft
from supabase_auth.types import AuthChangeEvent
from supabase_auth.types import Session as AuthSession

from pocketbizz.app.api import ApiFailure, Backend, Offline, Product
from pocketbizz.app.config import AppConfig
from pocketbizz.app.i18n import Translator
from pocketbizz.app.offline import OfflineStore

# Wider than this (logical pixels) the tablet layout applies: navigation rail and two panes.
TABLET_WIDTH = 720
# How often waiting sales are tried again while the API is unreachable.
REPLAY_SECONDS = 3.0
# How long work that failed as a browser's connection closed waits for the next browser (a
# reload) before the failure stands.
RECONNECT_SECONDS = 30.0
# The screen on show, kept on the device beside the sign-in: a resumed session opens it again.
SCREEN_KEY = "pocketbizz-screen"
DEFAULT_ZONE = "Asia/Kuala_Lumpur"  # business_profiles.timezone's default


class _DevicePreferences(ft.SharedPreferences):
    """SharedPreferences with an id no earlier server process gave out. Flet numbers controls
    from 3 in each process, so after a restart the browser that reconnects, still holding the
    previous session's controls, is sent this session's service under its predecessor's id.
    Seen with Flet 1.0.5: every call to it then fails after 10 s ("Timeout waiting for invoke
    method listener") — the old one's disposal takes the new one's listener, it seems — while
    the same service under an id of its own answers at once."""

    def init(self) -> None:  # Flet's hook before the service is registered and sent
        # Far above the process's own count, and below 2**53 (a number in the web client).
        self._i = 2**40 + secrets.randbelow(2**40)


def _token_subject(access_token: str) -> str | None:
    """The user id (`sub`) in a JWT's payload, read without checking the signature: only to
    open this device's own offline file while the server cannot be asked. The device is not
    the security boundary — the server checks every call replayed from it."""
    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) and sub else None


async def _nothing() -> None:
    return None


async def _nothing_int(index: int) -> None:
    return None


class Session:
    def __init__(self, page: ft.Page, config: AppConfig, backend: Backend) -> None:
        self.page = page
        self.config = config
        self.backend = backend
        self.t = Translator("en")
        self.profile: dict[str, Any] = {}
        self.products: list[Product] = []
        # Set by the entry point: reopen the signed-in app at a screen; back to sign-in.
        self.reopen: Callable[[int], Awaitable[None]] = _nothing_int
        self.signed_out: Callable[[], Awaitable[None]] = _nothing
        # The screen on show refreshes itself through this when the tenant's data changes
        # elsewhere (another device, the API); each screen sets it when built.
        self.on_data_change: Callable[[], Awaitable[None]] | None = None
        self._refresh_pending = False
        self._profile_changed = False
        # The signed-in frame's labels made again in the session's language (the shell's).
        self.relabel: Callable[[], Awaitable[None]] = _nothing
        self.store: OfflineStore | None = None
        self.online = True
        self.closed = False
        self._flush_lock = asyncio.Lock()
        # Shown above every signed-in screen: sales waiting to be sent, refused sales.
        self.banner = ft.Container(visible=False, bgcolor=ft.Colors.TERTIARY_CONTAINER, padding=8)
        # The sign-in lives on the device (the browser's storage for the web app), as
        # supabase-js keeps it: a new app session, after a reload or a server restart that
        # ended the old one, resumes it instead of asking for the password again.
        self._prefs: ft.SharedPreferences | None = None
        self._connected = asyncio.Event()  # set when a browser takes this session over
        self._tasks: set[asyncio.Task[Any]] = set()
        self._auth_wanted: str | None = None
        self._auth_kept: str | None = None
        self._auth_lock = asyncio.Lock()
        self._screen: str | None = None
        # The kept tokens of a session opened offline (the app started while the server was
        # unreachable), still to be resumed with the server before anything is sent.
        self._unconfirmed: tuple[str, str] | None = None
        self._confirm_lock = asyncio.Lock()
        backend.client.auth.on_auth_state_change(self._auth_changed)
        backend.before_call = self._require_confirmed

    @property
    def wide(self) -> bool:
        return (self.page.width or 0) >= TABLET_WIDTH

    @property
    def cash_rounding(self) -> bool:
        return bool(self.profile.get("cash_rounding", True))

    @property
    def business_zone(self) -> ZoneInfo:
        """The business's time zone (its profile; Malaysia by default): its days are the
        dashboard's and the sales list's, wherever this app process runs (a server in UTC)."""
        try:
            return ZoneInfo(str(self.profile.get("timezone") or DEFAULT_ZONE))
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo(DEFAULT_ZONE)

    def business_today(self) -> date:
        return datetime.now(self.business_zone).date()

    def show(self, control: ft.Control) -> None:
        self.page.controls = [control]
        self.page.update()

    def notify(self, message: str) -> None:
        self.page.show_dialog(ft.SnackBar(ft.Text(message)))

    async def guarded(self, action: Callable[[], Awaitable[None]]) -> bool:
        """Run a call to the API; a refusal becomes a message, never a frozen screen."""
        try:
            await action()
        except ApiFailure as exc:
            self.notify(self.t("error", error=str(exc)))
            return False
        return True

    # -- the sign-in kept on the device ---------------------------------------------------
    @property
    def auth_key(self) -> str:
        """supabase-js's storage key: `sb-<first label of the API's host>-auth-token`."""
        host = urlsplit(self.config.backend_url).hostname or "localhost"
        return f"sb-{host.split('.')[0]}-auth-token"

    @property
    def unconfirmed(self) -> bool:
        """Signed in offline from the kept session: the server has not yet accepted it."""
        return self._unconfirmed is not None

    async def resume(self) -> bool:
        """Sign in with the session kept on the device, if any. A session the server refuses
        (revoked, expired, user gone) is forgotten. One it could not be asked about (offline)
        stays kept, and opens offline when this device has the user's business profile from
        an earlier online session: the counter sells from the kept catalogue into the outbox,
        and the replay loop resumes the session once the server answers."""
        kept = await self._preference("get", self.auth_key)
        if not isinstance(kept, str):
            return False
        self._auth_kept = kept
        try:
            tokens = json.loads(kept)
            access_token, refresh_token = str(tokens["access_token"]), str(tokens["refresh_token"])
        except (ValueError, KeyError, TypeError):
            await self.forget()
            return False
        try:
            await self.backend.resume(access_token, refresh_token)
        except Offline:
            return self._open_offline(access_token, refresh_token)
        except ApiFailure:
            await self.forget()
            return False
        return self.backend.user_id is not None

    def _open_offline(self, access_token: str, refresh_token: str) -> bool:
        user_id = _token_subject(access_token)
        if user_id is None:
            return False
        path = self.config.data_dir / f"{user_id}.sqlite"
        profile = OfflineStore(path).profile() if path.exists() else None
        if not (profile or {}).get("business_name"):
            return False  # never set up online on this device: nothing to sell from
        assert profile is not None
        self.backend.user_id = user_id
        self._unconfirmed = (access_token, refresh_token)
        self._use_profile(profile)
        return True

    async def _require_confirmed(self) -> None:
        """Before a call for data: a session opened offline is resumed with the server first,
        whichever screen asks (the replay loop does it too, but only every few seconds)."""
        if self._unconfirmed is not None and not await self.confirm():
            raise Offline("the server cannot be reached")

    async def confirm(self) -> bool:
        """Resume an offline-opened session with the server, once: True when the session is
        the server's now (or was already). Still unreachable: False, to try again later. Refused
        (revoked meanwhile, user gone): back to the sign-in form; the outbox stays on disk, in
        the user's file, and is sent after signing in again."""
        async with self._confirm_lock:  # a refresh token is spent by its first use
            if self._unconfirmed is None:
                return self.backend.user_id is not None
            access_token, refresh_token = self._unconfirmed
            try:
                # An expired access token is refreshed with the kept refresh token.
                await self.backend.resume(access_token, refresh_token)
            except Offline:
                return False
            except ApiFailure:
                self._unconfirmed = None
                self.backend.user_id = None
                self.store = None  # ends the replay loop; the file keeps the outbox
                await self.signed_out()
                return False
            self._unconfirmed = None
        # Online now: the profile as the server has it, and the live feed.
        with suppress(ApiFailure):
            await self.load_profile()
        with suppress(ApiFailure):
            await self.watch()
        return True

    async def forget(self) -> None:
        """Drop the kept sign-in (signed out, or refused) and the screen it was on."""
        self._unconfirmed = None  # signed out while offline: the next sign-in is online
        # The replay loop ends with its store; the file keeps the outbox, and the next
        # sign-in, whoever's, opens its own store with a loop of its own.
        self.store = None
        self._auth_wanted = None
        await self._sync_auth()
        self._screen = None
        await self._preference("remove", SCREEN_KEY)

    async def last_screen(self) -> str | None:
        """The screen the device showed last (a destination's key), if it kept one."""
        kept = await self._preference("get", SCREEN_KEY)
        self._screen = kept if isinstance(kept, str) else None
        return self._screen

    def remember_screen(self, key: str) -> None:
        if key != self._screen and not self.closed:
            self._screen = key
            self.spawn(self._preference, "set", SCREEN_KEY, key)

    def _auth_changed(self, event: AuthChangeEvent, auth: AuthSession | None) -> None:
        # Called by the auth client on every sign-in, refresh (a refresh token is used once:
        # the new one must replace it) and sign-out.
        if event in ("SIGNED_IN", "TOKEN_REFRESHED") and auth is not None:
            self._auth_wanted = auth.model_dump_json()
        elif event == "SIGNED_OUT":
            self._auth_wanted = None
        else:
            return
        if not self.closed:
            self.spawn(self._sync_auth)

    async def _sync_auth(self) -> None:
        """Write the latest wanted state; writes queue behind each other, so the last
        event wins whatever order their tasks run in."""
        async with self._auth_lock:
            wanted = self._auth_wanted
            if wanted == self._auth_kept:
                return
            if wanted is None:
                await self._preference("remove", self.auth_key)
            else:
                await self._preference("set", self.auth_key, wanted)
            self._auth_kept = wanted

    async def _preference(self, method: str, *args: str) -> Any:
        """Call the device's SharedPreferences (made when first needed, so only for a
        session that uses them). A call is a message to the browser and a wait for its
        answer, with no time limit (Flet 1.0.5); a browser that reloads or reconnects
        meanwhile takes the session over without that call, and a call made as the old
        connection closes fails inside Flet. Either way it is asked again of the browser
        that attaches next (get, set and remove do the same when repeated)."""
        if self._prefs is None:
            self._prefs = _DevicePreferences()
        while True:
            connected = self._connected
            call = asyncio.ensure_future(getattr(self._prefs, method)(*args))
            taken_over = asyncio.ensure_future(connected.wait())
            await asyncio.wait((call, taken_over), return_when=asyncio.FIRST_COMPLETED)
            if not call.done():
                call.cancel()
                continue
            failure = call.exception()
            if failure is None:
                taken_over.cancel()
                return call.result()
            if not await self.reconnects(taken_over):
                raise failure

    async def reconnects(self, taken_over: asyncio.Future[Any]) -> bool:
        """After a failure that a closing connection explains: whether a browser attaches
        to this session within RECONNECT_SECONDS (then the work is worth doing again)."""
        try:
            await asyncio.wait_for(taken_over, RECONNECT_SECONDS)
        except TimeoutError:
            return False
        return True

    def connection_watch(self) -> asyncio.Future[Any]:
        """Done when a browser next attaches to this session (see `reconnects`)."""
        return asyncio.ensure_future(self._connected.wait())

    def spawn(self, work: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Run `work(*args)` in the background on this process's loop. Not `page.run_task`:
        that takes the loop from the browser's connection, and fails while a reloading
        browser has none."""
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(work(*args))
        self._tasks.add(task)  # a task only the loop refers to may be collected mid-way
        task.add_done_callback(self._tasks.discard)

    def connected(self) -> None:
        """A browser has (re)attached to this session (Flet's page `connect` event)."""
        self._connected.set()
        self._connected = asyncio.Event()

    async def load_profile(self) -> None:
        self._use_profile(await self.backend.business_profile())
        self.keep_profile()

    def keep_profile(self) -> None:
        """Keep the business profile on the device, for a start while the server is down."""
        if self.store is not None and self.profile:
            self.store.save_profile(self.profile)

    def _use_profile(self, profile: dict[str, Any]) -> None:
        self.profile = profile
        language = (profile.get("settings") or {}).get("language", "en")
        self.t = Translator(language)

    async def watch(self) -> None:
        """Follow the tenant's sales, products and business profile live (Realtime)."""
        await self.backend.watch(("sales", "products", "business_profiles"), self._changed)

    async def close(self) -> None:
        """The session ended (its tab gone long enough for Flet to drop it): stop the replay
        loop and the live feed, so nothing keeps running for nobody."""
        self.closed = True
        with suppress(Exception):  # best effort: the server may be gone too
            await self.backend.client.remove_all_channels()

    def _changed(self, table: str) -> None:
        # "*": a rejoin, after which anything may have changed meanwhile.
        if table in ("business_profiles", "*"):
            self._profile_changed = True
        # A sale announces its row and each product's new stock: refresh once for the burst.
        if not self._refresh_pending:
            self._refresh_pending = True
            self.spawn(self._refresh_soon)

    async def _refresh_soon(self) -> None:
        await asyncio.sleep(0.2)
        self._refresh_pending = False
        if self._profile_changed:
            # Settings changed on another device (SST, rounding, the receipt, the language)
            # apply here too; a new language re-labels the navigation at once.
            self._profile_changed = False
            language = self.t.language
            with suppress(ApiFailure):
                await self.load_profile()
            if self.t.language != language and self.backend.user_id and not self.closed:
                await self.relabel()
        if self.on_data_change is not None:
            try:
                await self.on_data_change()
            except ApiFailure:
                return  # the next change (or a tap) tries again; the screen keeps what it shows
            self.page.update()

    # -- catalogue and sales, offline-first ----------------------------------------------
    def open_store(self) -> None:
        """The signed-in user's offline file (catalogue + outbox); starts the replay loop."""
        if self.backend.user_id:
            path = self.config.data_dir / f"{self.backend.user_id}.sqlite"
            # Another user signed in on this tab gets a file of their own: never the last
            # user's catalogue or outbox (the old store's loop ends when it is replaced).
            if self.store is None or self.store.path != path:
                self.store = OfflineStore(path)
                self.spawn(self._replay_loop)
        self.render_banner()

    async def load_products(self) -> list[Product]:
        try:
            # Never read without the user's token (it would come back empty, and be kept):
            # the backend resumes an offline-opened session first, or raises Offline.
            rows = await self.backend.product_rows()
        except Offline:
            if self.store is None:
                raise
            rows = self.store.catalogue()  # the last catalogue seen: selling goes on
        else:
            if self.store is not None:
                self.store.save_catalogue(rows)
        self.products = [Product.from_row(r) for r in rows]
        return self.products

    async def sell(
        self,
        items: list[dict[str, Any]],
        payment_method: str,
        *,
        channel: str = "walk-in",
        discount: str = "0",
        customer_id: str | None = None,
    ) -> dict[str, Any] | None:
        """Record a sale: into the outbox first, then to the API after every sale made before
        it. The server's sale, or None when it waits for the connection. A sale refused on its
        first try (not an offline one) is taken back out and raised, so the cart stays."""
        store = self.store  # the session may be refused meanwhile (see `confirm`)
        assert store is not None
        client_ref = str(uuid.uuid4())
        store.enqueue(
            client_ref=client_ref,
            items=items,
            payment_method=payment_method,
            channel=channel,
            discount=discount,
            customer_id=customer_id,
            sold_at=datetime.now(UTC).isoformat(),
        )
        recorded = await self.flush()
        if client_ref in recorded:
            return recorded[client_ref]
        mine = next((q for q in store.pending() if q.client_ref == client_ref), None)
        if mine is not None and mine.refused is not None and not mine.deferred:
            store.remove(client_ref)
            self.render_banner()
            raise ApiFailure(mine.refused)
        return None

    async def flush(self) -> dict[str, dict[str, Any]]:
        """Send the waiting sales, oldest first; stop at the first sign of no connection."""
        recorded: dict[str, dict[str, Any]] = {}
        # Never sent under a session the server has not accepted yet (no token, or one it
        # may refuse): those sales wait, deferred, as when offline.
        if self._unconfirmed is not None and not await self.confirm():
            if self.store is not None:
                for waiting in self.store.pending():
                    if not waiting.refused:
                        self.store.mark_deferred(waiting.client_ref)
                self.online = False
            self.render_banner()
            return recorded
        if self.store is None:
            return recorded
        async with self._flush_lock:
            for queued in self.store.pending():
                if queued.refused is not None:
                    continue
                try:
                    sale = await self.backend.create_sale(
                        queued.items,
                        payment_method=queued.payment_method,
                        channel=queued.channel,
                        discount=queued.discount,
                        customer_id=queued.customer_id,
                        client_ref=queued.client_ref,
                        # The time it was made, on every attempt: a sale sent late keeps
                        # it, and a retry of one whose answer was lost (the server may have
                        # recorded it) sends the same body, so it gets the first result back
                        # instead of a 409.
                        sold_at=queued.sold_at,
                    )
                except Offline:
                    self.online = False
                    for later in self.store.pending():
                        if later.seq >= queued.seq and not later.refused:
                            self.store.mark_deferred(later.client_ref)
                    break
                except ApiFailure as exc:
                    # Kept, shown in the banner for the user to resolve; never dropped.
                    self.store.mark_refused(queued.client_ref, str(exc))
                    continue
                self.online = True
                self.store.remove(queued.client_ref)
                recorded[queued.client_ref] = sale
        self.render_banner()
        return recorded

    async def _replay_loop(self) -> None:
        # This store's loop: a session refused on resuming drops it (see `confirm`), and the
        # sign-in that follows opens the store again with a loop of its own.
        store = self.store
        while self.backend.user_id and store is not None and self.store is store:
            if self.closed:
                return
            if self._unconfirmed is not None:
                if await self.confirm() and self.on_data_change is not None:
                    with suppress(ApiFailure):  # the screen shows the server's data again
                        await self.on_data_change()
                    self.page.update()
                if self.store is not store:
                    break
            with suppress(ApiFailure):  # still unreachable: the next round tries again
                await self.backend.keep_watching()
            if any(q.refused is None for q in store.pending()):
                if await self.flush() and self.on_data_change is not None:
                    with suppress(ApiFailure):  # the screen keeps what it shows
                        await self.on_data_change()
                self.page.update()
            await asyncio.sleep(REPLAY_SECONDS)

    def render_banner(self) -> None:
        """ "Offline — N sales waiting", and each refused sale with Retry / Discard."""
        t = self.t
        pending = self.store.pending() if self.store is not None else []
        waiting = [q for q in pending if q.refused is None]
        rows: list[ft.Control] = []
        if waiting:
            rows.append(
                ft.Row(
                    [
                        ft.Icon(ft.Icons.CLOUD_OFF),
                        ft.Text(t("offline_waiting", count=len(waiting)), expand=True),
                    ]
                )
            )
        for queued in pending:
            if queued.refused is None:
                continue
            made = datetime.fromisoformat(queued.sold_at).astimezone()
            rows.append(
                ft.Row(
                    [
                        ft.Text(
                            t("sale_refused", time=f"{made:%d/%m %H:%M}", error=queued.refused),
                            expand=True,
                        ),
                        ft.TextButton(
                            t("retry"),
                            on_click=lambda e, ref=queued.client_ref: self._retry(ref),
                        ),
                        ft.TextButton(
                            t("discard"),
                            on_click=lambda e, ref=queued.client_ref: self._discard(ref),
                        ),
                    ],
                )
            )
        self.banner.content = ft.Column(rows, spacing=4)
        self.banner.visible = bool(rows)

    async def _retry(self, client_ref: str) -> None:
        assert self.store is not None
        self.store.retry(client_ref)
        await self.flush()
        self.page.update()

    def _discard(self, client_ref: str) -> None:
        assert self.store is not None
        self.store.remove(client_ref)
        self.render_banner()
        self.page.update()
