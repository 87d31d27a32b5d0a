"""moto is not safe under concurrency (its transactions check and write without a lock). Real
DynamoDB makes each request atomic; this proxy gives moto the same by serialising every call, and
injects the `TransactionConflict` cancellations that real DynamoDB raises and moto never does."""

from __future__ import annotations

import copy
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError


class SerialisedClient:
    def __init__(self, client: Any, *, conflict_rate: float = 0.0, seed: int = 7):
        self._client = client
        self._lock = threading.Lock()
        self._conflict_rate = conflict_rate
        self._random = random.Random(seed)
        self.injected_conflicts = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                if name == "transact_write_items" and self._random.random() < self._conflict_rate:
                    self.injected_conflicts += 1
                    count = len(kwargs["TransactItems"])
                    reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
                    raise ClientError(
                        {
                            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                            "CancellationReasons": reasons + [{"Code": "None"}] * (count - 1),
                        },
                        "TransactWriteItems",
                    )
                return attribute(*args, **kwargs)

        return call


@contextmanager
def backups_of_transaction_items() -> Iterator[None]:
    """moto backs a transaction up by deep-copying the whole table, stream records included, once per
    item of the transaction (the same table, N times, in a loop), so a run of commits grows quadratic.
    This backs up only the items the transaction names (a transaction writes nothing else) and the
    length of the table's stream, and puts them back if it fails: the same rollback, at the cost of the
    transaction's own items. Safe only with calls serialised (SerialisedClient, or one thread)."""
    import moto.dynamodb.models as backend_module
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = backend_module.DynamoDBBackend.transact_write_items

    class _TablesUncopied:
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Table, DynamoType, DynamoType | None, Any]] = []
        streams: dict[int, tuple[Any, int]] = {}
        for item in transact_items:
            _, op = next(iter(item.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            if table.lambda_event_source_mappings:  # a stream read by moto's Lambda: moto's own backup
                return original(self, transact_items)
            key = op.get("Item") or op.get("Key") or {}
            if table.hash_key_attr not in key or (table.range_key_attr and table.range_key_attr not in key):
                continue  # moto refuses it before writing anything
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            saved.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
            if table.stream_shard is not None:
                streams[id(table)] = (table.stream_shard, len(table.stream_shard.items))
        backend_module.copy = _TablesUncopied()  # type: ignore[assignment]
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, before in reversed(saved):
                if range_value is None:
                    table.items.pop(hash_value, None)
                    if before is not None:
                        table.items[hash_value] = before
                else:
                    table.items[hash_value].pop(range_value, None)
                    if before is not None:
                        table.items[hash_value][range_value] = before
            for shard, length in streams.values():
                del shard.items[length:]  # the failed writes' records
            raise
        finally:
            backend_module.copy = copy

    backend_module.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        backend_module.DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]


@contextmanager
def no_transaction_backups() -> Iterator[None]:
    """No backup at all: for populating a table from one writer whose transactions never fail (a
    failed one would not be rolled back). Check what was written afterwards."""
    import moto.dynamodb.models as backend
    from moto.dynamodb.models.table import Table

    class TablesUncopied:
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    backend.copy = TablesUncopied()  # type: ignore[assignment]
    try:
        yield
    finally:
        backend.copy = copy  # type: ignore[assignment]


@contextmanager
def queries_read_their_partition() -> Iterator[None]:
    """moto answers a query on the table's own key by sorting every item of the table, then keeping the
    partition's: each query costs the whole table (the janitor's hourly walk of the expiry partitions
    makes hundreds of them per step). This hands moto's query the partition alone, in the order it
    sorts by: the same answer, at the partition's cost. Index queries and scans are moto's own."""
    from moto.dynamodb.models.table import Table

    original_query, original_all_items = Table.query, Table.all_items
    queried = threading.local()  # the partition of the query under way in this thread

    def all_items(self: Table) -> list[Any]:
        partition = getattr(queried, "partition", None)
        if partition is None or partition[0] is not self:
            return original_all_items(self)
        items = self.items.get(partition[1])
        return sorted(items.values(), key=lambda item: item.range_key) if items else []

    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is not None or hash_key is None or not self.range_key_attr:
            return original_query(self, hash_key, *args, **kwargs)
        queried.partition = (self, hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            queried.partition = None

    Table.all_items, Table.query = all_items, query  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.all_items, Table.query = original_all_items, original_query  # type: ignore[method-assign]


@contextmanager
def action_names_listed_once() -> Iterator[None]:
    """moto lists its handler class's methods (inspect.getmembers) on every request to find the action's
    method: a tenth of a DynamoDB call's cost here. A class's methods do not change while it serves:
    listed once per class."""
    import functools

    import moto.core.responses as responses

    original = responses.method_names_from_class
    responses.method_names_from_class = functools.cache(original)  # type: ignore[assignment]
    try:
        yield
    finally:
        responses.method_names_from_class = original
