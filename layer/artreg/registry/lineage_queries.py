"""Lineage queries: the runs and versions around a version, and what one run produced and used,
walked over the edges the lineage consumer (`lineage`) records from the registry's events."""

from __future__ import annotations

from collections.abc import Callable

from artreg.model import names
from artreg.model.errors import Invalid
from artreg.model.wire import GraphEdge, GraphNode, LineageGraph, RunLineage, RunPage, RunSummary
from artreg.registry import cursors, paging
from artreg.registry.context import Context, not_found
from artreg.registry.ports import MetadataStore
from artreg.registry.queries import Queries
from artreg.registry.records import EdgeKind, LineageEdge, StoredLink, version_id


class LineageQueries:
    def __init__(self, context: Context, queries: Queries, catch_up: Callable[[], None] | None = None):
        self.c = context
        self.queries = queries
        # lineage is recorded from events; the local server hands in a way to record what is pending
        # first, so that a lineage query there sees every write made before it
        self._catch_up = catch_up

    def lineage(
        self,
        project: str,
        name: str,
        ref: str,
        *,
        direction: str = "both",
        depth: int | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> LineageGraph:
        """The runs and versions around a version: upstream, the run that produced it and the versions
        that run used, and the versions it links to, and so on; downstream, the runs that used it and
        the versions they produced, and the versions that link to it. A link is one step, as a run is.
        `depth` counts runs away from the version; `limit` bounds the neighbours taken of each node (a
        node with more is `truncated`); `cursor` pages through the neighbours of the version itself."""
        if direction not in ("upstream", "downstream", "both"):
            raise Invalid("direction is upstream, downstream or both", details={"field": "direction"})
        depth = self.c.policy.lineage_depth if depth is None else depth
        if not 1 <= depth <= self.c.policy.max_lineage_depth:
            raise Invalid(f"depth must be between 1 and {self.c.policy.max_lineage_depth}", details={"field": "depth"})
        fan_out = paging.limit(self.c.policy, limit)
        position = cursors.decode(cursor, cursors.LineageWays)
        given = position.model_fields_set
        if self._catch_up:
            self._catch_up()
        root = self.queries.resolve(project, name, ref)
        graph = _Graph(self.c.store, project, fan_out, self.c.policy.max_lineage_nodes)
        graph.version(root.name, root.version)
        following: dict[str, str] = {}
        for way in ("upstream", "downstream"):
            if direction not in (way, "both") or (given and way not in given):
                continue  # not asked for, or the root's neighbours that way ended on an earlier page
            after = position.upstream if way == "upstream" else position.downstream
            more = graph.walk(root.name, root.version, way, depth, after)
            if more:
                following[way] = more
        return LineageGraph(
            root=version_id(root.name, root.version),
            nodes=list(graph.nodes.values()),
            edges=list(graph.edges.values()),
            next_cursor=cursors.encode(following) if following else None,
        )

    def run(self, project: str, run_id: str, *, limit: int | None = None, cursor: str | None = None) -> RunLineage:
        """What a run produced and used, `name@version` each, a page of up to `limit` of them together."""
        names.check_project(project)
        names.check_run_id(run_id)
        after = cursors.decode(cursor, cursors.AfterEdge).after
        if self._catch_up:
            self._catch_up()
        edges, more = self.c.store.run_edges(project, run_id, None, after, paging.limit(self.c.policy, limit))
        if not edges and not after:
            raise not_found(f"run {run_id!r} of project {project}", run_id=run_id)
        return RunLineage(
            run_id=run_id,
            produced=[version_id(e.name, e.version) for e in edges if e.kind == "produced"],
            used=[version_id(e.name, e.version) for e in edges if e.kind == "used"],
            next_cursor=cursors.encode({"after": more}) if more else None,
        )

    def runs(self, project: str, *, limit: int | None = None, cursor: str | None = None) -> RunPage:
        """The runs the registry has heard of (as producers or users), most recently seen first."""
        names.check_project(project)
        before = cursors.decode(cursor, cursors.BeforeRun).before
        if self._catch_up:
            self._catch_up()
        found, more = self.c.store.list_runs(project, before, paging.limit(self.c.policy, limit))
        return RunPage(
            items=[RunSummary.model_validate(run.model_dump(exclude={"project"})) for run in found],
            next_cursor=cursors.encode({"before": more}) if more else None,
        )


def _run_id(run_id: str) -> str:
    return f"run:{run_id}"


class _Graph:
    """A lineage graph as it is walked: nodes and edges by id, each node's neighbours read once."""

    def __init__(self, store: MetadataStore, project: str, fan_out: int, max_nodes: int):
        self.store = store
        self.project = project
        self.fan_out = fan_out
        self.max_nodes = max_nodes
        self.nodes: dict[str, GraphNode] = {}
        self.edges: dict[tuple[str, str, str, str | None], GraphEdge] = {}

    def version(self, name: str, version: str) -> str:
        node_id = version_id(name, version)
        self.nodes.setdefault(node_id, GraphNode(id=node_id, kind="version", name=name, version=version))
        return node_id

    def run(self, edge: LineageEdge) -> str:
        """The run's node; its pipeline and step from the first of its edges that names them."""
        node_id = _run_id(edge.run_id)
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = GraphNode(id=node_id, kind="run", run_id=edge.run_id)
        if node.pipeline is None and node.step is None and (edge.pipeline or edge.step):
            self.nodes[node_id] = node.model_copy(update={"pipeline": edge.pipeline, "step": edge.step})
        return node_id

    def link(self, edge: LineageEdge) -> tuple[str, str]:
        run, version = self.run(edge), self.version(edge.name, edge.version)
        self.edges.setdefault((run, version, edge.kind, None), GraphEdge(from_=run, to=version, kind=edge.kind))
        return run, version

    def linked(self, link: StoredLink) -> tuple[str, str]:
        """A `linked` edge from the version holding a link to its target."""
        holder, target = self.version(link.name, link.version), self.version(link.target.name, link.target.version)
        key = (holder, target, "linked", link.role)
        self.edges.setdefault(key, GraphEdge(from_=holder, to=target, kind="linked", role=link.role))
        return holder, target

    def links(self, name: str, version: str, way: str) -> list[tuple[str, str]]:
        """The versions a version links to (upstream: what it holds) or that link to it (downstream),
        with their edges; the version is truncated when it has more than the fan-out."""
        if way == "upstream":
            found = self.store.list_links(self.project, name, version, None, self.fan_out + 1)
            more = len(found) > self.fan_out
            found = found[: self.fan_out]
        else:
            found, position = self.store.linked_by(self.project, name, version, None, self.fan_out)
            more = position is not None
        if more:
            self.truncate(version_id(name, version))
        reached = []
        for link in found:
            self.linked(link)
            reached.append((link.target.name, link.target.version) if way == "upstream" else (link.name, link.version))
        return reached

    def truncate(self, node_id: str) -> None:
        self.nodes[node_id] = self.nodes[node_id].model_copy(update={"truncated": True})

    def walk(self, name: str, version: str, way: str, depth: int, after: str | None) -> str | None:
        """Walks `depth` runs away from a version, upstream or downstream; answers the position after the
        version's own last neighbour taken, when it has more."""
        # upstream: version <- produced by run <- used by that run; downstream: the other way round
        into_version: EdgeKind
        out_of_run: EdgeKind
        into_version, out_of_run = ("produced", "used") if way == "upstream" else ("used", "produced")
        root = version_id(name, version)
        frontier, seen, root_more = [(name, version)], {root}, None
        walked_runs: set[str] = set()
        for _ in range(depth):
            reached: list[tuple[str, str]] = []
            for at_name, at_version in frontier:
                at_id = version_id(at_name, at_version)
                if len(self.nodes) >= self.max_nodes:
                    self.truncate(at_id)
                    continue
                start = after if at_id == root else None
                runs, more = self.store.version_edges(
                    self.project, at_name, at_version, into_version, start, self.fan_out
                )
                if more:
                    self.truncate(at_id)
                    root_more = more if at_id == root else root_more
                for linked in self.links(at_name, at_version, way):
                    if version_id(*linked) not in seen:
                        seen.add(version_id(*linked))
                        reached.append(linked)
                for run_edge in runs:
                    run_id, _ = self.link(run_edge)
                    if run_edge.run_id in walked_runs:
                        continue
                    walked_runs.add(run_edge.run_id)
                    made, run_more = self.store.run_edges(self.project, run_edge.run_id, out_of_run, None, self.fan_out)
                    if run_more:
                        self.truncate(run_id)
                    for edge in made:
                        _, reached_id = self.link(edge)
                        if reached_id not in seen:
                            seen.add(reached_id)
                            reached.append((edge.name, edge.version))
            frontier = reached
        return root_more
