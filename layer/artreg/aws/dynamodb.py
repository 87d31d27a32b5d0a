"""The metadata store on one DynamoDB table. The only module that knows its keys:

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
| version's edge  | G#{project}#{name}#{sort key} | P#{run_id} (produced by), U#{run_id} (used by) |
| project index   | PROJECTS               | {project}   (put with an artifact's first commit: the janitor's list) |
| remote change   | C#{project}#{name}     | {sort key}#{sha256 of path}  (a remote reference last seen so) |

A version and its alias copies hold the same attributes: `rec` (the immutable part of the record,
JSON), `tags` and `meta` (JSON), `state`, `deleted_at` and `aliases` (a string set), so that a
change to a version is the same update expression on each of them, without reading them first.

The table's stream is the source of the registry's events: `event_of_stream_record` turns a stream
record into its event with the same item-to-record conversions the store reads with. The lineage
items are written twice, once per direction, so that each direction of a lineage query is one Query.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from artreg import events
from artreg.aws.errors import translate
from artreg.events import Event
from artreg.model import versions
from artreg.model.errors import TooLarge
from artreg.model.manifest import Entry
from artreg.model.wire import AliasMove, UsageRecord
from artreg.registry.ports import HeadMoved, UploadNotPending, VersionTaken
from artreg.registry.records import (
    ArtifactChange,
    Head,
    LineageEdge,
    RemoteChange,
    StoredVersion,
    Upload,
    VersionDelta,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]
_ENTRIES = TypeAdapter(list[Entry])
_MAX_BATCH_BYTES = 350_000  # compressed entries of one upload request, under the 400 KB item limit
_UPLOAD_ITEM_GRACE = timedelta(days=1)  # a committed upload stays readable for client retries
_EXPIRY_INDEX_TTL = timedelta(days=8)  # an index entry the janitor never reached goes with TTL
_EXPIRY_LOOKBACK = timedelta(days=8)  # where the janitor starts on a table it never swept
_HOUR = timedelta(hours=1)


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _json(value: Any) -> dict[str, str]:
    return {"S": json.dumps(value, separators=(",", ":"), default=str)}


def _time_key(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DynamoStore:
    def __init__(self, client: DynamoDBClient, table_name: str):
        self.client = client
        self.table = table_name

    # ------------------------------------------------------------ keys

    @staticmethod
    def _head_key(project: str, name: str) -> Item:
        return {"PK": _s(f"P#{project}"), "SK": _s(f"A#{name}")}

    @staticmethod
    def _artifact_pk(project: str, name: str) -> dict[str, str]:
        return _s(f"A#{project}#{name}")

    def _version_key(self, project: str, name: str, version: str) -> Item:
        return {"PK": self._artifact_pk(project, name), "SK": _s(f"V#{versions.sort_key(version)}")}

    def _alias_key(self, project: str, name: str, alias: str) -> Item:
        return {"PK": self._artifact_pk(project, name), "SK": _s(f"L#{alias}")}

    @staticmethod
    def _upload_key(project: str, upload_id: str, sk: str = "U") -> Item:
        return {"PK": _s(f"U#{project}#{upload_id}"), "SK": _s(sk)}

    @staticmethod
    def _expiry_pk(hour: datetime) -> dict[str, str]:
        return _s("X#" + hour.astimezone(UTC).strftime("%Y-%m-%dT%H"))

    @staticmethod
    def _expiry_key(upload: Upload) -> Item:
        return {"PK": DynamoStore._expiry_pk(upload.expires_at), "SK": _s(f"{upload.project}#{upload.upload_id}")}

    _CURSOR_KEY: Item = {"PK": {"S": "X#cursor"}, "SK": {"S": "X"}}

    # ------------------------------------------------------------ items <-> records

    @staticmethod
    def _head_item(head: Head) -> Item:
        return {
            **DynamoStore._head_key(head.project, head.name),
            "rev": _n(head.revision),
            "head": _s(head.model_dump_json(exclude={"revision"})),
        }

    @staticmethod
    def _head_of(item: Item) -> Head:
        return Head.model_validate({**json.loads(item["head"]["S"]), "revision": int(item["rev"]["N"])})

    @staticmethod
    def _version_attrs(version: StoredVersion) -> Item:
        rec = version.model_dump(mode="json", exclude={"aliases", "tags", "metadata", "state", "deleted_at"})
        attrs: Item = {
            "version": _s(version.version),
            "rec": _json(rec),
            "tags": _json(version.tags),
            "meta": _json(version.metadata),
            "state": _s(version.state),
        }
        if version.deleted_at:
            attrs["deleted_at"] = _s(version.deleted_at.isoformat())
        if version.aliases:
            attrs["aliases"] = {"SS": sorted(version.aliases)}
        return attrs

    @staticmethod
    def _version_of(item: Item) -> StoredVersion:
        return StoredVersion.model_validate(
            {
                **json.loads(item["rec"]["S"]),
                "tags": json.loads(item["tags"]["S"]),
                "metadata": json.loads(item["meta"]["S"]),
                "state": item["state"]["S"],
                "deleted_at": item.get("deleted_at", {}).get("S"),
                "aliases": sorted(item.get("aliases", {}).get("SS", []), key=lambda a: (a != "latest", a)),
            }
        )

    @staticmethod
    def _delta_update(delta: VersionDelta) -> tuple[str, Item, dict[str, str]]:
        sets: list[str] = []
        clauses: list[str] = []
        values: Item = {}
        names: dict[str, str] = {}
        if delta.tags is not None:
            sets.append("tags = :tags")
            values[":tags"] = _json(delta.tags)
        if delta.metadata is not None:
            sets.append("meta = :meta")
            values[":meta"] = _json(delta.metadata)
        if delta.deleted_at is not None:
            names["#state"] = "state"
            sets += ["#state = :deleted", "deleted_at = :deleted_at"]
            values[":deleted"] = _s("deleted")
            values[":deleted_at"] = _s(delta.deleted_at.isoformat())
        if sets:
            clauses.append("SET " + ", ".join(sets))
        # ADD and DELETE of one attribute cannot share an expression; the registry never asks for both
        assert not (delta.aliases_add and delta.aliases_remove)
        if delta.aliases_add:
            clauses.append("ADD aliases :add")
            values[":add"] = {"SS": sorted(delta.aliases_add)}
        if delta.aliases_remove:
            clauses.append("DELETE aliases :remove")
            values[":remove"] = {"SS": sorted(delta.aliases_remove)}
        return " ".join(clauses), values, names

    # ------------------------------------------------------------ heads and versions

    def get_head(self, project: str, name: str) -> Head | None:
        item = self._get(self._head_key(project, name))
        return self._head_of(item) if item else None

    def list_heads(self, project: str, after_name: str | None, limit: int) -> list[Head]:
        start = {"PK": _s(f"P#{project}"), "SK": _s(f"A#{after_name}")} if after_name else None
        items = self._query(_s(f"P#{project}"), "A#", start, limit, forward=True)
        return [self._head_of(i) for i in items]

    def get_version(self, project: str, name: str, version: str) -> StoredVersion | None:
        item = self._get(self._version_key(project, name, version))
        return self._version_of(item) if item else None

    def get_alias(self, project: str, name: str, alias: str) -> StoredVersion | None:
        item = self._get(self._alias_key(project, name, alias))
        return self._version_of(item) if item else None

    def list_versions(self, project: str, name: str, before_key: str | None, limit: int) -> list[StoredVersion]:
        pk = self._artifact_pk(project, name)
        start = {"PK": pk, "SK": _s(f"V#{before_key}")} if before_key else None
        return [self._version_of(i) for i in self._query(pk, "V#", start, limit, forward=False)]

    def apply(self, change: ArtifactChange) -> None:
        head = change.head
        project, name = head.project, head.name
        pk = self._artifact_pk(project, name)
        items: list[Any] = [  # TransactWriteItemTypeDef, built up piece by piece
            {
                "Put": {
                    "TableName": self.table,
                    "Item": self._head_item(head),
                    "ConditionExpression": "rev = :rev" if change.expected_revision else "attribute_not_exists(PK)",
                    **(
                        {"ExpressionAttributeValues": {":rev": _n(change.expected_revision)}}
                        if change.expected_revision
                        else {}
                    ),
                    # a lost race answers with the head as it is now: the retry reads nothing
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        ]
        if not change.expected_revision:  # a new artifact: its project is listed (a put: idempotent)
            items.append({"Put": {"TableName": self.table, "Item": {"PK": _s("PROJECTS"), "SK": _s(project)}}})
        version_at = None
        if change.new_version:
            version_at = len(items)
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            **self._version_key(project, name, change.new_version.version),
                            **self._version_attrs(change.new_version),
                        },
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        for delta in change.deltas:
            expression, values, attr_names = self._delta_update(delta)
            copies = [a for a, v in head.aliases.items() if v == delta.version and a not in change.alias_puts]
            keys = [self._version_key(project, name, delta.version)] + [
                self._alias_key(project, name, a) for a in copies
            ]
            items += [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": key,
                        "UpdateExpression": expression,
                        "ConditionExpression": "attribute_exists(PK)",
                        **({"ExpressionAttributeNames": attr_names} if attr_names else {}),
                        **({"ExpressionAttributeValues": values} if values else {}),
                    }
                }
                for key in keys
            ]
        for alias, version in change.alias_puts.items():
            item = {**self._alias_key(project, name, alias), **self._version_attrs(version), "alias": _s(alias)}
            items.append({"Put": {"TableName": self.table, "Item": item}})
        for alias in change.alias_deletes:
            items.append({"Delete": {"TableName": self.table, "Key": self._alias_key(project, name, alias)}})
        for move in change.history:
            sk = f"H#{move.alias}#{_time_key(move.at)}#{head.revision:012d}"
            history: Item = {"PK": pk, "SK": _s(sk), "move": _s(move.model_dump_json())}
            moved_to = change.alias_puts.get(move.alias)
            if moved_to is not None:
                history["digest"] = _s(moved_to.digest)  # for the AliasMoved event of the stream
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
                        "Key": self._upload_key(project, change.commit_upload),
                        "UpdateExpression": "SET #state = :committed, committed_version = :version",
                        "ConditionExpression": "#state = :pending",
                        "ExpressionAttributeNames": {"#state": "state"},
                        "ExpressionAttributeValues": {
                            ":committed": _s("committed"),
                            ":pending": _s("pending"),
                            ":version": _s(change.new_version.version),
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
                raise HeadMoved(self._head_of(old) if old else None) from None
            # the upload first: a retried commit that raced itself answers the first result, not a conflict
            if upload_at is not None and codes[upload_at] == "ConditionalCheckFailed":
                raise UploadNotPending() from None
            if version_at is not None and codes[version_at] == "ConditionalCheckFailed":
                raise VersionTaken() from None
            if "TransactionConflict" in codes or "ConditionalCheckFailed" in codes:
                # another transaction held one of the items, or an alias copy moved under us: both
                # mean the head is moving; start again from it
                raise HeadMoved(self.get_head(project, name)) from None
            raise translate(error) from error

    # ------------------------------------------------------------ alias history

    def alias_history(
        self, project: str, name: str, alias: str, before: str | None, limit: int
    ) -> tuple[list[AliasMove], str | None]:
        pk = self._artifact_pk(project, name)
        prefix = f"H#{alias}#"
        if before is not None and not before.startswith(prefix):
            before = None
        start = {"PK": pk, "SK": _s(before)} if before else None
        items = self._query(pk, prefix, start, limit + 1, forward=False)  # one more: is there a next page?
        moves = [AliasMove.model_validate_json(i["move"]["S"]) for i in items[:limit]]
        return moves, (items[limit - 1]["SK"]["S"] if len(items) > limit else None)

    def alias_at(self, project: str, name: str, alias: str, at: datetime) -> AliasMove | None:
        response = self._call(
            self.client.query,
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND SK BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": self._artifact_pk(project, name),
                ":lo": _s(f"H#{alias}#"),
                ":hi": _s(f"H#{alias}#{_time_key(at)}#~"),
            },
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response["Items"]
        return AliasMove.model_validate_json(items[0]["move"]["S"]) if items else None

    # ------------------------------------------------------------ uploads

    @staticmethod
    def _pack(entries: Sequence[Entry]) -> dict[str, bytes]:
        packed = zlib.compress(_ENTRIES.dump_json(list(entries)), 6)
        if len(packed) > _MAX_BATCH_BYTES:
            raise TooLarge(
                f"this batch of {len(entries)} entries is too large to store ({len(packed)} bytes compressed); "
                "send the files in smaller batches",
                details={"limit": _MAX_BATCH_BYTES},
            )
        return {"B": packed}

    def create_upload(self, upload: Upload) -> None:
        item = {
            **self._upload_key(upload.project, upload.upload_id),
            "state": _s(upload.state),
            "upload": _s(upload.model_dump_json(exclude={"entries", "state"})),
            "entries": self._pack(upload.entries),
            "expires_at": _n(int((upload.expires_at + _UPLOAD_ITEM_GRACE).timestamp())),
        }
        self._call(
            self.client.put_item, TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(PK)"
        )
        # The janitor's index, one partition an hour of expiry, so that it finds expired uploads with a
        # Query, never a Scan. Written after the upload: should it fail, the upload still expires by
        # its time and TTL, and the bucket's lifecycle rule aborts its multipart uploads.
        index = {
            **self._expiry_key(upload),
            "exp": _n(int(upload.expires_at.timestamp())),
            "expires_at": _n(int((upload.expires_at + _EXPIRY_INDEX_TTL).timestamp())),
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
        head_key = self._upload_key(project, upload_id)
        batch = {
            **self._upload_key(project, upload_id, f"B#{batch_id}"),
            "entries": self._pack(entries),
            "batch": _json({"missing": list(missing), "multipart": multipart}),
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
                            "ExpressionAttributeValues": {":pending": _s("pending")},
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
            item = self._get(self._upload_key(project, upload_id))
            return self._upload_of(item, []) if item else None
        items = list(self._query_all(self._upload_key(project, upload_id)["PK"]))
        head = next((i for i in items if i["SK"]["S"] == "U"), None)
        return self._upload_of(head, [i for i in items if i is not head]) if head else None

    def _upload_of(self, item: Item, batches: list[Item]) -> Upload:
        upload = Upload.model_validate_json(item["upload"]["S"])
        entries = _ENTRIES.validate_json(zlib.decompress(item["entries"]["B"]))
        missing, multipart = list(upload.missing), dict(upload.multipart)
        for batch in batches:
            entries += _ENTRIES.validate_json(zlib.decompress(batch["entries"]["B"]))
            extra = json.loads(batch["batch"]["S"])
            missing += extra["missing"]
            multipart.update(extra["multipart"])
        committed = item.get("committed_version", {}).get("S")
        return upload.model_copy(
            update={
                "state": item["state"]["S"],
                "version": committed or upload.version,
                "entries": entries,
                "missing": missing,
                "multipart": multipart,
            }
        )

    def expired_uploads(self, now: datetime, limit: int) -> list[Upload]:
        """Walks the expiry index hour by hour from the cursor to `now`'s hour: an entry whose upload
        is pending and past its expiry is answered (and dropped by `expire_upload`); an entry whose
        upload is committed or gone is dropped here. An hour that is past and empty moves the cursor."""
        cursor_item = self._get(self._CURSOR_KEY)
        current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        start = datetime.fromisoformat(cursor_item["hour"]["S"]) if cursor_item else current - _EXPIRY_LOOKBACK
        found: list[Upload] = []
        hour, drained_to, blocked = start, start, False
        while hour <= current and len(found) < limit:
            wanted = limit - len(found)
            entries = self._query(self._expiry_pk(hour), None, None, wanted, True)
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
                Item={**self._CURSOR_KEY, "hour": _s(drained_to.isoformat())},
            )
        return found

    def pending_uploads(self, project: str, now: datetime, upload_ttl: timedelta) -> Iterator[Upload]:
        """Walks the expiry index from the janitor's cursor to the last hour an upload started now could
        expire in, taking the project's entries of each hour."""
        cursor_item = self._get(self._CURSOR_KEY)
        current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        hour = datetime.fromisoformat(cursor_item["hour"]["S"]) if cursor_item else current - _EXPIRY_LOOKBACK
        while hour <= now + upload_ttl:
            for entry in self._query(self._expiry_pk(hour), f"{project}#", None, 1_000_000, True):
                upload = self.get_upload(project, entry["SK"]["S"].split("#", 1)[1])
                if upload is not None and upload.state == "pending":
                    yield upload
            hour += _HOUR

    def note_remote_change(self, change: RemoteChange) -> bool:
        item = {
            "PK": _s(f"C#{change.project}#{change.name}"),
            "SK": _s(f"{versions.sort_key(change.version)}#{change.path_digest}"),
            "fp": _s(change.fingerprint),
            "change": _s(change.model_dump_json()),  # the stream makes the event of it
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
        for item in self._query_all(_s("PROJECTS")):
            yield item["SK"]["S"]

    def list_projects(self, after: str | None, limit: int) -> list[str]:
        start = {"PK": _s("PROJECTS"), "SK": _s(after)} if after else None
        return [item["SK"]["S"] for item in self._query(_s("PROJECTS"), None, start, limit, forward=True)]

    def expire_upload(self, project: str, upload_id: str) -> bool:
        upload = self.get_upload(project, upload_id, with_entries=False)
        if upload is None:
            return False
        index_key = self._expiry_key(upload)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": self._upload_key(project, upload_id),
                            "UpdateExpression": "SET #state = :expired",
                            "ConditionExpression": "#state = :pending",
                            "ExpressionAttributeNames": {"#state": "state"},
                            "ExpressionAttributeValues": {":pending": _s("pending"), ":expired": _s("expired")},
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
            "PK": self._artifact_pk(usage.project, usage.name),
            "SK": _s(f"U#{versions.sort_key(usage.version)}#{usage.run_id}"),
            "usage": _s(usage.model_dump_json()),
        }
        self._call(self.client.put_item, TableName=self.table, Item=item)

    # ------------------------------------------------------------ lineage

    def put_edge(self, edge: LineageEdge) -> bool:
        key = versions.sort_key(edge.version)
        letter = "P" if edge.kind == "produced" else "U"
        body = _s(edge.model_dump_json())
        items = [
            {"PK": _s(f"R#{edge.project}#{edge.run_id}"), "SK": _s(f"{letter}#{edge.name}#{key}"), "edge": body},
            {"PK": _s(f"G#{edge.project}#{edge.name}#{key}"), "SK": _s(f"{letter}#{edge.run_id}"), "edge": body},
        ]
        new = False
        for item in items:  # one at a time: a retry after a failure between them writes the other one
            try:
                self.client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(PK)")
                new = True
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise translate(error) from error
        return new

    def run_edges(
        self, project: str, run_id: str, kind: str | None, after: str | None, limit: int
    ) -> tuple[list[LineageEdge], str | None]:
        prefix = {"produced": "P#", "used": "U#"}[kind] if kind else None
        return self._edges(_s(f"R#{project}#{run_id}"), prefix, after, limit)

    def version_edges(
        self, project: str, name: str, version: str, kind: str, after: str | None, limit: int
    ) -> tuple[list[LineageEdge], str | None]:
        pk = _s(f"G#{project}#{name}#{versions.sort_key(version)}")
        return self._edges(pk, {"produced": "P#", "used": "U#"}[kind], after, limit)

    def _edges(
        self, pk: dict[str, str], prefix: str | None, after: str | None, limit: int
    ) -> tuple[list[LineageEdge], str | None]:
        if after is not None and not (isinstance(after, str) and after.startswith(prefix or "")):
            after = None  # not a position of this listing
        start = {"PK": pk, "SK": _s(after)} if after else None
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
            ExpressionAttributeValues={":pk": pk, **({":prefix": _s(prefix)} if prefix else {})},
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


