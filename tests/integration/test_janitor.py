"""The janitor on both back ends: pending uploads past their expiry are marked expired and their
multipart uploads aborted; committed and unexpired ones are left alone; a run is bounded. Blobs that no
live version or pending upload lists are condemned past the grace period and removed a run later;
an upload after the condemnation sends the bytes again and keeps them."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from artreg.model.errors import Conflict
from artreg.model.wire import FileEntry, RemoteSpec, StartUpload, UploadStarted
from artreg.registry import janitor_walks as walks
from artreg.registry.budget import ItemBudget
from artreg.registry.janitor import BlobSweep, Janitor, RemoteSweep, UploadSweep
from artreg.registry.ports import CheckpointMoved
from artreg.registry.service import Committed
from tests.conftest import Backend
from tests.support.lambda_context import LambdaContext

P, N = "vision", "resnet"
BIG = b"x" * (9 * 1024**2)  # over the test back ends' 8 MiB multipart threshold

JANITOR_CONTEXT = LambdaContext("artreg-janitor", 256, 300_000)


class Later:
    def __init__(self, after: timedelta) -> None:
        self.after = after

    def now(self) -> datetime:
        return datetime.now(UTC) + self.after


def _start(backend: Backend, files: dict[str, bytes], name: str = N) -> UploadStarted:
    entries = [FileEntry(path=p, size=len(d), sha256=hashlib.sha256(d).hexdigest()) for p, d in files.items()]
    started = backend.registry.start_upload(P, name, StartUpload(files=entries), caller="tester")
    assert isinstance(started, UploadStarted)
    return started


def _open_multipart_uploads(backend: Backend) -> list[str]:
    blobs: Any = backend.registry.blobs
    if backend.name == "aws":
        listed = blobs.client.list_multipart_uploads(Bucket=blobs.bucket)
        return [u["UploadId"] for u in listed.get("Uploads", [])]
    staging = blobs.root / P / "multipart"
    return [p.name for p in staging.iterdir()] if staging.exists() else []


def _janitor(backend: Backend, after: timedelta) -> Janitor:
    return Janitor(backend.registry.store, backend.registry.blobs, clock=Later(after))


def _step(janitor: Janitor, budget: ItemBudget | None = None) -> BlobSweep:
    """A run of the janitor Lambda (functions/janitor): uploads are expired first, which moves the expiry
    index's cursor to the present hour, where reading pending uploads begins (none is left pending
    where it is used)."""
    janitor.expire_uploads()
    return janitor.reclaim_blobs(GRACE, TTL, budget=budget)


def test_expired_uploads_are_marked_and_their_multipart_uploads_aborted(backend: Backend) -> None:
    # Given an upload left pending with one multipart blob and one small blob
    started = _start(backend, {"model.pt": BIG, "config.json": b"{}"})
    (multipart,) = [t for t in started.missing if t.multipart]
    assert multipart.multipart is not None
    assert _open_multipart_uploads(backend) == [multipart.multipart.upload_id]
    # When the janitor runs after its expiry
    swept = _janitor(backend, timedelta(hours=25)).expire_uploads()
    # Then the upload is expired, and its multipart upload is gone
    assert swept == UploadSweep(expired=1, aborted=1)
    upload = backend.registry.store.get_upload(P, started.upload_id)
    assert upload is not None
    assert upload.state == "expired"
    assert _open_multipart_uploads(backend) == []
    # And it cannot be committed
    with pytest.raises(Conflict):
        backend.registry.commit(P, N, started.upload_id)
    # And a second run finds nothing left to do
    assert _janitor(backend, timedelta(hours=25)).expire_uploads() == UploadSweep(expired=0, aborted=0)


def test_uploads_not_expired_or_committed_are_left_alone(backend: Backend) -> None:
    # Given a pending upload, and a committed one
    pending = _start(backend, {"a.txt": b"a"}, name="a")
    committed = _start(backend, {"b.txt": b"b"}, name="b")
    for target in committed.missing:
        backend.put_blob(target, b"b")
    backend.registry.commit(P, "b", committed.upload_id)
    # When the janitor runs before the expiry
    assert _janitor(backend, timedelta(hours=1)).expire_uploads() == UploadSweep(expired=0, aborted=0)
    # And after it
    assert _janitor(backend, timedelta(hours=25)).expire_uploads() == UploadSweep(expired=1, aborted=0)
    # Then only the pending one expired
    states = {
        u: backend.registry.store.get_upload(P, u, with_entries=False) for u in (pending.upload_id, committed.upload_id)
    }
    assert {u: s.state for u, s in states.items() if s} == {
        pending.upload_id: "expired",
        committed.upload_id: "committed",
    }


def test_a_run_is_bounded_and_the_next_one_goes_on(backend: Backend) -> None:
    # Given five pending uploads
    for i in range(5):
        _start(backend, {"f.txt": bytes([i])}, name=f"n{i}")
    janitor = _janitor(backend, timedelta(hours=25))
    # When the janitor runs with a limit of two, three times
    runs = [janitor.expire_uploads(limit=2).expired for _ in range(4)]
    # Then it expires two, two, one, then none
    assert runs == [2, 2, 1, 0]


def test_dynamodb_expiry_index_is_walked_by_hour_and_the_cursor_moves_on(aws: dict[str, Any]) -> None:
    from artreg.aws.dynamodb import DynamoStore
    from tests.conftest import TABLE, aws_backend

    # Given uploads that expire in different hours (started 30 and 5 hours before now)
    backend = aws_backend(aws)
    for i, hours_ago in enumerate((30, 5)):
        backend.registry.clock = Later(timedelta(hours=-hours_ago))
        _start(backend, {"f.txt": bytes([i])}, name=f"n{i}")
    # When the janitor runs now, then again
    janitor = _janitor(backend, timedelta(0))
    first, second = janitor.expire_uploads(), janitor.expire_uploads()
    # Then the older one expired on the first run and nothing is left for the second
    assert (first.expired, second.expired) == (1, 0)
    # And the cursor stands past the drained hours, at the current one (later hours are walked once they come)
    cursor = aws["dynamodb"].get_item(TableName=TABLE, Key=DynamoStore._CURSOR_KEY)["Item"]
    expected = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    assert datetime.fromisoformat(cursor["hour"]["S"]) == expected
    # And when that one expires too, it is found from the cursor
    assert _janitor(backend, timedelta(hours=20)).expire_uploads().expired == 1


class At:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def test_pending_uploads_read_again_from_an_expiry_on_are_those_begun_since_in_an_hour_or_two_of_the_index(
    backend: Backend,
) -> None:
    # Given uploads begun at 10 past an hour two hours before, and at 10 and at 40 past that hour
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    started = {}
    for name, at in (("before", hour - timedelta(hours=2)), ("ten", hour), ("forty", hour + timedelta(minutes=30))):
        backend.registry.clock = At(at + timedelta(minutes=10))
        started[name] = _start(backend, {"f.txt": name.encode()}, name=name).upload_id
    now = hour + timedelta(minutes=40)
    queries: list[str] = []

    def count(**_: Any) -> None:
        queries.append("Query")

    events = backend.registry.store.client.meta.events if backend.name == "aws" else None  # type: ignore[attr-defined]
    # When the store reads the pending uploads that expire from 20 past the hour plus their time to live on
    if events is not None:
        events.register("before-call.dynamodb.Query", count)
    try:
        again = list(
            backend.registry.store.pending_uploads(P, now, TTL, expiring_from=hour + timedelta(minutes=20) + TTL)
        )
    finally:
        if events is not None:
            events.unregister("before-call.dynamodb.Query", count)
    # Then it answers the one begun at 40 past only
    assert [u.upload_id for u in again] == [started["forty"]]
    # And, on DynamoDB, it read the hour of the expiry index that one can be in (and the upload's items),
    # not the eight days back to where a whole read begins
    assert 0 < len(queries) <= 2 if backend.name == "aws" else queries == []
    # And a whole read answers all three
    whole = backend.registry.store.pending_uploads(P, now, TTL)
    assert {u.upload_id for u in whole} == set(started.values())


# ---------------------------------------------------------------- reclaiming blobs

GRACE, TTL = timedelta(days=7), timedelta(hours=24)
OLD, SHARED, NEW = b"only in 1.0.0", b"in both versions", b"only in 2.0.0"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _log(backend: Backend, files: dict[str, bytes], name: str = N) -> Committed:
    return backend.log(P, name, files, commit=True)


def _stored(backend: Backend) -> set[str]:
    return {key.rsplit("/", 1)[-1] for key in backend.blob_keys() if "/blobs/" in f"/{key}"} & {
        _sha(d) for d in (OLD, SHARED, NEW)
    }


def _downloads(backend: Backend, ref: str) -> dict[str, bytes]:
    return _downloads_of(backend, N, ref)


def _downloads_of(backend: Backend, name: str, ref: str = "latest") -> dict[str, bytes]:
    page = backend.registry.download(P, name, ref)
    return {f.path: backend.fetch(f.url) for f in page.files}


def test_a_blob_no_live_version_lists_is_condemned_after_the_grace_period_and_removed_a_run_later(
    backend: Backend,
) -> None:
    # Given 1.0.0 with two files, 2.0.0 sharing one of them, and 1.0.0 deleted
    _log(backend, {"a.bin": OLD, "b.bin": SHARED})
    _log(backend, {"b.bin": SHARED, "c.bin": NEW})
    backend.registry.delete_version(P, N, "1.0.0")
    # When the janitor runs within the grace period
    # Then nothing is condemned
    assert _step(_janitor(backend, GRACE - timedelta(hours=1))) == BlobSweep()
    # When it runs past the grace period, then only the blob of the deleted version is condemned
    assert _step(_janitor(backend, GRACE + timedelta(hours=1))) == BlobSweep(condemned=1)
    assert _stored(backend) == {_sha(OLD), _sha(SHARED), _sha(NEW)}
    # And a run less than the fence later removes nothing
    assert _step(_janitor(backend, GRACE + timedelta(hours=1, minutes=5))) == BlobSweep()
    # And the next hourly run removes it, and only it
    swept = _step(_janitor(backend, GRACE + timedelta(hours=2)))
    assert swept == BlobSweep(reclaimed=1, reclaimed_bytes=len(OLD))
    assert _stored(backend) == {_sha(SHARED), _sha(NEW)}
    # And 2.0.0 downloads whole
    assert _downloads(backend, "2.0.0") == {"b.bin": SHARED, "c.bin": NEW}


def test_a_blob_a_pending_upload_lists_is_never_condemned(backend: Backend) -> None:
    # Given a deleted version whose blob a pending upload lists again (present, so not sent)
    _log(backend, {"a.bin": OLD})
    _log(backend, {"c.bin": NEW})
    backend.registry.delete_version(P, N, "1.0.0")
    started = _start(backend, {"again.bin": OLD})
    assert started.missing == []
    # When the janitor runs past the grace period (the upload not yet expired to the registry; to the
    # janitor, whose clock is ahead, expired but not marked so: read as pending all the same)
    swept = _janitor(backend, GRACE + timedelta(hours=1)).reclaim_blobs(GRACE, TTL)
    # Then nothing is condemned, and the upload commits with its blob in place
    assert swept == BlobSweep()
    backend.registry.commit(P, N, started.upload_id)
    assert _downloads(backend, "latest") == {"again.bin": OLD}


def test_an_upload_after_the_condemnation_sends_the_blob_again_and_it_is_kept(backend: Backend) -> None:
    # Given a blob condemned by a janitor run
    _log(backend, {"a.bin": OLD})
    _log(backend, {"c.bin": NEW})
    backend.registry.delete_version(P, N, "1.0.0")
    assert _step(_janitor(backend, GRACE + timedelta(hours=1))) == BlobSweep(condemned=1)
    # When a job logs that content again
    started = _start(backend, {"again.bin": OLD})
    # Then it is asked to upload it, although its bytes are still stored
    assert [t.sha256 for t in started.missing] == [_sha(OLD)]
    # And a commit without the upload is refused
    with pytest.raises(Conflict) as refused:
        backend.registry.commit(P, N, started.upload_id)
    assert refused.value.code == "blobs_missing"
    # And once uploaded, it commits, and the next runs leave it in place
    backend.put_blob(started.missing[0], OLD)
    backend.registry.commit(P, N, started.upload_id)
    for hours in (2, 3):
        swept = _step(_janitor(backend, GRACE + timedelta(hours=hours)))
        assert swept.reclaimed_bytes == 0 or backend.name == "aws"  # S3: the old, tagged copy goes
    assert _downloads(backend, "latest") == {"again.bin": OLD}
    assert _stored(backend) == {_sha(OLD), _sha(NEW)}


# ---------------------------------------------------------------- re-checking remote references


class Remote:
    """A remote object the back end can pin: an `s3://` object of another bucket on moto, a `file://`
    file locally."""

    def __init__(self, backend: Backend, tmp_path: Any) -> None:
        self.backend = backend
        if backend.name == "aws":
            self.s3: Any = backend.registry.blobs.client  # type: ignore[attr-defined]
            self.s3.create_bucket(Bucket="datasets")
            self.uri = "s3://datasets/raw/train.csv"
        else:
            self.file = tmp_path / "train.csv"
            self.uri = self.file.as_uri()

    def write(self, data: bytes) -> None:
        if self.backend.name == "aws":
            self.s3.put_object(Bucket="datasets", Key="raw/train.csv", Body=data)
        else:
            self.file.write_bytes(data)
            stamp = self.file.stat().st_mtime_ns + 1_000_000_000 * len(data)  # mtime-based ETag: make it move
            os.utime(self.file, ns=(stamp, stamp))

    def remove(self) -> None:
        if self.backend.name == "aws":
            self.s3.delete_object(Bucket="datasets", Key="raw/train.csv")
        else:
            self.file.unlink()


def test_a_changed_or_vanished_remote_reference_is_noted_once_per_observation(backend: Backend, tmp_path: Any) -> None:
    # Given a version holding a pinned remote reference, and one the registry could not read
    remote = Remote(backend, tmp_path)
    remote.write(b"a,b\n1,2\n")
    request = StartUpload(
        remote=[
            RemoteSpec(uri=remote.uri, path="train.csv"),
            RemoteSpec(uri="https://example.com/unpinned.csv", path="unpinned.csv"),
        ],
        commit=True,
    )
    committed = backend.registry.start_upload(P, N, request)
    assert isinstance(committed, Committed)
    janitor = _janitor(backend, timedelta(0))
    # When the janitor re-checks it unchanged, then nothing is noted
    assert janitor.recheck_remote_refs() == RemoteSweep(checked=1)
    # When the object is rewritten, then the change is noted once, however many runs see it
    remote.write(b"a,b\n1,2\n3,4\n")
    assert janitor.recheck_remote_refs() == RemoteSweep(checked=1, changed=1, noted=1)
    assert janitor.recheck_remote_refs() == RemoteSweep(checked=1, changed=1, noted=0)
    # When it is deleted, then that is noted too
    remote.remove()
    assert janitor.recheck_remote_refs() == RemoteSweep(checked=1, changed=1, noted=1)
    # And locally, the outbox holds the two events, as the stream makes them on AWS (tests/integration/test_events.py)
    if backend.name == "local":
        noted = [e for _, e in backend.registry.store.outbox_pending("test", 100)]  # type: ignore[attr-defined]
        changes = [e.detail for e in noted if e.detail_type == "RemoteReferenceChanged"]
        assert [(c["path"], c["state"]) for c in changes] == [("train.csv", "changed"), ("train.csv", "vanished")]
        assert changes[0]["observed"]["size"] == len(b"a,b\n1,2\n3,4\n")
    # And a deleted version is not re-checked
    backend.registry.delete_version(P, N, "1.0.0")
    assert janitor.recheck_remote_refs() == RemoteSweep()


def test_the_janitor_lambda_expires_uploads_on_its_schedule(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib
    import sys

    from artreg.aws import clients
    from artreg.settings import settings
    from tests.conftest import BUCKET, TABLE, aws_backend

    # Given an upload that expired an hour ago
    backend = aws_backend(aws)
    backend.registry.clock = Later(timedelta(hours=-25))
    started = _start(backend, {"model.pt": BIG})
    # And the janitor function, imported after its environment and moto are in place
    for key, value in {
        "ARTREG_TABLE_NAME": TABLE,
        "ARTREG_BUCKET_NAME": BUCKET,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "artreg",
    }.items():
        monkeypatch.setenv(key, value)
    for cached in (clients.dynamodb_client, clients.s3_client, settings):
        cached.cache_clear()
    sys.modules.pop("functions.janitor.app", None)
    janitor = importlib.import_module("functions.janitor.app")
    # When the schedule invokes it
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    answer = janitor.lambda_handler(scheduled, JANITOR_CONTEXT)
    sys.modules.pop("functions.janitor.app", None)
    # Then the upload is expired and its multipart upload aborted
    assert answer == {
        "expired": 1,
        "aborted": 1,
        "condemned": 0,
        "reclaimed": 0,
        "reclaimed_bytes": 0,
        "walk_age_s": 0.0,  # the walk finished within the run
    }
    # And the daily schedule's event re-checks remote references instead
    assert janitor.lambda_handler({**scheduled, "task": "remote-refs"}, JANITOR_CONTEXT) == {
        "checked": 0,
        "changed": 0,
        "noted": 0,
        "walk_age_s": 0.0,  # that walk finished within the run too (JanitorRemoteWalkAgeSeconds)
    }
    upload = backend.registry.store.get_upload(P, started.upload_id, with_entries=False)
    assert upload is not None
    assert upload.state == "expired"
    assert _open_multipart_uploads(backend) == []


def test_artreg_janitor_runs_the_janitor_on_a_local_data_folder(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from artreg.cli import main
    from tests.conftest import local_backend

    # Given a local registry whose only version lists a blob, then deleted, condemned by an earlier run
    backend = local_backend(tmp_path)
    _log(backend, {"a.bin": OLD})
    _log(backend, {"c.bin": NEW})
    backend.registry.delete_version(P, N, "1.0.0")
    an_hour_ago = _janitor(backend, timedelta(hours=-1))
    assert an_hour_ago.reclaim_blobs(timedelta(days=-1), TTL) == BlobSweep(condemned=1)
    # When `artreg janitor` runs over its folder an hour later (past the grace period, as told)
    assert main(["janitor", "--data", str(tmp_path), "--grace-days", "0"]) == 0
    # Then it reports what it did, and the condemned blob is gone
    answer = json.loads(capsys.readouterr().out)
    assert answer["blobs"] == {"condemned": 0, "reclaimed": 1, "reclaimed_bytes": len(OLD)}
    assert _stored(backend) == {_sha(NEW)}
    assert answer["walk_age_s"] == {"blobs": 0, "remote": 0}  # both walks finished
    # And with a budget spent at once, a run only begins the walks, which the next run goes on with
    assert main(["janitor", "--data", str(tmp_path), "--grace-days", "0", "--budget", "0"]) == 0
    begun = json.loads(capsys.readouterr().out)
    assert begun["blobs"] == {"condemned": 0, "reclaimed": 0, "reclaimed_bytes": 0}
    assert _walk_done(backend) is False
    # And a run whose checkpoint another run saved meanwhile stops, and says so
    saved = backend.registry.store.get_checkpoint(walks.BLOBS)
    assert saved is not None

    def another_run_meanwhile(store: object, name: str, state: str, revision: int) -> None:
        raise CheckpointMoved(name)

    store_class = type(backend.registry.store)
    original = store_class.save_checkpoint
    store_class.save_checkpoint = another_run_meanwhile  # type: ignore[method-assign, assignment]
    try:
        assert main(["janitor", "--data", str(tmp_path), "--budget", "0"]) == 4
    finally:
        store_class.save_checkpoint = original  # type: ignore[method-assign]
    assert "run one at a time" in capsys.readouterr().err
    # And a folder that holds no registry is a usage error
    assert main(["janitor", "--data", str(tmp_path / "nothing")]) == 2


# ---------------------------------------------------------------- walks cut into budgeted steps

ONLY_Y, ONLY_Z, KEPT_X, KEPT_W = b"y: only in a deleted bert", b"z: only in a deleted wav", b"x", b"w"


def _all_stored(backend: Backend) -> set[str]:
    names = {key.rsplit("/", 1)[-1] for key in backend.blob_keys() if "/blobs/" in f"/{key}"}
    return {name for name in names if len(name) == 64}  # not a local blob's `.condemned` beside it


def _walk_done(backend: Backend) -> bool:
    saved = backend.registry.store.get_checkpoint(walks.BLOBS)
    return saved is not None and walks.BlobCheckpoint.model_validate_json(saved[0]).walk is None


def _registry_with_garbage(backend: Backend) -> set[str]:
    """Two projects, three artifacts of two versions each, the first of each deleted: three blobs only a
    deleted version lists; the digests that stay listed are answered."""
    for project, name, first, second in (
        (P, N, {"a.bin": OLD, "b.bin": SHARED}, {"b.bin": SHARED, "c.bin": NEW}),
        (P, "bert", {"y.bin": ONLY_Y}, {"x.bin": KEPT_X}),
        ("audio", "wav", {"z.bin": ONLY_Z}, {"w.bin": KEPT_W}),
    ):
        backend.log(project, name, first, commit=True)
        backend.log(project, name, second, commit=True)
        backend.registry.delete_version(project, name, "1.0.0")
    return {_sha(d) for d in (SHARED, NEW, KEPT_X, KEPT_W)}


def _walk(backend: Backend, at: timedelta, items: int | None, between: Any = None) -> tuple[BlobSweep, int]:
    """One whole walk at `at`, in steps of `items` items each (None: one run); `between(run)` is called
    between two steps. Answers the walk's totals and its number of runs."""
    janitor = Janitor(backend.registry.store, backend.registry.blobs, clock=Later(at), page=1, save_every=1)
    total, runs = BlobSweep(), 0
    while True:
        swept = _step(janitor, ItemBudget(items) if items else None)
        runs += 1
        total = BlobSweep(
            total.condemned + swept.condemned,
            total.reclaimed + swept.reclaimed,
            total.reclaimed_bytes + swept.reclaimed_bytes,
        )
        if _walk_done(backend):
            return total, runs
        assert runs < 500, "the walk must finish"
        if between is not None:
            between(runs)


