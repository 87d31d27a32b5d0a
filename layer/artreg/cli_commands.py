"""The `artreg` command's client commands (those that talk to a registry), on top of the SDK: each
takes the parsed arguments and a `Registry`, prints, and answers its exit code. The parser and
`main` are in artreg.cli."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from artreg.cli_text import describe, file_rows, size_text, table, when
from artreg.model.errors import (
    Conflict,
    Invalid,
    NotFound,
    PreconditionFailed,
    Retryable,
    TooLarge,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from artreg.client import Registry

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_INVALID = 5
EXIT_UNAVAILABLE = 6

Command = Callable[[argparse.Namespace, "Registry"], int]


class UsageError(Exception):
    """A command line that parses but does not make sense (exit 2)."""


def exit_code(error: BaseException) -> int:
    if isinstance(error, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(error, Conflict | PreconditionFailed):
        return EXIT_CONFLICT
    if isinstance(error, Invalid | TooLarge):
        return EXIT_INVALID
    if isinstance(error, Retryable):
        return EXIT_UNAVAILABLE
    return EXIT_ERROR


# ---------------------------------------------------------------- output


def _emit(args: argparse.Namespace, data: Any, human: Callable[[], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        text = human()
        if text:
            print(text)


def _plain(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


# ---------------------------------------------------------------- argument helpers


def _pairs(items: Sequence[str] | None, what: str, parse_json: bool) -> dict[str, Any]:
    """`K=V` items as a dict; with `parse_json` a value that is JSON (10, true, null, {...}) is taken
    as such, anything else as a string."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {item!r} is not KEY=VALUE")
        if parse_json:
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
        else:
            out[key] = value
    return out


def split_remote(spec: str) -> tuple[str, str | None]:
    """`URI=PATH` or `URI`. The last `=` splits, unless it belongs to the URI's query string
    (`s3://b/k?versionId=abc` is a URI alone; `s3://b/k?versionId=abc=raw/k` names its path)."""
    uri, sep, path = spec.rpartition("=")
    if not sep or not uri or not path:
        return spec, None
    query = uri.rpartition("?")[2] if "?" in uri else None
    if query is not None and "=" not in query.rpartition("&")[2]:
        return spec, None
    return uri, path


def ref_project(args: argparse.Namespace) -> str | None:
    """The project of the command's `artreg://` URI, if it names one: enough without --project."""
    for text in (getattr(args, "ref", None), getattr(args, "name", None)):
        if isinstance(text, str) and text.startswith("artreg://"):
            return text[len("artreg://") :].partition("/")[0] or None
    return None


def _name_ref(text: str) -> tuple[str, str | None]:
    if text.startswith("artreg://"):
        return text, None  # the SDK takes the URI whole: project, name, ref and path
    name, sep, ref = text.partition("@")
    if not name or (sep and not ref):
        raise UsageError(f"{text!r} is not NAME or NAME@REF")
    return name, ref or None


# ---------------------------------------------------------------- commands


def cmd_log(args: argparse.Namespace, reg: Registry) -> int:
    from artreg.client import Artifact

    if not args.paths and not args.remote:
        raise UsageError("log needs a PATH or a --remote")
    art = Artifact(
        args.name,
        type=args.type or "artifact",
        metadata=_pairs(args.meta, "--meta", parse_json=True),
        aliases=args.alias or (),
        tags=args.tag or (),
    )
    for path in args.paths:
        art.add(path)
    for spec in args.remote or []:
        uri, path = split_remote(spec)
        art.add_remote(uri, path)
    if args.type is None:  # a new version of an artifact is of its type; a new artifact an "artifact"
        with contextlib.suppress(NotFound):
            art.type = reg.summary(args.name).type
    logged = reg.log_artifact(
        art,
        version=args.version,
        bump=args.bump,
        run_id=args.run_id,
        pipeline=args.pipeline,
        step=args.step,
        inputs=args.input or (),
        if_changed=args.if_changed,
        progress=False if getattr(args, "no_progress", False) else None,
    )
    said = "unchanged: latest is" if logged.created is False else "logged"
    _emit(
        args,
        {**_plain(logged), "created": logged.created is not False},
        lambda: (
            f"{said} {logged.qualified_name} ({logged.file_count} file(s), {size_text(logged.size)},"
            f" digest {logged.digest[:12]})"
        ),
    )
    return EXIT_OK


def cmd_get(args: argparse.Namespace, reg: Registry) -> int:
    name, ref = _name_ref(args.ref)
    version = reg.get_artifact(name, ref)
    _emit(args, _plain(version), lambda: describe(version))
    return EXIT_OK


def cmd_download(args: argparse.Namespace, reg: Registry) -> int:
    name, ref = _name_ref(args.ref)
    result = reg.download(
        name,
        ref,
        args.dir,
        run_id=args.run_id,
        pipeline=args.pipeline,
        step=args.step,
        cache=False if args.no_cache else None,
        progress=False if getattr(args, "no_progress", False) else None,
    )
    data = {
        "path": str(result.path),
        "name": name,
        "version": result.version,
        "digest": result.digest,
        "downloaded": result.downloaded,
        "from_cache": result.from_cache,
        "skipped": result.skipped,
        "bytes": result.bytes,
        "remote": [_plain(r) for r in result.remote],
    }

    def human() -> str:
        text = (
            f"{name}@{result.version} -> {result.path}: {result.downloaded} downloaded ({size_text(result.bytes)}),"
            f" {result.from_cache} from cache, {result.skipped} already there"
        )
        if result.remote:
            text += (
                f"\nremote entries, not downloaded:\n{table(['PATH', 'URI'], [[r.path, r.uri] for r in result.remote])}"
            )
        return text

    _emit(args, data, human)
    return EXIT_OK


