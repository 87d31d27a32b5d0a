"""The `artreg` command, on top of the SDK.

    artreg log NAME PATH... [--type T] [--bump major|minor|patch | --version V] [--alias A] [--tag T]
               [--meta K=V] [--remote URI[=PATH]] [--run-id R] [--pipeline P] [--step S] [--input N@V]
               [--if-changed]
    artreg get NAME[@REF]                       a version record
    artreg files NAME[@REF]                     every file of it, with each file's metadata
    artreg download NAME[@REF] DIR [--run-id R] its stored files into DIR (a use of run R)
    artreg use NAME[@REF] [--run-id R]          record that run R used it
    artreg ls [NAME]                            artifacts, or the versions of NAME
    artreg alias set NAME ALIAS VERSION [--expect VERSION|none] | rm NAME ALIAS | history NAME ALIAS
    artreg tag NAME[@REF] --add T --remove T
    artreg rm NAME@VERSION [--force]
    artreg lineage NAME[@REF] [--upstream|--downstream] [--depth N] [--format tree|mermaid|dot|json]
    artreg link NAME@REF ROLE TARGET@REF | unlink NAME@REF ROLE | runs     (cli_links)
    artreg server [--host H] [--port P] [--data DIR] [--webhook URL] [--protected-alias A] [--allow-file-root DIR]
                  [--trust-origin ORIGIN]
    artreg janitor [--data DIR] [--verify] [--budget S]   expire uploads, reclaim (and re-hash) blobs, re-check refs
    artreg ui --url URL [--port P] [--region R] [--sigv4|--no-sigv4]   the web UI of a deployed stack

Wherever NAME[@REF] is taken, `artreg://PROJECT/NAME@REF` is too (and `download` takes a file's,
`artreg://PROJECT/NAME@REF/PATH`); its project is used when no --project is given.
`--url` and `--project` come from the flags, else the SDK's settings (ARTREG_URL / ARTREG_PROJECT, or
the config file: see artreg.client.settings; the URL defaults to the local server, http://127.0.0.1:8080).
Output is a human table, or JSON with `--json`. Exit codes: 0 ok, 2 usage, 3 not found, 4 conflict or
failed precondition (409/412), 5 invalid request or setting (400/413), 6 registry unavailable or
unreachable, 1 anything else; errors go to stderr as `artreg: <code>: <message>`.

The SDK is imported when a command runs, so that `artreg --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artreg import __version__
from artreg.cli_commands import (
    EXIT_CONFLICT,
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    Command,
    UsageError,
    cmd_alias,
    cmd_download,
    cmd_files,
    cmd_get,
    cmd_lineage,
    cmd_log,
    cmd_ls,
    cmd_rm,
    cmd_tag,
    cmd_use,
    exit_code,
    ref_project,
    split_remote,
)
from artreg.cli_links import add_link_commands
from artreg.model.errors import ArtregError
from artreg.ui.command import add_ui_command

if TYPE_CHECKING:
    from artreg.client import ClientSettings, Registry

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_ERROR",
    "EXIT_INVALID",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "UsageError",
    "build_parser",
    "default_registry",
    "exit_code",
    "main",
    "split_remote",
]

RegistryFactory = Callable[[argparse.Namespace], "Registry"]


# ---------------------------------------------------------------- server


def cmd_server(args: argparse.Namespace, base: ClientSettings | None = None) -> int:
    """`artreg server`: the embedded registry (SQLite and a folder of blobs), imported only when it runs."""
    from artreg.local.server import serve

    given = client_settings(args, base)
    serve(
        args.host,
        args.port,
        str(given.data),
        public_url=args.public_url,
        webhook=given.webhook,
        protected_aliases=args.protected_alias,  # None: ARTREG_PROTECTED_ALIASES, else production
        file_roots=[Path(root) for root in args.allow_file_root],
        trust_origins=tuple(args.trust_origin),
    )
    return EXIT_OK


def cmd_janitor(args: argparse.Namespace, base: ClientSettings | None = None) -> int:
    """`artreg janitor`: what the janitor Lambda does on AWS, once, on the local store. A blob is reclaimed
    by the walk after the one that condemned it (see artreg.registry.janitor), so run it on a schedule;
    with `--budget` each run does a step of each walk and the next run goes on."""
    from dataclasses import asdict
    from datetime import timedelta

    from artreg.local.blobs import FolderBlobStore
    from artreg.local.scrub import STALE_TEMPORARY, scrub
    from artreg.local.sqlite_store import SqliteStore
    from artreg.registry.budget import TimeBudget
    from artreg.registry.janitor import Janitor
    from artreg.registry.policy import Policy
    from artreg.registry.ports import CheckpointMoved

    data = client_settings(args, base).data
    if not (data / "registry.db").exists():
        raise UsageError(f"{data} holds no registry (no registry.db): give the --data of `artreg server`")
    store = SqliteStore(data / "registry.db")
    roots = [Path(root) for root in args.allow_file_root]  # the server's: a reference outside reads as vanished
    folder = FolderBlobStore(data / "blobs", base_url="http://127.0.0.1", file_roots=roots)
    report: dict[str, Any] = {}
    try:
        janitor = Janitor(store, folder)
        budget = TimeBudget(args.budget) if args.budget is not None else None
        report["uploads"] = asdict(janitor.expire_uploads(budget=budget))
        report["blobs"] = asdict(
            janitor.reclaim_blobs(timedelta(days=args.grace_days), Policy().upload_ttl, budget=budget)
        )
        report["remote"] = asdict(janitor.recheck_remote_refs(budget))
        report["walk_age_s"] = {name: age.total_seconds() for name, age in janitor.walk_ages().items()}
    except CheckpointMoved:
        print("artreg: conflict: another `artreg janitor` saved its walk meanwhile: run one at a time", file=sys.stderr)
        return EXIT_CONFLICT
    finally:
        store.close()
    report["temporary_removed"] = folder.remove_stale_temporary(STALE_TEMPORARY.total_seconds())
    if args.verify:
        report["verify"] = asdict(scrub(folder, timedelta(minutes=args.verify_minutes)))
    print(json.dumps(report))
    return EXIT_OK


# ---------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    # options every command takes, before or after its name; SUPPRESS keeps a subcommand from
    # overwriting what was given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", default=argparse.SUPPRESS, help="registry URL (ARTREG_URL; default the local server, port 8080)"
    )
    common.add_argument("--project", default=argparse.SUPPRESS, help="project (ARTREG_PROJECT)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    common.add_argument(
        "--no-progress", action="store_true", default=argparse.SUPPRESS, help="no progress bars (ARTREG_PROGRESS=0)"
    )

    parser = argparse.ArgumentParser(
        prog="artreg", parents=[common], description="artreg: an ML artifact registry (SDK, CLI and server)."
    )
    parser.add_argument("--version", action="version", version=f"artreg {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, func: Command, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(func=func)
        return sub

    log = command("log", cmd_log, "log a new version of an artifact")
    log.add_argument("name", metavar="NAME")
    log.add_argument("paths", nargs="*", metavar="PATH", help="files and folders (folders recursively)")
    log.add_argument(
        "--type", help="dataset, model, metrics, ... (default: the artifact's type; 'artifact' for a new one)"
    )
    which = log.add_mutually_exclusive_group()
    which.add_argument("--bump", choices=["major", "minor", "patch"], help="next version from the highest release")
    which.add_argument("--version", dest="version", help="an explicit semantic version")
    log.add_argument("--alias", action="append", help="an alias to point at the new version (repeatable)")
    log.add_argument("--tag", action="append", help="a tag (repeatable)")
    log.add_argument("--meta", action="append", metavar="K=V", help="metadata; V is JSON if it parses (repeatable)")
    log.add_argument("--remote", action="append", metavar="URI[=PATH]", help="a reference, not uploaded (repeatable)")
    log.add_argument("--run-id", help="the run that produced it (ARTREG_RUN_ID)")
    log.add_argument("--pipeline")
    log.add_argument("--step")
    log.add_argument("--input", action="append", metavar="NAME@VERSION", help="a version the run used (repeatable)")
    log.add_argument("--if-changed", action="store_true", help="no new version when the content equals latest's")

    ref_help = "NAME[@REF] or artreg://PROJECT/NAME@REF"
    get = command("get", cmd_get, "show a version (latest by default)")
    get.add_argument("ref", metavar="NAME[@REF]", help=ref_help)

    files = command("files", cmd_files, "list every file of a version, with its own metadata")
    files.add_argument("ref", metavar="NAME[@REF]", help=ref_help)

    run_help = "the run that uses it, recorded in lineage (ARTREG_RUN_ID)"
    download = command("download", cmd_download, "download a version's stored files (or one file) into a folder")
    download.add_argument("ref", metavar="NAME[@REF]", help=ref_help + "[/PATH] (one file)")
    download.add_argument("dir", metavar="DIR")
    download.add_argument("--no-cache", action="store_true", help="neither read nor fill the local cache")
    download.add_argument("--run-id", help=run_help)
    download.add_argument("--pipeline")
    download.add_argument("--step")

    use = command("use", cmd_use, "record that a run used a version (lineage)")
    use.add_argument("ref", metavar="NAME[@REF]", help=ref_help)
    use.add_argument("--run-id", help=run_help)
    use.add_argument("--pipeline")
    use.add_argument("--step")

    ls = command("ls", cmd_ls, "list artifacts, or the versions of NAME")
    ls.add_argument("name", metavar="NAME", nargs="?")
    ls.add_argument("--type", help="only artifacts of this type")
    ls.add_argument("--tag", help="only versions with this tag")
    ls.add_argument("--alias", help="only the version this alias points at")
    ls.add_argument("--meta", action="append", metavar="K=V", help="only versions whose metadata K equals V")
    ls.add_argument("--limit", type=int, help="at most this many rows")

    alias = command("alias", cmd_alias, "move, remove or show the history of an alias")
    actions = alias.add_subparsers(dest="alias_command", metavar="ACTION", required=True)
    alias_set = actions.add_parser("set", parents=[common], help="point ALIAS at VERSION")
    alias_set.add_argument("name", metavar="NAME")
    alias_set.add_argument("alias", metavar="ALIAS")
    alias_set.add_argument("version", metavar="VERSION")
    alias_set.add_argument(
        "--expect",
        metavar="VERSION",
        help="only if the alias points at VERSION now ('none': only if it does not exist)",
    )
    for action, help in (("rm", "remove ALIAS"), ("history", "every move of ALIAS, newest first")):
        sub = actions.add_parser(action, parents=[common], help=help)
        sub.add_argument("name", metavar="NAME")
        sub.add_argument("alias", metavar="ALIAS")

    tag = command("tag", cmd_tag, "add or remove tags of a version")
    tag.add_argument("ref", metavar="NAME[@REF]")
    tag.add_argument("--add", action="append", metavar="TAG", help="repeatable")
    tag.add_argument("--remove", action="append", metavar="TAG", help="repeatable")

    rm = command("rm", cmd_rm, "delete a version")
    rm.add_argument("ref", metavar="NAME@VERSION")
    rm.add_argument("--force", action="store_true", help="also when aliases other than latest point at it")

    lineage = command("lineage", cmd_lineage, "the runs and versions a version came from and led to")
    lineage.add_argument("ref", metavar="NAME[@REF]")
    way = lineage.add_mutually_exclusive_group()
    way.add_argument("--upstream", action="store_true", help="only what it came from")
    way.add_argument("--downstream", action="store_true", help="only what came of it")
    lineage.add_argument("--depth", type=int, help="how many runs away to go (default 3, at most 10)")
    lineage.add_argument(
        "--format",
        choices=["tree", "mermaid", "dot", "json"],
        default="tree",
        help="a tree (default), Mermaid or Graphviz text for a picture, or JSON",
    )

    server = commands.add_parser(
        "server",
        help="run the registry on this machine",
        description="serve the registry's API over SQLite and a folder of blobs, no AWS account needed",
    )
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback unless told otherwise)")
    server.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    data_help = "(ARTREG_DATA; default ~/.local/share/artreg)"
    server.add_argument("--data", help=f"data folder, kept across restarts {data_help}")
    server.add_argument("--public-url", help="the base URL clients reach this server by, for blob URLs")
    server.add_argument(
        "--webhook",
        metavar="URL",
        help="also POST each event (as EventBridge delivers it) to this URL, retried until it answers 2xx"
        " (ARTREG_WEBHOOK)",
    )
    server.add_argument(
        "--protected-alias",
        action="append",
        metavar="ALIAS",
        help="an alias that an upload may not move, only PUT .../aliases/ALIAS (repeat it, or separate with"
        " commas; ARTREG_PROTECTED_ALIASES; default production)",
    )
    server.add_argument(
        "--allow-file-root",
        action="append",
        default=[],
        metavar="DIR",
        help="pin file:// references (size, mtime) of files under this folder; repeatable. By default none"
        " is: a file:// reference is stored unverified",
    )
    server.add_argument(
        "--trust-origin",
        metavar="ORIGIN",
        action="append",
        default=[],
        help="also answer requests from web pages of this origin (scheme://host[:port]), repeatable;"
        " the server's own origin always is (ARTREG_TRUST_ORIGINS, comma-separated)",
    )
    server.set_defaults(local=cmd_server)

    janitor = commands.add_parser(
        "janitor",
        help="expire uploads, reclaim unlisted blobs and re-check remote references of the local store",
        description="one janitor run over the local server's data folder; safe while the server runs",
    )
    janitor.add_argument("--data", help=f"the server's data folder {data_help}")
    janitor.add_argument(
        "--grace-days", type=float, default=7, help="how long a blob nothing lists is kept (default 7)"
    )
    janitor.add_argument(
        "--verify",
        action="store_true",
        help="also re-hash stored blobs, least recently verified first, and quarantine corrupt ones",
    )
    janitor.add_argument(
        "--allow-file-root",
        action="append",
        default=[],
        metavar="DIR",
        help="as the server's: the folders whose file:// references are read again (repeatable)",
    )
    janitor.add_argument("--verify-minutes", type=float, default=10, help="how long --verify may hash for (default 10)")
    janitor.add_argument(
        "--budget",
        type=float,
        metavar="SECONDS",
        help="stop the walks after about this long, saving where they stand; the next run goes on (default: finish)",
    )
    janitor.set_defaults(local=cmd_janitor)
    add_link_commands(command)
    add_ui_command(commands)
    return parser


def client_settings(args: argparse.Namespace, base: ClientSettings | None = None) -> ClientSettings:
    """The SDK's settings, `base` or else read (ARTREG_*, the config file), with the flags given in
    place of theirs."""
    from artreg.client import load_settings

    flags: dict[str, Any] = {
        "url": getattr(args, "url", None),
        "project": getattr(args, "project", None) or ref_project(args),
        "progress": False if getattr(args, "no_progress", False) else None,
        "data": getattr(args, "data", None),
        "webhook": getattr(args, "webhook", None),
    }
    return base.updated(**flags) if base is not None else load_settings(**flags)


def default_registry(args: argparse.Namespace, base: ClientSettings | None = None) -> Registry:
    from artreg.client import Registry

    given = client_settings(args, base)
    if not given.project:
        raise UsageError("no project: give --project or set ARTREG_PROJECT")
    return Registry(settings=given)


def main(
    argv: Sequence[str] | None = None,
    *,
    registry: RegistryFactory | None = None,
    settings: ClientSettings | None = None,
) -> int:
    """Runs one command; answers its exit code. `registry` makes the client from the parsed
    arguments (tests hand in a fake); `settings` stand for those read from ARTREG_* and the config
    file (tests hand in their own)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a usage error already printed by argparse
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    reg: Registry | None = None
    try:
        if hasattr(args, "local"):  # a command on this machine's store, not a client of a registry
            return int(args.local(args, settings))
        reg = registry(args) if registry is not None else default_registry(args, settings)
        return int(args.func(args, reg))
    except UsageError as error:
        parser.print_usage(sys.stderr)
        print(f"artreg: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ArtregError as error:
        print(f"artreg: {error.code}: {error.message}", file=sys.stderr)
        if error.code == "unreachable":
            url = getattr(reg, "url", None)
            at = f" at {url}" if isinstance(url, str) else ""
            print(
                f"artreg: hint: is a registry running{at}? Start one with `artreg server`,"
                " or point ARTREG_URL (or --url) at yours",
                file=sys.stderr,
            )
        return exit_code(error)
    except BrokenPipeError:  # `artreg ls --json | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as error:
        print(f"artreg: io_error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("artreg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
