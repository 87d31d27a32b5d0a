"""The `artreg` command's human output: tables, sizes, times and a version's description (light: no
SDK import, so that `artreg --help` stays fast)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from artreg.client import LoggedArtifact
    from artreg.model.wire import FileEntry, RemoteEntry


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def size_text(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else str(value or "")


def describe(v: LoggedArtifact, max_files: int = 20) -> str:
    lines = [
        f"{v.name}@{v.version}",
        f"  type       {v.type}",
        f"  state      {v.state}",
        f"  created    {when(v.created_at)}" + (f" by {v.created_by}" if v.created_by else ""),
        f"  aliases    {', '.join(v.aliases) or '-'}",
        f"  tags       {', '.join(v.tags) or '-'}",
        f"  size       {size_text(v.size)} in {v.file_count} file(s)",
        f"  digest     {v.digest}",
    ]
    if v.producer:
        lines.append(f"  run        {v.producer.run_id}" + (f" ({v.producer.pipeline})" if v.producer.pipeline else ""))
    if v.metadata:
        lines.append(f"  metadata   {json.dumps(v.metadata, ensure_ascii=False)}")
    if v.links:
        rows = [[x.role, f"{x.target.name}@{x.target.version}", x.target.digest[:12]] for x in v.links]
        lines += ["", table(["LINK ROLE", "TARGET", "DIGEST"], rows)]
        if v.links_truncated:
            lines.append("... and more links (GET .../versions/{ref}/links lists them all)")
    entries = file_rows([*v.files[:max_files], *v.remote[: max(0, max_files - len(v.files))]])
    if entries:
        with_metadata = any(row[3] for row in entries)
        headers = ["PATH", "SIZE", "SHA256 / URI", *(["METADATA"] if with_metadata else [])]
        lines += ["", table(headers, [row if with_metadata else row[:3] for row in entries])]
    more = v.file_count + len(v.remote) - len(entries)
    if more > 0:
        lines.append(f"... and {more} more")
    return "\n".join(lines)


def file_rows(entries: Iterable[FileEntry | RemoteEntry]) -> list[list[object]]:
    """PATH, SIZE, SHA256 (short) or URI, and the entry's own metadata as JSON ('' when none)."""
    rows: list[list[object]] = []
    for e in entries:
        shown = e.uri if hasattr(e, "uri") else getattr(e, "sha256", "")[:12]
        rows.append(
            [e.path, size_text(e.size), shown, json.dumps(e.metadata, ensure_ascii=False) if e.metadata else ""]
        )
    return rows
