"""Lambda's asynchronous invocation (`InvocationType="Event"`), which moto cannot give without Docker,
done as AWS documents it: the call queues the event and answers 202 at once, with no result, and the
function runs afterwards. Here the function's handler runs on a background thread once the call has
returned. https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html

`hold()` keeps queued runs waiting (a test that looks at a blob while it is being verified);
`release()` lets them go; `drain()` releases and waits for every run."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from tests.support.lambda_context import LambdaContext


class AsyncLambda:
    """A Lambda client whose `invoke` takes asynchronous invocations only, and runs `handler` for each."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any]) -> None:
        self.handler = handler
        self.invoked: list[tuple[str, dict[str, Any]]] = []
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._go = threading.Event()
        self._go.set()

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes, **_: Any) -> dict[str, Any]:
        assert InvocationType == "Event", "the verifier is only ever invoked asynchronously"
        event = json.loads(Payload)
        self.invoked.append((FunctionName, event))
        thread = threading.Thread(target=self._run, args=(event,), daemon=True)
        self._threads.append(thread)
        thread.start()  # runs once this call has answered (or when released)
        return {"StatusCode": 202}

    def _run(self, event: dict[str, Any]) -> None:
        self._go.wait(timeout=120)
        try:
            self.handler(event, LambdaContext("artreg-verifier", 1769, 900_000, "req-verify"))
        except BaseException as error:  # a failed run: Lambda would retry it; a test sees it here
            self.errors.append(error)

    def hold(self) -> None:
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    def drain(self) -> None:
        self.release()
        for thread in self._threads:
            thread.join(timeout=120)
        assert self.errors == []
