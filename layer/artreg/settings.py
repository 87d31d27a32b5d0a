"""Settings of every function and of the local server, read once from `ARTREG_*` variables."""

# no `from __future__ import annotations` here: pydantic would compile each field's annotation from its text
# when the class is made, a cost of every cold start (benchmarks/cold_start.py)

import os
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from artreg.model import names
from artreg.registry.policy import Policy


def alias_list(value: Any) -> frozenset[str]:
    """Aliases given comma-separated (`production,prod`), as a list, or both (a repeated flag)."""
    items = [value] if isinstance(value, str) else list(value)
    aliases = frozenset(a.strip() for item in items for a in str(item).split(",") if a.strip())
    for alias in aliases:
        names.check_alias(alias)
        if alias == names.LATEST:
            raise ValueError("'latest' is moved by every commit and cannot be protected")
    return aliases


def variable(field: str) -> str:
    """The environment variable of a setting: `table_name` is read from ARTREG_TABLE_NAME."""
    return "ARTREG_" + field.upper()


class RegistrySettings(BaseModel):
    """The registry's own rules, the same on both back ends (the local server reads these too)."""

    # Each field is validated from its variable by pydantic itself (`from_environment`): pydantic-settings,
    # whose other sources (files, secrets, CLI) no function reads, would add its import to every cold start.
    # Built at first use: a function reads only `Settings`, the local server only `ServerSettings`.
    model_config = ConfigDict(alias_generator=variable, extra="ignore", frozen=True, defer_build=True)

    protected_aliases: frozenset[str] = frozenset({"production"})
    event_source: str = Field(default="artreg", min_length=1, max_length=256)  # the events' `source`

    @field_validator("protected_aliases", mode="before")
    @classmethod
    def _aliases(cls, value: str | Iterable[str]) -> frozenset[str]:
        return alias_list(value)

    @classmethod
    def from_environment(cls, **given: Any) -> Self:
        """The settings that the `ARTREG_*` variables give, `given` (by field name) in place of theirs; a
        ValidationError's `loc` names the variable."""
        return cls.model_validate({**os.environ, **{variable(name): value for name, value in given.items()}})


class ServerSettings(RegistrySettings):
    """What `artreg server` reads of `ARTREG_*` beside its flags (a flag, where there is one, wins)."""

    # a blob over this is sent in parts of `part_size`, as on the Lambda; the folder store's defaults else
    multipart_threshold: int | None = Field(default=None, ge=5 * 1024**2)
    part_size: int | None = Field(default=None, ge=5 * 1024**2)
    http: Literal["httptools", "h11"] = "httptools"  # uvicorn's HTTP/1.1 parser
    ui_dir: Path | None = None  # the web UI's files, when not the package's own
    # web pages of these origins may call the API (`--trust-origin` adds to them), comma-separated
    trust_origins: tuple[str, ...] = ()
    # a client on this machine may hand the server a large file's descriptor to copy (`local.handoff`)
    handoff: bool = True

    @field_validator("trust_origins", mode="before")
    @classmethod
    def _origins(cls, value: str | Iterable[str]) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else list(value)
        return tuple(o.strip() for item in items for o in str(item).split(",") if o.strip())


class Settings(RegistrySettings):
    table_name: str = Field(min_length=3, max_length=255)
    bucket_name: str = Field(min_length=3, max_length=63)
    event_bus_name: str = Field(default="default", min_length=1, max_length=256)
    upload_expiry_seconds: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)
    presign_seconds: int = Field(default=900, ge=60, le=12 * 3600)
    multipart_threshold: int = Field(default=64 * 1024**2, ge=5 * 1024**2)
    part_size: int = Field(default=64 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    blob_grace_days: int = Field(default=7, ge=1, le=3650)  # an unlisted blob is kept this long
    janitor_batch: int = Field(default=500, ge=1, le=10_000)  # uploads a janitor run expires at most
    commit_deadline_seconds: float = Field(default=20.0, gt=0, le=25)  # under API Gateway's 30 s
    # multipart blobs over this are re-hashed by the verifier function (artreg.aws.s3: why 1 GiB)
    inline_verify_limit: int = Field(default=1024**3, ge=0)
    verifier_function_name: str | None = Field(default=None, min_length=1, max_length=170)  # none: all inline
    verify_window_seconds: int = Field(default=3600, ge=60)  # Policy.verify_window

    def policy(self) -> Policy:
        return Policy(
            upload_ttl=timedelta(seconds=self.upload_expiry_seconds),
            presign_ttl=timedelta(seconds=self.presign_seconds),
            commit_deadline_s=self.commit_deadline_seconds,
            protected_aliases=self.protected_aliases,
            verify_window=timedelta(seconds=self.verify_window_seconds),
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_environment()  # required fields come from the environment
