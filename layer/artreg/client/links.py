"""Links of the SDK (API.md, Links and Runs): a version linking others under roles, the versions that
link to one, and the runs the registry has heard of. `Registry` and `LoggedArtifact` expose these."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

from artreg.client.common import split_ref, wire
from artreg.model.names import check_role
from artreg.model.wire import LinkedBy, LinkedByPage, LinkPage, RunPage, RunSummary, SetLink, VersionLink

if TYPE_CHECKING:
    from artreg.client.logged import LoggedArtifact
    from artreg.client.registry import Registry

__all__ = ["LinkedBy", "RunSummary", "VersionLink", "link", "linked_by", "links", "runs", "target_of", "unlink"]


def target_of(target: str | LoggedArtifact) -> str:
    """A link's target as the API takes it: `name@ref` (a logged version: its `name@version`)."""
    return target if isinstance(target, str) else target.qualified_name


def _path(reg: Registry, name: str, ref: str | None, role: str | None = None) -> str:
    name, ref = split_ref(name, ref)
    base = reg._version(name, ref) + "/links"
    # a role's segments are path segments (IAM and the route see `links/checkpoints/epoch-3`)
    return base if role is None else f"{base}/{quote(check_role(role), safe='/')}"


def _if_match(digest: str | None) -> dict[str, str] | None:
    return None if digest is None else {"If-Match": f'"{digest}"'}


def link(
    reg: Registry, name: str, ref: str | None, role: str, target: str | LoggedArtifact, *, if_match: str | None = None
) -> VersionLink:
    """Links `name@ref` under `role` to the version `target` names now (pinned: its version and digest).
    With `if_match` (the digest of the role's current target) only if the role still points there."""
    body = wire(SetLink, target=target_of(target))
    answer = reg.transport.json(
        "PUT", _path(reg, name, ref, role), body=body.model_dump(mode="json"), headers=_if_match(if_match)
    )
    return VersionLink.model_validate(answer)


def unlink(reg: Registry, name: str, ref: str | None, role: str, *, if_match: str | None = None) -> None:
    reg.transport.json("DELETE", _path(reg, name, ref, role), headers=_if_match(if_match))


def links(reg: Registry, name: str, ref: str | None, *, page_size: int | None = None) -> Iterator[VersionLink]:
    """Every link of a version, in role order."""
    for page in reg._pages(LinkPage, _path(reg, name, ref), (), page_size):
        yield from page.items


def linked_by(reg: Registry, name: str, ref: str | None, *, page_size: int | None = None) -> Iterator[LinkedBy]:
    """Every version that links to `name@ref`, with the role it links it under."""
    name, ref = split_ref(name, ref)
    for page in reg._pages(LinkedByPage, reg._version(name, ref) + "/linked-by", (), page_size):
        yield from page.items


def runs(reg: Registry, *, page_size: int | None = None) -> Iterator[RunSummary]:
    """The runs the registry has heard of (as producers or users), most recently seen first."""
    path = f"/v1/projects/{quote(reg.project, safe='')}/runs"
    for page in reg._pages(RunPage, path, (), page_size):
        yield from page.items


def split_links(given: Mapping[str, str | LoggedArtifact], at_commit: int) -> tuple[dict[str, str], dict[str, str]]:
    """An upload's links: those it makes at commit (at most `at_commit`, in role order), and the rest,
    linked right after the commit, one call each."""
    ordered = {role: target_of(target) for role, target in sorted(given.items())}
    roles = list(ordered)
    return {r: ordered[r] for r in roles[:at_commit]}, {r: ordered[r] for r in roles[at_commit:]}
