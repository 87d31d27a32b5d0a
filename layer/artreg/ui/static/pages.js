// Projects, a project's artifacts, and an artifact: its versions (paged) and its aliases over time.
import { ApiError, get, paths } from "./api.js";
import { bytes, button, chips, clear, errorBox, h, route, when, withQuery } from "./dom.js";
import { pagedTable } from "./pager.js";

const PROJECT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const RECENT = "artreg.recentProjects";
const COMMON_TYPES = ["dataset", "model", "metrics", "artifact"];
const VERSIONS_PAGE = 25; // a version record carries up to 1,000 files inline: small pages stay light

export function recentProjects() {
  try {
    const list = JSON.parse(window.localStorage.getItem(RECENT) || "[]");
    return Array.isArray(list) ? list.filter((p) => typeof p === "string" && PROJECT.test(p)) : [];
  } catch {
    return [];
  }
}

function remember(project) {
  const list = [project, ...recentProjects().filter((p) => p !== project)].slice(0, 10);
  try {
    window.localStorage.setItem(RECENT, JSON.stringify(list));
  } catch {
    // storage off: nothing to remember
  }
}

export function projectCrumbs(project) {
  return [["Projects", "#/"], [project, route("p", project)]];
}

export function artifactCrumbs(project, name) {
  return [...projectCrumbs(project), [name, route("p", project, "a", name)]];
}

/** A run's id as a link to its page. */
export function runLink(project, runId) {
  return h("a", { href: route("p", project, "runs", runId) }, runId);
}

export function producerCell(project, producer) {
  if (!producer) return h("span", { class: "muted" }, "—");
  const where = [producer.pipeline, producer.step].filter(Boolean).join(" / ");
  return h("span", {}, runLink(project, producer.run_id), where ? h("span", { class: "muted" }, ` (${where})`) : null);
}

// ------------------------------------------------------------------ projects

function openProjectForm() {
  const input = h("input", { id: "project-name", name: "project", required: true, pattern: PROJECT.source, autocomplete: "off", placeholder: "vision" });
  return h("form", {
    class: "inline",
    onsubmit(event) {
      event.preventDefault();
      if (input.reportValidity()) window.location.hash = route("p", input.value.trim());
    },
  }, h("label", { for: "project-name" }, "Open a project "), input, h("button", { type: "submit" }, "Open"));
}

export async function projectsPage(ctx) {
  ctx.crumbs([["Projects", "#/"]]);
  const page = h("div", {}, h("h1", {}, "Projects"));
  let listed = false;
  try {
    const answer = await get(paths.projects(), { limit: 100 });
    listed = true;
    page.append(projectList(answer));
  } catch (error) {
    // a registry without the projects route (404) still works by name; anything else is shown
    if (!(error instanceof ApiError && error.status === 404)) page.append(errorBox(error));
  }
  page.append(openProjectForm());
  const recent = recentProjects();
  if (!listed || recent.length) {
    page.append(h("h2", {}, "Recently visited"),
      recent.length
        ? h("ul", { class: "plain", id: "recent-projects" }, recent.map((p) => h("li", {}, h("a", { href: route("p", p) }, p))))
        : h("p", { class: "muted" }, "None yet: open a project by name."));
  }
  return page;
}

function projectList(first) {
  const list = h("ul", { class: "plain", id: "projects" });
  const more = h("div");
  function add(answer) {
    list.append(...answer.items.map((item) => h("li", {}, h("a", { href: route("p", item.project) }, item.project))));
    clear(more);
    if (answer.next_cursor) {
      more.append(button("More projects", async () => add(await get(paths.projects(), { limit: 100, cursor: answer.next_cursor }))));
    }
  }
  add(first);
  return h("section", {}, first.items.length ? list : h("p", { class: "muted" }, "No projects yet."), more);
}

// ------------------------------------------------------------------ a project's artifacts