def cmd_use(args: argparse.Namespace, reg: Registry) -> int:
    name, ref = _name_ref(args.ref)
    version = reg.use_artifact(name, ref, run_id=args.run_id, pipeline=args.pipeline, step=args.step)
    run = args.run_id or reg.settings.run_id
    _emit(
        args,
        {**_plain(version), "run_id": run},
        lambda: f"run {run} used {version.qualified_name}",
    )
    return EXIT_OK


def cmd_files(args: argparse.Namespace, reg: Registry) -> int:
    name, ref = _name_ref(args.ref)
    entries = list(reg.files(name, ref))
    _emit(
        args,
        [_plain(e) for e in entries],
        lambda: table(["PATH", "SIZE", "SHA256 / URI", "METADATA"], file_rows(entries)),
    )
    return EXIT_OK


def cmd_ls(args: argparse.Namespace, reg: Registry) -> int:
    limit = args.limit
    if args.name is None:
        if args.tag or args.alias or args.meta:
            raise UsageError("--tag, --alias and --meta filter the versions of one artifact: give NAME")
        artifacts = _take(reg.list_artifacts(type=args.type), limit)
        # A project exists once it has an artifact: an empty listing of one with none at all is most
        # likely a mistyped project, said on stderr with exit 3 (not an empty table and exit 0).
        if not artifacts and (args.type is None or not _take(reg.list_artifacts(), 1)):
            raise NotFound(
                f"project {reg.project!r} has no artifacts (is the project right? --project or ARTREG_PROJECT)",
                details={"project": reg.project},
            )
        rows = [
            [a.name, a.type, a.latest or "-", a.version_count, ", ".join(sorted(a.aliases)) or "-", when(a.updated_at)]
            for a in artifacts
        ]
        _emit(
            args,
            [_plain(a) for a in artifacts],
            lambda: table(["NAME", "TYPE", "LATEST", "VERSIONS", "ALIASES", "UPDATED"], rows),
        )
        return EXIT_OK
    versions = _take(
        reg.versions(args.name, tag=args.tag, alias=args.alias, metadata=_pairs(args.meta, "--meta", parse_json=False)),
        limit,
    )
    rows = [
        [
            v.version,
            ", ".join(v.aliases) or "-",
            ", ".join(v.tags) or "-",
            v.file_count,
            size_text(v.size),
            when(v.created_at),
        ]
        for v in versions
    ]
    _emit(
        args,
        [_plain(v) for v in versions],
        lambda: table(["VERSION", "ALIASES", "TAGS", "FILES", "SIZE", "CREATED"], rows),
    )
    return EXIT_OK


def _take(items: Iterable[Any], limit: int | None) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if limit is not None and len(out) >= limit:
            break
        out.append(item)
    return out


def cmd_alias(args: argparse.Namespace, reg: Registry) -> int:
    if args.alias_command == "set":
        if args.expect is None:
            version = reg.set_alias(args.name, args.alias, args.version)
        else:
            expected = None if args.expect.lower() == "none" else args.expect
            version = reg.set_alias(args.name, args.alias, args.version, expected_version=expected)
        _emit(args, _plain(version), lambda: f"{args.name}@{args.alias} -> {version.version}")
    elif args.alias_command == "rm":
        reg.remove_alias(args.name, args.alias)
        _emit(
            args, {"name": args.name, "alias": args.alias, "removed": True}, lambda: f"removed {args.name}@{args.alias}"
        )
    else:
        moves = list(reg.alias_history(args.name, args.alias))
        rows = [[when(m.at), m.previous_version or "-", m.version or "-", m.by or "-"] for m in moves]
        _emit(args, [_plain(m) for m in moves], lambda: table(["AT", "FROM", "TO", "BY"], rows))
    return EXIT_OK


def cmd_tag(args: argparse.Namespace, reg: Registry) -> int:
    if not args.add and not args.remove:
        raise UsageError("tag needs --add or --remove")
    name, ref = _name_ref(args.ref)
    version = reg.update(name, ref, tags_add=args.add or (), tags_remove=args.remove or ())
    _emit(args, _plain(version), lambda: f"{version.qualified_name} tags: {', '.join(version.tags) or '-'}")
    return EXIT_OK


def cmd_rm(args: argparse.Namespace, reg: Registry) -> int:
    name, ref = _name_ref(args.ref)
    if ref is None and not name.startswith("artreg://"):
        raise UsageError("rm needs NAME@VERSION")
    version = reg.delete_version(name, ref, force=args.force)
    _emit(args, _plain(version), lambda: f"deleted {version.qualified_name}")
    return EXIT_OK


def cmd_lineage(args: argparse.Namespace, reg: Registry) -> int:
    from artreg.client import lineage

    name, ref = _name_ref(args.ref)
    direction: Literal["upstream", "downstream", "both"] = (
        "upstream" if args.upstream else "downstream" if args.downstream else "both"
    )
    graph = reg.lineage(name, ref, direction=direction, depth=args.depth)
    data = graph.model_dump(mode="json")
    if args.format == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return EXIT_OK
    draw = {"tree": lineage.tree, "mermaid": lineage.mermaid, "dot": lineage.dot}[args.format]
    _emit(args, data, lambda: draw(graph))
    return EXIT_OK
