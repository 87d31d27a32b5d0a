// A table of one page of a cursor-paged list, with Previous / Next: never more than one page loaded.
import { button, clear, errorBox, h, table } from "./dom.js";

/**
 * fetchPage(cursor) answers {items, next_cursor}; row(item, nextItem) answers a <tr>.
 * Answers {element, ready}: ready settles when the first page is shown.
 */
export function pagedTable({ headings, fetchPage, row, empty = "Nothing here.", label, onPage }) {
  const body = h("div", { class: "paged" });
  const status = h("p", { class: "pager-status muted", "aria-live": "polite" });
  const previous = button("← Previous", () => show(cursors.length - 2), { disabled: true });
  const next = button("Next →", () => show(cursors.length), { disabled: true });
  const element = h("section", { class: "pager", "aria-label": label }, body, h("div", { class: "pager-nav" }, previous, next, status));
  // cursors[i] is the cursor of page i (null for the first); the last one is the page shown
  const cursors = [];
  let nextCursor = null;

  async function show(index) {
    const cursor = index === 0 ? null : index === cursors.length ? nextCursor : cursors[index];
    previous.disabled = next.disabled = true;
    status.textContent = "Loading…";
    try {
      const page = await fetchPage(cursor);
      cursors.length = index;
      cursors.push(cursor);
      nextCursor = page.next_cursor || null;
      clear(body).append(page.items.length ? table(headings, page.items.map((item, i) => row(item, page.items[i + 1]))) : h("p", { class: "muted" }, empty));
      status.textContent = `Page ${index + 1}${nextCursor ? "" : " (last)"}`;
      if (onPage) onPage(page);
    } catch (error) {
      clear(body).append(errorBox(error));
      status.textContent = "";
    }
    previous.disabled = cursors.length <= 1;
    next.disabled = !nextCursor;
  }
  return { element, ready: show(0) };
}
