// A version (its files paged, remote references, links, metadata, how to fetch it) and the diff of two.
import { apiConfig, get, paths } from "./api.js";
import { bytes, button, chips, clear, compactJson, copyable, errorBox, h, json, route, short, table, when, withQuery } from "./dom.js";
import { pagedTable } from "./pager.js";
import { artifactCrumbs, producerCell } from "./pages.js";

const FILES_PAGE = 100;
const DIFF_PAGE = 1000; // files read a call while diffing (the most the API gives)
const DIFF_SHOWN = 200; // differences shown before asking to go on

function quoteShell(text) {
  return `'${String(text).replace(/'/g, `'\\''`)}'`;
}

function pyString(text) {
  return JSON.stringify(String(text)); // a JSON string is a valid Python string literal
}

/** How to fetch this version: its URI, a curl command and the SDK line. */
async function fetchIt(record) {
  const config = await apiConfig();
  const base = String(config.api_url || window.location.origin).replace(/\/+$/, "");
  const resolve = base + paths.resolve(record.project, record.name, record.version);
  const sign = config.signed && config.region
    ? ` --aws-sigv4 ${quoteShell(`aws:amz:${config.region}:execute-api`)} --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-security-token: $AWS_SESSION_TOKEN"`
    : "";
  // the SDK signs for AWS hosts by itself; another host in front of a signed API needs telling
  const sdkSign = config.signed && !/\.amazonaws\.com$/i.test(new URL(base).hostname) ? ", sigv4=True" : "";
  const first = record.files && record.files[0];
  return h("section", { class: "fetch", "aria-label": "Fetch this version" },
    copyable("URI", `artreg://${record.project}/${record.name}@${record.version}`),
    copyable("curl (the record)", `curl -fsSL${sign} ${quoteShell(resolve)}`),
    first ? copyable("curl (a file)", `curl -fsSL${sign} ${quoteShell(`${resolve}?file=${encodeURIComponent(first.path)}`)} -o ${quoteShell(first.path.split("/").pop())}`) : null,
    copyable("Python SDK", `from artreg import Registry\nRegistry(${pyString(base)}, project=${pyString(record.project)}${sdkSign}).get_artifact(${pyString(record.name)}, version_or_alias=${pyString(record.version)}).download(${pyString("./" + record.name)})`));
}

function isRemote(entry) {
  return Object.prototype.hasOwnProperty.call(entry, "uri");
}

function verified(entry) {
  return entry.verified ? h("span", { class: "badge ok" }, "verified") : h("span", { class: "badge warn" }, "not verified");
}

