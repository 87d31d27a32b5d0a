"""`python -m benchmarks [name ...] [--commits N] [--quick]`: runs the named benchmarks (all of them
when none is named), prints each one's figures and the command that reproduces them, and records
them in benchmarks/RESULTS.md. Run it from the repository root."""

from __future__ import annotations

import argparse
import sys

from benchmarks import aws_costs, environment, record

# name -> a module with TITLE and run(commits, quick) -> its figures as markdown
BENCHMARKS = {"aws-costs": aws_costs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="name", help=f"of: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--commits", type=int, metavar="N", help="commits per throughput row (aws-costs)")
    parser.add_argument("--quick", action="store_true", help="smoke-size run; records nothing in RESULTS.md")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)}; there are: {', '.join(BENCHMARKS)}")
    if args.commits is not None and args.commits < 16:
        parser.error("--commits must be at least 16 (one per writer)")
    for name in args.names or BENCHMARKS:
        command = f"python -m benchmarks {name}" + " --quick" * args.quick
        if args.commits is not None:
            command += f" --commits {args.commits}"
        benchmark = BENCHMARKS[name]
        figures = benchmark.run(args.commits, args.quick)
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
