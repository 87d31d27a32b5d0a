"""The janitor's items in the registry table, beside the rest (see `dynamodb`):

| item             | PK        | SK                 |
| ---------------- | --------- | ------------------ |
| checkpoint       | J#{name}  | C                  | `state` (the janitor's JSON), `rev` (saved under its revision)
| mark set's chunk | J#{name}  | M#{index, 6 digits}| `digests` (binary: sorted 32-byte digests), `expires_at` (TTL)

A chunk a killed run wrote past the checkpoint's count is never read, and is replaced by the next run
or goes with its TTL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from artreg.aws import dynamodb_codec as codec
from artreg.aws.errors import translate
from artreg.registry.ports import CheckpointMoved

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_MARK_TTL = timedelta(days=30)  # far past any walk the walk-age alarm lets go on


class JanitorItems:
    """The checkpoint and mark-set methods of `MetadataStore`, mixed into `DynamoStore`."""

    client: DynamoDBClient
    table: str

    def get_checkpoint(self, name: str) -> tuple[str, int] | None:
        try:
            item = self.client.get_item(TableName=self.table, Key=_key(name, "C"), ConsistentRead=True).get("Item")
        except ClientError as error:
            raise translate(error) from error
        return (item["state"]["S"], int(item["rev"]["N"])) if item else None

    def save_checkpoint(self, name: str, state: str, revision: int) -> None:
        condition = (
            {"ConditionExpression": "attribute_not_exists(PK)"}
            if revision == 0
            else {"ConditionExpression": "rev = :rev", "ExpressionAttributeValues": {":rev": codec.n(revision)}}
        )
        item = {**_key(name, "C"), "state": codec.s(state), "rev": codec.n(revision + 1)}
        try:
            self.client.put_item(TableName=self.table, Item=item, **condition)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise CheckpointMoved(name) from error
            raise translate(error) from error

    def put_mark_chunk(self, name: str, index: int, digests: bytes) -> None:
        expires = int((datetime.now(UTC) + _MARK_TTL).timestamp())
        item: dict[str, Any] = {**_key(name, f"M#{index:06d}"), "digests": {"B": digests}}
        item["expires_at"] = codec.n(expires)
        try:
            self.client.put_item(TableName=self.table, Item=item)
        except ClientError as error:
            raise translate(error) from error

    def mark_chunks(self, name: str, count: int) -> list[bytes]:
        chunks: list[bytes] = []
        start: dict[str, dict[str, str]] | None = None
        while len(chunks) < count:
            try:
                page = self.client.query(
                    TableName=self.table,
                    KeyConditionExpression="PK = :pk AND begins_with(SK, :m)",
                    ExpressionAttributeValues={":pk": codec.s(f"J#{name}"), ":m": codec.s("M#")},
                    ConsistentRead=True,
                    Limit=count - len(chunks),
                    **({"ExclusiveStartKey": start} if start else {}),  # type: ignore[arg-type]
                )
            except ClientError as error:
                raise translate(error) from error
            chunks += [item["digests"]["B"] for item in page["Items"]]
            start = page.get("LastEvaluatedKey")  # type: ignore[assignment]
            if not start:
                break
        if len(chunks) != count:
            raise RuntimeError(f"mark set {name} holds {len(chunks)} chunks, its checkpoint counts {count}")
        return chunks


def _key(name: str, sk: str) -> dict[str, dict[str, str]]:
    return {"PK": codec.s(f"J#{name}"), "SK": codec.s(sk)}
