"""`artreg link`, `artreg unlink` and `artreg runs` (API.md, Links and Runs), on top of the SDK:

artreg link MODEL@REF ROLE TARGET@REF [--if-match DIGEST]   link a version to another under ROLE, pinned
artreg unlink MODEL@REF ROLE [--if-match DIGEST]            remove that link
artreg runs [--limit N]                                     runs heard of, most recently seen first
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any

from artreg.cli_text import table, when

if TYPE_CHECKING:
    from artreg.client import Registry

Command = Callable[[argparse.Namespace, "Registry"], int]


def _print(args: argparse.Namespace, data: Any, human: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str) if getattr(args, "json", False) else human)


def _holder(args: argparse.Namespace) -> tuple[str, str]:
    from artreg.cli import UsageError

    name, sep, ref = args.ref.partition("@")
    if not name or not sep or not ref:
        raise UsageError(f"{args.ref!r} is not NAME@REF (the version holding the link)")
    return name, ref


def cmd_link(args: argparse.Namespace, reg: Registry) -> int:
    from artreg.client import links

    name, ref = _holder(args)
    made = links.link(reg, name, ref, args.role, args.target, if_match=args.if_match)
    target = made.target
    _print(args, made.model_dump(mode="json"), f"linked {name}@{ref} {made.role} -> {target.name}@{target.version}")
    return 0


def cmd_unlink(args: argparse.Namespace, reg: Registry) -> int:
    from artreg.client import links

    name, ref = _holder(args)
    links.unlink(reg, name, ref, args.role, if_match=args.if_match)
    _print(args, {"unlinked": args.role}, f"unlinked {name}@{ref} {args.role}")
    return 0


def cmd_runs(args: argparse.Namespace, reg: Registry) -> int:
    found = list(islice(reg.runs(page_size=min(args.limit or 100, 1000)), args.limit))
    rows = [[r.run_id, when(r.first_seen), when(r.last_seen), r.produced, r.used] for r in found]
    human = table(["RUN", "FIRST SEEN", "LAST SEEN", "PRODUCED", "USED"], rows) if rows else "no runs"
    _print(args, [r.model_dump(mode="json") for r in found], human)
    return 0


def add_link_commands(command: Callable[[str, Command, str], argparse.ArgumentParser]) -> None:
    """Adds `link`, `unlink` and `runs` with the `artreg` parser's own `command` helper."""
    link = command("link", cmd_link, "link a version to another under a role, pinned to its version and digest")
    link.add_argument("ref", metavar="NAME@REF", help="the version holding the link (a model version, say)")
    link.add_argument("role", metavar="ROLE", help="training_data, checkpoints/epoch-3 ...")
    link.add_argument("target", metavar="TARGET@REF", help="the version linked, as the ref names it now")
    link.add_argument("--if-match", metavar="DIGEST", help="only if ROLE points at a version of this digest")
    unlink = command("unlink", cmd_unlink, "remove a version's link under a role")
    unlink.add_argument("ref", metavar="NAME@REF")
    unlink.add_argument("role", metavar="ROLE")
    unlink.add_argument("--if-match", metavar="DIGEST", help="only if ROLE points at a version of this digest")
    runs = command("runs", cmd_runs, "list the runs the registry has heard of, most recently seen first")
    runs.add_argument("--limit", type=int, help="at most this many rows")
