"""Settings, read from the environment (prefix CITYOPS_) and an optional .env file."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "dev-secret-change-me"  # refused in production below
VAR_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYOPS_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = f"sqlite:///{VAR_DIR / 'cityops.db'}"
    secret_key: str = DEFAULT_SECRET
    # Cookies carry the Secure flag unless explicitly running over plain HTTP on a laptop.
    secure_cookies: bool = False
    session_max_age_s: int = 8 * 3600
    default_locale: Literal["zh", "en"] = "zh"
    display_timezone: str = "Asia/Shanghai"
    # Optional intranet tile server, e.g. http://tiles.gov.local/{z}/{x}/{y}.png; none by default.
    tile_url: str = ""
    login_max_failures: int = 5
    login_lockout_s: int = 300
    attachments_dir: Path = VAR_DIR / "files"
    # Key of the HMAC signature on outbound webhooks; empty derives one from secret_key.
    webhook_secret: str = ""
    sql_echo: bool = False
    # Deliver outbox events from a background thread (servers); false delivers right after each commit.
    events_in_background: bool = True
    # NATS JetStream carries the outbox's events between processes when set (nats://host:4222); empty
    # keeps the in-process bus. The stream and the subject prefix (`<prefix>.<topic>`) set apart
    # installations sharing one NATS server.
    nats_url: str = ""
    nats_stream: str = "CITYOPS_EVENTS"
    nats_subject_prefix: str = "cityops.events"
    # The background scheduler (deadline escalation, webhook delivery) in the app process.
    run_scheduler: bool = True
    page_size_max: int = Field(default=500, ge=1)
    # Raw telemetry is kept this long (rollups longer); older points are refused at ingestion.
    telemetry_raw_days: int = Field(default=30, ge=1, le=3650)
    # The MQTT broker devices connect to (Mosquitto with cityops' plugin, see `cityops mqtt broker`).
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    # The platform's own account on the broker; an empty password derives one from secret_key.
    mqtt_user: str = "cityops"
    mqtt_password: str = ""
    # The `token device_id` lines the broker plugin authenticates devices with; cityops rewrites the
    # file whenever a token is issued, rotated or revoked. Empty: no broker is fed.
    mqtt_credentials_file: Path | None = VAR_DIR / "mqtt" / "credentials"
    # Where `cityops mqtt broker` keeps its configuration and persistent queue.
    mqtt_broker_dir: Path = VAR_DIR / "mqtt"
    # cityops' Mosquitto plugin, built at set-up (./run) from src/cityops/perception/mosquitto.
    mqtt_plugin: Path = Path(".build") / "mosquitto" / "cityops_auth.so"
    # Who the installation's CAP warnings come from: <sender> (unique worldwide, no spaces or commas)
    # and <senderName>.
    cap_sender: str = Field(default="cityops.hebi", pattern=r"^[^\s,<&]{1,200}$")
    cap_sender_name: str = Field(default="鹤壁市城市运行管理中心", min_length=1, max_length=200)

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.environment == "production":
            if self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32:
                raise ValueError(
                    "CITYOPS_SECRET_KEY must be set to a random value of at least 32 characters "
                    "in production"
                )
            if not self.secure_cookies:
                raise ValueError("CITYOPS_SECURE_COOKIES must be true in production")
        return self

    def derived_secret(self, purpose: str) -> str:
        """A secret for one purpose, stable per installation, derived from the secret key (which
        itself signs cookies and is never handed out)."""
        return hmac.new(self.secret_key.encode(), purpose.encode(), hashlib.sha256).hexdigest()

    @property
    def mqtt_secret(self) -> str:
        return self.mqtt_password or self.derived_secret("cityops-mqtt")[:32]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
