"""A project's runs on the registry table, most recently seen first in one Query:

| item        | PK           | SK                                 |
| ----------- | ------------ | ---------------------------------- |
| run summary | S#{project}  | R#{run_id}   (counts, first and last seen, and a revision) |
| run by time | S#{project}  | T#{last seen}#{run_id}   (a copy of the summary, moved when last seen does) |

The lineage consumer records a run's new edge item in one transaction with its summary (checked at the
revision read) and its place by time, so that an edge recorded twice is counted once and two
consumers seeing one run at once never lose a count: the one that lost the race reads again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from artreg.aws import dynamodb_codec as codec
from artreg.aws.dynamodb_codec import Item
from artreg.aws.errors import translate
from artreg.backoff import jittered
from artreg.model.errors import Retryable
from artreg.registry import keys
from artreg.registry.records import LineageEdge, RunSeen

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_ATTEMPTS = 20


def runs_pk(project: str) -> dict[str, str]:
    return codec.s(f"S#{project}")


def summary_key(project: str, run_id: str) -> Item:
    return {"PK": runs_pk(project), "SK": codec.s(f"R#{run_id}")}


def by_time_key(project: str, seen: RunSeen) -> Item:
    return {"PK": runs_pk(project), "SK": codec.s("T#" + keys.run_seen_position(seen.last_seen, seen.run_id))}


def put_run_edge(client: DynamoDBClient, table: str, item: Item, edge: LineageEdge) -> bool:
    """Puts a run's edge item unless it exists, counting it in the run's summary in the same
    transaction; True if it was new."""
    key = summary_key(edge.project, edge.run_id)
    for tries in range(_ATTEMPTS):
        try:
            found = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        except ClientError as error:
            raise translate(error) from error
        before = RunSeen.model_validate_json(found["run"]["S"]) if found else None
        seen = (before or RunSeen.first(edge)).seeing(edge)
        revision = int(found["rev"]["N"]) if found else 0
        body = codec.s(seen.model_dump_json())
        writes: list[Any] = [
            {"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}},
            {
                "Put": {
                    "TableName": table,
                    "Item": {**key, "run": body, "rev": codec.n(revision + 1)},
                    "ConditionExpression": "rev = :rev" if found else "attribute_not_exists(PK)",
                    **({"ExpressionAttributeValues": {":rev": codec.n(revision)}} if found else {}),
                }
            },
        ]
        if before is not None and before.last_seen != seen.last_seen:
            writes.append({"Delete": {"TableName": table, "Key": by_time_key(edge.project, before)}})
        writes.append({"Put": {"TableName": table, "Item": {**by_time_key(edge.project, seen), "run": body}}})
        try:
            client.transact_write_items(TransactItems=writes)
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise translate(error) from error
            reasons: list[Any] = list(error.response.get("CancellationReasons", []))
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False  # recorded already
        time.sleep(jittered(tries, 0.005, 0.25))  # the summary moved: again from a fresh read
    raise Retryable(f"too many concurrent changes to run {edge.run_id!r}; retry shortly")
