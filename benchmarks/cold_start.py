"""cold-start: what a cold start of the API function costs, against `import boto3`, and what `import
artreg` costs an SDK user.

Each figure is the median over fresh Python processes, rounds interleaved (one process of each kind
per round) so that a burst of load on this shared machine touches every row alike. A process times
only its own import statement (and the requests after it) with `time.perf_counter`: interpreter
start-up and `site` are outside the clock, as they are outside any figure a module could improve.

The API function is imported as Lambda imports it: the module and handler named by `Handler` in
template.yaml, from its `CodeUri` folder as the working directory (Lambda's task root), with the
environment variables the template gives it, Lambda's own variables (so Powertools' Tracer is on and
patches, as it does under `Tracing: Active`), and only the packages the function has there: the
runtime's boto3 and its dependencies, the layer's requirements.txt and theirs, and artreg. A finder
in the child hides the other distributions installed here (awscrt, pyOpenSSL, requests and more, which
botocore and the X-Ray patcher would pick up). A second table shows the same import with them.

The first request is a `GET /v1/resolve/...@alias`. Its DynamoDB call goes over HTTP, on a connection
the request opens (plain HTTP here, TLS on AWS), to a local stand-in that replays what moto answered
the same resolve in this process (one version logged through the registry on the table of
template.yaml). So the child imports nothing but the function, as on Lambda (moto in the child would
load boto3 and a few hundred modules before the clock), and a request's time is the function's own."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import Options, table

TITLE = "Cold start of the API function: import and first request, against import boto3"
ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
TABLE = "artreg-bench"
BUCKET = "artreg-bench-blobs"
EVENT_BUS = "artreg-bench"
PROJECT, NAME, ALIAS = "vision", "resnet", "staging"  # not protected: an upload may move it
TARGET_HANDLER_RATIO = 1.5  # handler import / import boto3
TARGET_SDK_IMPORT_S = 0.25
MARKER = "COLD-START-RESULT "

# Run with `python -c` in a fresh process: argv is [module] or [module, handler, event JSON]. It
# imports nothing before the clock but what the interpreter already holds (os, sys, time).
CHILD = f"""
import os, sys, time

hidden = os.environ.get("BENCH_HIDDEN_PACKAGES")
if hidden is not None:
    hidden = frozenset(hidden.split(","))

    class OnlyTheFunctionsPackages:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in hidden:
                raise ModuleNotFoundError(f"No module named {{name!r}} (not in the Lambda function)", name=name)
            return None

    sys.meta_path.insert(0, OnlyTheFunctionsPackages())

began, began_cpu = time.perf_counter(), time.process_time()
__import__(sys.argv[1])
result = {{"import_s": time.perf_counter() - began, "import_cpu_s": time.process_time() - began_cpu}}
if len(sys.argv) > 2:
    import json

    class Context:
        function_name = "artreg-api"
        memory_limit_in_mb = 1024
        invoked_function_arn = "arn:aws:lambda:{REGION}:123456789012:function:artreg-api"
        aws_request_id = "cold-start-bench"

    handler = getattr(sys.modules[sys.argv[1]], sys.argv[2])
    event = json.loads(sys.argv[3])
    for request in ("first", "warm"):
        began, began_cpu = time.perf_counter(), time.process_time()
        answer = handler(event, Context())
        result[request + "_s"] = time.perf_counter() - began
        result[request + "_cpu_s"] = time.process_time() - began_cpu
        result[request + "_status"] = answer["statusCode"]
        result[request + "_body"] = answer.get("body", "")[:300]