@pytest.mark.parametrize("items", [None, 2])
def test_a_walk_cut_into_tiny_steps_reaches_the_same_result_as_one_run(backend: Backend, items: int | None) -> None:
    # Given two projects whose deleted versions alone list three blobs
    listed = _registry_with_garbage(backend)
    garbage = _all_stored(backend) - listed
    # When the janitor walks past the grace period, in one run or in steps of two items
    condemned, runs = _walk(backend, GRACE + timedelta(hours=1), items)
    # Then it condemns the same three blobs, over many runs when the steps are tiny
    assert condemned == BlobSweep(condemned=3)
    assert runs == 1 if items is None else runs > 5
    assert _all_stored(backend) == listed | garbage
    # And the next walk, an hour later, removes exactly those three
    reclaimed, _ = _walk(backend, GRACE + timedelta(hours=2), items)
    assert (reclaimed.condemned, reclaimed.reclaimed) == (0, 3)
    assert reclaimed.reclaimed_bytes == len(OLD) + len(ONLY_Y) + len(ONLY_Z)
    assert _all_stored(backend) == listed
    # And what stays downloads whole
    assert _downloads(backend, "latest") == {"b.bin": SHARED, "c.bin": NEW}


# Where the commit lands is the janitor's logic (registry/), run on the local store for each; on moto, whose
# every call costs ~1 ms (this walk makes ~12,000), the one that needs the most of the store: the commit
# landing inside its own project's mark (run 9).
# (Runs 1 and 3 land while another project is marked; they cover the same lines of aws/ as run 9.)
@pytest.mark.parametrize(
    ("backend", "commit_after_run"), [("aws", 9), ("local", 1), ("local", 3), ("local", 9)], indirect=["backend"]
)
def test_a_commit_landing_between_two_steps_never_loses_its_blob(backend: Backend, commit_after_run: int) -> None:
    # Given a registry whose deleted versions alone list three blobs
    _registry_with_garbage(backend)
    # When a walk past the grace period goes in steps of one item, and between two of them a job logs
    # an artifact listing one of those blobs (still stored and not condemned: so not sent again)
    logged: list[UploadStarted] = []

    def commit_late(run: int) -> None:
        if run == commit_after_run:
            started = _start(backend, {"again.bin": OLD}, name="late")
            logged.append(started)
            for target in started.missing:
                backend.put_blob(target, OLD)
            backend.registry.commit(P, "late", started.upload_id)

    _walk(backend, GRACE + timedelta(hours=1), 1, between=commit_late)
    assert logged, "the commit landed between two steps"
    # And the janitor walks again and again, well past the fence
    for hours in (2, 3, 4):
        _walk(backend, GRACE + timedelta(hours=hours), 3)
    # Then the new version downloads whole: its blob was never removed
    page = backend.registry.download(P, "late", "latest")
    assert {f.path: backend.fetch(f.url) for f in page.files} == {"again.bin": OLD}
    # And the blobs only deleted versions list are gone
    assert {_sha(ONLY_Y), _sha(ONLY_Z)}.isdisjoint(_all_stored(backend))


