"""aws-costs: the AWS API calls and the DynamoDB capacity each registry operation takes, on moto
through the real `RegistryService`, `DynamoStore` and `S3BlobStore`, with the table and bucket built from
template.yaml.

Calls are counted with botocore's `before-call` event on the two clients: once per API call (an
SDK-level retry of the same call is not counted again). Presigning a URL sends nothing and emits no
`before-call`. Blob bytes go to the presigned URLs with `requests`, as a client sends them: moto
answers those, and they are counted apart, as client PUTs.

moto reports no capacity of its own worth the name, so `Capacity` prices each DynamoDB call the way
AWS bills it, from the sizes of the items it reads and writes (`item_size`): a read from the item the
response holds, a write from the item before and after it, both read with a second moto client that
nobody counts. The commit throughput on moto that this benchmark used to take is in `contention`."""

from __future__ import annotations

import hashlib
import math
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3
import requests

from artreg.aws.dynamodb import DynamoStore
from artreg.aws.s3 import S3BlobStore
from artreg.model.wire import FileEntry, MissingBlob, MoveAlias, StartUpload, Usage
from artreg.registry.service import Committed, RegistryService
from benchmarks import Options, table
from tests.support.moto_resources import registry_resources

TITLE = "AWS calls and DynamoDB capacity per operation"
REGION = "us-east-1"
TABLE = "artreg-bench"
BUCKET = "artreg-bench-blobs"
PROJECT = "bench"


@dataclass(frozen=True)
class Sizes:
    versions: int = 150  # of the artifact whose first page of versions is listed
    page: int = 100  # versions in that page
    small_page: int = 10  # versions in a smaller page of the same
    files: int = 100  # of the large commit, the deduplicated ones and the download page


FULL, QUICK = Sizes(), Sizes(versions=15, page=10, small_page=5, files=10)


class Calls:
    """Counts the API calls two botocore clients send, by service and operation, and the blob PUTs a
    client sends to presigned URLs."""

    def __init__(self, *clients: Any):
        self._lock = threading.Lock()
        self._api: Counter[tuple[str, str]] = Counter()
        self._puts = 0
        for client in clients:
            client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:  # must return None: a value would stand in for the response
        with self._lock:
            self._api[model.service_model.service_name, model.name] += 1

    def put(self, target: MissingBlob, data: bytes) -> None:
        assert target.url, "benchmark blobs are small: one PUT, never multipart"
        requests.put(target.url, data=data, headers=target.headers, timeout=30).raise_for_status()
        with self._lock:
            self._puts += 1

    def take(self) -> tuple[Counter[tuple[str, str]], int]:
        """What was counted since the last take."""
        with self._lock:
            taken = self._api, self._puts
            self._api, self._puts = Counter(), 0
        return taken


@contextmanager
def moto_account() -> Iterator[tuple[Any, Any, Calls]]:
    """A fresh moto account holding the registry's table and bucket; its two clients, counted. Nothing
    here reads the table's stream, so it runs as a load test (see registry_resources)."""
    with registry_resources(TABLE, BUCKET, load=True) as resources:
        yield resources["dynamodb"], resources["s3"], Calls(resources["dynamodb"], resources["s3"])


def files(tag: str, count: int = 1) -> dict[str, bytes]:
    return {f"{tag}/{i:04d}.bin": f"{tag} {i}".encode() for i in range(count)}


def log(registry: RegistryService, calls: Calls, name: str, content: dict[str, bytes], **request: Any) -> Committed:
    """The client flow: start (commit=true); if blobs are missing, PUT them and commit."""
    blobs = {hashlib.sha256(data).hexdigest(): data for data in content.values()}
    entries = [FileEntry(path=p, size=len(d), sha256=hashlib.sha256(d).hexdigest()) for p, d in content.items()]
    started = registry.start_upload(PROJECT, name, StartUpload(files=entries, commit=True, **request))
    if isinstance(started, Committed):
        return started
    for target in started.missing:
        calls.put(target, blobs[target.sha256])
    return registry.commit(PROJECT, name, started.upload_id)


# ---------------------------------------------------------------- DynamoDB capacity, as AWS bills it

READ_UNIT = 4096  # bytes one read unit covers (strongly consistent; eventually consistent reads cost half)
WRITE_UNIT = 1024  # bytes one write unit covers


