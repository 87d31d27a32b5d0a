// DOM building without markup strings: every string from the API becomes a text node or an attribute,
// never markup, so nothing the registry stores can run in the page.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "class") element.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

export function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** h("a", {href: "#/"}, "text", child...) */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, the same way. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(element) {
  while (element.firstChild) element.firstChild.remove();
  return element;
}

/** A hash route from its segments, each one encoded: `route("p", "vision", "a", "resnet")`. */
export function route(...segments) {
  return "#/" + segments.map((segment) => encodeURIComponent(segment)).join("/");
}

export function withQuery(hash, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== "") query.set(key, value);
  const text = query.toString();
  return text ? `${hash}?${text}` : hash;
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const text = unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
  return h("span", { title: `${n.toLocaleString("en")} bytes` }, text);
}

/** An RFC 3339 time as "2026-11-22 10:00:00 UTC", in a <time> element. */
export function when(iso) {
  if (!iso) return "—";
  const text = String(iso).replace("T", " ").replace(/\.\d+/, "").replace(/(Z|\+00:00)$/, " UTC");
  return h("time", { datetime: iso }, text);
}

export function short(digest, n = 12) {
  return digest ? h("code", { title: digest }, digest.slice(0, n)) : "—";
}

export function chips(values, kind, hrefOf) {
  if (!values || values.length === 0) return h("span", { class: "muted" }, "—");
  return h("span", { class: "chips" },
    values.map((value) => (hrefOf ? h("a", { class: ["chip", kind], href: hrefOf(value) }, value) : h("span", { class: ["chip", kind] }, value))));
}

/** JSON shown as text, keys in their stored order. */
export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

export function compactJson(value) {
  if (!value || (typeof value === "object" && Object.keys(value).length === 0)) return h("span", { class: "muted" }, "—");
  return h("code", { class: "meta" }, JSON.stringify(value));
}

export function table(headings, rows, attrs = {}) {
  return h("div", { class: "table-wrap" },
    h("table", attrs,
      h("thead", {}, h("tr", {}, headings.map((heading) => h("th", { scope: "col" }, heading)))),
      h("tbody", {}, rows)));
}

export function button(label, onclick, attrs = {}) {
  return h("button", { type: "button", onclick, ...attrs }, label);
}

/** Code to copy, with a button that copies it. */
export function copyable(label, text) {
  const code = h("code", {}, text);
  const status = h("span", { class: "copied", "aria-live": "polite" });
  return h("div", { class: "copy" },
    h("span", { class: "copy-label" }, label),
    h("pre", {}, code),
    button("Copy", async () => {
      try {
        await navigator.clipboard.writeText(text);
        status.textContent = "copied";
      } catch {
        status.textContent = "select and copy by hand";
      }
    }, { "aria-label": `Copy ${label}` }),
    status);
}

export function errorBox(error) {
  const code = error.code ? `${error.code}: ` : "";
  return h("div", { class: "error", role: "alert" }, h("strong", {}, error.status ? `${error.status} ` : ""), code, error.message || String(error));
}