import json
print("\\n{MARKER}" + json.dumps(result), flush=True)
"""


@dataclass(frozen=True)
class Function:
    """The API function as template.yaml deploys it."""

    code_dir: Path
    module: str
    handler: str
    environment: dict[str, str]  # the template's variables, its Refs resolved
    memory_mb: int


def api_function() -> Function:
    """The handler, code folder, memory and environment that template.yaml gives `ApiFunction`, its
    parameters at their defaults."""
    from tests.support.template import load_template, with_parameters

    template = load_template()
    # Fn::If decided at the parameters' defaults (POWERTOOLS_METRICS_NAMESPACE: the stack's name)
    function = with_parameters(template, template["Resources"]["ApiFunction"]["Properties"])
    globals_ = with_parameters(template, template["Globals"]["Function"])
    refs = {name: p.get("Default") for name, p in template["Parameters"].items()}
    refs.update(
        {
            "Table": TABLE,
            "Bucket": BUCKET,
            "EventBus": EVENT_BUS,
            "VerifierFunction": "artreg-verifier",
            "AWS::StackName": "artreg",
        }
    )
    variables = {
        **globals_.get("Environment", {}).get("Variables", {}),
        **function.get("Environment", {}).get("Variables", {}),
    }
    environment = {key: str(refs[v["Ref"]] if isinstance(v, dict) else v) for key, v in variables.items()}
    module, handler = function["Handler"].rsplit(".", 1)
    return Function(
        ROOT / function["CodeUri"],
        module,
        handler,
        environment,
        int(function.get("MemorySize", globals_["MemorySize"])),
    )


def hidden_packages(function: Function) -> frozenset[str]:
    """Top-level names of this venv's installed distributions that the deployed function does not
    have: all but the runtime's boto3 and the layer's requirements, each with its dependencies (extras
    and markers honoured), and artreg and the function's own modules."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lines = (ROOT / "layer" / "requirements.txt").read_text().splitlines()
    queue = [Requirement("boto3"), *(Requirement(line) for line in lines if line.strip() and not line.startswith("#"))]
    deployed: set[str] = set()
    while queue:
        requirement = queue.pop()
        name = canonicalize_name(requirement.name)
        if name in deployed:
            continue
        deployed.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        extras = requirement.extras or {""}
        for text in requires:
            needed = Requirement(text)
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in extras):
                queue.append(needed)
    own = {"artreg"} | {p.stem for p in function.code_dir.glob("*.py")}
    return frozenset(
        module
        for module, distributions in metadata.packages_distributions().items()
        if module not in own and not any(canonicalize_name(d) in deployed for d in distributions)
    )


def lambda_environment(function: Function, endpoint: str, hidden: frozenset[str]) -> dict[str, str]:
    """What Lambda sets for the function, what the template adds, fake credentials, and DynamoDB at
    `endpoint`. X-Ray segments go by UDP to a local port nobody listens on."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LAMBDA_TASK_ROOT": str(function.code_dir),
        "_HANDLER": f"{function.module}.{function.handler}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": "artreg-api",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",  # a cold start that a request waits for
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_X_AMZN_TRACE_ID": "Root=1-67a0c0de-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1",
        "BENCH_HIDDEN_PACKAGES": ",".join(sorted(hidden)),
        **function.environment,
    }


def sdk_environment() -> dict[str, str]:
    """A user's machine: this venv, no AWS variables beyond a region."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_DEFAULT_REGION": REGION}


def recorded_resolve() -> dict[str, bytes]:
    """What DynamoDB answers a resolve of NAME@ALIAS, recorded on moto (the table and bucket of
    template.yaml, one version logged through the registry): each operation's raw response body."""
    from artreg.aws.dynamodb import DynamoStore
    from artreg.aws.s3 import S3BlobStore
    from artreg.model.wire import StartUpload
    from artreg.registry.service import RegistryService
    from tests.support.moto_resources import registry_resources

    answers: dict[str, bytes] = {}

    def keep(http_response: Any, model: Any, **_: Any) -> None:
        answers[model.name] = http_response.content

    with registry_resources(TABLE, BUCKET) as aws:
        registry = RegistryService(DynamoStore(aws["dynamodb"], TABLE), S3BlobStore(aws["s3"], BUCKET))
        request = StartUpload(type="model", files=[], commit=True, aliases=[ALIAS], metadata={"framework": "pytorch"})
        registry.start_upload(PROJECT, NAME, request)
        aws["dynamodb"].meta.events.register("after-call.dynamodb", keep)
        registry.resolve(PROJECT, NAME, ALIAS)
    return answers


