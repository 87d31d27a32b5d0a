"""A lineage graph (API.md, Lineage) as text: a tree for the terminal, Mermaid or Graphviz for a picture.

An edge of the graph goes from a run to a version (the run produced it, or used it), or from a
version to one it links (`linked`, with its role); the pictures draw the data flowing instead: a used
version points at the run, the run at what it produced, a linked version at the version holding it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from artreg.model.wire import GraphEdge, GraphNode, LineageGraph


def merged(page: Callable[[str, str | None], LineageGraph], ref: str) -> LineageGraph:
    """Every page of a version's lineage (`page(ref, cursor)` fetches one) as one graph: a node seen
    twice keeps its truncated form only if no page had it whole."""
    nodes: dict[str, GraphNode] = {}
    edges: dict[tuple[str, str, str], GraphEdge] = {}
    cursor: str | None = None
    while True:
        got = page(ref, cursor)
        root = got.root
        for node in got.nodes:
            nodes[node.id] = node if node.truncated or node.id not in nodes else nodes[node.id]
        edges.update(((e.from_, e.to, e.kind), e) for e in got.edges)
        if not got.next_cursor:
            break
        cursor = got.next_cursor
        ref = root.rpartition("@")[2]  # the later pages of the version the first resolved to
    if cursor:  # every neighbour of the root is in now
        nodes[root] = nodes[root].model_copy(update={"truncated": False})
    return LineageGraph(root=root, nodes=list(nodes.values()), edges=list(edges.values()))


def label(node: GraphNode) -> str:
    if node.kind == "version":
        text = f"{node.name}@{node.version}"
    else:
        where = "/".join(p for p in (node.pipeline, node.step) if p)
        text = f"run {node.run_id}" + (f" ({where})" if where else "")
    return text + (" [more]" if node.truncated else "")


def _flow(edge: GraphEdge) -> tuple[str, str, str]:
    """An edge as data flows: (from, to, label)."""
    if edge.kind == "used":
        return edge.to, edge.from_, "used by"
    if edge.kind == "linked":
        return edge.to, edge.from_, f"linked as {edge.role}"
    return edge.from_, edge.to, "produced"


def tree(graph: LineageGraph) -> str:
    """The root, then what it came from (upstream) and what came of it (downstream), a level a run."""
    nodes = {n.id: n for n in graph.nodes}
    up: dict[str, list[tuple[str, str]]] = {}
    down: dict[str, list[tuple[str, str]]] = {}
    for edge in sorted(graph.edges, key=lambda e: (e.from_, e.to, e.kind)):
        if edge.kind == "produced":  # upstream of the version is its run; downstream of the run, the version
            up.setdefault(edge.to, []).append((edge.from_, "produced by"))
            down.setdefault(edge.from_, []).append((edge.to, "produced"))
        elif edge.kind == "linked":  # upstream of the holder is what it links; downstream of that, the holder
            up.setdefault(edge.from_, []).append((edge.to, f"links {edge.role}:"))
            down.setdefault(edge.to, []).append((edge.from_, f"linked as {edge.role} by"))
        else:  # upstream of the run is the version; downstream of the version, the run
            up.setdefault(edge.from_, []).append((edge.to, "used"))
            down.setdefault(edge.to, []).append((edge.from_, "used by"))
    lines = [label(nodes[graph.root])]
    branches = [(way, children) for way, children in (("upstream", up), ("downstream", down)) if graph.root in children]
    for i, (way, children) in enumerate(branches):
        last = i == len(branches) - 1
        lines.append(("└── " if last else "├── ") + way)
        lines += _branch(children, nodes, graph.root, "    " if last else "│   ", {graph.root})
    return "\n".join(lines)


def _branch(
    children: dict[str, list[tuple[str, str]]], nodes: dict[str, GraphNode], at: str, indent: str, seen: set[str]
) -> Iterator[str]:
    below = children.get(at, [])
    for i, (child, relation) in enumerate(below):
        last = i == len(below) - 1
        again = child in seen
        yield f"{indent}{'└── ' if last else '├── '}{relation} {label(nodes[child])}" + (" (above)" if again else "")
        if not again:
            seen.add(child)
            yield from _branch(children, nodes, child, indent + ("    " if last else "│   "), seen)


def mermaid(graph: LineageGraph) -> str:
    ids = {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}
    lines = ["flowchart LR"]
    for node in graph.nodes:
        text = label(node).replace('"', "#quot;")
        lines.append(f'    {ids[node.id]}["{text}"]' if node.kind == "version" else f'    {ids[node.id]}(["{text}"])')
    for source, target, relation in sorted(_flow(e) for e in graph.edges):
        lines.append(f"    {ids[source]} -->|{relation}| {ids[target]}")
    lines.append(f"    style {ids[graph.root]} stroke-width:3px")
    return "\n".join(lines)


def dot(graph: LineageGraph) -> str:
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph lineage {", "    rankdir=LR;"]
    for node in graph.nodes:
        shape = "box" if node.kind == "version" else "ellipse"
        bold = ", penwidth=3" if node.id == graph.root else ""
        lines.append(f"    {quoted(node.id)} [shape={shape}, label={quoted(label(node))}{bold}];")
    for source, target, relation in sorted(_flow(e) for e in graph.edges):
        lines.append(f"    {quoted(source)} -> {quoted(target)} [label={quoted(relation)}];")
    lines.append("}")
    return "\n".join(lines)
