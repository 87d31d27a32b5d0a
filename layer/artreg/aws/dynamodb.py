"""The metadata store on one DynamoDB table, whose layout is:

| item            | PK                     | SK                                   |
| --------------- | ---------------------- | ------------------------------------ |
| artifact head   | P#{project}            | A#{name}                             |
| version         | A#{project}#{name}     | V#{semver sort key}                  |
| alias           | A#{project}#{name}     | L#{alias}        (a copy of its version, so a resolve is one read) |
| alias history   | A#{project}#{name}     | H#{alias}#{time}#{revision}          |
| usage           | A#{project}#{name}     | U#{semver sort key}#{run_id}         |
| upload          | U#{project}#{upload_id}| U, and B#{batch id} per further batch |
| upload expiry   | X#{hour of expiry}     | {project}#{upload_id}   (the janitor's index of pending uploads) |
| janitor cursor  | X#cursor               | X   (the oldest expiry hour that may still hold entries) |
| run's edge      | R#{project}#{run_id}   | P#{name}#{sort key} (produced), U#{name}#{sort key} (used) |
| link            | A#{project}#{name}     | K#{sort key}#{role}   (a version's links, in role order) |
| reverse link    | A#{project}#{target}   | B#{target sort key}#{name}#{sort key}#{role}   (who links to a version) |
| unlink record   | A#{project}#{name}     | J#{sort key}#{role}#{revision}   (its INSERT is the Unlinked event) |
| version's edge  | G#{project}#{name}#{sort key} | P#{run_id} (produced by), U#{run_id} (used by) |
| project index   | PROJECTS               | {project}   (put with an artifact's first commit: the janitor's list) |
| runs            | S#{project}            | R#{run_id}, T#{last seen}#{run_id}   (see `dynamodb_runs`) |
| remote change   | C#{project}#{name}     | {sort key}#{sha256 of path}  (a remote reference last seen so) |
| janitor's walks | J#{walk}               | C (its checkpoint), M#{index} (its mark set's chunks): `dynamodb_janitor` |

A version and its alias copies hold the same attributes: `rec` (the immutable part of the record,
JSON), `tags` and `meta` (JSON), `state`, `deleted_at` and `aliases` (a string set), so that a
change to a version is the same update expression on each of them, without reading them first.
A version's inline links are its `links` attribute (set whole by a link change, on the version and
its copies); the version item alone counts the links to it (`linked_by`), which a link adds to in its
transaction, conditioned on the target being committed, and a deletion checks, so that the two never
cross.

The items are made and read by `dynamodb_codec`. The table's stream is the source of the registry's
events: `dynamodb_stream` turns a stream record into its event with the same conversions. The lineage
items are written twice, once per direction, so that each direction of a lineage query is one Query.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from artreg.aws import dynamodb_codec as codec
from artreg.aws import dynamodb_links as links
from artreg.aws import dynamodb_runs as runs
from artreg.aws.dynamodb_codec import Item
from artreg.aws.dynamodb_janitor import JanitorItems
from artreg.aws.errors import translate
from artreg.model import versions
from artreg.model.manifest import Entry
from artreg.model.wire import AliasMove, UsageRecord
from artreg.registry import keys
from artreg.registry.keys import MovePosition
from artreg.registry.ports import HeadMoved, TargetGone, UploadNotPending, VersionTaken
from artreg.registry.records import (
    ArtifactChange,
    EdgeKind,
    Head,
    LineageEdge,
    RemoteChange,
    RunSeen,
    StoredLink,
    StoredVersion,
    StoreLimits,
    Upload,
    UploadBatch,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_UPLOAD_ITEM_GRACE = timedelta(days=1)  # a committed upload stays readable for client retries
_EXPIRY_INDEX_TTL = timedelta(days=8)  # an index entry the janitor never reached goes with TTL
_EXPIRY_LOOKBACK = timedelta(days=8)  # where the janitor starts on a table it never swept
_HOUR = timedelta(hours=1)


class DynamoStore(JanitorItems):
    def __init__(self, client: DynamoDBClient, table_name: str):
        self.client = client
        self.table = table_name

    limits = StoreLimits()  # the default limits are this table's (see StoreLimits)
    _CURSOR_KEY = codec.CURSOR_KEY

    # ------------------------------------------------------------ heads and versions

    def get_head(self, project: str, name: str) -> Head | None:
        item = self._get(codec.head_key(project, name))
        return codec.head_of(item) if item else None

    def list_heads(self, project: str, after_name: str | None, limit: int) -> list[Head]:
        start = {"PK": codec.s(f"P#{project}"), "SK": codec.s(f"A#{after_name}")} if after_name else None
        items = self._query(codec.s(f"P#{project}"), "A#", start, limit, forward=True)
        return [codec.head_of(i) for i in items]

    def get_version(self, project: str, name: str, version: str) -> StoredVersion | None:
        item = self._get(codec.version_key(project, name, version))
        return codec.version_of(item) if item else None

    def get_alias(self, project: str, name: str, alias: str) -> StoredVersion | None:
        item = self._get(codec.alias_key(project, name, alias))
        return codec.version_of(item) if item else None

    def list_versions(self, project: str, name: str, before_key: str | None, limit: int) -> list[StoredVersion]:
        pk = codec.artifact_pk(project, name)
        start = {"PK": pk, "SK": codec.s(f"V#{before_key}")} if before_key else None
        return [codec.version_of(i) for i in self._query(pk, "V#", start, limit, forward=False)]

    def apply(self, change: ArtifactChange) -> None:
        head = change.head
        project, name = head.project, head.name
        pk = codec.artifact_pk(project, name)
        items: list[Any] = [  # TransactWriteItemTypeDef, built up piece by piece
            {
                "Put": {
                    "TableName": self.table,
                    "Item": codec.head_item(head),
                    "ConditionExpression": "rev = :rev" if change.expected_revision else "attribute_not_exists(PK)",
                    **(
                        {"ExpressionAttributeValues": {":rev": codec.n(change.expected_revision)}}
                        if change.expected_revision
                        else {}
                    ),
                    # a lost race answers with the head as it is now: the retry reads nothing
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        ]
        if not change.expected_revision:  # a new artifact: its project is listed (a put: idempotent)
            items.append(
                {"Put": {"TableName": self.table, "Item": {"PK": codec.s("PROJECTS"), "SK": codec.s(project)}}}
            )
        version_at = None
        if change.new_version:
            version_at = len(items)
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            **codec.version_key(project, name, change.new_version.version),
                            **codec.version_attrs(change.new_version),
                        },
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        counts = links.target_counts(change)  # a version this change updates anyway counts in that update
        targets_at: dict[int, StoredLink] = {}  # item index -> the link whose target it checks
        for delta in change.deltas:
            net, needs = counts.pop((name, delta.version), (0, None))
            if needs is not None:
                targets_at[len(items)] = needs
            items.append(links.version_update(self.table, project, name, delta, net, needs is not None))
            copies = [a for a, v in head.aliases.items() if v == delta.version and a not in change.alias_puts]
            items += [links.copy_update(self.table, codec.alias_key(project, name, a), delta) for a in copies]
        for (target, target_version), (net, needs) in counts.items():
            if needs is not None:
                targets_at[len(items)] = needs
            if net or needs:
                items.append(links.target_update(self.table, project, target, target_version, net, needs is not None))
        items += links.link_writes(self.table, change)
        for alias, version in change.alias_puts.items():
            item = {**codec.alias_key(project, name, alias), **codec.version_attrs(version), "alias": codec.s(alias)}
            items.append({"Put": {"TableName": self.table, "Item": item}})
        for alias in change.alias_deletes:
            items.append({"Delete": {"TableName": self.table, "Key": codec.alias_key(project, name, alias)}})
        for move in change.history:
            sk = codec.history_sk(move.alias, MovePosition.of(move.at, head.revision))
            history: Item = {"PK": pk, "SK": codec.s(sk), "move": codec.s(move.model_dump_json())}
            digest = change.digest_after(move)
            if digest is not None:
                history["digest"] = codec.s(digest)  # for the AliasMoved event of the stream
            items.append(
                {"Put": {"TableName": self.table, "Item": history, "ConditionExpression": "attribute_not_exists(PK)"}}
            )
        upload_at = None
        if change.commit_upload and change.new_version:
            upload_at = len(items)
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": codec.upload_key(project, change.commit_upload),
                        "UpdateExpression": "SET #state = :committed, committed_version = :version",
                        "ConditionExpression": "#state = :pending",
                        "ExpressionAttributeNames": {"#state": "state"},
                        "ExpressionAttributeValues": {
                            ":committed": codec.s("committed"),
                            ":pending": codec.s("pending"),
                            ":version": codec.s(change.new_version.version),
                        },
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise translate(error) from error
            reasons: list[Any] = list(error.response.get("CancellationReasons", []))
            codes = [r.get("Code") for r in reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                old = reasons[0].get("Item")
                raise HeadMoved(codec.head_of(old) if old else None) from None
            # the upload first: a retried commit that raced itself answers the first result, not a conflict
            if upload_at is not None and codes[upload_at] == "ConditionalCheckFailed":
                raise UploadNotPending() from None
            if version_at is not None and codes[version_at] == "ConditionalCheckFailed":
                raise VersionTaken() from None
            for at, link in targets_at.items():
                if codes[at] == "ConditionalCheckFailed":
                    raise TargetGone(link) from None
            if "TransactionConflict" in codes or "ConditionalCheckFailed" in codes:
                # another transaction held one of the items, or an alias copy moved under us: both
                # mean the head is moving; start again from it
                raise HeadMoved(self.get_head(project, name)) from None
            raise translate(error) from error

    # ------------------------------------------------------------ links

    def get_link(self, project: str, name: str, version: str, role: str) -> StoredLink | None:
        item = self._get(codec.link_key(project, name, version, role))
        return StoredLink.model_validate_json(item["link"]["S"]) if item else None

    def list_links(self, project: str, name: str, version: str, after_role: str | None, limit: int) -> list[StoredLink]:
        pk = codec.artifact_pk(project, name)
        start = codec.link_key(project, name, version, after_role) if after_role else None
        items = self._query(pk, codec.links_prefix(version), start, limit, forward=True)
        return [StoredLink.model_validate_json(i["link"]["S"]) for i in items]

    def linked_by(
        self, project: str, name: str, version: str, after: str | None, limit: int
    ) -> tuple[list[StoredLink], str | None]:
        pk = codec.artifact_pk(project, name)
        prefix = codec.linked_by_prefix(version)
        start = {"PK": pk, "SK": codec.s(prefix + after)} if after else None
        items = self._query(pk, prefix, start, limit + 1, forward=True)  # one more: is there a next page?
        found = [StoredLink.model_validate_json(i["link"]["S"]) for i in items[:limit]]
        return found, (items[limit - 1]["SK"]["S"].removeprefix(prefix) if len(items) > limit else None)

    # ------------------------------------------------------------ alias history

    def alias_history(
        self, project: str, name: str, alias: str, before: MovePosition | None, limit: int
    ) -> tuple[list[AliasMove], MovePosition | None]:
        pk = codec.artifact_pk(project, name)
        prefix = codec.history_prefix(alias)
        start = {"PK": pk, "SK": codec.s(codec.history_sk(alias, before))} if before else None
        items = self._query(pk, prefix, start, limit + 1, forward=False)  # one more: is there a next page?
        moves = [AliasMove.model_validate_json(i["move"]["S"]) for i in items[:limit]]
        last = MovePosition.parse(items[limit - 1]["SK"]["S"].removeprefix(prefix)) if len(items) > limit else None
        return moves, last

    def alias_at(self, project: str, name: str, alias: str, at: datetime) -> AliasMove | None:
        response = self._call(
            self.client.query,
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND SK BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": codec.artifact_pk(project, name),
                ":lo": codec.s(codec.history_prefix(alias)),
                ":hi": codec.s(f"{codec.history_prefix(alias)}{keys.time_key(at)}#~"),
            },
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response["Items"]
        return AliasMove.model_validate_json(items[0]["move"]["S"]) if items else None

    # ------------------------------------------------------------ uploads

    def create_upload(self, upload: Upload) -> None:
        item = {
            **codec.upload_key(upload.project, upload.upload_id),
            "state": codec.s(upload.state),
            "upload": codec.s(upload.model_dump_json(exclude={"entries", "state"})),
            "entries": codec.pack(upload.entries),
            "expires_at": codec.n(int((upload.expires_at + _UPLOAD_ITEM_GRACE).timestamp())),
        }
        self._call(
            self.client.put_item, TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(PK)"
        )
        # The janitor's index, one partition an hour of expiry, so that it finds expired uploads with a
        # Query, never a Scan. Written after the upload: should it fail, the upload still expires by
        # its time and TTL, and the bucket's lifecycle rule aborts its multipart uploads.
        index = {
            **codec.expiry_key(upload),
            "exp": codec.n(int(upload.expires_at.timestamp())),
            "expires_at": codec.n(int((upload.expires_at + _EXPIRY_INDEX_TTL).timestamp())),
        }
        self._call(self.client.put_item, TableName=self.table, Item=index)

    def add_upload_batch(
        self,
        project: str,
        upload_id: str,
        batch_id: str,
        entries: Sequence[Entry],
        missing: Sequence[str],
        multipart: dict[str, str],
    ) -> None:
        head_key = codec.upload_key(project, upload_id)
        batch = {
            **codec.upload_key(project, upload_id, f"B#{batch_id}"),
            "entries": codec.pack(entries),
            "batch": codec.json_attr({"missing": list(missing), "multipart": multipart}),
        }
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self.table,
                            "Key": head_key,
                            "ConditionExpression": "#state = :pending",
                            "ExpressionAttributeNames": {"#state": "state"},
                            "ExpressionAttributeValues": {":pending": codec.s("pending")},
                        }
                    },
                    {"Put": {"TableName": self.table, "Item": batch}},
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise UploadNotPending() from None
            raise translate(error) from error

    def get_upload(self, project: str, upload_id: str, with_entries: bool = True) -> Upload | None:
        if not with_entries:
            item = self._get(codec.upload_key(project, upload_id))
            return self._upload_of(item, [], with_entries=False) if item else None
        items = list(self._query_all(codec.upload_key(project, upload_id)["PK"]))
        head = next((i for i in items if i["SK"]["S"] == "U"), None)
        return self._upload_of(head, [i for i in items if i is not head]) if head else None

    def get_upload_parts(self, project: str, upload_id: str) -> tuple[Upload, list[Callable[[], list[Entry]]]] | None:
        items = list(self._query_all(codec.upload_key(project, upload_id)["PK"]))
        head = next((i for i in items if i["SK"]["S"] == "U"), None)
        if head is None:
            return None
        batches = [i for i in items if i is not head]  # their entries stay packed (compressed) until read
        further = (UploadBatch([], **json.loads(b["batch"]["S"])) for b in batches)
        first = Upload.model_validate_json(head["upload"]["S"])
        upload = first.as_read(head["state"]["S"], head.get("committed_version", {}).get("S"), further)
        readers: list[Callable[[], list[Entry]]] = [
            functools.partial(codec.unpack, i["entries"]) for i in [head, *batches]
        ]
        return upload, readers

    def _upload_of(self, item: Item, batches: list[Item], with_entries: bool = True) -> Upload:
        first = Upload.model_validate_json(item["upload"]["S"])
        if with_entries:
            first = first.model_copy(update={"entries": codec.unpack(item["entries"])})
        further = (UploadBatch(codec.unpack(b["entries"]), **json.loads(b["batch"]["S"])) for b in batches)
        return first.as_read(item["state"]["S"], item.get("committed_version", {}).get("S"), further)

    def expired_uploads(self, now: datetime, limit: int) -> list[Upload]:
        """Walks the expiry index hour by hour from the cursor to `now`'s hour: an entry whose upload
        is pending and past its expiry is answered (and dropped by `expire_upload`); an entry whose
        upload is committed or gone is dropped here. An hour that is past and empty moves the cursor."""
        cursor_item = self._get(codec.CURSOR_KEY)
        current = codec.hour_of(now)
        start = datetime.fromisoformat(cursor_item["hour"]["S"]) if cursor_item else current - _EXPIRY_LOOKBACK
        found: list[Upload] = []
        hour, drained_to, blocked = start, start, False
        while hour <= current and len(found) < limit:
            wanted = limit - len(found)
            entries = self._query(codec.expiry_pk(hour), None, None, wanted, True)
            held = len(entries) == wanted  # a full page: more may follow
            for entry in entries:
                if int(entry["exp"]["N"]) > now.timestamp():
                    held = True  # not expired yet
                    continue
                project, upload_id = entry["SK"]["S"].split("#", 1)
                upload = self.get_upload(project, upload_id)
                if upload is not None and upload.state == "pending":
                    found.append(upload)  # `expire_upload` drops its entry
                    held = True
                else:
                    key = {"PK": entry["PK"], "SK": entry["SK"]}
                    self._call(self.client.delete_item, TableName=self.table, Key=key)
            blocked = blocked or held or hour == current
            hour += _HOUR
            if not blocked:
                drained_to = hour  # every hour before this one is empty: start there next time
        if drained_to != start:
            self._call(
                self.client.put_item,
                TableName=self.table,
                Item={**codec.CURSOR_KEY, "hour": codec.s(drained_to.isoformat())},
            )
        return found

    def pending_uploads(
        self, project: str, now: datetime, upload_ttl: timedelta, expiring_from: datetime | None = None
    ) -> Iterator[Upload]:
        """Walks the expiry index from the janitor's cursor (or from `expiring_from`'s hour, when later:
        one or two hours, where the cursor may be days back) to the last hour an upload started now could
        expire in, taking the project's entries of each hour."""
        current = codec.hour_of(now)
        if expiring_from is not None and codec.hour_of(expiring_from) >= current:
            hour = codec.hour_of(expiring_from)  # the cursor is never past `now`'s hour: no need to read it
        else:
            cursor_item = self._get(codec.CURSOR_KEY)
            hour = datetime.fromisoformat(cursor_item["hour"]["S"]) if cursor_item else current - _EXPIRY_LOOKBACK
            hour = max(hour, codec.hour_of(expiring_from)) if expiring_from is not None else hour
        while hour <= now + upload_ttl:
            for entry in self._query(codec.expiry_pk(hour), f"{project}#", None, 1_000_000, True):
                if expiring_from is not None and int(entry["exp"]["N"]) < int(expiring_from.timestamp()):
                    continue  # in the first hour, but before `expiring_from`: seen by the last read
                upload = self.get_upload(project, entry["SK"]["S"].split("#", 1)[1])
                if upload is not None and upload.state == "pending":
                    yield upload
            hour += _HOUR

    def note_remote_change(self, change: RemoteChange) -> bool:
        item = {
            "PK": codec.s(f"C#{change.project}#{change.name}"),
            "SK": codec.s(f"{versions.sort_key(change.version)}#{change.path_digest}"),
            "fp": codec.s(change.fingerprint),
            "change": codec.s(change.model_dump_json()),  # the stream makes the event of it
        }
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(PK) OR fp <> :fp",
                ExpressionAttributeValues={":fp": item["fp"]},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise translate(error) from error
        return True

    def projects(self) -> Iterator[str]:
        for item in self._query_all(codec.s("PROJECTS")):
            yield item["SK"]["S"]

    def list_projects(self, after: str | None, limit: int) -> list[str]:
        start = {"PK": codec.s("PROJECTS"), "SK": codec.s(after)} if after else None
        return [item["SK"]["S"] for item in self._query(codec.s("PROJECTS"), None, start, limit, forward=True)]

    def expire_upload(self, project: str, upload_id: str) -> bool:
        upload = self.get_upload(project, upload_id, with_entries=False)
        if upload is None:
            return False
        index_key = codec.expiry_key(upload)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": codec.upload_key(project, upload_id),
                            "UpdateExpression": "SET #state = :expired",
                            "ConditionExpression": "#state = :pending",
                            "ExpressionAttributeNames": {"#state": "state"},
                            "ExpressionAttributeValues": {
                                ":pending": codec.s("pending"),
                                ":expired": codec.s("expired"),
                            },
                        }
                    },
                    {"Delete": {"TableName": self.table, "Key": index_key}},
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise translate(error) from error
            self._call(self.client.delete_item, TableName=self.table, Key=index_key)
            return False
        return True

    # ------------------------------------------------------------ usages

    def put_usage(self, usage: UsageRecord) -> None:
        item = {
            "PK": codec.artifact_pk(usage.project, usage.name),
            "SK": codec.s(f"U#{versions.sort_key(usage.version)}#{usage.run_id}"),
            "usage": codec.s(usage.model_dump_json()),
        }
        self._call(self.client.put_item, TableName=self.table, Item=item)

    # ------------------------------------------------------------ lineage

    def put_edge(self, edge: LineageEdge) -> bool:
        body = codec.s(edge.model_dump_json())
        key = versions.sort_key(edge.version)
        items = [
            {"PK": codec.s(f"R#{edge.project}#{edge.run_id}"), "SK": codec.s(keys.run_position(edge)), "edge": body},
            {
                "PK": codec.s(f"G#{edge.project}#{edge.name}#{key}"),
                "SK": codec.s(keys.version_position(edge)),
                "edge": body,
            },
        ]
        # one at a time: a retry after a failure between them writes the other one
        new = runs.put_run_edge(self.client, self.table, items[0], edge)
        for item in items[1:]:
            try:
                self.client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(PK)")
                new = True
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise translate(error) from error
        return new

    def list_runs(self, project: str, before: str | None, limit: int) -> tuple[list[RunSeen], str | None]:
        pk = runs.runs_pk(project)
        start = {"PK": pk, "SK": codec.s(f"T#{before}")} if before else None
        items = self._query(pk, "T#", start, limit + 1, forward=False)  # one more: is there a next page?
        found = [RunSeen.model_validate_json(i["run"]["S"]) for i in items[:limit]]
        return found, (items[limit - 1]["SK"]["S"].removeprefix("T#") if len(items) > limit else None)

    def run_edges(
        self, project: str, run_id: str, kind: EdgeKind | None, after: str | None, limit: int
    ) -> tuple[list[LineageEdge], str | None]:
        prefix = keys.EDGE_PREFIX[kind] if kind else None
        return self._edges(codec.s(f"R#{project}#{run_id}"), prefix, after, limit)

    def version_edges(
        self, project: str, name: str, version: str, kind: EdgeKind, after: str | None, limit: int
    ) -> tuple[list[LineageEdge], str | None]:
        pk = codec.s(f"G#{project}#{name}#{versions.sort_key(version)}")
        return self._edges(pk, keys.EDGE_PREFIX[kind], after, limit)

    def _edges(
        self, pk: dict[str, str], prefix: str | None, after: str | None, limit: int
    ) -> tuple[list[LineageEdge], str | None]:
        start = {"PK": pk, "SK": codec.s(after)} if after else None
        items = self._query(pk, prefix, start, limit + 1, forward=True)  # one more: is there a next page?
        edges = [LineageEdge.model_validate_json(i["edge"]["S"]) for i in items[:limit]]
        return edges, (items[limit - 1]["SK"]["S"] if len(items) > limit else None)

    # ------------------------------------------------------------ plumbing

    def _call(self, operation: Any, **kwargs: Any) -> Any:
        try:
            return operation(**kwargs)
        except ClientError as error:
            raise translate(error) from error

    def _get(self, key: Item) -> Item | None:
        # strongly consistent: a resolve right after a commit or an alias move must see it
        item: Item | None = self._call(self.client.get_item, TableName=self.table, Key=key, ConsistentRead=True).get(
            "Item"
        )
        return item

    def _query_page(self, pk: dict[str, str], prefix: str | None, start: Item | None, limit: int, forward: bool) -> Any:
        return self._call(
            self.client.query,
            TableName=self.table,
            KeyConditionExpression="PK = :pk" + (" AND begins_with(SK, :prefix)" if prefix else ""),
            ExpressionAttributeValues={":pk": pk, **({":prefix": codec.s(prefix)} if prefix else {})},
            ScanIndexForward=forward,
            Limit=limit,
            ConsistentRead=True,
            **({"ExclusiveStartKey": start} if start else {}),
        )

    def _query(
        self, pk: dict[str, str], prefix: str | None, start: Item | None, limit: int, forward: bool
    ) -> list[Item]:
        """Up to `limit` items: a Query page also ends at 1 MB, so keep going until it is filled."""
        items: list[Item] = []
        while len(items) < limit:
            page = self._query_page(pk, prefix, start, limit - len(items), forward)
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return items

    def _query_all(self, pk: dict[str, str]) -> Iterator[Item]:
        start: Item | None = None
        while True:
            page = self._call(
                self.client.query,
                TableName=self.table,
                KeyConditionExpression="PK = :pk",
                ExpressionAttributeValues={":pk": pk},
                ConsistentRead=True,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            yield from page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return
