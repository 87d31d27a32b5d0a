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
def one_backup_per_transaction() -> Iterator[None]:
    """moto backs a transaction up by deep-copying the whole table once per item of the transaction
    (the same table, N times, in a loop), so hundreds of commits grow quadratic. This makes it copy each
    table once per transaction: the same backup, the same rollback. Safe only with calls serialised,
    as SerialisedClient does."""
    import moto.dynamodb.models as backend_module
    from moto.dynamodb.models.table import Table

    original = backend_module.DynamoDBBackend.transact_write_items
    real_copy = copy.deepcopy

    class _OncePerTable:
        def __init__(self) -> None:
            self.copies: dict[int, Any] = {}

        def deepcopy(self, value: Any, memo: Any = None) -> Any:
            if isinstance(value, Table):
                if id(value) not in self.copies:
                    self.copies[id(value)] = real_copy(value)
                return self.copies[id(value)]
            return real_copy(value, memo)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backend_module.copy = _OncePerTable()  # type: ignore[assignment]
        try:
            return original(self, transact_items)
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
