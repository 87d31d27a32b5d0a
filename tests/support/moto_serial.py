"""moto is not safe under concurrency (its transactions check and write without a lock). Real
DynamoDB makes each request atomic; this proxy gives moto the same by serialising every call, and
injects the `TransactionConflict` cancellations that real DynamoDB raises and moto never does."""

from __future__ import annotations

import random
import threading
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