def number_size(text: str) -> int:
    """1 byte, and 1 per two significant digits: leading and trailing zeros do not count."""
    digits = Decimal(text).normalize().as_tuple().digits
    significant = len("".join(map(str, digits)).strip("0")) or 1
    return 1 + math.ceil(significant / 2)


def value_size(value: Mapping[str, Any]) -> int:
    """The bytes DynamoDB counts for one attribute value (as boto3's low-level client holds it)."""
    [(kind, data)] = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return number_size(data)
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(number_size(n) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in data.items())
    raise ValueError(f"no DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's size as DynamoDB counts it for capacity: each attribute's name (UTF-8) and value."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def read_units(size: int, *, consistent: bool) -> float:
    """Of one GetItem, or of one Query from the total size of its items; an absent item still costs one."""
    units = max(1, math.ceil(size / READ_UNIT))
    return units if consistent else units / 2


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT))


def kind_of(key: Mapping[str, Mapping[str, str]]) -> str:
    """What an item of the store is, from its key (see the key table in artreg/aws/dynamodb.py)."""
    pk, sk = key["PK"]["S"], key["SK"]["S"]
    if pk.startswith("P#"):
        return "head"
    if pk.startswith("A#"):
        return {"V": "version", "L": "alias", "H": "alias history", "U": "usage"}[sk[0]]
    if pk.startswith("U#"):
        return "upload" if sk == "U" else "upload batch"
    if pk.startswith("X#"):
        return "janitor cursor" if pk == "X#cursor" else "upload expiry index"
    return "lineage edge"


@dataclass(frozen=True)
class Access:
    """One item that one call read or wrote: the size it was priced at and the units it cost."""

    operation: str  # GetItem, Query, PutItem, UpdateItem, DeleteItem, TransactWriteItems
    action: str  # Get, Query, Put, Update, Delete or ConditionCheck
    kind: str  # of the item (`kind_of`)
    size: int  # the item read; for a write the larger of the item before and after
    write: bool
    units: float  # of this item; a Query's units are on its first item (they price the sum)


_KEY = ("PK", "SK")


def _key(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: item[name] for name in _KEY}