@contextmanager
def dynamodb_stand_in(answers: dict[str, bytes]) -> Iterator[str]:
    """An HTTP endpoint on a free local port that answers each DynamoDB operation of `answers` with its
    recorded body, and any other with a 400 (which fails the benchmark). It answers at once, so a request's
    time is the function's own, and the child imports nothing but the function, as on Lambda."""

    class Answer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as DynamoDB
        wbufsize = 64 * 1024  # headers and body in one write: two would meet Nagle and a delayed ACK (~40 ms)
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            operation = self.headers.get("x-amz-target", "").rpartition(".")[2]
            body, status = answers.get(operation), 200
            if body is None:
                message = f"the stand-in has no answer recorded for {operation}"
                body, status = json.dumps({"__type": "ValidationException", "message": message}).encode(), 400
            self.send_response(status)
            self.send_header("content-type", "application/x-amz-json-1.0")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def resolve_event() -> str:
    from tests.conftest import api_event

    return json.dumps(api_event("GET", f"/v1/resolve/{PROJECT}/{NAME}@{ALIAS}"))


@dataclass(frozen=True)
class Kind:
    """One kind of child process: what it imports (and invokes), where, with which environment."""

    label: str
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path  # the first entry of sys.path


def run_child(kind: Kind, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", CHILD, *kind.argv],
        cwd=kind.cwd,
        env=kind.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def measure(kind: Kind) -> dict[str, Any]:
    child = run_child(kind)
    lines = [line for line in child.stdout.splitlines() if line.startswith(MARKER)]
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"cold-start: {kind.label} failed ({child.returncode}):\n{child.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(MARKER))
    for request in ("first", "warm"):
        if result.get(f"{request}_status", 200) != 200:
            raise RuntimeError(f"cold-start: {request} request answered {result[f'{request}_status']}: {result}")
    return result


@dataclass(frozen=True)
class Spread:
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def cells(self) -> list[str]:
        return [f"{1000 * s:.0f}" for s in (self.median, min(self.seconds), max(self.seconds))]


def rounds(kinds: list[Kind], count: int) -> dict[str, list[dict[str, Any]]]:
    """`count` rounds of one fresh process of each kind."""
    results: dict[str, list[dict[str, Any]]] = {kind.label: [] for kind in kinds}
    for number in range(count):
        print(f"cold-start: round {number + 1} of {count} ...", file=sys.stderr, flush=True)
        for kind in kinds:
            results[kind.label].append(measure(kind))
    return results


def spread(results: list[dict[str, Any]], *keys: str) -> Spread:
    return Spread([sum(r[k] for k in keys) for r in results])


def row(what: str, figure: Spread, baseline: str, base: Spread | None, target: str = "") -> list[str]:
    ratio = f"{figure.median / base.median:.2f}x" if base else "1.00x"
    return [what, *figure.cells(), baseline, f"{1000 * (base or figure).median:.0f}", ratio, target]


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


HEADERS = ["measure", "median ms", "min ms", "max ms", "baseline", "baseline median ms", "ratio", "target"]


def lambda_table(results: dict[str, list[dict[str, Any]]], processes: int) -> str:
    boto3_, boto3_cpu = spread(results["lambda boto3"], "import_s"), spread(results["lambda boto3"], "import_cpu_s")
    handler = results["lambda handler"]
    imported, first, warm = spread(handler, "import_s"), spread(handler, "first_s"), spread(handler, "warm_s")
    cold = spread(handler, "import_s", "first_s")
    ratio = imported.median / boto3_.median
    rows = [
        row("`import boto3`", boto3_, "-", None),
        row(
            "import of the handler module",
            imported,
            "`import boto3`",
            boto3_,
            f"≤ {TARGET_HANDLER_RATIO}x: {verdict(ratio <= TARGET_HANDLER_RATIO)}",
        ),
        row("first request after the import", first, "warm request", warm),
        row("warm request (the second)", warm, "-", None),
        row("cold start: import + first request", cold, "`import boto3`", boto3_),
        row("`import boto3`, CPU time", boto3_cpu, "-", None),
        row("import of the handler module, CPU time", spread(handler, "import_cpu_s"), "`import boto3`", boto3_cpu),
        row("cold start, CPU time", spread(handler, "import_cpu_s", "first_cpu_s"), "`import boto3`", boto3_cpu),
    ]
    return "\n".join(
        [
            "### The API function in its Lambda environment",
            "",
            f"Median, min and max over {processes} fresh processes each. The request is "
            f"`GET /v1/resolve/{PROJECT}/{NAME}@{ALIAS}`: Powertools' decorators, the resolver, the X-Ray "
            "subsegments, and one GetItem over local HTTP to the stand-in replaying moto's answer. What the first "
            "request pays beyond the warm one is set-up that the import left for later. The CPU-time rows count "
            "only the time the process ran (`time.process_time`), not the time it waited for a CPU: on a machine "
            "that others load, their ratios are the steadier ones.",
            "",
            table(HEADERS, rows),
        ]
    )


def venv_table(results: dict[str, list[dict[str, Any]]], processes: int) -> str:
    boto3_ = spread(results["venv boto3"], "import_s")
    rows = [row("`import boto3`", boto3_, "-", None)]
    for label, what in (("venv artreg", "`import artreg`"), ("venv artreg.client", "`import artreg.client`")):
        figure = spread(results[label], "import_s")
        target = f"≤ {1000 * TARGET_SDK_IMPORT_S:.0f} ms: {verdict(figure.median <= TARGET_SDK_IMPORT_S)}"
        rows.append(row(what, figure, "`import boto3`", boto3_, target))
    rows.append(
        row("import of the handler module", spread(results["venv handler"], "import_s"), "`import boto3`", boto3_)
    )
    return "\n".join(
        [
            "### The SDK on a user's machine (this venv, every installed package importable)",
            "",
            f"Median, min and max over {processes} fresh processes each, no Lambda variables but in the handler "
            "row, which shows what the packages that this venv holds and Lambda does not (awscrt, pyOpenSSL, "
            "requests, ...) add when botocore and the X-Ray patcher find them.",
            "",
            table(HEADERS, rows),
        ]
    )


@dataclass(frozen=True)
class Imported:
    module: str
    depth: int
    self_us: int
    cumulative_us: int
    parent: str = ""


def import_tree(stderr: str, module: str) -> list[Imported]:
    """The modules that importing `module` loaded, from `-X importtime` (children come before their
    parent, indented two spaces a level), each with the module that imported it."""
    entries: list[Imported] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        entries.append(Imported(name.strip(), depth, int(self_us), int(cumulative_us)))
    end = max(i for i, e in enumerate(entries) if e.module == module and e.depth == 0)
    start = max((i for i, e in enumerate(entries[:end]) if e.depth == 0), default=-1) + 1
    tree = entries[start : end + 1]
    with_parents = []
    for i, entry in enumerate(tree):
        parent = next((e.module for e in tree[i + 1 :] if e.depth == entry.depth - 1), "")
        with_parents.append(Imported(entry.module, entry.depth, entry.self_us, entry.cumulative_us, parent))
    return with_parents


def share(entry: Imported, total: int) -> str:
    return f"{100 * entry.cumulative_us / total:.0f}%"


def median_tree(kind: Kind, processes: int) -> list[Imported]:
    """The import tree of `kind`'s module, each module's times the median over `processes` fresh processes:
    one process's figures swing with whatever else the machine runs."""
    module = kind.argv[0]
    trees = []
    for _ in range(processes):
        child = run_child(kind, "-X", "importtime")
        if child.returncode != 0:
            raise RuntimeError(f"cold-start: -X importtime failed:\n{child.stderr[-3000:]}")
        trees.append({e.module: e for e in import_tree(child.stderr, module)})
    first = list(trees[0].values())

    def median(entry: Imported, field: str) -> int:
        return int(statistics.median(getattr(t[entry.module], field) for t in trees if entry.module in t))

    return [replace(e, self_us=median(e, "self_us"), cumulative_us=median(e, "cumulative_us")) for e in first]


def importtime_tables(kind: Kind, processes: int) -> str:
    module = kind.argv[0]
    tree = median_tree(kind, processes)
    total = tree[-1].cumulative_us
    offenders = sorted(tree[:-1], key=lambda e: e.cumulative_us, reverse=True)[:8]
    cumulative_rows = [
        [f"`{e.module}`", f"`{e.parent}`", f"{e.cumulative_us / 1000:.1f}", f"{e.self_us / 1000:.1f}", share(e, total)]
        for e in offenders
    ]
    by_package: dict[str, int] = {}
    for entry in tree:
        top = entry.module.partition(".")[0]
        by_package[top] = by_package.get(top, 0) + entry.self_us
    package_rows = [
        [f"`{top}`", f"{us / 1000:.1f}", f"{100 * us / total:.0f}%"]
        for top, us in sorted(by_package.items(), key=lambda item: item[1], reverse=True)[:8]
    ]
    return "\n".join(
        [
            "### Where the handler import goes (`python -X importtime`, Lambda environment)",
            "",
            f"The import of `{module}` took {total / 1000:.0f} ms (importtime's own bookkeeping included; each "
            f"module's figures the median over {processes} fresh processes). The 8 modules with the largest "
            "cumulative time (a module's own and that of what it imported first), then the time spent in each "
            "top-level package's own modules (medians of each module: a pause that a loaded machine forces on a "
            "process lands on a few modules of that run, so they add up to less than the total):",
            "",
            table(["module", "imported by", "cumulative ms", "self ms", "share of the import"], cumulative_rows),
            "",
            table(["top-level package", "self ms, all its modules", "share of the import"], package_rows),
        ]
    )


def child_kinds(function: Function, lambda_env: dict[str, str], home: Path) -> list[Kind]:
    """The processes of a round: the Lambda environment's pair, a user's machine's imports, and the
    handler with every package of this venv (the Lambda variables kept)."""
    request = (function.module, function.handler, resolve_event())
    venv_handler_env = {**lambda_env, **sdk_environment()}
    del venv_handler_env["BENCH_HIDDEN_PACKAGES"]
    sdk_env = {**sdk_environment(), "HOME": str(home)}
    return [
        Kind("lambda boto3", ("boto3",), lambda_env, function.code_dir),
        Kind("lambda handler", request, lambda_env, function.code_dir),
        Kind("venv boto3", ("boto3",), sdk_env, home),
        Kind("venv artreg", ("artreg",), sdk_env, home),
        Kind("venv artreg.client", ("artreg.client",), sdk_env, home),
        Kind("venv handler", (function.module,), venv_handler_env, function.code_dir),
    ]


def run(options: Options) -> str:
    processes = options.size(7, 3)
    function = api_function()
    hidden = hidden_packages(function)
    print("cold-start: recording a resolve on moto ...", file=sys.stderr, flush=True)
    with dynamodb_stand_in(recorded_resolve()) as endpoint, tempfile.TemporaryDirectory() as home:
        lambda_env = lambda_environment(function, endpoint, hidden)
        results = rounds(child_kinds(function, lambda_env, Path(home)), processes)
        importtime = importtime_tables(Kind("importtime", (function.module,), lambda_env, function.code_dir), processes)
    notes = (
        f"Handler `{function.module}.{function.handler}` from `{function.code_dir.relative_to(ROOT)}`, environment "
        f"from template.yaml ({', '.join(sorted(function.environment))}). {len(hidden)} top-level packages of this "
        "venv hidden in the Lambda environment. Lambda's INIT also starts the interpreter and its runtime client, "
        "which no row counts. The layer ships its modules' 3.12 bytecode (layer/Makefile), as these runs have "
        "theirs: /opt is read-only on Lambda, so a layer without it would compile every module at each cold start."
    )
    return "\n\n".join([lambda_table(results, processes), venv_table(results, processes), importtime, notes])
