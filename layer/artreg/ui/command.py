"""`artreg ui`: its arguments and what it runs, kept beside the proxy (the `artreg` parser only adds it)."""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from artreg.client.settings import ClientSettings


def add_ui_command(commands: Any) -> None:
    """Adds `ui` to the `artreg` subcommands (an argparse subparsers action)."""
    ui = commands.add_parser(
        "ui",
        help="serve the web UI of a deployed registry on this machine",
        description="serve the web UI on 127.0.0.1, forwarding its API calls to URL signed with your AWS"
        " credentials (which never reach the page); `artreg server` serves the same UI at /ui/ itself",
    )
    ui.add_argument("--url", default=None, help="the API's URL, the stack's ApiUrl output (ARTREG_URL)")
    ui.add_argument("--port", type=int, default=8081, help="port on 127.0.0.1 (default 8081; 0 picks a free one)")
    ui.add_argument("--region", help="region to sign for (default: from the URL, else AWS_REGION)")
    ui.add_argument(
        "--sigv4",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sign API calls with SigV4 (default: when the URL is an AWS host)",
    )
    ui.set_defaults(local=cmd_ui)


def cmd_ui(args: argparse.Namespace, base: ClientSettings | None = None) -> int:
    from artreg.cli import EXIT_OK, UsageError
    from artreg.client.sigv4 import SigV4Signer, region_of, wants_sigv4
    from artreg.ui.proxy import serve

    url = args.url or os.environ.get("ARTREG_URL")
    if not url or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise UsageError("give the API's URL: --url https://... (or ARTREG_URL)")
    sign = wants_sigv4(url) if args.sigv4 is None else args.sigv4
    signer = SigV4Signer(args.region or region_of(url)) if sign else None
    with contextlib.suppress(KeyboardInterrupt):
        serve(url, args.port, signer)
    return EXIT_OK