def _written(operation: str, params: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The items a write call touches, as (action, key)."""
    if operation == "PutItem":
        return [("Put", _key(params["Item"]))]
    if operation in ("UpdateItem", "DeleteItem"):
        return [(operation.removesuffix("Item"), dict(params["Key"]))]
    if operation == "TransactWriteItems":
        actions = [next(iter(entry.items())) for entry in params["TransactItems"]]
        return [(action, dict(body.get("Key") or _key(body["Item"]))) for action, body in actions]
    raise NotImplementedError(f"aws-costs does not price {operation} yet")


class Capacity:
    """Prices the DynamoDB calls of one client in capacity units, by AWS's rules:

    - a read costs 1 unit per 4 KB of item (0.5 if eventually consistent), at least 1 (0.5), even for
      an absent item; a Query sums the sizes of the items it returns before it rounds;
    - a write costs 1 unit per 1 KB of the larger of the item before and after it (PutItem, UpdateItem;
      DeleteItem: the deleted item), at least 1;
    - every item of a TransactWriteItems (ConditionCheck ones too) costs twice its write: one write to
      prepare the transaction and one to commit it.

    Item sizes before and after a write come from `reader`, a client on the same moto account whose
    calls nobody counts or prices: exact, since the calls here are not concurrent."""

    READS = frozenset({"GetItem", "Query"})

    def __init__(self, client: Any, reader: Any):
        self._reader = reader
        self._lock = threading.Lock()
        self._accesses: list[Access] = []
        self.failed = 0  # calls answered with an error: priced as if done, which AWS may not charge
        client.meta.events.register("before-parameter-build.dynamodb.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def _size_now(self, table_name: str, key: Mapping[str, Any]) -> int:
        item = self._reader.get_item(TableName=table_name, Key=key, ConsistentRead=True).get("Item")
        return item_size(item) if item else 0

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context["capacity.params"] = params
        if model.name not in self.READS:
            context["capacity.before"] = [
                self._size_now(self._table(model.name, params, i), key)
                for i, (_, key) in enumerate(_written(model.name, params))
            ]

    @staticmethod
    def _table(operation: str, params: Mapping[str, Any], index: int) -> str:
        if operation != "TransactWriteItems":
            return str(params["TableName"])
        return str(next(iter(params["TransactItems"][index].values()))["TableName"])

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        params, operation = context["capacity.params"], model.name
        if operation == "GetItem":
            accesses = self._read(operation, params, [parsed["Item"]] if "Item" in parsed else [], params["Key"])
        elif operation == "Query":
            accesses = self._read(operation, params, parsed.get("Items", []), None)
        else:
            accesses = self._write(operation, params, context["capacity.before"])
        with self._lock:
            self.failed += http_response.status_code >= 300
            self._accesses += accesses

    def _read(
        self, operation: str, params: Mapping[str, Any], items: list[Any], asked: Mapping[str, Any] | None
    ) -> list[Access]:
        units = read_units(sum(map(item_size, items)), consistent=bool(params.get("ConsistentRead")))
        action = operation.removesuffix("Item")
        if not items:  # an absent item, or an empty Query, still costs its least
            return [Access(operation, action, kind_of(asked) if asked else "nothing", 0, False, units)]
        return [
            Access(operation, action, kind_of(item), item_size(item), False, units if i == 0 else 0)
            for i, item in enumerate(items)
        ]

    def _write(self, operation: str, params: Mapping[str, Any], before: list[int]) -> list[Access]:
        factor = 2 if operation == "TransactWriteItems" else 1
        accesses = []
        for i, (action, key) in enumerate(_written(operation, params)):
            size = max(before[i], self._size_now(self._table(operation, params, i), key))
            units = factor * write_units(size)
            accesses.append(Access(operation, action, kind_of(key), size, action != "ConditionCheck", units))
        return accesses

    def take(self) -> list[Access]:
        """What was priced since the last take."""
        with self._lock:
            taken, self._accesses = self._accesses, []
        return taken


def rcu(accesses: list[Access]) -> float:
    return sum(a.units for a in accesses if a.operation in Capacity.READS)


def wcu(accesses: list[Access]) -> float:
    return sum(a.units for a in accesses if a.operation not in Capacity.READS)


@dataclass(frozen=True)
class Least:
    """The least DynamoDB work an operation needs, priced at the sizes of the items that the operation
    itself touched. Items are named by kind (`kind_of`), or by action and kind ("Put version": the new
    version, not the update of the one `latest` leaves):

    - `reads`: one strongly consistent read (the registry must read its own writes) of the item of each;
    - `query`: one Query of the first `query_items` items it returned of that kind (all when 0);
    - `writes`: one plain write of the item of each;
    - `transaction`: one transaction of every item written that matches one of them."""

    reads: tuple[str, ...] = ()
    query: str | None = None
    query_items: int = 0
    writes: tuple[str, ...] = ()
    transaction: tuple[str, ...] = ()
    why: str = ""

    def units(self, accesses: list[Access]) -> tuple[float, float]:
        """(read units, write units) of this least work."""
        reads = sum(read_units(self._size(accesses, name, write=False), consistent=True) for name in self.reads)
        if self.query:
            queried = [a.size for a in accesses if a.action == "Query" and a.kind == self.query]
            reads += read_units(sum(queried[: self.query_items or None]), consistent=True)
        writes = sum(write_units(self._size(accesses, name, write=True)) for name in self.writes)
        writes += sum(
            2 * write_units(a.size)
            for a in accesses
            if a.write and a.operation == "TransactWriteItems" and _named(a, self.transaction)
        )
        return reads, writes

    @staticmethod
    def _size(accesses: list[Access], name: str, *, write: bool) -> int:
        sizes = [a.size for a in accesses if a.write == write and _named(a, (name,))]
        assert sizes, f"the operation touched no {name} item to price its baseline from"
        return max(sizes)


def _named(access: Access, names: tuple[str, ...]) -> bool:
    return access.kind in names or f"{access.action} {access.kind}" in names


# ---------------------------------------------------------------- calls and capacity per operation


def by_operation(api: Counter[tuple[str, str]], service: str) -> str:
    return ", ".join(f"{count} {op}" for (s, op), count in sorted(api.items()) if s == service) or "-"


def ratio(value: float, baseline: float) -> str:
    if baseline == 0:
        return "-" if value == 0 else "n/a"
    return f"{value / baseline:.2f}"


@dataclass
class Measured:
    """The rows and notes of the table, filled one operation at a time."""

    rows: list[list[object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)


def calls_per_operation(sizes: Sizes) -> str:
    n = sizes.files
    with moto_account() as (dynamodb, s3, calls):
        capacity = Capacity(dynamodb, boto3.client("dynamodb", region_name=REGION))
        registry = RegistryService(DynamoStore(dynamodb, TABLE), S3BlobStore(s3, BUCKET))
        log(registry, calls, "model", files("v1"), aliases=["prod"])
        log(registry, calls, "model", files("v2"))
        for i in range(sizes.versions):
            log(registry, calls, "history", {}, metadata={"i": i})
        shards = files("shards", n)
        measured = Measured()

        def measure(operation: str, baseline: int, why: str, least: Least, action: Callable[[], object]) -> None:
            calls.take()
            capacity.take()
            action()
            api, puts = calls.take()
            accesses = capacity.take()
            total = sum(api.values())
            dynamo, s3_calls = by_operation(api, "dynamodb"), by_operation(api, "s3")
            reads, writes = rcu(accesses), wcu(accesses)
            least_reads, least_writes = least.units(accesses)
            measured.rows.append(
                [
                    operation,
                    dynamo,
                    s3_calls,
                    puts,
                    total,
                    baseline,
                    ratio(total, baseline),
                    f"{reads:g}",
                    f"{least_reads:g}",
                    ratio(reads, least_reads),
                    f"{writes:g}",
                    f"{least_writes:g}",
                    ratio(writes, least_writes),
                ]
            )
            measured.notes.append(f"- {operation}: calls: {why}; capacity: {least.why}")
            measured.items.append(f"- {operation}: {items_touched(accesses)}")

        def committed(content: dict[str, bytes], created: bool = True, **request: Any) -> None:
            assert log(registry, calls, "model", content, **request).created is created

        def resolve(ref: str) -> Callable[[], object]:
            return lambda: registry.resolve(PROJECT, "model", ref)

        commit_least = Least(
            reads=("upload", "head"),
            writes=("upload",),
            transaction=("head", "Put version", "Put alias", "alias history", "upload"),
            why="write the upload; read it and the head; 1 transaction of the head, the version, the `latest` "
            "alias and its history entry, and the upload (marked committed, for an idempotent retry)",
        )
        commit_why = "1 read of the upload, 1 GetItem of the head, 1 TransactWriteItems"
        measure(
            "resolve by alias",
            1,
            "1 GetItem of the alias item",
            Least(("alias",), why="read the alias item"),
            resolve("prod"),
        )
        measure("resolve a version", 1, "1 GetItem", Least(("version",), why="read the version item"), resolve("1.0.0"))
        measure(
            "get `latest`", 1, "1 GetItem", Least(("alias",), why="read the `latest` alias item"), resolve("latest")
        )
        for page in (sizes.page, sizes.small_page):
            measure(
                f"list a page of {page} of {sizes.versions} versions",
                1,
                "1 Query",
                Least(query="version", query_items=page, why=f"1 Query of the {page} version items"),
                lambda page=page: registry.list_versions(PROJECT, "history", limit=page),
            )
        measure(
            "start+commit, 1 new file",
            6,
            f"start: 1 HEAD, 1 PutItem of the upload; commit: 1 HEAD, {commit_why}",
            commit_least,
            lambda: committed(files("one")),
        )
        measure(
            f"start+commit, {n} new files",
            4 + 2 * n,
            f"start: {n} HEAD, 1 PutItem of the upload; commit: {n} HEAD, {commit_why}",
            commit_least,
            lambda: committed(shards),
        )
        measure(
            f"commit of {n} stored files (deduplicated)",
            n + 2,
            f"{n} HEAD, 1 GetItem of the head, 1 TransactWriteItems (the upload item written in it)",
            Least(
                reads=("head",),
                transaction=("head", "Put version", "Put alias", "alias history", "upload"),
                why="read the head; 1 transaction of the head, the version, `latest` and its history entry, and "
                "the upload (written committed in it)",
            ),
            lambda: committed(shards),
        )
        measure(
            "the same with if_changed=true",
            1,
            "1 GetItem of `latest`: same digest, so its blobs are live and need no HEAD",
            Least(("alias",), why="read the `latest` alias item"),
            lambda: committed(shards, created=False, if_changed=True),
        )
        measure(
            "move an alias",
            3,
            "1 GetItem of the head, 1 GetItem of the target version, 1 TransactWriteItems",
            Least(
                reads=("head", "version"),
                transaction=("head", "Put alias", "alias history"),
                why="read the head and the target version; 1 transaction of the head, the alias item and its "
                "history entry",
            ),
            lambda: registry.move_alias(PROJECT, "model", "prod", MoveAlias(version="2.0.0")),
        )
        measure(
            "record a usage",
            2,
            "1 GetItem (resolve), 1 PutItem",
            Least(("alias",), writes=("usage",), why="read the alias item; write the usage item"),
            lambda: registry.record_usage(PROJECT, "model", "prod", Usage(run_id="run-1")),
        )
        measure(
            f"download page of {n} files",
            1,
            "1 GetItem (resolve); presigning sends nothing",
            Least(("alias",), why="read the `latest` alias item"),
            lambda: registry.download(PROJECT, "model", "latest", limit=n),
        )
        measure(
            "file redirect (`file_target`)",
            1,
            "1 GetItem (resolve); presigning sends nothing",
            Least(("alias",), why="read the `latest` alias item"),
            lambda: registry.file_target(PROJECT, "model", "latest", next(iter(shards))),
        )
        failed = capacity.failed
    headers = [
        "operation",
        "DynamoDB calls",
        "S3 calls",
        "client PUTs",
        "total AWS calls",
        "baseline calls",
        "calls ratio",
        "RCU",
        "baseline RCU",
        "RCU ratio",
        "WCU",
        "baseline WCU",
        "WCU ratio",
    ]
    return "\n".join(
        [
            "### AWS API calls and DynamoDB capacity per operation",
            "",
            table(headers, measured.rows),
            "",
            "Client PUTs are blob bytes sent to presigned URLs, not API calls of the registry. RCU and WCU are the "
            "read and write capacity units the operation's DynamoDB calls would consume on AWS (on demand, the read "
            "and write request units billed), priced from the sizes of the items they read and wrote:",
            "",
            "- item size: each attribute's name in UTF-8 bytes plus its value: a string's UTF-8 bytes, a number "
            "1 byte + 1 per two significant digits, a binary's raw bytes, a boolean or null 1 byte, a list or map "
            "3 bytes + 1 per element + its elements (and a map's keys), a set the sum of its elements;",
            "- reads: 1 RCU per 4 KB of item, rounded up, for a strongly consistent read, 0.5 for an eventually "
            "consistent one; an absent item still costs 1 (0.5); a Query sums the sizes of all the items it "
            "returns, then rounds up to 4 KB. Every read of the store is strongly consistent "
            "(`ConsistentRead=True`: a resolve right after a commit or an alias move must see it), so the "
            "baselines are too: eventually consistent reads would halve both columns;",
            "- writes: 1 WCU per 1 KB, rounded up, of the larger of the item before and after the write "
            "(PutItem, UpdateItem; DeleteItem: the deleted item), at least 1; in a TransactWriteItems every item "
            "(ConditionCheck items too) costs twice that, one write to prepare and one to commit;",
            "- sizes before and after each write are read from moto with a client nobody counts. "
            + (f"{failed} call(s) failed and were priced as if done." if failed else "No call failed."),
            "",
            "The baselines are the fewest calls, and the least capacity, the operation needs:",
            "",
            *measured.notes,
            "",
            "The items each operation read and wrote (tx: in a TransactWriteItems), by kind, with their priced sizes:",
            "",
            *measured.items,
        ]
    )


def items_touched(accesses: list[Access]) -> str:
    """`1 Get alias (1,234 B), 2 tx Update version (2,345 B max)`: what the capacity was priced from."""
    groups: dict[str, list[int]] = {}
    for access in accesses:
        transactional = "tx " if access.operation == "TransactWriteItems" else ""
        groups.setdefault(f"{transactional}{access.action} {access.kind}", []).append(access.size)
    return (
        ", ".join(
            f"{len(found)} {what} ({max(found):,} B{' max' if len(found) > 1 else ''})"
            for what, found in groups.items()
        )
        or "-"
    )


def run(options: Options) -> str:
    versions = options.size(FULL.versions, QUICK.versions)
    sizes = Sizes(
        versions=versions,
        page=min(versions, QUICK.page if options.quick else FULL.page),
        small_page=QUICK.small_page if options.quick else FULL.small_page,
        files=options.size(FULL.files, QUICK.files),
    )
    print("aws-costs: counting calls and capacity per operation ...", file=sys.stderr, flush=True)
    return calls_per_operation(sizes)
