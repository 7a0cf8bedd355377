"""All runtime configuration, in one typed place (environment prefix ``PB_``)."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PB_", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    # The URL clients use to reach this server; defaults to http://host:port.
    public_url: str | None = None
    # Not relative to the working directory, so `keys` finds the data dir `serve` uses.
    data_dir: Path = Field(default_factory=lambda: default_data_dir())

    # Owner/superuser DSN used for migrations; the runtime pool logs in as `authenticator`.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "PB_DATABASE_URL")
    )
    # A direct connection to the same database, for everything that needs a session of its own
    # (migrations' advisory lock, LISTEN, the realtime registry, the job worker): set it when
    # DATABASE_URL goes through a transaction pooler (PgBouncer pool_mode=transaction), which
    # hands each transaction a different server session. Defaults to DATABASE_URL.
    database_direct_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_DIRECT_URL", "PB_DATABASE_DIRECT_URL"),
    )
    authenticator_password: str | None = None
    pool_min_size: int = Field(default=2, ge=0)
    pool_max_size: int = Field(default=20, ge=1)
    # Seconds a request waits for a pooled connection before a 504 (PostgREST's PGRST003).
    pool_acquisition_timeout: float = Field(default=10.0, gt=0)
    # 0 disables asyncpg's prepared-statement cache (needed behind PgBouncer in transaction mode).
    statement_cache_size: int = Field(default=1024, ge=0)
    # Per request role, as PostgREST sets them: anonymous callers get less time.
    statement_timeout: str = "8s"
    statement_timeout_anon: str = "3s"
    statement_timeout_service_role: str = "60s"

    @property
    def statement_timeouts(self) -> dict[str, str]:
        return {
            "anon": self.statement_timeout_anon,
            "authenticated": self.statement_timeout,
            "pb_auth": self.statement_timeout,
            "service_role": self.statement_timeout_service_role,
        }

    jwt_secret: str | None = None
    jwt_expiry_seconds: int = 3600
    refresh_token_reuse_interval_seconds: int = 10
    password_min_length: int = 6
    # Auth mail and sessions (GoTrue's names with the PB_ prefix). Without PB_SMTP_HOST no mail
    # is sent: recovery answers an error and e-mail changes apply at once.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_pass: str | None = None
    smtp_sender: str = "PocketBizz <no-reply@localhost>"
    # At most one mail of each kind per user per this many seconds (429 otherwise).
    smtp_max_frequency: int = Field(default=60, ge=0)
    # false: sign-up returns the user only, and a confirmation link must be followed first.
    mailer_autoconfirm: bool = True
    # Lifetime of e-mailed links and codes, in seconds.
    mailer_otp_exp: int = Field(default=3600, ge=60)
    # Where e-mailed links land after /verify; redirect_to must start with one of these.
    site_url: str | None = None
    uri_allow_list: str = ""
    # A session unused this long (no refresh) is expired and purged; 0 keeps sessions forever.
    sessions_inactivity_timeout: int = Field(default=90 * 24 * 3600, ge=0)
    auth_purge_interval: int = Field(default=3600, ge=60)

    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 50 * 1024 * 1024
    rest_max_rows: int = 1000
    # Bounds on one data-API request, so a crafted URL cannot hold the event loop or the
    # database: query-string bytes (room for `in.(…)` lists of ~1,500 UUIDs), nesting of
    # `and=`/`or=` trees and of embeds, and the bytes of one response body.
    rest_max_query_bytes: int = 64 * 1024
    rest_max_filter_depth: int = 16
    rest_max_embed_depth: int = 8
    rest_max_response_bytes: int = 32 * 1024 * 1024
    # `select=amount.sum()`, `count()` (PostgREST's db-aggregates-enabled, off by default: an
    # aggregate over a whole table is an easy way to make the database work hard).
    rest_aggregates_enabled: bool = False
    # The schemas the data API exposes, comma-separated (PostgREST's db-schemas): the first is
    # the default, the others are chosen with Accept-Profile / Content-Profile.
    rest_schemas: str = "public"

    rate_limit_per_minute: int = 100
    rate_limit_sign_in_per_minute: int = 30
    rate_limit_sign_up_per_minute: int = 30
    # Per sender IP on /webhooks/* (ToyyibPay, Meta), a bucket apart from API traffic: they
    # send bursts from a few addresses.
    rate_limit_webhooks_per_minute: int = Field(default=600, ge=1)
    # Comma-separated addresses or CIDRs of proxies whose X-Forwarded-For is trusted: from such
    # a peer the client is the right-most X-Forwarded-For address not itself trusted (rate
    # limits per IP would otherwise see only the proxy); from any other peer it is ignored.
    # Loopback by default: the web app mounted in-process calls the API over it.
    trusted_proxies: str = "127.0.0.1/32,::1/128"
    # Browser origins allowed to call the API (CORS): "*" for any, or a comma-separated list
    # such as "https://shop.example.com,http://localhost:3000".
    cors_allowed_origins: str = "*"
    # Product-analytics events are kept this long, then dropped a month partition at a time.
    events_retention_days: int = Field(default=400, ge=1)
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "PB_REDIS_URL")
    )

    # Realtime: workers that check and deliver row changes (a tenant's changes stay in order).
    realtime_workers: int = 4
    # Realtime caps per server process, with supabase/realtime's reasons when reached: per
    # user (JWT sub) across its sockets, and per tenant (a user, or the anon role).
    realtime_max_channels_per_user: int = Field(default=100, ge=1)
    realtime_max_bindings_per_user: int = Field(default=500, ge=1)
    realtime_max_sockets_per_tenant: int = Field(default=200, ge=1)
    realtime_max_joins_per_second: int = Field(default=100, ge=1)
    realtime_max_events_per_second: int = Field(default=100, ge=1)

    # Jobs (pocketbizz.jobs): `serve` runs a worker in-process unless this is false
    # (`serve --no-worker`); `pocketbizz worker` runs one alone. A worker takes jobs only from
    # these comma-separated queues, at most jobs_concurrency at a time; a running job whose
    # worker sent no heartbeat for jobs_stalled_after_s seconds is handed to another worker.
    jobs_in_process: bool = True
    jobs_queues: str = "default"
    jobs_concurrency: int = Field(default=4, ge=1, le=64)
    jobs_heartbeat_s: float = Field(default=10.0, gt=0)
    jobs_stalled_after_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _heartbeat_before_stall(self) -> Settings:
        # Otherwise a live worker's jobs would be taken from it between two heartbeats.
        if self.jobs_stalled_after_s <= 2 * self.jobs_heartbeat_s:
            raise ValueError("PB_JOBS_STALLED_AFTER_S must exceed twice PB_JOBS_HEARTBEAT_S")
        return self

    # ToyyibPay (FPX) for PocketBizz's own subscriptions: the platform account's secret key and
    # category; bills call back to PB_PUBLIC_URL. Pending payments older than
    # toyyibpay_requery_after_s are re-queried (callbacks get lost).
    toyyibpay_url: str = "https://dev.toyyibpay.com"
    toyyibpay_secret_key: str | None = None
    toyyibpay_category_code: str | None = None
    toyyibpay_requery_after_s: float = Field(default=180.0, ge=0)
    # The owner of a paid plan is reminded this many days before it ends (once per expiry).
    plan_reminder_days: int = Field(default=3, ge=1, le=30)
    # Seals secrets the server keeps for tenants (their own ToyyibPay secret keys, for payment
    # links) with AES-256-GCM; without it, a key generated once and kept in the data dir, like
    # the JWT secret. Changing it makes the stored keys unreadable (owners enter them again).
    secrets_key: str | None = None

    # Storage: object bytes on local disk under the data dir, or in an S3-compatible bucket.
    storage_backend: Literal["local", "s3"] = "local"
    storage_dir: Path | None = None
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"

    # WhatsApp Cloud API (receipts by template message). Sending is on when the token and the
    # phone number id are set; the webhook needs the app secret (signatures) and verify token.
    whatsapp_api_url: str = "https://graph.facebook.com/v23.0"
    whatsapp_token: str | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_app_secret: str | None = None
    whatsapp_verify_token: str | None = None
    whatsapp_receipt_template: str = "receipt"
    # The approved template of the plan-expiry reminder; body parameters: the business (or
    # owner) name, the plan's name, the expiry date.
    whatsapp_reminder_template: str = "plan_expiry"
    whatsapp_template_language: str = "ms"
    whatsapp_timeout_s: float = Field(default=30.0, gt=0)

    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # "auto": readable text when stderr is a terminal, JSON lines otherwise.
    log_format: Literal["auto", "json", "text"] = "auto"
    # Bearer token that /metrics requires; without it /metrics answers only loopback callers.
    metrics_token: str | None = None
    # Unexpected errors of the server and the worker go to Sentry when set (none by default),
    # scrubbed of tokens, keys, passwords and these settings' secrets (pocketbizz.observability).
    sentry_dsn: str | None = Field(
        default=None, validation_alias=AliasChoices("SENTRY_DSN", "PB_SENTRY_DSN")
    )
    # Operator accounts (comma-separated e-mails): their access tokens carry
    # app_metadata.operator = true, which opens /functions/v1/admin/* and the /admin/ dashboard.
    operator_emails: str = ""
    # Seconds between recomputations of the business gauges on /metrics (tenants, MRR, DAU).
    business_gauges_interval_s: float = Field(default=60.0, ge=1)

    @property
    def operator_email_set(self) -> frozenset[str]:
        """PB_OPERATOR_EMAILS lower-cased (auth.users keeps e-mails lower-case)."""
        return frozenset(e.strip().lower() for e in self.operator_emails.split(",") if e.strip())

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        # uvicorn would take a malformed entry (or a network with host bits set) as a literal
        # host name and never match it.
        for entry in value.split(","):
            if entry.strip():
                try:
                    ipaddress.ip_network(entry.strip())
                except ValueError:
                    raise ValueError(f"not an IP address or network: {entry.strip()!r}") from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator(
        "statement_timeout", "statement_timeout_anon", "statement_timeout_service_role"
    )
    @classmethod
    def _postgres_duration(cls, value: str) -> str:
        # Checked at start: a bad value would otherwise fail every request of that role.
        if not _DURATION.fullmatch(value):
            raise ValueError("expected a PostgreSQL duration such as 8s, 500ms, 2min or 8000")
        return value

    @field_validator("rest_schemas")
    @classmethod
    def _exposable_schemas(cls, value: str) -> str:
        # As PostgREST refuses them in db-schemas: the catalogs would describe every object.
        names = {s.strip() for s in value.split(",")}
        if names & {"pg_catalog", "information_schema"}:
            raise ValueError("pg_catalog and information_schema cannot be exposed")
        return value

    @model_validator(mode="after")
    def _transaction_pooler(self) -> Settings:
        # A direct URL apart from DATABASE_URL means a transaction pooler sits at DATABASE_URL:
        # a prepared statement made in one transaction would be missing (or another client's)
        # in the next, so this is refused at start rather than failing requests at random.
        if self.database_direct_url and not self.database_url:
            raise ValueError("DATABASE_DIRECT_URL needs DATABASE_URL (the pooled address)")
        pooled = self.database_direct_url not in (None, self.database_url)
        if pooled and self.statement_cache_size:
            raise ValueError(
                "PB_STATEMENT_CACHE_SIZE must be 0 when DATABASE_DIRECT_URL is set "
                "(DATABASE_URL is then a transaction pooler, which keeps no prepared statements)"
            )
        return self

    @property
    def direct_database_url(self) -> str | None:
        """Where session-scoped connections go: DATABASE_DIRECT_URL, else DATABASE_URL."""
        return self.database_direct_url or self.database_url

    @model_validator(mode="after")
    def _pool_bounds(self) -> Settings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("PB_POOL_MIN_SIZE must not exceed PB_POOL_MAX_SIZE")
        return self

    @model_validator(mode="after")
    def _production_secret(self) -> Settings:
        # Refused at start rather than at the first token.
        if self.environment == "production" and self.jwt_secret and len(self.jwt_secret) < 32:
            raise ValueError("PB_JWT_SECRET must be at least 32 characters in production")
        return self

    @property
    def url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def rest_schema_list(self) -> tuple[str, ...]:
        """PB_REST_SCHEMAS as a tuple, the default schema first."""
        return tuple(s.strip() for s in self.rest_schemas.split(",") if s.strip()) or ("public",)

    @cached_property
    def secret(self) -> str:
        """The JWT secret: from PB_JWT_SECRET, or generated once and kept in the data dir."""
        if self.jwt_secret:
            if self.environment == "production" and len(self.jwt_secret) < 32:
                raise ValueError("PB_JWT_SECRET must be at least 32 characters in production")
            return self.jwt_secret
        return _read_or_create_secret(self.data_dir / "jwt_secret")

    @cached_property
    def secrets_key_material(self) -> str:
        """PB_SECRETS_KEY, or one generated once and kept in the data dir."""
        if self.secrets_key:
            if self.environment == "production" and len(self.secrets_key) < 32:
                raise ValueError("PB_SECRETS_KEY must be at least 32 characters in production")
            return self.secrets_key
        return _read_or_create_secret(self.data_dir / "secrets_key")

    @cached_property
    def authenticator_secret(self) -> str:
        if self.authenticator_password:
            return self.authenticator_password
        return _read_or_create_secret(self.data_dir / "authenticator_password")

    @property
    def storage(self) -> StorageSettings:
        """The storage group as the object store needs it: defaults resolved, S3 credentials
        checked, so the store reads typed values rather than probing the flat settings."""
        if self.storage_backend == "local":
            return LocalStorageSettings(root=self.storage_dir or self.data_dir / "storage")
        return S3StorageSettings(
            endpoint=_required_for_s3("s3_endpoint", self.s3_endpoint),
            bucket=_required_for_s3("s3_bucket", self.s3_bucket),
            access_key=_required_for_s3("s3_access_key", self.s3_access_key),
            secret_key=_required_for_s3("s3_secret_key", self.s3_secret_key),
            region=self.s3_region,
        )


@dataclass(frozen=True)
class LocalStorageSettings:
    """PB_STORAGE_BACKEND=local: object bytes under PB_STORAGE_DIR (default: data dir)."""

    root: Path


@dataclass(frozen=True)
class S3StorageSettings:
    """PB_STORAGE_BACKEND=s3: the PB_S3_* bucket and credentials."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str


StorageSettings = LocalStorageSettings | S3StorageSettings


def _required_for_s3(name: str, value: str | None) -> str:
    if not value:
        raise ValueError(f"PB_{name.upper()} is required when PB_STORAGE_BACKEND=s3")
    return value


_DURATION = re.compile(r"\s*\d+(\.\d+)?\s*(us|ms|s|min|h|d)?\s*")


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/pocketbizz (~/.local/share/pocketbizz): the same wherever it is run from."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pocketbizz"


def _read_or_create_secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # O_EXCL: if two processes race on first start, one wins and the other reads its value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value
