// The lineage of a version drawn as SVG (runs and versions in columns, data flowing left to right),
// and a run with what it produced and used.
import { get, paths } from "./api.js";
import { button, clear, errorBox, h, route, s, table, withQuery } from "./dom.js";
import { artifactCrumbs, projectCrumbs } from "./pages.js";

const NODE_W = 170;
const NODE_H = 46;
const COL_GAP = 70;
const ROW_GAP = 18;
const PAD = 16;

/** Each edge as data flows: a run -> what it produced, what it used -> the run, a link's target -> the version holding it. */
function flow(edge) {
  if (edge.kind === "produced") return [edge.from, edge.to];
  return [edge.to, edge.from]; // "used": from the run to the version used; "linked": from holder to target
}

/** Columns by distance from the root along the flow: upstream to the left, downstream to the right. */
export function layout(graph) {
  const out = new Map();
  const add = (a, b, d) => {
    if (!out.has(a)) out.set(a, []);
    out.get(a).push([b, d]);
  };
  for (const edge of graph.edges) {
    const [src, dst] = flow(edge);
    add(src, dst, 1);
    add(dst, src, -1);
  }
  const column = new Map([[graph.root, 0]]);
  const queue = [graph.root];
  while (queue.length) {
    const id = queue.shift();
    for (const [next, d] of out.get(id) || []) {
      if (!column.has(next)) {
        column.set(next, column.get(id) + d);
        queue.push(next);
      }
    }
  }
  for (const node of graph.nodes) if (!column.has(node.id)) column.set(node.id, 0);
  const columns = new Map();
  for (const node of graph.nodes) {
    const c = column.get(node.id);
    if (!columns.has(c)) columns.set(c, []);
    columns.get(c).push(node);
  }
  const order = [...columns.keys()].sort((a, b) => a - b);
  const at = new Map();
  let rows = 0;
  order.forEach((c, x) => {
    const nodes = columns.get(c).sort((a, b) => (a.id === graph.root ? -1 : b.id === graph.root ? 1 : a.id.localeCompare(b.id)));
    nodes.forEach((node, y) => at.set(node.id, { x: PAD + x * (NODE_W + COL_GAP), y: PAD + y * (NODE_H + ROW_GAP) }));
    rows = Math.max(rows, nodes.length);
  });
  return { at, width: PAD * 2 + order.length * NODE_W + Math.max(0, order.length - 1) * COL_GAP, height: PAD * 2 + rows * NODE_H + Math.max(0, rows - 1) * ROW_GAP };
}

function fit(text, n = 24) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function nodeHref(project, node) {
  if (node.kind === "run") return route("p", project, "runs", node.run_id || node.id.replace(/^run:/, ""));
  return route("p", project, "a", node.name, "v", node.version);
}

function nodeLines(node) {
  if (node.kind === "run") return [`run ${node.run_id || node.id.replace(/^run:/, "")}`, [node.pipeline, node.step].filter(Boolean).join(" / ")];
  return [node.name || node.id, node.version || ""];
}

export function drawGraph(project, graph) {
  const { at, width, height } = layout(graph);
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  const svg = s("svg", { class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "graph-title" },
    s("title", { id: "graph-title" }, `Lineage of ${graph.root}: ${graph.nodes.length} nodes, ${graph.edges.length} edges`),
    s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }))));
  for (const edge of graph.edges) {
    const [src, dst] = flow(edge);
    const a = at.get(src);
    const b = at.get(dst);
    if (!a || !b) continue;
    const forward = b.x > a.x;
    const x1 = forward ? a.x + NODE_W : a.x;
    const x2 = forward ? b.x : b.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const y2 = b.y + NODE_H / 2;
    const bend = forward ? COL_GAP / 2 : -COL_GAP / 2;
    svg.append(s("path", {
      class: `edge ${edge.kind}`,
      "data-from": edge.from, "data-to": edge.to, "data-kind": edge.kind,
      d: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
      "marker-end": "url(#arrow)",
    }, s("title", {}, `${edge.kind}${edge.role ? ` (${edge.role})` : ""}: ${byId.get(edge.from)?.id || edge.from} → ${edge.to}`)));
  }
  for (const node of graph.nodes) {
    const p = at.get(node.id);
    const [first, second] = nodeLines(node);
    svg.append(s("a", { href: nodeHref(project, node), class: ["node", node.kind, node.id === graph.root && "root", node.truncated && "truncated"], "data-id": node.id },
      s("title", {}, `${node.kind}: ${node.id}${node.truncated ? " (more neighbours than shown)" : ""}`),
      s("rect", { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: node.kind === "run" ? 22 : 6 }),
      s("text", { x: p.x + 10, y: p.y + 19, class: "first" }, fit(first)),
      s("text", { x: p.x + 10, y: p.y + 36, class: "second" }, fit(second || "", 28))));
  }
  return svg;
}

