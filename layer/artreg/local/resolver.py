"""The Lambda's resolver, made to serve many requests at once in one process.

Powertools keeps the request being handled on the resolver: `resolve` assigns the event and the
Lambda context to the router *class* (`BaseRouter.current_event`, `BaseRouter.lambda_context`), and
the route's arguments, the parsed request and the dependency cache to the instance (`self.context`).
Lambda runs one request per process at a time, so that is safe there; here every worker thread
gets its own resolver (its own `context`), and the class-level pair is read through properties of
a subclass that answer the calling thread's values, captured where `resolve` makes them. The
assignments to the class still happen and are never read back. This relies on how Powertools
3.x's `resolve` works, so the version is pinned in pyproject.toml and
tests/unit/test_local_resolver.py fails if a new version stores the request elsewhere.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext


class _Current(threading.local):
    event: APIGatewayProxyEventV2 | None = None
    context: LambdaContext | None = None


class ThreadResolver(APIGatewayHttpResolver):
    """An `APIGatewayHttpResolver` whose current event and Lambda context are the calling thread's; put
    in front of the resolver's own class (`_per_thread`), which may override `resolve` itself."""

    _current = _Current()

    @property  # type: ignore[override]
    def current_event(self) -> APIGatewayProxyEventV2:
        event = self._current.event
        if event is None:
            raise RuntimeError("no request is being resolved on this thread")
        return event

    @current_event.setter
    def current_event(self, value: APIGatewayProxyEventV2) -> None:
        self._current.event = value

    @property
    def lambda_context(self) -> LambdaContext:
        context = self._current.context
        if context is None:
            raise RuntimeError("no request is being resolved on this thread")
        return context

    @lambda_context.setter
    def lambda_context(self, value: LambdaContext) -> None:
        self._current.context = value

    def _to_proxy_event(self, event: dict[str, Any]) -> APIGatewayProxyEventV2:
        # `resolve` makes the event here and assigns it to the class: this thread keeps its own
        self._current.event = cast(APIGatewayProxyEventV2, super()._to_proxy_event(event))
        return self._current.event

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        self._current.context = context
        try:
            return super().resolve(event, context)
        finally:
            self._current.event = self._current.context = None


class PerThread:
    """One resolver per worker thread, each made by `build` (routes bound to the one registry) and
    turned into a `ThreadResolver`; a thread only ever uses its own."""

    def __init__(self, build: Callable[[], APIGatewayHttpResolver]) -> None:
        self._build = build
        self._mine = threading.local()

    def get(self) -> APIGatewayHttpResolver:
        app: APIGatewayHttpResolver | None = getattr(self._mine, "app", None)
        if app is None:
            app = self._build()
            if not isinstance(app, APIGatewayHttpResolver):
                raise TypeError(f"expected an APIGatewayHttpResolver, got {type(app).__name__}")
            # same layout, two properties and two overrides more: the routes stay bound as built
            app.__class__ = _per_thread(type(app))
            self._mine.app = app
        return app


@functools.cache
def _per_thread(resolver: type[APIGatewayHttpResolver]) -> type[APIGatewayHttpResolver]:
    """`resolver` with `ThreadResolver`'s per-thread request in front of it (the API's own resolver
    checks a request before Powertools sees it: that stays)."""
    if issubclass(resolver, ThreadResolver):
        return resolver
    return type(f"Thread{resolver.__name__}", (ThreadResolver, resolver), {})