class Watched:
    """A store that calls `then(state)` once each checkpoint is saved."""

    def __init__(self, inner: Any, then: Any) -> None:
        self.inner, self.then = inner, then

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def save_checkpoint(self, name: str, state: str, revision: int) -> None:
        self.inner.save_checkpoint(name, state, revision)
        self.then(state)


@pytest.mark.parametrize("when", ["marking", "sweeping"])
def test_an_upload_begun_while_its_project_is_marked_or_swept_keeps_its_blob(backend: Backend, when: str) -> None:
    # Given a registry whose deleted versions alone list three blobs, two of them in this project
    listed = _registry_with_garbage(backend)
    at = Later(GRACE + timedelta(hours=1))
    wanted = max((OLD, ONLY_Y), key=_sha)  # the later of the two in the sweep's order
    started: list[UploadStarted] = []

    def start_upload(state: str) -> None:
        walk = walks.BlobCheckpoint.model_validate_json(state).walk
        if started or walk is None or walk.project != P:
            return
        if when == "marking" and (walk.sweeping or walk.chunks == 0):
            return  # not yet past the mark's own read of pending uploads (chunk 0)
        if when == "sweeping" and (not walk.sweeping or walk.after_blob is None):
            return  # not yet past the sweep's first read of pending uploads and its first page
        assert walk.after_blob is None or walk.after_blob < _sha(wanted)
        backend.registry.clock = at  # the job's time is the janitor's
        started.append(_start(backend, {"again.bin": wanted}, name="late"))
        at.after += timedelta(minutes=10)  # and the step goes on a while: the next read is not at once

    # When a walk past the grace period goes one item at a time, and a job begins an upload listing the
    # later of those two blobs once this project's mark has read its pending uploads (its chunk 0 saved;
    # no checkpoint after it until the sweep is done) or after the first checkpoint of its sweep, ten
    # minutes before the next read of pending uploads
    store = Watched(backend.registry.store, start_upload)
    save_every = 1000 if when == "marking" else 1
    janitor = Janitor(store, backend.registry.blobs, clock=at, page=1, save_every=save_every)
    swept = _step(janitor)
    # Then the upload was told the blob is there, and the walk condemns only the other two
    assert [s.missing for s in started] == [[]]
    assert swept == BlobSweep(condemned=2)
    # And the upload commits, and the walk after the fence removes the other two only
    backend.registry.commit(P, "late", started[0].upload_id)
    reclaimed, _ = _walk(backend, GRACE + timedelta(hours=2), None)
    assert reclaimed.reclaimed == 2
    assert _all_stored(backend) == listed | {_sha(wanted)}
    assert _downloads_of(backend, "late") == {"again.bin": wanted}


