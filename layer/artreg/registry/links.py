"""Links: a version holding other versions of its project under roles (a model version and the
dataset it was trained on, its checkpoints, its metrics). A link pins its target's version and
digest when it is made; a change of links is one `ArtifactChange` of the holder's artifact, guarded
by its head's revision, so that concurrent changes of one version's links never lose one another."""

from __future__ import annotations

import json
from collections.abc import Mapping

from artreg.model import names, versions
from artreg.model.errors import Conflict, Invalid, NotFound, PreconditionFailed
from artreg.model.wire import LinkedByPage, LinkPage, LinkTarget, VersionLink
from artreg.registry import cursors, paging
from artreg.registry.changes import Retrier
from artreg.registry.context import Context, existing, not_found
from artreg.registry.ports import TargetGone
from artreg.registry.queries import Queries
from artreg.registry.records import (
    MAX_LINKS,
    ArtifactChange,
    Head,
    StoredLink,
    StoredVersion,
    Unlink,
    VersionDelta,
)

INLINE_LINKS = 1000  # a version record carries at most this many links (API.md, Links)


def target_ref(ref: str) -> tuple[str, str]:
    """`NAME@REF` of a link's target (a bare `NAME`: its `latest`), checked: a 400 otherwise."""
    return names.check_ref(ref, what="link target", field="target", key="target")


def check_links(links: Mapping[str, str]) -> None:
    """The links of an upload, role -> NAME@REF, before anything is written."""
    for role, ref in links.items():
        names.check_role(role)
        target_ref(ref)


def target_gone(gone: TargetGone) -> NotFound:
    target = gone.link.target
    return not_found(f"version {target.version} of {gone.link.project}/{target.name}", target=target.name)


def with_links(
    version: StoredVersion, set_: list[VersionLink], removed: set[str], limit_bytes: int, existing: set[str]
) -> tuple[list[VersionLink], int, bool]:
    """The version's inline links, link count and truncation after setting and removing roles. A role
    already inline stays inline; a new one goes inline while there is room (count and bytes), so that
    the record holds as many links as fit, and says `links_truncated` when some are only listed.
    `existing`: the roles of `set_` that the version has already (re-pointed, not counted again)."""
    inline = {link.role: link for link in version.links if link.role not in removed}
    count = version.link_count - len(removed)
    size = sum(len(link.model_dump_json()) for link in inline.values())
    for link in set_:
        if link.role in inline:
            size -= len(inline[link.role].model_dump_json())
            inline[link.role] = link
            size += len(link.model_dump_json())
            continue
        count += link.role not in existing
        if len(inline) < INLINE_LINKS and size + len(link.model_dump_json()) <= limit_bytes:
            inline[link.role] = link
            size += len(link.model_dump_json())
    links = [inline[role] for role in sorted(inline)]
    return links, count, count > len(links)