export async function artifactsPage(ctx) {
  const { project } = ctx.params;
  const type = ctx.query.get("type") || "";
  const search = ctx.query.get("q") || "";
  ctx.crumbs(projectCrumbs(project));

  const typeInput = h("input", { id: "filter-type", name: "type", value: type, list: "types", placeholder: "any", autocomplete: "off" });
  const searchInput = h("input", { id: "filter-name", name: "q", value: search, type: "search", placeholder: "part of a name", autocomplete: "off" });
  const rows = h("tbody");
  const status = h("p", { class: "muted", "aria-live": "polite" });
  const more = h("div");
  const direct = h("p");
  const items = [];

  function visible(item) {
    const needle = searchInput.value.trim().toLowerCase();
    return !needle || item.name.toLowerCase().includes(needle);
  }
  function draw() {
    const shown = items.filter(visible);
    clear(rows).append(...shown.map((item) => h("tr", {},
      h("th", { scope: "row" }, h("a", { href: route("p", project, "a", item.name) }, item.name)),
      h("td", {}, item.type),
      h("td", {}, item.latest ? h("a", { href: route("p", project, "a", item.name, "v", item.latest) }, item.latest) : "—"),
      h("td", { class: "num" }, item.version_count.toLocaleString("en")),
      h("td", {}, chips(Object.keys(item.aliases || {}).sort(), "alias", (alias) => route("p", project, "a", item.name, "v", alias))),
      h("td", {}, when(item.updated_at)))));
    status.textContent = `${shown.length} of ${items.length} loaded artifact${items.length === 1 ? "" : "s"} shown`;
    const name = searchInput.value.trim();
    clear(direct);
    if (name && NAME.test(name) && !items.some((item) => item.name === name)) {
      direct.append("Not among those loaded: ", h("a", { href: route("p", project, "a", name) }, `open artifact “${name}”`));
    }
  }
  async function load(cursor) {
    const answer = await get(paths.artifacts(project), { type, limit: 100, cursor });
    items.push(...answer.items);
    draw();
    clear(more);
    if (answer.next_cursor) more.append(button("Load more artifacts", () => load(answer.next_cursor).catch((e) => more.append(errorBox(e)))));
  }
  await load(null);
  remember(project);
  searchInput.addEventListener("input", draw);

  const form = h("form", {
    class: "filters",
    role: "search",
    onsubmit(event) {
      event.preventDefault();
      window.location.hash = withQuery(route("p", project), { type: typeInput.value.trim(), q: searchInput.value.trim() });
    },
  },
  h("label", { for: "filter-type" }, "Type "), typeInput,
  h("datalist", { id: "types" }, COMMON_TYPES.map((t) => h("option", { value: t }))),
  h("label", { for: "filter-name" }, "Name "), searchInput,
  h("button", { type: "submit" }, "Filter"));

  return h("div", {},
    h("h1", {}, project),
    form, status, direct,
    h("div", { class: "table-wrap" }, h("table", { id: "artifacts" },
      h("thead", {}, h("tr", {}, ["Artifact", "Type", "Latest", "Versions", "Aliases", "Updated"].map((t) => h("th", { scope: "col" }, t)))),
      rows)),
    more);
}

// ------------------------------------------------------------------ an artifact

export async function artifactPage(ctx) {
  const { project, name } = ctx.params;
  const tag = ctx.query.get("tag") || "";
  ctx.crumbs(artifactCrumbs(project, name));
  const summary = get(paths.artifact(project, name));
  const versions = pagedTable({
    label: "Versions",
    headings: ["Version", "Aliases", "Tags", "Size", "Files", "Producer", "Created by", "Created at", ""],
    fetchPage: (cursor) => get(paths.versions(project, name), { limit: VERSIONS_PAGE, cursor, tag }),
    empty: tag ? `No version has the tag “${tag}”.` : "No versions.",
    row: (v, older) => versionRow(project, name, v, older),
  });
  const [artifact] = await Promise.all([summary, versions.ready]);

  const aliases = { ...(artifact.aliases || {}) };
  if (artifact.latest && !aliases.latest) aliases.latest = artifact.latest; // kept by the registry, listed apart
  const aliasNames = Object.keys(aliases).sort((a, b) => (a === "latest") - (b === "latest") || a.localeCompare(b));
  const tagInput = h("input", { id: "filter-tag", name: "tag", value: tag, autocomplete: "off", placeholder: "a tag" });
  const page = h("div", {},
    h("h1", {}, name, " ", h("span", { class: "badge" }, artifact.type)),
    h("dl", { class: "facts" },
      h("dt", {}, "Latest"), h("dd", {}, artifact.latest ? h("a", { href: route("p", project, "a", name, "v", artifact.latest) }, artifact.latest) : "—"),
      h("dt", {}, "Versions"), h("dd", { id: "version-count" }, artifact.version_count.toLocaleString("en")),
      h("dt", {}, "Aliases"), h("dd", {}, aliasNames.length ? h("span", { class: "chips" }, aliasNames.map((alias) =>
        h("a", { class: "chip alias", href: route("p", project, "a", name, "v", alias) }, `${alias} → ${aliases[alias]}`))) : "—"),
      h("dt", {}, "Created"), h("dd", {}, when(artifact.created_at)),
      h("dt", {}, "Updated"), h("dd", {}, when(artifact.updated_at))),
    h("p", { class: "actions" },
      artifact.latest ? h("a", { class: "button", href: route("p", project, "a", name, "v", artifact.latest, "lineage") }, "Lineage of latest") : null,
      h("a", { class: "button", href: route("p", project, "a", name, "diff") }, "Compare two versions")),
    h("h2", {}, "Versions"),
    h("form", {
      class: "filters",
      onsubmit(event) {
        event.preventDefault();
        window.location.hash = withQuery(route("p", project, "a", name), { tag: tagInput.value.trim() });
      },
    }, h("label", { for: "filter-tag" }, "Only versions tagged "), tagInput, h("button", { type: "submit" }, "Filter")),
    versions.element,
    h("h2", {}, "Aliases over time"),
    aliasNames.length ? h("div", { id: "alias-histories" }, aliasNames.map((alias, i) =>
      aliasHistory(project, name, alias, aliases[alias], alias !== "latest" && i < 5))) : h("p", { class: "muted" }, "No aliases."));
  return page;
}