class Killed(Exception):
    pass


class KilledAt:
    """A store whose `method` raises on its `at`-th call (of those `when` picks): a step killed mid-way,
    with no cleanup."""

    def __init__(self, inner: Any, method: str, at: int, when: Any = None, after: bool = False) -> None:
        self.inner, self.method, self.calls = inner, method, 0
        self.at, self.when, self.after = at, when, after  # after: killed once the call is done

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name != self.method:
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += self.when is None or self.when(*args)
            if self.calls == self.at and not self.after:
                raise Killed(name)
            answer = attribute(*args, **kwargs)
            if self.calls == self.at:
                raise Killed(name)
            return answer

        return counted


KILLS = [
    ("store", "list_versions", 4),  # while marking
    ("store", "put_mark_chunk", 3),  # a chunk lost before its checkpoint
    ("store", "save_checkpoint", 5),  # a checkpoint lost after its chunk
    ("blobs", "condemn", 2),  # while sweeping
]


# Each kill on the local store; on moto (~1 ms a call), the two that leave the store's own state behind
# for the next run: a chunk written without its checkpoint (written again in its place), and objects
# condemned that no checkpoint counts (condemned again). The other two leave what a saved checkpoint does.
@pytest.mark.parametrize(
    ("backend", "side", "method", "at"),
    [("aws", *KILLS[2]), ("aws", *KILLS[3]), *(("local", *kill) for kill in KILLS)],
    indirect=["backend"],
)
def test_a_step_killed_mid_way_leaves_a_checkpoint_the_next_run_goes_on_from(
    backend: Backend, side: str, method: str, at: int
) -> None:
    # Given a registry whose deleted versions alone list three blobs
    listed = _registry_with_garbage(backend)
    store: Any = backend.registry.store
    blobs: Any = backend.registry.blobs
    if side == "store":
        store = KilledAt(store, method, at)
    else:
        blobs = KilledAt(blobs, method, at)
    # When a step past the grace period, saving after every third item, is killed mid-way
    killed = Janitor(store, blobs, clock=Later(GRACE + timedelta(hours=1)), page=1, save_every=3)
    with pytest.raises(Killed):
        _step(killed, ItemBudget(1000))
    # Then the next runs go on from its checkpoint and finish the walk: the three blobs are condemned
    _walk(backend, GRACE + timedelta(hours=1, minutes=1), 2)
    # And the walk after the fence removes them, and only them
    reclaimed, _ = _walk(backend, GRACE + timedelta(hours=2), 2)
    assert reclaimed.reclaimed == 3
    assert _all_stored(backend) == listed
    assert _downloads(backend, "latest") == {"b.bin": SHARED, "c.bin": NEW}