class Links:
    def __init__(self, context: Context, queries: Queries, retrier: Retrier):
        self.c = context
        self.queries = queries
        self.retrier = retrier

    def pin(self, project: str, ref: str) -> LinkTarget:
        """The committed version `NAME@REF` names now (404 when missing or deleted)."""
        name, at = target_ref(ref)
        return self.queries.resolve(project, name, at).as_target()

    def link(
        self,
        project: str,
        name: str,
        ref: str,
        role: str,
        target: str,
        *,
        if_match: str | None = None,
        caller: str | None = None,
    ) -> VersionLink:
        """Links the version under `role` to the version `target` names now; with `if_match`, only if
        the role points at a version of that digest (412 otherwise)."""
        names.check_role(role)
        pinned = self.pin(project, target)

        def attempt(head: Head | None) -> VersionLink:
            head = existing(head, project, name)
            holder = self.queries.resolve(project, name, ref)
            if (pinned.name, pinned.version) == (holder.name, holder.version):
                raise Invalid("a version cannot link to itself", details={"field": "target"})
            current = self.c.store.get_link(project, name, holder.version, role)
            self._check_match(role, current, if_match)
            if current is not None and current.target == pinned:  # linked so already: nothing to change
                return current.to_wire()
            if current is None and holder.link_count >= MAX_LINKS:
                raise Conflict(
                    f"version {holder.version} of {name} has {holder.link_count} links, the most a version may have",
                    code="too_many_links",
                    details={"limit": MAX_LINKS},
                )
            now = self.c.clock.now()
            made = StoredLink(
                project=project,
                name=name,
                version=holder.version,
                digest=holder.digest,
                role=role,
                target=pinned,
                at=now,
                by=caller,
                revision=head.revision + 1,
                previous=current.target if current else None,
            )
            known = {role} if current else set()
            links, count, truncated = with_links(holder, [made.to_wire()], set(), self.c.limits.link_bytes, known)
            self._apply(head, holder, links, count, truncated, links_set=[made])
            return made.to_wire()

        return self.retrier.run(lambda: self.c.store.get_head(project, name), attempt)

    def unlink(
        self, project: str, name: str, ref: str, role: str, *, if_match: str | None = None, caller: str | None = None
    ) -> None:
        names.check_role(role)

        def attempt(head: Head | None) -> None:
            head = existing(head, project, name)
            holder = self._any_state(project, name, ref)  # a deleted version's links may be removed
            current = self.c.store.get_link(project, name, holder.version, role)
            if current is None:
                raise not_found(f"link {role!r} of version {holder.version} of {project}/{name}", role=role)
            self._check_match(role, current, if_match)
            gone = Unlink(link=current, at=self.c.clock.now(), by=caller, revision=head.revision + 1)
            links, count, truncated = with_links(holder, [], {role}, self.c.limits.link_bytes, set())
            self._apply(head, holder, links, count, truncated, links_removed=[gone])

        self.retrier.run(lambda: self.c.store.get_head(project, name), attempt)

    def list_links(
        self, project: str, name: str, ref: str, *, limit: int | None = None, cursor: str | None = None
    ) -> LinkPage:
        after = cursors.decode(cursor, cursors.AfterRole).after
        size = paging.limit(self.c.policy, limit)
        version = self.queries.resolve(project, name, ref)
        if after is None and not version.links_truncated:  # the record holds them all: no second read
            items = version.links[:size]
            more = len(version.links) > size
        else:
            found = self.c.store.list_links(project, name, version.version, after, size + 1)
            items, more = [link.to_wire() for link in found[:size]], len(found) > size
        return LinkPage(items=items, next_cursor=cursors.encode({"after": items[-1].role}) if more else None)

    def linked_by(
        self, project: str, name: str, ref: str, *, limit: int | None = None, cursor: str | None = None
    ) -> LinkedByPage:
        after = cursors.decode(cursor, cursors.AfterHolder).after
        size = paging.limit(self.c.policy, limit)
        version = self._any_state(project, name, ref)
        found, more = self.c.store.linked_by(project, name, version.version, after, size)
        return LinkedByPage(
            items=[link.as_linked_by() for link in found],
            next_cursor=cursors.encode({"after": more}) if more else None,
        )

    def holders(self, project: str, name: str, version: str, limit: int = 10) -> list[str]:
        """A few of the versions linking to this one, `name@version (role)`, for a refusal's details."""
        found, _ = self.c.store.linked_by(project, name, version, None, limit)
        return [f"{link.name}@{link.version} ({link.role})" for link in found]

    # ------------------------------------------------------------ helpers

    def _any_state(self, project: str, name: str, ref: str) -> StoredVersion:
        """A version by ref, deleted ones too when named by version: who links to a deleted version
        (deleted with ?force=true) is still worth knowing."""
        names.check_project(project)
        names.check_name(name)
        if versions.is_version(ref):
            found = self.c.store.get_version(project, name, ref)
            if found is None:
                raise not_found(f"version {ref} of {project}/{name}", ref=ref)
            return found
        return self.queries.resolve(project, name, ref)

    @staticmethod
    def _check_match(role: str, current: StoredLink | None, if_match: str | None) -> None:
        if if_match is None:
            return
        wanted = if_match.strip().strip('"')
        if current is None or current.target.digest != wanted:
            raise PreconditionFailed(
                f"link {role!r} points at {'a version of another digest' if current else 'nothing'}, not {wanted!r}",
                details={
                    "role": role,
                    "current_target": json.loads(current.target.model_dump_json()) if current else None,
                },
            )

    def _apply(
        self,
        head: Head,
        holder: StoredVersion,
        links: list[VersionLink],
        count: int,
        truncated: bool,
        *,
        links_set: list[StoredLink] | None = None,
        links_removed: list[Unlink] | None = None,
    ) -> None:
        change = ArtifactChange(
            head=head.next(self.c.clock.now()),
            expected_revision=head.revision,
            deltas=[VersionDelta(holder.version, links=links, link_count=count, links_truncated=truncated)],
            links_set=links_set or [],
            links_removed=links_removed or [],
        )
        try:
            self.c.store.apply(change)
        except TargetGone as gone:
            raise target_gone(gone) from None
