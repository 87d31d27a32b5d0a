"""The registry's use cases behind one face, so that the API and the local server hold one object:
uploads and commits (`uploads`), reads (`queries`), changes with their retry loop (`changes`) and
lineage queries (`lineage_queries`). Each part reads what it needs through the ports, decides, and
writes one `ArtifactChange` guarded by the artifact head's revision."""

from __future__ import annotations

import time
from collections.abc import Callable

from artreg.registry.changes import Changes, Retrier
from artreg.registry.context import Context
from artreg.registry.lineage_queries import LineageQueries
from artreg.registry.links import Links
from artreg.registry.policy import Policy, RandomIds, SystemClock
from artreg.registry.ports import BlobStore, Clock, IdSource, MetadataStore
from artreg.registry.queries import Queries
from artreg.registry.uploads import Committed, Uploads

__all__ = ["Committed", "Policy", "RegistryService"]


class RegistryService:
    """The server side's registry (the SDK's client is `artreg.Registry`)."""

    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        *,
        policy: Policy | None = None,
        clock: Clock | None = None,
        ids: IdSource | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[], None] | None = None,
        lineage_catch_up: Callable[[], None] | None = None,
    ):
        self.context = Context(store, blobs, policy or Policy(), clock or SystemClock(), ids or RandomIds())
        retrier = Retrier(self.context.policy, sleep, on_retry)
        self.queries = Queries(self.context)
        self.links = Links(self.context, self.queries, retrier)
        self.uploads = Uploads(self.context, retrier, self.links)
        self.changes = Changes(self.context, self.queries, retrier)
        self.lineage_queries = LineageQueries(self.context, self.queries, lineage_catch_up)

        self.start_upload = self.uploads.start_upload
        self.add_files = self.uploads.add_files
        self.complete_blob = self.uploads.complete_blob
        self.commit = self.uploads.commit
        self.stage = self.uploads.stage

        self.resolve = self.queries.resolve
        self.get_artifact = self.queries.get_artifact
        self.list_projects = self.queries.list_projects
        self.list_artifacts = self.queries.list_artifacts
        self.list_versions = self.queries.list_versions
        self.list_files = self.queries.list_files
        self.download = self.queries.download
        self.file_target = self.queries.file_target
        self.alias_history = self.queries.alias_history

        self.move_alias = self.changes.move_alias
        self.remove_alias = self.changes.remove_alias
        self.patch_version = self.changes.patch_version
        self.delete_version = self.changes.delete_version
        self.record_usage = self.changes.record_usage

        self.link = self.links.link
        self.unlink = self.links.unlink
        self.list_links = self.links.list_links
        self.linked_by = self.links.linked_by

        self.lineage = self.lineage_queries.lineage
        self.run = self.lineage_queries.run
        self.runs = self.lineage_queries.runs

    @property
    def store(self) -> MetadataStore:
        return self.context.store

    @property
    def blobs(self) -> BlobStore:
        return self.context.blobs

    @property
    def policy(self) -> Policy:
        return self.context.policy

    @property
    def clock(self) -> Clock:
        return self.context.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self.context.clock = clock

    @property
    def ids(self) -> IdSource:
        return self.context.ids