function fileRow(record, entry) {
  const download = paths.file(record.project, record.name, record.version, entry.path);
  if (isRemote(entry)) {
    return h("tr", { class: "remote" },
      h("th", { scope: "row" }, h("code", {}, entry.path)),
      h("td", { class: "num" }, bytes(entry.size)),
      h("td", {}, h("span", { class: "muted" }, "remote "), verified(entry), h("br"), h("code", { class: "uri" }, entry.uri)),
      h("td", {}, compactJson(entry.metadata)),
      h("td", {}, /^https?:\/\//i.test(entry.uri) ? h("a", { href: download, rel: "noreferrer" }, "open") : h("span", { class: "muted" }, "—")));
  }
  return h("tr", {},
    h("th", { scope: "row" }, h("code", {}, entry.path)),
    h("td", { class: "num" }, bytes(entry.size)),
    h("td", {}, short(entry.sha256)),
    h("td", {}, compactJson(entry.metadata)),
    h("td", {}, h("a", { href: download, download: entry.path.split("/").pop(), rel: "noreferrer", "aria-label": `Download ${entry.path}` }, "download")));
}

export async function versionPage(ctx) {
  const { project, name, ref } = ctx.params;
  ctx.crumbs([...artifactCrumbs(project, name), [ref, route("p", project, "a", name, "v", ref)]]);
  const record = await get(paths.version(project, name, ref));
  const files = pagedTable({
    label: "Files",
    headings: ["Path", "Size", "SHA-256 / reference", "Metadata", ""],
    // paged by the version itself, not the ref: an alias that moves meanwhile changes nothing here
    fetchPage: (cursor) => get(paths.files(project, name, record.version), { limit: FILES_PAGE, cursor }),
    row: (entry) => fileRow(record, entry),
    empty: "No files.",
  });
  const [fetchSection] = await Promise.all([fetchIt(record), files.ready]);
  const link = (r) => route("p", project, "a", name, "v", r);

  const page = h("div", {},
    h("h1", {}, h("span", { id: "version-title" }, `${name}@${record.version}`), " ",
      h("span", { class: "badge" }, record.type),
      record.state === "deleted" ? h("span", { class: "badge warn" }, "deleted") : null),
    ref !== record.version ? h("p", { class: "muted" }, `${ref} points at ${record.version}.`) : null,
    h("dl", { class: "facts" },
      h("dt", {}, "Aliases"), h("dd", {}, chips(record.aliases, "alias", link)),
      h("dt", {}, "Tags"), h("dd", {}, chips(record.tags, "tag")),
      h("dt", {}, "Size"), h("dd", {}, bytes(record.size), ` in ${record.file_count.toLocaleString("en")} file${record.file_count === 1 ? "" : "s"}`),
      h("dt", {}, "Digest"), h("dd", {}, h("code", { class: "digest" }, record.digest)),
      h("dt", {}, "Producer"), h("dd", {}, producerCell(project, record.producer)),
      record.producer && record.producer.inputs && record.producer.inputs.length
        ? [h("dt", {}, "Inputs"), h("dd", {}, record.producer.inputs.join(", "))] : null,
      h("dt", {}, "Created"), h("dd", {}, when(record.created_at), record.created_by ? ` by ${record.created_by}` : ""),
      record.deleted_at ? [h("dt", {}, "Deleted"), h("dd", {}, when(record.deleted_at))] : null),
    h("p", { class: "actions" },
      h("a", { class: "button", href: route("p", project, "a", name, "v", record.version, "lineage") }, "Lineage"),
      h("a", { class: "button", href: withQuery(route("p", project, "a", name, "diff"), { b: record.version }) }, "Compare with another version")),
    h("h2", {}, "Fetch it"), fetchSection,
    h("h2", {}, "Metadata"), Object.keys(record.metadata || {}).length ? json(record.metadata) : h("p", { class: "muted" }, "None."),
    links(project, record),
    remoteSection(record),
    h("h2", {}, `Files (${record.file_count.toLocaleString("en")})`), files.element);
  return page;
}

function links(project, record) {
  if (!Array.isArray(record.links)) return null; // a registry without links (API.md v1.0)
  const rows = record.links.map((link) => {
    const target = link.target || {};
    return h("tr", {},
      h("th", { scope: "row" }, h("code", {}, link.role)),
      h("td", {}, target.name && target.version ? h("a", { href: route("p", project, "a", target.name, "v", target.version) }, `${target.name}@${target.version}`) : "—"),
      h("td", {}, short(target.digest)),
      h("td", {}, when(link.at)),
      h("td", { class: "by" }, link.by || "—"));
  });
  return h("section", { id: "links" }, h("h2", {}, "Links"),
    rows.length ? table(["Role", "Target", "Digest", "Linked at", "By"], rows) : h("p", { class: "muted" }, "No links."),
    record.links_truncated ? h("p", { class: "muted" }, "The first 1,000 links are shown.") : null);
}

function remoteSection(record) {
  const remote = record.remote || [];
  if (!remote.length) return null;
  const rows = remote.map((entry) => h("tr", {},
    h("th", { scope: "row" }, h("code", {}, entry.path)),
    h("td", {}, h("code", { class: "uri" }, entry.uri)),
    h("td", {}, verified(entry)),
    h("td", { class: "num" }, bytes(entry.size)),
    h("td", {}, entry.etag ? h("code", {}, entry.etag) : "—"),
    h("td", {}, entry.version_id ? h("code", {}, entry.version_id) : h("span", { class: "muted" }, "not pinned"))));
  return h("section", { id: "remote" }, h("h2", {}, "Remote references"),
    table(["Path", "URI", "Checked", "Size", "ETag", "Object version"], rows),
    record.files_truncated ? h("p", { class: "muted" }, "The version holds more entries than its record lists: see Files.") : null);
}

// ------------------------------------------------------------------ diff

/** Compares two strings by code point, as the registry orders paths (JavaScript's < compares UTF-16 units). */
function byCodePoint(a, b) {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i].codePointAt(0) - y[i].codePointAt(0);
  }
  return x.length - y.length;
}

/** Walks the files of a version page by page, never holding more than one page. */
function walker(project, name, version) {
  let items = [];
  let index = 0;
  let cursor = null;
  let done = false;
  let started = false;
  return {
    calls: 0,
    async peek() {
      while (index >= items.length && !done) {
        const page = await get(paths.files(project, name, version), { limit: DIFF_PAGE, cursor });
        this.calls += 1;
        started = true;
        items = page.items;
        index = 0;
        cursor = page.next_cursor || null;
        done = !cursor;
      }
      return started && index < items.length ? items[index] : null;
    },
    take() {
      index += 1;
    },
  };
}

function sameEntry(a, b) {
  return a.sha256 === b.sha256 && a.size === b.size && a.uri === b.uri && JSON.stringify(a.metadata || {}) === JSON.stringify(b.metadata || {});
}

function stable(value) {
  if (Array.isArray(value)) return `[${value.map(stable).join(",")}]`;
  if (value && typeof value === "object") return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${stable(value[k])}`).join(",")}}`;
  return JSON.stringify(value);
}

function metadataChanges(before, after) {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys.flatMap((key) => {
    const had = Object.prototype.hasOwnProperty.call(before, key);
    const has = Object.prototype.hasOwnProperty.call(after, key);
    if (had && has && stable(before[key]) === stable(after[key])) return [];
    const change = !had ? "added" : !has ? "removed" : "changed";
    return [h("tr", { class: change },
      h("th", { scope: "row" }, h("code", {}, key)),
      h("td", {}, change),
      h("td", {}, had ? h("code", {}, JSON.stringify(before[key])) : "—"),
      h("td", {}, has ? h("code", {}, JSON.stringify(after[key])) : "—"))];
  });
}

