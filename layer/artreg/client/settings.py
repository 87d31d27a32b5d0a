"""The SDK's and the CLI's settings, in one model: `ClientSettings`.

`load_settings()` reads them, each value from the first place that has it: an explicit argument,
then an `ARTREG_<FIELD>` environment variable, then the config file (`ARTREG_CONFIG`, else
`$XDG_CONFIG_HOME/artreg/config.toml`, else `~/.config/artreg/config.toml`; flat keys named as the
fields), then the default. An empty variable counts as unset. A boolean takes pydantic's spellings
(1/0, true/false, yes/no, on/off, t/f, y/n, any case). A value that does not parse is `Invalid`,
naming the variable or the file it came from. Tests build a `ClientSettings` directly: it reads
nothing.

    # ~/.config/artreg/config.toml
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com"
    project = "vision"
    cache = false
"""

from __future__ import annotations

import functools
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from artreg.client.common import invalid
from artreg.client.errors import Invalid

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

DEFAULT_URL = "http://127.0.0.1:8080"
ENV_PREFIX = "ARTREG_"
CONFIG_VARIABLE = "ARTREG_CONFIG"


class ClientSettings(BaseModel):
    """What a `Registry` and the `artreg` command are configured with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(default=DEFAULT_URL, min_length=1)  # the local server's, or a deployed stack's API URL
    project: str | None = None
    run_id: str | None = None  # the run that logs and uses versions: lineage's producer and user
    cache: bool = True  # the local content cache of downloads
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "artreg")
    progress: bool = True  # progress bars, when stderr is a terminal
    workers: int | None = Field(default=None, ge=1, le=256)  # hashing and transfer threads; None: by CPUs
    timeout: float = Field(default=60.0, gt=0)  # seconds to wait for an answer's bytes
    connect_timeout: float = Field(default=10.0, gt=0)
    retry_attempts: int = Field(default=6, ge=1, le=100)  # tries of a call answered 429/5xx or unreachable
    retry_deadline: float = Field(default=120.0, gt=0)  # no new try this many seconds after the first
    # how long a commit waits in all for the registry to verify large blobs (409 blobs_verifying): a
    # deployed registry re-hashes a multipart blob over 1 GiB after its upload, at a few hundred MB/s
    verify_wait: float = Field(default=1800.0, ge=0)
    data: Path = Field(default_factory=lambda: Path.home() / ".local" / "share" / "artreg")  # `artreg server`'s
    webhook: str | None = None  # `artreg server` also POSTs each event here

    @field_validator("cache_dir", "data")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    def updated(self, **given: Any) -> ClientSettings:
        """These settings with the given values (those not None) in place, checked: explicit
        arguments win over everything read."""
        given = {k: v for k, v in given.items() if v is not None}
        if not given:
            return self
        try:
            return ClientSettings.model_validate({**self.model_dump(), **given})
        except ValidationError as error:
            raise invalid(error, show_input=True) from None


def config_path() -> Path:
    """Where the config file is looked for (it need not exist)."""
    named = os.environ.get(CONFIG_VARIABLE)
    if named:
        return Path(named).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base).expanduser() / "artreg" / "config.toml"


def load_settings(*, config_file: str | os.PathLike[str] | None = None, **given: Any) -> ClientSettings:
    """The settings from the given arguments (None: not given), the environment, the config file
    (`config_file`, by default `config_path()`) and the defaults, in that order of precedence."""
    path = Path(config_file).expanduser() if config_file is not None else config_path()
    try:
        read = _sourced(path)()
    except ValidationError as error:
        raise invalid(error, lambda field: _origin(field, path), show_input=True) from None
    except tomllib.TOMLDecodeError as error:
        raise Invalid(f"config file {path}: not TOML: {error}", details={"field": str(path)}) from None
    return ClientSettings.model_validate(read.model_dump()).updated(**given)


def _origin(field: str, path: Path) -> str:
    variable = ENV_PREFIX + field.upper()
    if any(k.upper() == variable and v for k, v in os.environ.items()):
        return variable
    return f"{path}: {field}"


@functools.lru_cache(maxsize=8)
def _sourced(path: Path) -> type[BaseSettings]:
    """`ClientSettings` read from the environment and the TOML file at `path` (pydantic-settings,
    imported only here: `import artreg` stays cheap)."""
    from pydantic_settings import (
        BaseSettings,
        PydanticBaseSettingsSource,
        SettingsConfigDict,
        TomlConfigSettingsSource,
    )

    class FromEnvironment(BaseSettings, ClientSettings):
        model_config = SettingsConfigDict(
            env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="forbid", frozen=True, toml_file=path
        )

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return env_settings, TomlConfigSettingsSource(settings_cls)

    return FromEnvironment
