"""A stand-in for boto3's EventBridge client, for the failure paths that moto never takes."""

from __future__ import annotations

import json
from typing import Any


class FakeEvents:
    """Answers each put_events as EventBridge does: 200, with an ErrorCode on the entries that `fail`
    picks (by event id) on that call."""

    def __init__(self, fail: Any = None) -> None:
        self.fail = fail or (lambda call, event_id: False)
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        call = len(self.calls)
        self.calls.append(Entries)
        results = []
        for entry in Entries:
            if self.fail(call, json.loads(entry["Detail"])["event_id"]):
                results.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"})
            else:
                results.append({"EventId": f"id-{call}-{len(results)}"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}

    def ids(self, call: int) -> list[str]:
        return [json.loads(e["Detail"])["event_id"] for e in self.calls[call]]