export async function diffPage(ctx) {
  const { project, name } = ctx.params;
  const a = ctx.query.get("a") || "";
  const b = ctx.query.get("b") || "";
  ctx.crumbs([...artifactCrumbs(project, name), ["Compare", route("p", project, "a", name, "diff")]]);
  const from = h("input", { id: "diff-a", name: "a", value: a, required: true, placeholder: "1.0.0 or an alias", autocomplete: "off", autofocus: !a });
  const to = h("input", { id: "diff-b", name: "b", value: b, required: true, placeholder: "2.0.0 or an alias", autocomplete: "off" });
  const form = h("form", {
    class: "filters",
    onsubmit(event) {
      event.preventDefault();
      window.location.hash = withQuery(route("p", project, "a", name, "diff"), { a: from.value.trim(), b: to.value.trim() });
    },
  }, h("label", { for: "diff-a" }, "From "), from, h("label", { for: "diff-b" }, " to "), to, h("button", { type: "submit" }, "Compare"));
  const page = h("div", {}, h("h1", {}, `Compare versions of ${name}`), form);
  if (!a || !b) {
    page.append(h("p", { class: "muted" }, "Give two versions or aliases."));
    return page;
  }
  const [left, right] = await Promise.all([get(paths.version(project, name, a)), get(paths.version(project, name, b))]);
  const link = (v) => h("a", { href: route("p", project, "a", name, "v", v) }, v);
  page.append(h("p", { id: "diff-summary" }, "From ", link(left.version), " to ", link(right.version), ": ",
    left.digest === right.digest ? "the same files." : "the files differ."));

  const meta = metadataChanges(left.metadata || {}, right.metadata || {});
  page.append(h("h2", {}, "Metadata"), meta.length ? table(["Key", "Change", "Before", "After"], meta, { id: "metadata-diff" }) : h("p", { class: "muted" }, "No change."));
  const tagsAdded = right.tags.filter((t) => !left.tags.includes(t));
  const tagsRemoved = left.tags.filter((t) => !right.tags.includes(t));
  if (tagsAdded.length || tagsRemoved.length) {
    page.append(h("h2", {}, "Tags"), h("p", {}, "Added: ", chips(tagsAdded, "tag"), " Removed: ", chips(tagsRemoved, "tag")));
  }

  page.append(h("h2", {}, "Files"));
  if (left.digest === right.digest) {
    page.append(h("p", { class: "muted" }, `Same manifest digest: all ${right.file_count.toLocaleString("en")} entries are the same.`));
    return page;
  }
  page.append(filesDiff(project, name, left, right));
  return page;
}

/** Added, removed and changed entries, found by walking both path-ordered lists side by side; stops
 * after DIFF_SHOWN differences until asked to go on. */
function filesDiff(project, name, left, right) {
  const l = walker(project, name, left.version);
  const r = walker(project, name, right.version);
  const counts = { added: 0, removed: 0, changed: 0 };
  const rows = h("tbody");
  const status = h("p", { id: "diff-status", "aria-live": "polite" });
  const more = h("div");
  const section = h("section", {}, status,
    h("div", { class: "table-wrap" }, h("table", { id: "files-diff" },
      h("thead", {}, h("tr", {}, ["Path", "Change", "Before", "After"].map((t) => h("th", { scope: "col" }, t)))), rows)),
    more);
  const describe = (e) => (e ? [bytes(e.size), " ", e.sha256 ? short(e.sha256, 8) : h("code", {}, e.uri)] : "—");

  async function step() {
    clear(more);
    status.textContent = "Comparing…";
    let shown = 0;
    try {
      while (shown < DIFF_SHOWN) {
        const [x, y] = [await l.peek(), await r.peek()];
        if (!x && !y) break;
        const order = !x ? 1 : !y ? -1 : byCodePoint(x.path, y.path);
        let change = null;
        if (order < 0) {
          change = ["removed", x, null];
          l.take();
        } else if (order > 0) {
          change = ["added", null, y];
          r.take();
        } else {
          if (!sameEntry(x, y)) change = ["changed", x, y];
          l.take();
          r.take();
        }
        if (change) {
          const [kind, before, after] = change;
          counts[kind] += 1;
          shown += 1;
          rows.append(h("tr", { class: kind }, h("th", { scope: "row" }, h("code", {}, (before || after).path)), h("td", {}, kind), h("td", {}, describe(before)), h("td", {}, describe(after))));
        }
      }
      const finished = !(await l.peek()) && !(await r.peek());
      status.textContent = `${counts.added} added, ${counts.removed} removed, ${counts.changed} changed${finished ? "" : " so far"} (${l.calls + r.calls} file pages read).`;
      if (!finished) more.append(button("Show more differences", step));
    } catch (error) {
      more.append(errorBox(error));
    }
  }
  step();
  return section;
}
