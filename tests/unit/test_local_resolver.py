"""The local server's resolvers serve requests at once on many threads, each seeing its own request.

Powertools keeps the current request on its router class; `artreg.local.resolver` makes that
per-thread. These tests fail if a Powertools release stores the request somewhere else (then the
pin in pyproject.toml must not move until `local/resolver.py` follows)."""

from __future__ import annotations

import inspect
import threading
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from artreg.local.resolver import PerThread


def _event(path: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {},
        "requestContext": {
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": ""},
            "requestId": path,
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    }


class _Context:
    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id


def _two_overlapping_requests(get: Any) -> dict[str, str]:
    """Resolves /a, and /b on another thread while /a is inside its route; answers what each route saw."""
    a_in_route, b_done = threading.Event(), threading.Event()

    def build() -> APIGatewayHttpResolver:
        app = APIGatewayHttpResolver()

        @app.get("/<name>")
        def seen(name: str) -> dict[str, str]:
            if name == "a":
                a_in_route.set()
                assert b_done.wait(10)
            return {"path": app.current_event.path, "request": app.lambda_context.aws_request_id}

        return app

    resolvers = get(build)
    answers: dict[str, str] = {}

    def run(path: str) -> None:
        answer = resolvers().resolve(_event(path), _Context(path))
        answers[path] = answer["body"]
        if path == "/b":
            b_done.set()

    first = threading.Thread(target=run, args=("/a",))
    first.start()
    assert a_in_route.wait(10)
    second = threading.Thread(target=run, args=("/b",))
    second.start()
    second.join(10)
    first.join(10)
    return answers


def test_requests_resolved_at_once_each_see_their_own_event_and_context() -> None:
    # Given one resolver per thread, as the local server makes them
    # When /b is resolved on another thread while /a is inside its route
    answers = _two_overlapping_requests(lambda build: PerThread(build).get)

    # Then each route saw its own request and Lambda context
    assert answers == {"/a": '{"path":"/a","request":"/a"}', "/b": '{"path":"/b","request":"/b"}'}


def test_plain_resolvers_share_the_request_which_is_why_the_local_server_changes_them() -> None:
    # Given plain Powertools resolvers, one per thread (what Lambda never needs)
    local = threading.local()

    def per_thread(build: Any) -> Any:
        def get() -> APIGatewayHttpResolver:
            if not hasattr(local, "app"):
                local.app = build()
            return local.app

        return get

    # When /b is resolved while /a is inside its route
    answers = _two_overlapping_requests(per_thread)

    # Then /a saw /b's request: the state is on the class (if this fails, Powertools has changed where it
    # keeps the request, and artreg.local.resolver must be revisited before the pin moves)
    assert answers["/a"] == '{"path":"/b","request":"/b"}'


def test_resolve_still_hands_the_event_over_where_the_thread_resolver_catches_it() -> None:
    # Given the installed Powertools / Then `resolve` makes the event with `_to_proxy_event` and keeps
    # it on the class, which ThreadResolver relies on
    source = inspect.getsource(APIGatewayHttpResolver.resolve)
    assert "BaseRouter.current_event = self._to_proxy_event(" in source
    assert "BaseRouter.lambda_context = context" in source


def test_the_apis_own_resolver_keeps_its_checks_and_gets_its_own_request_per_thread() -> None:
    # Given a resolver class of its own that checks a request before Powertools sees it (as api.gate's)
    checked: list[str] = []

    class Checking(APIGatewayHttpResolver):
        def resolve(self, event: Any, context: Any) -> dict[str, Any]:
            checked.append(event["rawPath"])
            return super().resolve(event, context)

    def per_thread(build: Any) -> Any:
        return PerThread(lambda: _as(Checking, build())).get

    # When /b is resolved on another thread while /a is inside its route
    answers = _two_overlapping_requests(per_thread)

    # Then each route saw its own request, and both went through the class's own check
    assert answers == {"/a": '{"path":"/a","request":"/a"}', "/b": '{"path":"/b","request":"/b"}'}
    assert sorted(checked) == ["/a", "/b"]


def _as(cls: type[APIGatewayHttpResolver], app: APIGatewayHttpResolver) -> APIGatewayHttpResolver:
    app.__class__ = cls
    return app


def test_something_other_than_a_resolver_is_refused() -> None:
    # Given a build that makes something other than an APIGatewayHttpResolver
    # When it is asked for / Then it is refused rather than used
    with pytest.raises(TypeError):
        PerThread(object).get()  # type: ignore[arg-type]