# ---------------------------------------------------------------- the table's stream


def event_of_stream_record(record: Mapping[str, Any]) -> Event | None:
    """The event of one record of the table's stream (as Lambda hands it over, NEW_AND_OLD_IMAGES), or
    None for a change that makes none: a new version, usage or alias move (INSERT), a version that
    turned deleted (MODIFY). The publisher's filter criteria in template.yaml let through the same."""
    change = record.get("dynamodb") or {}
    keys = change.get("Keys") or {}
    pk, sk = keys.get("PK", {}).get("S", ""), keys.get("SK", {}).get("S", "")
    new, old = change.get("NewImage"), change.get("OldImage")
    if pk.startswith("C#") and new and record.get("eventName") in ("INSERT", "MODIFY"):
        return events.remote_changed(RemoteChange.model_validate_json(new["change"]["S"]))
    if not pk.startswith("A#") or not new:
        return None
    if record.get("eventName") == "INSERT":
        if sk.startswith("V#"):
            return events.committed(DynamoStore._version_of(new))
        if sk.startswith("U#"):
            return events.used(UsageRecord.model_validate_json(new["usage"]["S"]))
        if sk.startswith("H#"):
            _, project, name = pk.split("#", 2)
            revision = int(sk.rsplit("#", 1)[1])
            move = AliasMove.model_validate_json(new["move"]["S"])
            return events.alias_moved(project, name, move, revision, new.get("digest", {}).get("S"))
    turned_deleted = (old or {}).get("state", {}).get("S") == "committed" and new["state"]["S"] == "deleted"
    if record.get("eventName") == "MODIFY" and sk.startswith("V#") and turned_deleted:
        return events.deleted(DynamoStore._version_of(new))
    return None