function versionRow(project, name, v, older) {
  const link = (ref) => route("p", project, "a", name, "v", ref);
  return h("tr", { class: v.state === "deleted" ? "deleted" : null },
    h("th", { scope: "row" }, h("a", { href: link(v.version) }, v.version), v.state === "deleted" ? h("span", { class: "badge warn" }, "deleted") : null),
    h("td", {}, chips(v.aliases, "alias", link)),
    h("td", {}, chips(v.tags, "tag")),
    h("td", { class: "num" }, bytes(v.size)),
    h("td", { class: "num" }, v.file_count.toLocaleString("en")),
    h("td", {}, producerCell(project, v.producer)),
    h("td", { class: "by" }, v.created_by || "—"),
    h("td", {}, when(v.created_at)),
    h("td", {}, h("a", {
      href: withQuery(route("p", project, "a", name, "diff"), { a: older ? older.version : "", b: v.version }),
      "aria-label": older ? `Compare ${older.version} with ${v.version}` : `Compare ${v.version} with another version`,
    }, older ? "diff" : "compare")));
}

/** An alias's moves, newest first, as a timeline; loaded when opened, 20 moves at a time. */
function aliasHistory(project, name, alias, current, open) {
  const list = h("ol", { class: "timeline", "aria-label": `History of ${alias}` });
  const more = h("div");
  let loaded = false;
  async function load(cursor) {
    try {
      const answer = await get(paths.history(project, name, alias), { limit: 20, cursor });
      list.append(...answer.items.map((move) => h("li", { class: move.version ? "move" : "move removed" },
        h("span", { class: "when" }, when(move.at)),
        h("span", { class: "what" },
          move.version
            ? [h("a", { href: route("p", project, "a", name, "v", move.version) }, move.version),
              move.previous_version ? h("span", { class: "muted" }, ` (was ${move.previous_version})`) : h("span", { class: "muted" }, " (first)")]
            : [h("span", {}, "removed"), move.previous_version ? h("span", { class: "muted" }, ` (was ${move.previous_version})`) : null]),
        move.by ? h("span", { class: "by muted" }, ` by ${move.by}`) : null)));
      clear(more);
      if (answer.next_cursor) more.append(button(`Older moves of ${alias}`, () => load(answer.next_cursor)));
      if (!answer.items.length && !cursor) list.append(h("li", { class: "muted" }, "No recorded moves."));
    } catch (error) {
      clear(more).append(errorBox(error));
    }
  }
  const details = h("details", { class: "alias-history", "data-alias": alias, open },
    h("summary", {}, h("strong", {}, alias), ` → ${current}`), list, more);
  details.addEventListener("toggle", () => {
    if (details.open && !loaded) {
      loaded = true;
      load(null);
    }
  });
  if (open) {
    loaded = true;
    load(null);
  }
  return details;
}