def _kill_after_the_next_projects_first_chunk(backend: Backend, at: timedelta) -> None:
    """A walk at `at`, in steps that save only when they stop, up to where the first project ("audio") is
    marked and its sweep begun; then a step that finishes that sweep, begins "vision", and is killed once
    it has written the new mark's first chunk (in the place of the last mark's); then the walk's end."""
    store, blobs = backend.registry.store, backend.registry.blobs
    janitor = Janitor(store, blobs, clock=Later(at), page=100, save_every=1000)
    while True:
        _step(janitor, ItemBudget(1))
        walk = walks.BlobCheckpoint.model_validate_json(store.get_checkpoint(walks.BLOBS)[0]).walk  # type: ignore[index]
        if walk is not None and (walk.project, walk.sweeping) == ("audio", True):
            break
    killed = Janitor(KilledAt(store, "put_mark_chunk", 1, after=True), blobs, clock=Later(at), page=100)
    with pytest.raises(Killed):
        _step(killed, ItemBudget(1000))
    _walk(backend, at, 2)


def test_a_step_killed_after_the_next_projects_first_chunk_keeps_the_last_projects_mark(backend: Backend) -> None:
    # Given a registry whose deleted versions alone list three blobs
    listed = _registry_with_garbage(backend)
    # When a walk past the grace period, and one after the fence, are each killed just after the next
    # project's mark wrote its first chunk
    _kill_after_the_next_projects_first_chunk(backend, GRACE + timedelta(hours=1))
    _kill_after_the_next_projects_first_chunk(backend, GRACE + timedelta(hours=2))
    # Then the blobs the first project's live versions list are kept; only what nothing lists is removed
    assert _all_stored(backend) == listed
    assert _downloads(backend, "latest") == {"b.bin": SHARED, "c.bin": NEW}


