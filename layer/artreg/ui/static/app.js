// The router: hash routes (#/p/PROJECT/a/NAME/v/REF ...) to pages; each page is built from API calls.
import { clear, errorBox, h } from "./dom.js";
import { artifactPage, artifactsPage, projectsPage } from "./pages.js";
import { diffPage, versionPage } from "./version.js";
import { lineagePage, runPage } from "./graph.js";

const routes = [
  [[], projectsPage],
  [["p", ":project"], artifactsPage],
  [["p", ":project", "a", ":name"], artifactPage],
  [["p", ":project", "a", ":name", "v", ":ref"], versionPage],
  [["p", ":project", "a", ":name", "v", ":ref", "lineage"], lineagePage],
  [["p", ":project", "a", ":name", "diff"], diffPage],
  [["p", ":project", "runs", ":run"], runPage],
];

function match(segments) {
  for (const [pattern, page] of routes) {
    if (pattern.length !== segments.length) continue;
    const params = {};
    if (pattern.every((part, i) => (part.startsWith(":") ? ((params[part.slice(1)] = segments[i]), true) : part === segments[i]))) {
      return { page, params };
    }
  }
  return null;
}

function parse(hash) {
  const [path, query] = hash.replace(/^#\/?/, "").split("?", 2);
  let segments;
  try {
    segments = path ? path.split("/").map(decodeURIComponent) : [];
  } catch {
    segments = null;
  }
  return { segments, query: new URLSearchParams(query || "") };
}

let generation = 0;

async function render(focus) {
  const main = document.getElementById("main");
  const crumbs = document.getElementById("crumbs");
  const mine = ++generation;
  const { segments, query } = parse(window.location.hash);
  const found = segments && match(segments);
  const ctx = {
    params: found ? found.params : {},
    query,
    current: () => mine === generation,
    crumbs(items) {
      clear(crumbs).append(...items.map(([label, href], i) =>
        h("li", {}, i === items.length - 1 ? h("span", { "aria-current": "page" }, label) : h("a", { href }, label))));
      document.title = [...items.map(([label]) => label).reverse(), "artreg"].join(" · ");
    },
  };
  clear(main).append(h("p", { class: "muted" }, "Loading…"));
  let content;
  try {
    content = found ? await found.page(ctx) : h("div", {}, h("h1", {}, "Not found"), h("p", {}, "No page here. ", h("a", { href: "#/" }, "Projects")));
  } catch (error) {
    content = h("div", {}, h("h1", {}, "Could not load this page"), errorBox(error));
  }
  if (mine !== generation) return; // the user went elsewhere meanwhile
  clear(main).append(content);
  // after a navigation, focus goes where the page asks for input first, else to the page itself
  const wanted = content.querySelector("[autofocus]");
  if (wanted) wanted.focus();
  else if (focus) main.focus({ preventScroll: false });
}

window.addEventListener("hashchange", () => render(true));
render(false);
