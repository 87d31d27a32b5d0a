"""`python -m benchmarks [name ...] [--scale F] [--commits N] [--quick]`: runs the named benchmarks
(all of them when none is named), prints each one's figures and the command that reproduces them,
and records them in benchmarks/RESULTS.md. Run it from the repository root."""

from __future__ import annotations

import argparse
import importlib
import sys

from benchmarks import Options, environment, record

# name -> the module that runs it: TITLE, and run(options) -> its figures as markdown. Imported only
# when run, so that one benchmark's imports (moto, say) do not weigh on another's figures.
BENCHMARKS = {
    "aws-costs": "benchmarks.aws_costs",
    "contention": "benchmarks.contention",
    "cold-start": "benchmarks.cold_start",
    "transfers": "benchmarks.transfers",
    "scale": "benchmarks.scale",
    "server-load": "benchmarks.server_load",
    "server-start": "benchmarks.server_start",
    "scale-files": "benchmarks.scale_files",
    "janitor": "benchmarks.janitor",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="name", help=f"of: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, metavar="F", help="multiplies every size (default 1)")
    parser.add_argument("--commits", type=int, metavar="N", help="commits per throughput row (aws-costs, contention)")
    parser.add_argument("--quick", action="store_true", help="smallest sizes; records nothing in RESULTS.md")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)}; there are: {', '.join(BENCHMARKS)}")
    if args.commits is not None and args.commits < 16:
        parser.error("--commits must be at least 16 (one per writer)")
    if args.scale <= 0:
        parser.error("--scale must be above 0")
    options = Options(quick=args.quick, scale=args.scale, commits=args.commits)
    for name in args.names or BENCHMARKS:
        command = f"python -m benchmarks {name}" + " --quick" * args.quick
        if args.scale != 1.0:
            command += f" --scale {args.scale:g}"
        if args.commits is not None:
            command += f" --commits {args.commits}"
        benchmark = importlib.import_module(BENCHMARKS[name])
        figures = benchmark.run(options)
        section = f"## {name}: {benchmark.TITLE}\n\n{environment()}\n- reproduce: `{command}`\n\n{figures}\n"
        print(section, flush=True)
        if args.quick:
            print("(--quick: not recorded in benchmarks/RESULTS.md)\n", flush=True)
        else:
            record(name, section)
            print("(recorded in benchmarks/RESULTS.md)\n", flush=True)
        print(f"Reproduce: {command}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
