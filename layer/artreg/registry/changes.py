"""Changing an artifact: aliases, a version's tags and metadata, deleting a version, and recording
its use. Each reads the head, decides, and writes one `ArtifactChange` guarded by the head's
revision, retried from the current head when a concurrent writer got there first (`Retrier`, which
a commit uses too)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from artreg.backoff import jittered
from artreg.model import names, versions
from artreg.model.errors import Conflict, PreconditionFailed, Retryable
from artreg.model.wire import AliasMove, MoveAlias, PatchVersion, Usage, UsageRecord, VersionRecord
from artreg.registry.context import Context, existing, not_found
from artreg.registry.policy import Policy
from artreg.registry.ports import HeadMoved
from artreg.registry.queries import Queries
from artreg.registry.records import ArtifactChange, Head, StoredLink, StoredVersion, VersionDelta

LATEST = names.LATEST
T = TypeVar("T")


class Retrier:
    """Runs a write from a fresh head until it is not beaten to it by another writer."""

    def __init__(
        self,
        policy: Policy,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[], None] | None = None,
    ):
        self.policy = policy
        self._sleep = sleep
        self._on_retry = on_retry

    def run(self, read_head: Callable[[], Head | None], attempt: Callable[[Head | None], T]) -> T:
        """A lost race hands back the current head, so a retry reads nothing again (full jitter)."""
        deadline = time.monotonic() + self.policy.commit_deadline_s
        head = read_head()
        for tries in range(1_000_000):
            try:
                return attempt(head)
            except HeadMoved as moved:
                head = moved.current
            if self._on_retry:
                self._on_retry()
            if time.monotonic() >= deadline:
                break
            self._sleep(jittered(tries, self.policy.backoff_base_s, self.policy.backoff_cap_s))
        raise Retryable("too many concurrent changes to this artifact; retry shortly")


class Changes:
    def __init__(self, context: Context, queries: Queries, retrier: Retrier):
        self.c = context
        self.queries = queries
        self.retrier = retrier

    def move_alias(
        self, project: str, name: str, alias: str, request: MoveAlias, caller: str | None = None
    ) -> VersionRecord:
        """Points `alias` at a version, compare-and-swap when `expected_version` is in the request."""
        names.check_alias(alias)
        if alias == LATEST:
            raise Conflict("alias 'latest' is kept by the registry and cannot be moved", code="alias_conflict")
        check_expected = "expected_version" in request.model_fields_set

        def attempt(head: Head | None) -> VersionRecord:
            head = existing(head, project, name)
            current = head.aliases.get(alias)
            if check_expected and not _same_version(current, request.expected_version):
                raise PreconditionFailed(
                    f"alias {alias!r} points at {current or 'nothing'}, not {request.expected_version or 'nothing'}",
                    details={"alias": alias, "current_version": current},
                )
            target = self.queries.resolve(project, name, request.version)
            if current == target.version:
                return target.to_record()
            if alias not in head.aliases and len(head.aliases) >= self.c.limits.max_aliases:
                raise Conflict(
                    f"{name} has {len(head.aliases)} aliases, the most an artifact may have",
                    code="alias_conflict",
                )
            now = self.c.clock.now()
            moved = target.model_copy(update={"aliases": sorted({*target.aliases, alias})})
            change = ArtifactChange(
                head=head.next(now, aliases={**head.aliases, alias: target.version}),
                expected_revision=head.revision,
                deltas=[VersionDelta(target.version, aliases_add={alias})]
                + ([VersionDelta(current, aliases_remove={alias})] if current else []),
                alias_puts={alias: moved},
                history=[
                    AliasMove(
                        alias=alias,
                        version=target.version,
                        previous_version=current,
                        at=now,
                        by=caller,
                    )
                ],
            )
            self.c.store.apply(change)
            return moved.to_record()

        return self.retrier.run(lambda: self.c.store.get_head(project, name), attempt)

    def remove_alias(self, project: str, name: str, alias: str, caller: str | None = None) -> None:
        names.check_alias(alias)
        if alias == LATEST:
            raise Conflict(
                "alias 'latest' is kept by the registry and cannot be removed",
                code="alias_conflict",
            )

        def attempt(head: Head | None) -> None:
            head = existing(head, project, name)
            current = head.aliases.get(alias)
            if current is None:
                raise not_found(f"alias {alias!r} of {project}/{name}", alias=alias)
            now = self.c.clock.now()
            self.c.store.apply(
                ArtifactChange(
                    head=head.next(now, aliases={a: v for a, v in head.aliases.items() if a != alias}),
                    expected_revision=head.revision,
                    deltas=[VersionDelta(current, aliases_remove={alias})],
                    alias_deletes=[alias],
                    history=[AliasMove(alias=alias, version=None, previous_version=current, at=now, by=caller)],
                )
            )

        self.retrier.run(lambda: self.c.store.get_head(project, name), attempt)

    def patch_version(self, project: str, name: str, ref: str, request: PatchVersion) -> VersionRecord:
        def attempt(head: Head | None) -> VersionRecord:
            head = existing(head, project, name)
            version = self.queries.resolve(project, name, ref)
            metadata = dict(version.metadata)
            for key, value in (request.metadata or {}).items():
                if value is None:
                    metadata.pop(key, None)
                else:
                    metadata[key] = value
            names.check_metadata(metadata)
            tags = names.check_tags(sorted((set(version.tags) | set(request.tags_add)) - set(request.tags_remove)))
            self.c.store.apply(
                ArtifactChange(
                    head=head.next(self.c.clock.now()),
                    expected_revision=head.revision,
                    deltas=[VersionDelta(version.version, tags=tags, metadata=metadata)],
                )
            )
            return version.model_copy(update={"metadata": metadata, "tags": tags}).to_record()

        return self.retrier.run(lambda: self.c.store.get_head(project, name), attempt)

    def delete_version(
        self, project: str, name: str, ref: str, *, force: bool = False, caller: str | None = None
    ) -> VersionRecord:
        """Marks a version deleted; `latest` moves down to the highest live version left."""

        def attempt(head: Head | None) -> VersionRecord:
            head = existing(head, project, name)
            version = self.queries.resolve(project, name, ref)
            held_by = sorted(a for a, v in head.aliases.items() if v == version.version and a != LATEST)
            linked, _ = self.c.store.linked_by(project, name, version.version, None, 10)
            if linked and not force:  # a link pins this version: refused like an alias (README, Links)
                raise Conflict(
                    f"version {version.version} is linked by {', '.join(_holders(linked))}; "
                    "unlink it first or delete with ?force=true",
                    code="linked",
                    details={"linked_by": _holders(linked)},
                )
            if held_by and not force:
                raise Conflict(
                    f"version {version.version} is held by alias(es) {', '.join(held_by)}; "
                    "move them first or delete with ?force=true",
                    code="alias_conflict",
                    details={"aliases": held_by},
                )
            now = self.c.clock.now()
            removed = [a for a, v in head.aliases.items() if v == version.version]
            aliases = {a: v for a, v in head.aliases.items() if v != version.version}
            history = [
                AliasMove(alias=a, version=None, previous_version=version.version, at=now, by=caller) for a in removed
            ]
            # the store re-checks in the write that no link was made meanwhile (unless forced)
            deltas = [
                VersionDelta(version.version, aliases_remove=set(removed), deleted_at=now, require_unlinked=not force)
            ]
            alias_puts: dict[str, StoredVersion] = {}
            latest, latest_digest = head.latest, head.latest_digest
            if head.latest == version.version:
                successor = self.queries.highest_live(project, name, exclude=version.version)
                latest = successor.version if successor else None
                latest_digest = successor.digest if successor else None
                if successor:
                    aliases[LATEST] = successor.version
                    history[removed.index(LATEST)] = AliasMove(
                        alias=LATEST,
                        version=successor.version,
                        previous_version=version.version,
                        at=now,
                        by=caller,
                    )
                    deltas.append(VersionDelta(successor.version, aliases_add={LATEST}))
                    alias_puts[LATEST] = successor.model_copy(update={"aliases": sorted({*successor.aliases, LATEST})})
            self.c.store.apply(
                ArtifactChange(
                    head=head.next(
                        now,
                        aliases=aliases,
                        latest=latest,
                        latest_digest=latest_digest,
                        version_count=head.version_count - 1,
                    ),
                    expected_revision=head.revision,
                    deltas=deltas,
                    alias_puts=alias_puts,
                    alias_deletes=[a for a in removed if a not in alias_puts],
                    history=history,
                )
            )
            return version.model_copy(update={"state": "deleted", "deleted_at": now, "aliases": []}).to_record()

        return self.retrier.run(lambda: self.c.store.get_head(project, name), attempt)

    def record_usage(self, project: str, name: str, ref: str, request: Usage) -> UsageRecord:
        version = self.queries.resolve(project, name, ref)
        usage = UsageRecord(
            project=project,
            name=name,
            version=version.version,
            run_id=request.run_id,
            pipeline=request.pipeline,
            step=request.step,
            at=self.c.clock.now(),
            digest=version.digest,
        )
        self.c.store.put_usage(usage)
        return usage


def _holders(links: list[StoredLink]) -> list[str]:
    return [f"{link.name}@{link.version} ({link.role})" for link in links]


def _same_version(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return versions.sort_key(a) == versions.sort_key(b)
