"""The registry table's DynamoDB stream, as Lambda hands its records to the publisher, made from the
real items that the DynamoStore wrote on moto (moto's own stream API is not served).

`TableStream.capture()` reads every item (consistent reads) before a change and at each `step()` after
one; each item that appeared, changed or went becomes a stream record (NEW_AND_OLD_IMAGES) with its
keys and images in DynamoDB JSON, binary values base64 text as in a Lambda event, and increasing
sequence numbers.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

Item = dict[str, Any]


def _lambda_json(value: Any) -> Any:
    """An attribute value as a Lambda event carries it: bytes as base64 text."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _lambda_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lambda_json(v) for v in value]
    return value


class TableStream:
    def __init__(self, dynamodb: Any, table: str, region: str = "us-east-1"):
        self.dynamodb = dynamodb
        self.table = table
        self.region = region
        self.arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self._sequence = 100_000_000_000_000_000_000
        self.records: list[dict[str, Any]] = []
        self._last: dict[tuple[str, str], Item] = {}

    def items(self) -> dict[tuple[str, str], Item]:
        found: dict[tuple[str, str], Item] = {}
        start: Item | None = None
        while True:
            page = self.dynamodb.scan(
                TableName=self.table, ConsistentRead=True, **({"ExclusiveStartKey": start} if start else {})
            )
            for item in page["Items"]:
                found[(item["PK"]["S"], item["SK"]["S"])] = item
            start = page.get("LastEvaluatedKey")
            if not start:
                return found

    def record(self, name: str, new: Item | None, old: Item | None) -> dict[str, Any]:
        some = new or old
        assert some is not None
        self._sequence += 1
        change: dict[str, Any] = {
            "ApproximateCreationDateTime": 1795341600.0,
            "Keys": {"PK": some["PK"], "SK": some["SK"]},
            "SequenceNumber": str(self._sequence),
            "SizeBytes": len(json.dumps(_lambda_json(some))),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if new is not None:
            change["NewImage"] = new
        if old is not None:
            change["OldImage"] = old
        return _lambda_json(
            {
                "eventID": uuid.uuid4().hex,
                "eventName": name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": self.region,
                "dynamodb": change,
                "eventSourceARN": self.arn,
            }
        )

    def step(self) -> None:
        """Records what changed since the last step: call it after each write, so that an item changed twice
        makes two records, as on the stream (one transaction's items come in key order: they have no
        order of their own)."""
        now = self.items()
        for key in sorted(self._last.keys() | now.keys()):
            old, new = self._last.get(key), now.get(key)
            if old == new:
                continue
            name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
            self.records.append(self.record(name, new, old))
        self._last = now

    @contextmanager
    def capture(self) -> Iterator[list[dict[str, Any]]]:
        """The records of what is written inside the block (`step()` inside it between writes)."""
        self.records = []
        self._last = self.items()
        yield self.records
        self.step()


def lambda_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}