export async function lineagePage(ctx) {
  const { project, name, ref } = ctx.params;
  const direction = ["upstream", "downstream", "both"].includes(ctx.query.get("direction")) ? ctx.query.get("direction") : "both";
  const depth = Math.min(10, Math.max(1, parseInt(ctx.query.get("depth") || "3", 10) || 3));
  ctx.crumbs([...artifactCrumbs(project, name), [ref, route("p", project, "a", name, "v", ref)], ["Lineage", route("p", project, "a", name, "v", ref, "lineage")]]);
  const graph = await get(paths.lineage(project, name, ref), { direction, depth });

  const directionSelect = h("select", { id: "direction", name: "direction" },
    ["both", "upstream", "downstream"].map((d) => h("option", { value: d, selected: d === direction }, d)));
  const depthInput = h("input", { id: "depth", name: "depth", type: "number", min: 1, max: 10, value: depth });
  const form = h("form", {
    class: "filters",
    onsubmit(event) {
      event.preventDefault();
      window.location.hash = withQuery(route("p", project, "a", name, "v", ref, "lineage"), { direction: directionSelect.value, depth: depthInput.value });
    },
  }, h("label", { for: "direction" }, "Direction "), directionSelect, h("label", { for: "depth" }, " Depth (runs away) "), depthInput, h("button", { type: "submit" }, "Draw"));

  const legend = h("p", { class: "legend" },
    h("span", { class: "key version" }, "version"), h("span", { class: "key run" }, "run"),
    h("span", { class: "key produced" }, "produced"), h("span", { class: "key used" }, "used"), h("span", { class: "key linked" }, "linked"));
  const nodes = graph.nodes.map((node) => h("tr", {},
    h("th", { scope: "row" }, h("a", { href: nodeHref(project, node) }, node.kind === "run" ? `run ${node.run_id || node.id}` : node.id)),
    h("td", {}, node.kind),
    h("td", {}, node.id === graph.root ? "this version" : node.truncated ? "more neighbours than shown" : "")));
  return h("div", {},
    h("h1", {}, `Lineage of ${graph.root}`),
    form, legend,
    graph.nodes.length > 1
      ? h("div", { class: "graph-wrap", tabindex: 0, "aria-label": "Lineage graph (scrolls)" }, drawGraph(project, graph))
      : h("p", { class: "muted" }, "No recorded run produced or used this version."),
    graph.next_cursor ? h("p", { class: "muted" }, "This version has more neighbours than the graph shows.") : null,
    h("h2", {}, "Nodes"), table(["Node", "Kind", ""], nodes, { id: "graph-nodes" }));
}

// ------------------------------------------------------------------ a run

function refLink(project, ref) {
  const at = ref.lastIndexOf("@");
  return at > 0 ? h("a", { href: route("p", project, "a", ref.slice(0, at), "v", ref.slice(at + 1)) }, ref) : ref;
}

export async function runPage(ctx) {
  const { project, run } = ctx.params;
  ctx.crumbs([...projectCrumbs(project), [`run ${run}`, route("p", project, "runs", run)]]);
  const produced = h("ul", { class: "plain", id: "run-produced" });
  const used = h("ul", { class: "plain", id: "run-used" });
  const more = h("div");
  async function load(cursor) {
    const answer = await get(paths.run(project, run), { limit: 100, cursor });
    produced.append(...answer.produced.map((ref) => h("li", {}, refLink(project, ref))));
    used.append(...answer.used.map((ref) => h("li", {}, refLink(project, ref))));
    clear(more);
    if (answer.next_cursor) more.append(button("More of this run", () => load(answer.next_cursor).catch((e) => more.append(errorBox(e)))));
  }
  await load(null);
  const none = (list) => (list.childElementCount ? list : h("p", { class: "muted" }, "Nothing recorded."));
  return h("div", {},
    h("h1", {}, `Run ${run}`),
    h("div", { class: "columns" },
      h("section", {}, h("h2", {}, "Used"), none(used)),
      h("section", {}, h("h2", {}, "Produced"), none(produced))),
    more);
}
