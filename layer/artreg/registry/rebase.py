"""An upload that starts from a committed version (API.md: `base`): the new version's manifest is the
base's entries, less the paths in `remove`, with the upload's own entries replacing or adding entries
by path. The one place of that rule: the start checks it, the commit merges by it.

Memory stays flat: the base is read chunk by chunk in path order (as its pages are), and merged with
the upload's changes (sorted, at most what its requests carried) as it goes; no list of the merged
manifest is ever built.

Why the commit is safe from the janitor: the base's blobs are listed by a live version, the base,
for as long as it lives. The commit reads the base again and refuses one that was deleted; the janitor
removes a blob only a fence (15 minutes, `janitor.FENCE`) after condemning it, a condemnation follows a
mark that did not see the base live, and the commit's read and its write are one request apart (far
under the fence): so a blob the new version takes from its base is never removed before that version
lists it, as the janitor's note argues for an upload's own blobs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from artreg.model.errors import Conflict, Invalid, NotFound
from artreg.model.manifest import Entry, canonical
from artreg.model.wire import BaseRef
from artreg.registry import manifests
from artreg.registry.ports import BlobStore, MetadataStore
from artreg.registry.records import StoredVersion

Source = Callable[[], Iterator[Entry]]  # a manifest in path order, read again at each call


def base_version(store: MetadataStore, project: str, name: str, base: BaseRef) -> StoredVersion:
    """The base as the upload named it: a live version of this artifact with that very digest."""
    found = store.get_version(project, name, base.version)
    if found is None or found.state == "deleted":
        what = "does not exist" if found is None else "was deleted"
        raise NotFound(
            f"base version {base.version} of {project}/{name} {what}",
            details={"field": "base.version", "version": base.version},
        )
    if found.digest != base.digest:
        raise Conflict(
            f"base version {base.version} of {project}/{name} has digest {found.digest}, not the one given: "
            "its manifest is not the one the client knows (log without a base)",
            code="base_mismatch",
            details={"version": base.version, "digest": found.digest},
        )
    return found


def check_changes(blobs: BlobStore, base: StoredVersion, remove: Sequence[str], changes: Sequence[Entry]) -> None:
    """Before anything is written: a removed path must be in the base, and never also added. One pass
    over the base's manifest, only when something is removed."""
    removed = set(remove)
    if len(removed) != len(remove):
        twice = next(p for p in remove if remove.count(p) > 1)
        raise Invalid(f"remove lists {twice[:200]!r} twice", details={"field": "remove", "path": twice[:200]})
    check_disjoint(removed, changes)
    if not removed:
        return
    for entry in manifests.entries(blobs, base):
        removed.discard(entry.path)
        if not removed:
            return
    absent = min(removed)
    raise Invalid(
        f"remove names {absent[:200]!r}, which is not in base version {base.version}",
        details={"field": "remove", "path": absent[:200]},
    )


def check_disjoint(removed: set[str], changes: Iterable[Entry]) -> None:
    both = sorted(e.path for e in changes if e.path in removed)
    if both:
        raise Invalid(
            f"path {both[0][:200]!r} is both removed and added: send it only as an entry, which replaces it",
            details={"field": "remove", "path": both[0][:200]},
        )


def alters(blobs: BlobStore, base: StoredVersion, remove: Sequence[str], changes: Sequence[Entry]) -> bool:
    """Whether the merged manifest differs from the base's (and so has another digest): a path is
    removed (`check_changes` found it in the base), or a change is not the base's entry at its path.
    Reads only the chunks of the base where the changes fall, up to the first that differs."""
    if remove:
        return True
    found = manifests.found_entries(blobs, base, (change.path for change in changes))
    return any(
        entry is None or canonical(entry) != canonical(change) for change, entry in zip(changes, found, strict=True)
    )


def committable(store: MetadataStore, upload_project: str, upload_name: str, base: BaseRef) -> StoredVersion:
    """The base read again at commit: one deleted since the start is refused (see the module's note)."""
    try:
        return base_version(store, upload_project, upload_name, base)
    except NotFound:
        raise Conflict(
            f"base version {base.version} of {upload_project}/{upload_name} was deleted since the upload "
            "started; start a new upload",
            code="upload_state",
            details={"version": base.version},
        ) from None


def merged(blobs: BlobStore, base: StoredVersion, remove: Iterable[str], changes: Sequence[Entry]) -> Source:
    """The new manifest, in path order: `changes` (sorted by path) merged into the base's entries."""
    removed = frozenset(remove)

    def entries() -> Iterator[Entry]:
        pending = iter(changes)
        change = next(pending, None)
        for entry in manifests.entries(blobs, base):
            while change is not None and change.path < entry.path:
                yield change
                change = next(pending, None)
            if change is not None and change.path == entry.path:
                continue  # replaced: the change is yielded once the base moves past its path
            if entry.path not in removed:
                yield entry
        while change is not None:
            yield change
            change = next(pending, None)

    return entries
