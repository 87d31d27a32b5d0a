"""The registry's tunables and its sources of time and ids: what the use cases and the adapters both
need, kept apart from the use cases so that an adapter imports them without importing those."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RandomIds:
    def new_id(self) -> str:
        return uuid.uuid4().hex


@dataclass(frozen=True)
class Policy:
    """The registry's own choices; what a store can hold is the store's (`MetadataStore.limits`)."""

    upload_ttl: timedelta = timedelta(hours=24)
    presign_ttl: timedelta = timedelta(minutes=15)
    commit_deadline_s: float = 20.0  # how long a commit keeps retrying a lost race
    backoff_base_s: float = 0.004
    backoff_cap_s: float = 0.25
    inline_entries: int = 1000  # files (and, separately, remote entries) a version record carries
    chunk_entries: int = 1000  # entries per manifest chunk in the blob store: one chunk, one page
    default_page: int = 100
    max_page: int = 1000
    lineage_depth: int = 3  # runs away from a version that a lineage query goes, by default
    max_lineage_depth: int = 10
    max_lineage_nodes: int = 2000  # a lineage walk expands no node past this many, marking it truncated
    # aliases an upload may not move: only the alias routes (whose path names the alias, so that IAM can
    # tell them apart) move them
    protected_aliases: frozenset[str] = frozenset({"production"})
    # how long a blob's re-hash may still be going on after it started (`verifying.check_stored`): the
    # verifier's whole budget (its timeout times its attempts, Lambda's waits between them) and a margin;
    # past it, the verification failed somewhere and the blob counts as missing (sent again)
    verify_window: timedelta = timedelta(hours=1)
