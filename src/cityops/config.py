"""Settings, read from the environment (prefix CITYOPS_) and an optional .env file."""

from __future__ import annotations

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
    # The background scheduler (deadline escalation, webhook delivery) in the app process.
    run_scheduler: bool = True
    page_size_max: int = Field(default=500, ge=1)
    # Raw telemetry is kept this long (rollups longer); older points are refused at ingestion.
    telemetry_raw_days: int = Field(default=30, ge=1, le=3650)

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

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
