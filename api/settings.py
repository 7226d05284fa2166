"""Runtime settings: environment variables with the ``STOCKROOM_`` prefix, or ``.env``."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger("stockroom.settings")

MIN_SECRET_BYTES = 32


class Env(StrEnum):
    DEV = "dev"
    PROD = "prod"


class Settings(BaseSettings):
    """Every knob of the service; invalid values fail at start naming the setting."""

    model_config = SettingsConfigDict(
        env_prefix="STOCKROOM_", env_file=".env", extra="ignore", frozen=False
    )

    env: Env = Env.DEV
    database_url: str = "sqlite+aiosqlite:///./stockroom.db"
    broker_url: str = "memory://"
    jwt_secret: str | None = None
    jwt_algorithm: str = "HS256"
    # Asymmetric keys (RS256/ES256): PEM files; the kid names the active signing key.
    jwt_private_key_file: Path | None = None
    jwt_public_key_file: Path | None = None
    jwt_key_id: str = "stockroom-1"
    jwt_issuer: str = "stockroom"
    jwt_audience: str = "stockroom-api"
    access_token_ttl: int = Field(default=15 * 60, gt=0, description="seconds")
    refresh_token_ttl: int = Field(default=14 * 24 * 3600, gt=0, description="seconds")
    upload_dir: Path = Path("./uploads")
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(default=40_000_000, gt=0)
    upload_grace_seconds: int = Field(default=24 * 3600, ge=0)
    max_import_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    max_import_rows: int = Field(default=1_000_000, gt=0)
    import_batch_rows: int = Field(default=1000, gt=0, le=10_000)
    # A RUNNING import whose heartbeat is older than this lost its process: resume it.
    import_stale_seconds: float = Field(default=30.0, gt=0)
    # Jobs uploaded here wake this process's runner at once; the poll finds the others
    # (another worker's queue after it died, a stale job).
    import_poll_seconds: float = Field(default=30.0, gt=0)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_query_depth: int = Field(default=10, gt=0)
    max_aliases: int = Field(default=30, gt=0)
    max_query_cost: int = Field(default=50_000, gt=0)
    max_query_tokens: int = Field(default=5_000, gt=0)
    max_batch_operations: int = Field(default=10, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    graphiql: bool | None = None
    introspection: bool | None = None
    persisted_only: bool = False
    persisted_queries_file: Path | None = None
    apq_cache_size: int = Field(default=1000, gt=0)
    rate_limit: str = "600/minute"
    login_rate_limit: str = "10/minute"
    rate_limit_storage: str = "memory://"
    subscription_cap: int = Field(default=50, gt=0)
    subscriber_queue_size: int = Field(default=256, gt=0)
    ws_init_timeout: float = Field(default=10.0, gt=0)
    ws_keepalive: float = Field(default=15.0, gt=0)
    reservation_sweep_seconds: float = Field(default=5.0, gt=0)
    # The event log: how long events stay for subscribers to resume from (seconds or ISO
    # 8601, e.g. P7D), how often a worker reads it when no ring comes, and how long a reader
    # waits for an id taken by a transaction that has not committed yet.
    event_retention: timedelta = Field(default=timedelta(days=7), gt=timedelta(0))
    event_poll_seconds: float = Field(default=1.0, gt=0)
    event_gap_seconds: float = Field(default=30.0, gt=0)
    db_pool_size: int = Field(default=20, gt=0)
    # Outbound webhooks (see api/webhooks): a 2xx within the timeout delivers; otherwise
    # retried after about backoff x 6^(attempt-1) seconds (10 s, 1 min, 6 min, ...), up to
    # max_attempts. allow_private (unset: true in dev, false in prod) lets URLs reach
    # loopback and private addresses; https is required outside dev.
    webhook_timeout: float = Field(default=10.0, gt=0, le=60)
    webhook_backoff: float = Field(default=10.0, gt=0)
    webhook_max_attempts: int = Field(default=8, gt=0, le=50)
    webhook_log_retention: timedelta = Field(default=timedelta(days=30), gt=timedelta(0))
    webhook_allow_private: bool | None = None
    webhook_concurrency: int = Field(default=8, gt=0, le=256)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    # How long a worker trusts its copy of a user's role, status and token version. A change
    # made through the API reaches every worker at once (the broker); this bounds the rest,
    # so a revoked token stops working everywhere within a second. 0 reads it per request.
    viewer_cache_seconds: float = Field(default=0.5, ge=0, le=1)
    log_json: bool = True
    log_level: str = "INFO"
    otel_enabled: bool = False
    # Planned reads (on) or resolvers only (off): for comparison and as an escape hatch.
    planner: bool = True
    shutdown_timeout: float = Field(default=20.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str) -> str:
        # Accept the URLs people paste from their hosting dashboards.
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            value = "postgresql+asyncpg://" + value.removeprefix("postgresql://")
        if value.startswith("sqlite:///"):
            value = "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("must be a sqlite+aiosqlite:// or postgresql+asyncpg:// URL")
        return value

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "postgresql://", "postgres://")):
            raise ValueError("must start with memory://, redis:// or postgresql://")
        return value

    @field_validator("jwt_algorithm")
    @classmethod
    def _check_algorithm(cls, value: str) -> str:
        if value not in {"HS256", "HS384", "HS512", "RS256", "ES256"}:
            raise ValueError("must be one of HS256, HS384, HS512, RS256, ES256")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        if self.jwt_algorithm.startswith("HS"):
            if self.jwt_secret is None:
                if self.env is not Env.DEV:
                    raise ValueError("STOCKROOM_JWT_SECRET is required outside ENV=dev")
                self.jwt_secret = secrets.token_urlsafe(48)
                log.warning(
                    "STOCKROOM_JWT_SECRET is not set: generated a random one for this process; "
                    "tokens will not survive a restart"
                )
            elif len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"STOCKROOM_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes"
                )
        elif self.jwt_private_key_file is None or self.jwt_public_key_file is None:
            raise ValueError(
                "STOCKROOM_JWT_PRIVATE_KEY_FILE and STOCKROOM_JWT_PUBLIC_KEY_FILE are required "
                f"for {self.jwt_algorithm}"
            )
        return self

    @property
    def is_dev(self) -> bool:
        return self.env is Env.DEV

    @property
    def graphiql_enabled(self) -> bool:
        return self.is_dev if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return self.is_dev if self.introspection is None else self.introspection

    @property
    def webhook_private_allowed(self) -> bool:
        return self.is_dev if self.webhook_allow_private is None else self.webhook_allow_private

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
