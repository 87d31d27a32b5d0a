"""Python objects in and out of the registry: `save` (what `Registry.save` does) writes an object
with its materializer into a temporary folder and logs that folder; `load` (what
`LoggedArtifact.load` does) downloads a version into a temporary folder and reads it back with the
materializer its metadata names. See artreg.client.materializers."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artreg.client.artifact import Artifact
from artreg.client.errors import Invalid, NotFound
from artreg.client.materializers import METADATA_KEY, by_name, for_object, refuse_pickle

if TYPE_CHECKING:
    from artreg.client.logged import LoggedArtifact
    from artreg.client.registry import Registry


def save(
    reg: Registry,
    obj: Any,
    name: str,
    *,
    type: str | None = None,
    materializer: str | None = None,
    allow_pickle: bool = False,
    metadata: Mapping[str, Any] | None = None,
    aliases: Iterable[str] = (),
    tags: Iterable[str] = (),
    version: str | None = None,
    **log_options: Any,
) -> LoggedArtifact:
    """`Registry.save`. The artifact's type is `type`, else that of the artifact when it exists,
    else the materializer's (`model` for estimators and state dicts, `dataset` for frames)."""
    chosen = for_object(obj, materializer, allow_pickle=allow_pickle)
    if metadata and METADATA_KEY in metadata:
        raise Invalid(f"metadata key {METADATA_KEY!r} is the materializer's own", details={"field": "metadata"})
    if type is None:
        try:
            type = reg.summary(name).type
        except NotFound:
            type = chosen.artifact_type
    with tempfile.TemporaryDirectory(prefix="artreg-save-") as folder:
        info = chosen.save(obj, Path(folder), allow_pickle=allow_pickle)
        recorded = {"name": chosen.name, "version": chosen.version, **info}
        art = Artifact(
            name,
            type=type,
            metadata={**(metadata or {}), METADATA_KEY: recorded},
            aliases=aliases,
            tags=tags,
            version=version,
        )
        for item in sorted(Path(folder).iterdir()):
            art.add(item, item.name)
        return reg.log_artifact(art, **log_options)


def _pickled(info: Mapping[str, Any]) -> bool:
    return info.get("name") == "pickle" or info.get("format") == "pickle"


def load(logged: LoggedArtifact, *, allow_pickle: bool = False, run_id: str | None = None) -> Any:
    """`LoggedArtifact.load`."""
    where = logged.qualified_name
    info = logged.metadata.get(METADATA_KEY)
    if not isinstance(info, dict) or not isinstance(info.get("name"), str):
        raise Invalid(
            f"{where} was not logged by Registry.save (its metadata has no {METADATA_KEY!r}): download() its files",
            details={"field": "metadata"},
        )
    if _pickled(info) and not allow_pickle:
        raise refuse_pickle(where, on_load=True)  # before a byte is downloaded
    chosen = by_name(info["name"])
    written_by = info.get("version", 1)
    if not isinstance(written_by, int) or written_by > chosen.version:
        raise Invalid(
            f"{where} was written by version {written_by} of materializer {chosen.name!r}; this one is version"
            f" {chosen.version}: upgrade the package that provides it",
            details={"materializer": chosen.name},
        )
    with tempfile.TemporaryDirectory(prefix="artreg-load-") as folder:
        logged.download(folder, run_id=run_id, progress=False)
        return chosen.load(Path(folder), info, allow_pickle=allow_pickle)
