"""schemathesis hooks (SCHEMATHESIS_HOOKS=tests.support.fuzz_hooks): a page cursor is opaque, so the
fuzzer gets ones the API hands out instead of inventing text that could never be one."""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

from artreg.registry import cursors

FIRST_PAGE = cursors.encode({})  # the first page's position, in every listing
# the listings ordered by a name (project, artifact, role), whose later pages resume `after` one
BY_NAME = (
    "/v1/projects",
    "/v1/projects/{project}/artifacts",
    "/v1/projects/{project}/artifacts/{name}/versions/{ref}/links",
)

schemathesis.openapi.format(
    "artreg-cursor",
    st.one_of(st.just(FIRST_PAGE), st.from_regex(r"\A[a-z0-9]{1,20}\Z").map(lambda n: cursors.encode({"after": n}))),
)


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    """Keeps to rules of API.md that hang on the registry's state, which JSON Schema cannot state (in
    every phase: the coverage phase applies only case hooks)."""
    operation = context.operation
    if operation is None:
        return case
    # a later page's cursor of a name-ordered listing is one of that listing only: elsewhere (versions by
    # sort key, an alias's moves, runs by time, ...) the first page's is the one to give
    if case.query and "cursor" in case.query and operation.path not in BY_NAME:
        case.query = {**case.query, "cursor": FIRST_PAGE}
    # a version cannot link itself (400): a target in the holder's own artifact could name that very
    # version, so the target is of another artifact
    if operation.path.endswith("/links/{role}") and operation.method.upper() == "PUT" and isinstance(case.body, dict):
        target = case.body.get("target")
        holder = (case.path_parameters or {}).get("name")
        if isinstance(target, str) and holder is not None and target.split("@", 1)[0] == holder:
            rest = target[len(holder) :]
            case.body = {**case.body, "target": ("b" if holder == "a" else "a") + rest}
    return case
