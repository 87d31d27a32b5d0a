"""What every part of the registry's use cases is handed: the ports, the policy, the clock and the
id source, shared (the facade's `clock` is this one's, so that replacing it reaches every part)."""

from __future__ import annotations

from dataclasses import dataclass

from artreg.model.errors import NotFound
from artreg.registry.policy import Policy
from artreg.registry.ports import BlobStore, Clock, IdSource, MetadataStore
from artreg.registry.records import Head, StoreLimits


@dataclass
class Context:
    store: MetadataStore
    blobs: BlobStore
    policy: Policy
    clock: Clock
    ids: IdSource

    @property
    def limits(self) -> StoreLimits:
        return self.store.limits


def not_found(what: str, **details: str) -> NotFound:
    return NotFound(f"{what} not found", details=details)


def existing(head: Head | None, project: str, name: str) -> Head:
    if head is None:
        raise not_found(f"artifact {project}/{name}", project=project, name=name)
    return head
