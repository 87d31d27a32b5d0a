"""A model version gathered while training, ZenML-style (its model control plane's `Model`):

    with reg.model_version("fraud", bump="minor") as mv:
        mv.link("training_data", "iris@production")
        for epoch in range(3):
            ...
            mv.log_artifact(Artifact("fraud-ckpt", type="checkpoint").add("ckpt.pt"), role=f"checkpoints/epoch-{epoch}")
        mv.artifact.add("model.pt")  # the model version's own files, if any
    mv.logged  # fraud 1.3.0, linking the dataset and the three checkpoints

Every version logged through the context (`mv.log_artifact`, or `reg.log_artifact(..., role=...)`
while it is open on that registry) is its own version of its own artifact, linked under the role
named; `mv.link` links a version that exists already. At the end of the block the model version is
committed once, holding those links (pinned: each target's version and digest) and its own files. If
the block raises, no model version is made; the checkpoints logged stay, as versions of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from artreg.client.artifact import Artifact
from artreg.client.errors import Invalid
from artreg.client.links import target_of
from artreg.model.names import check_role
from artreg.model.versions import Bump

if TYPE_CHECKING:
    from artreg.client.logged import LoggedArtifact
    from artreg.client.registry import Registry

_open = threading.local()  # the model versions open in this thread, innermost last


class ModelVersion:
    """A model version being gathered: its artifact (files, metadata, aliases) and its links by role."""

    def __init__(self, registry: Registry, artifact: Artifact, log_options: Mapping[str, Any]):
        self.registry = registry
        self.artifact = artifact
        self.links: dict[str, str] = {}  # role -> name@version, pinned as logged
        self.logged: LoggedArtifact | None = None  # the model version, once committed
        self._options = dict(log_options)

    def __repr__(self) -> str:
        state = self.logged.qualified_name if self.logged else "open"
        return f"ModelVersion({self.artifact.name!r}, {state}, links={sorted(self.links)})"

    def link(self, role: str, target: str | LoggedArtifact) -> None:
        """Links the model version, once committed, under `role` to `target` (`name@ref` is resolved
        now, so that the version linked is the one the ref names while training)."""
        check_role(role)
        if isinstance(target, str):
            target = self.registry.get_artifact(target)
        self.links[role] = target_of(target)

    def log_artifact(self, artifact: Artifact, *, role: str, **options: Any) -> LoggedArtifact:
        """Logs `artifact` as a version of its own (as `Registry.log_artifact`), linked under `role`."""
        check_role(role)
        logged = self.registry.log_artifact(artifact, **options)
        self.links[role] = logged.qualified_name
        return logged

    def commit(self) -> LoggedArtifact:
        if self.logged is None:
            self.logged = self.registry.log_artifact(self.artifact, links=self.links, **self._options)
        return self.logged


def current(registry: Registry) -> ModelVersion | None:
    """The innermost model version open on `registry` in this thread."""
    stack: list[ModelVersion] = getattr(_open, "stack", [])
    return next((mv for mv in reversed(stack) if mv.registry is registry), None)


def for_role(registry: Registry, role: str | None) -> ModelVersion | None:
    """The model version a version logged with `role=` is linked to: the one open on the registry
    (refused before anything is logged when none is)."""
    if role is None:
        return None
    check_role(role)
    open_version = current(registry)
    if open_version is None:
        raise Invalid("role= links a version to an open model version: use it inside reg.model_version(...)")
    return open_version


@contextmanager
def model_version(
    registry: Registry,
    name: str,
    *,
    type: str = "model",
    bump: Bump | None = None,
    version: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    aliases: set[str] | None = None,
    **log_options: Any,
) -> Iterator[ModelVersion]:
    artifact = Artifact(name, type=type, metadata=dict(metadata or {}), aliases=set(aliases or ()))
    gathering = ModelVersion(registry, artifact, {"bump": bump, "version": version, **log_options})
    stack: list[ModelVersion] = getattr(_open, "stack", [])
    _open.stack = [*stack, gathering]
    try:
        yield gathering
    finally:
        _open.stack = stack
    gathering.commit()  # not reached when the block raised: no model version is made