def test_a_mark_set_larger_than_a_chunk_is_saved_in_several(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a registry whose deleted versions alone list three blobs, and chunks of one digest each
    listed = _registry_with_garbage(backend)
    monkeypatch.setattr(walks, "MARK_CHUNK", 1)
    store, sizes = backend.registry.store, []
    put = store.put_mark_chunk
    monkeypatch.setattr(
        store, "put_mark_chunk", lambda name, i, digests: (sizes.append(len(digests)), put(name, i, digests))[1]
    )
    # When a walk past the grace period and one after the fence go in steps of two items
    condemned, _ = _walk(backend, GRACE + timedelta(hours=1), 2)
    reclaimed, _ = _walk(backend, GRACE + timedelta(hours=2), 2)
    # Then every chunk of each mark was read: only what nothing lists is condemned and removed
    assert (condemned.condemned, reclaimed.reclaimed) == (3, 3)
    assert _all_stored(backend) == listed
    # And no chunk held more than one digest (on AWS, a chunk must fit in an item)
    assert max(sizes) == 32


def test_a_walk_that_goes_on_for_days_is_reported_as_falling_behind(backend: Backend) -> None:
    # Given a registry, and a janitor whose every run has a budget of one item
    _registry_with_garbage(backend)
    janitor = _janitor(backend, timedelta(0))
    # When a run takes its step, and the walk is still unfinished two days later
    _step(janitor, ItemBudget(1))
    later = _janitor(backend, timedelta(days=2, hours=1))
    # Then the walk's age says so (what JanitorWalkAgeSeconds carries to its alarm)
    assert later.walk_ages()["blobs"] >= timedelta(days=2)
    # And once a run finishes the walk, it is zero again
    _step(later)
    assert later.walk_ages()["blobs"] == timedelta(0)


def test_a_remote_reference_walk_that_goes_on_for_days_is_reported_as_falling_behind(
    backend: Backend, tmp_path: Any
) -> None:
    # Given two versions holding a pinned remote reference, and a janitor whose daily runs have a budget of one
    # page of one version each
    remote = Remote(backend, tmp_path)
    remote.write(b"a,b\n1,2\n")
    for name in ("a", "b"):
        request = StartUpload(remote=[RemoteSpec(uri=remote.uri, path="train.csv")], commit=True)
        assert isinstance(backend.registry.start_upload(P, name, request), Committed)
    janitor = Janitor(backend.registry.store, backend.registry.blobs, clock=Later(timedelta(0)), page=1)
    # When a run takes its step, and the walk is still unfinished eight days later
    janitor.recheck_remote_refs(ItemBudget(1))
    later = Janitor(backend.registry.store, backend.registry.blobs, clock=Later(timedelta(days=8)), page=1)
    # Then that walk's age says so (what JanitorRemoteWalkAgeSeconds carries to its alarm), not the blob walk's
    assert later.walk_ages()["remote"] >= timedelta(days=8)
    assert later.walk_ages()["blobs"] == timedelta(0)
    # And once a run finishes the walk, it is zero again
    later.recheck_remote_refs()
    assert later.walk_ages()["remote"] == timedelta(0)


def test_the_remote_reference_walk_goes_on_from_its_checkpoint(backend: Backend, tmp_path: Any) -> None:
    # Given three versions each holding a pinned remote reference, changed since
    remote = Remote(backend, tmp_path)
    remote.write(b"a,b\n1,2\n")
    for name in ("a", "b", "c"):
        request = StartUpload(remote=[RemoteSpec(uri=remote.uri, path="train.csv")], commit=True)
        assert isinstance(backend.registry.start_upload(P, name, request), Committed)
    remote.write(b"a,b\n1,2\n3,4\n")
    janitor = Janitor(backend.registry.store, backend.registry.blobs, clock=Later(timedelta(0)), page=2)
    # When the daily runs have a budget of one page of versions each
    steps = [janitor.recheck_remote_refs(ItemBudget(1)) for _ in range(4)]
    # Then each run reads one version further, each change noted once, and the fourth begins a new walk
    assert [s.noted for s in steps] == [1, 1, 1, 0]
    assert [s.checked for s in steps] == [1, 1, 1, 1]
