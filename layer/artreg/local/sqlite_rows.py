"""The SQLite store's rows of links, lineage edges and runs, written and read inside the store's
transactions (see `sqlite_store`): a link and its target's check, and a new edge with its run's
summary, each in the write that makes them."""

from __future__ import annotations

import sqlite3

from artreg import events
from artreg.model import versions
from artreg.registry import keys
from artreg.registry.ports import TargetGone
from artreg.registry.records import LineageEdge, RunSeen, StoredLink, Unlink


def set_link(db: sqlite3.Connection, link: StoredLink) -> events.LinkWritten:
    """Links (or re-points) a role; the target must be committed, as DynamoDB's condition says."""
    state = db.execute(
        "SELECT state FROM versions WHERE project = ? AND name = ? AND sort_key = ?",
        (link.project, link.target.name, link.target_sort_key),
    ).fetchone()
    if state is None or state[0] != "committed":
        raise TargetGone(link)
    db.execute(
        "INSERT INTO links (project, name, sort_key, role, target_name, target_sort_key, holder_position, json)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project, name, sort_key, role) DO UPDATE SET"
        " target_name = excluded.target_name, target_sort_key = excluded.target_sort_key, json = excluded.json",
        (
            link.project,
            link.name,
            link.sort_key,
            link.role,
            link.target.name,
            link.target_sort_key,
            keys.linked_by_position(link),
            link.model_dump_json(),
        ),
    )
    return events.LinkWritten(link)


def remove_link(db: sqlite3.Connection, unlink: Unlink) -> events.UnlinkWritten:
    link = unlink.link
    db.execute(
        "DELETE FROM links WHERE project = ? AND name = ? AND sort_key = ? AND role = ?",
        (link.project, link.name, link.sort_key, link.role),
    )
    return events.UnlinkWritten(unlink)


def insert_edge(db: sqlite3.Connection, edge: LineageEdge) -> bool:
    inserted = db.execute(
        "INSERT OR IGNORE INTO lineage"
        " (project, run_id, run_position, name, sort_key, version_position, json) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            edge.project,
            edge.run_id,
            keys.run_position(edge),
            edge.name,
            versions.sort_key(edge.version),
            keys.version_position(edge),
            edge.model_dump_json(),
        ),
    )
    return inserted.rowcount == 1


def see_run(db: sqlite3.Connection, edge: LineageEdge) -> None:
    """Counts a new edge in its run's summary."""
    row = db.execute("SELECT json FROM runs WHERE project = ? AND run_id = ?", (edge.project, edge.run_id)).fetchone()
    seen = (RunSeen.model_validate_json(row[0]) if row else RunSeen.first(edge)).seeing(edge)
    db.execute(
        "INSERT INTO runs (project, run_id, position, json) VALUES (?, ?, ?, ?) ON CONFLICT (project, run_id)"
        " DO UPDATE SET position = excluded.position, json = excluded.json",
        (edge.project, edge.run_id, keys.run_seen_position(seen.last_seen, seen.run_id), seen.model_dump_json()),
    )


def list_runs(db: sqlite3.Connection, project: str, before: str | None, limit: int) -> tuple[list[RunSeen], str | None]:
    found = db.execute(
        "SELECT position, json FROM runs WHERE project = ? AND position < ? ORDER BY position DESC LIMIT ?",
        (project, before or "\U0010ffff", limit + 1),
    ).fetchall()
    runs = [RunSeen.model_validate_json(text) for _, text in found[:limit]]
    return runs, (found[limit - 1][0] if len(found) > limit else None)
