"""Settings of every function and of the local server, read once from `ARTREG_*` variables."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from artreg.registry.policy import Policy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARTREG_", extra="ignore", frozen=True)

    table_name: str = Field(min_length=3, max_length=255)
    bucket_name: str = Field(min_length=3, max_length=63)
    event_bus_name: str = Field(default="default", min_length=1, max_length=256)
    event_source: str = Field(default="artreg", min_length=1, max_length=256)
    upload_expiry_seconds: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)
    presign_seconds: int = Field(default=900, ge=60, le=12 * 3600)
    multipart_threshold: int = Field(default=64 * 1024**2, ge=5 * 1024**2)
    part_size: int = Field(default=64 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    blob_grace_days: int = Field(default=7, ge=1, le=3650)  # an unlisted blob is kept this long
    janitor_batch: int = Field(default=500, ge=1, le=10_000)  # uploads a janitor run expires at most
    commit_deadline_seconds: float = Field(default=20.0, gt=0, le=25)  # under API Gateway's 30 s

    def policy(self) -> Policy:
        return Policy(
            upload_ttl=timedelta(seconds=self.upload_expiry_seconds),
            presign_ttl=timedelta(seconds=self.presign_seconds),
            commit_deadline_s=self.commit_deadline_seconds,
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()  # required fields come from the environment
