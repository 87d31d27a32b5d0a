"""aws-costs prices DynamoDB calls from item sizes by AWS's rules; these check the rules, and the
pricing of real calls on moto, against figures worked out by hand from the DynamoDB guide."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from benchmarks.aws_costs import REGION, Capacity, item_size, number_size, rcu, read_units, wcu, write_units
from tests.support.moto_resources import registry_resources

TABLE = "artreg-capacity"


@pytest.mark.parametrize(
    ("number", "size"),
    [
        ("7", 2),  # 1 significant digit: 1 + 1
        ("12", 2),
        ("123", 3),
        ("1000", 2),  # trailing zeros do not count
        ("0.0012", 2),  # nor leading ones
        ("-123.4500", 4),  # 12345: 1 + 3
        ("0", 2),
    ],
)
def test_a_number_takes_a_byte_and_one_per_two_significant_digits(number: str, size: int) -> None:
    assert number_size(number) == size


def test_an_item_counts_its_attribute_names_and_values_by_type() -> None:
    # Given an item with one attribute of every type, each size worked out by hand
    item = {
        "s": {"S": "héllo"},  # 1 + 6 (é is 2 bytes)
        "n": {"N": "123"},  # 1 + 3
        "b": {"B": b"\x00\x01\x02"},  # 1 + 3
        "t": {"BOOL": True},  # 1 + 1
        "z": {"NULL": True},  # 1 + 1
        "ss": {"SS": ["a", "bc"]},  # 2 + 3
        "ns": {"NS": ["1", "22"]},  # 2 + 2 + 2
        "l": {"L": [{"S": "ab"}, {"N": "1"}]},  # 1 + 3 + (1 + 2) + (1 + 2)
        "m": {"M": {"key": {"S": "v"}}},  # 1 + 3 + (1 + 3 + 1)
        "e": {"M": {}},  # 1 + 3
    }

    # When it is sized
    size = item_size(item)

    # Then it is the sum of them
    assert size == 7 + 4 + 4 + 2 + 2 + 5 + 6 + 10 + 9 + 4


def test_units_round_up_to_4_kb_for_reads_and_1_kb_for_writes_and_never_fall_to_zero() -> None:
    assert read_units(4096, consistent=True) == 1
    assert read_units(4097, consistent=True) == 2
    assert read_units(4097, consistent=False) == 1
    assert read_units(0, consistent=False) == 0.5
    assert write_units(1024) == 1
    assert write_units(1025) == 2
    assert write_units(0) == 1


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with registry_resources(TABLE, f"{TABLE}-blobs") as resources:
        yield resources["dynamodb"]


def _item(sk: str, padding: int) -> dict[str, Any]:
    return {"PK": {"S": "A#p#n"}, "SK": {"S": sk}, "fill": {"S": "x" * padding}}


def test_calls_on_moto_are_priced_from_the_items_before_and_after_them(dynamodb: Any) -> None:
    # Given a priced client, a reader nobody prices, and items of 1 KB and a bit under 3 KB
    capacity = Capacity(dynamodb, boto3.client("dynamodb", region_name=REGION))
    small, large = _item("V#1", 1000), _item("V#2", 2900)
    assert item_size(small) == 2 + 5 + 2 + 3 + 4 + 1000  # names PK, SK, fill and their values

    # When it writes them, grows one, reads them and deletes one
    dynamodb.put_item(TableName=TABLE, Item=small)  # 1,016 B: 1 WCU
    dynamodb.put_item(TableName=TABLE, Item=large)  # 2,916 B: 3 WCU
    dynamodb.update_item(  # 1,016 B before, 2,016 B after: 2 WCU
        TableName=TABLE,
        Key={"PK": small["PK"], "SK": small["SK"]},
        UpdateExpression="SET fill = :fill",
        ExpressionAttributeValues={":fill": {"S": "y" * 2000}},
    )
    writes = wcu(capacity.take())
    dynamodb.get_item(TableName=TABLE, Key={"PK": large["PK"], "SK": large["SK"]}, ConsistentRead=True)  # 1 RCU
    dynamodb.get_item(TableName=TABLE, Key={"PK": large["PK"], "SK": {"S": "V#9"}})  # absent, eventually: 0.5
    dynamodb.query(  # 2,016 + 2,916 B summed: 2 RCU
        TableName=TABLE,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": small["PK"]},
        ConsistentRead=True,
    )
    reads = rcu(capacity.take())
    dynamodb.transact_write_items(
        TransactItems=[
            {"Delete": {"TableName": TABLE, "Key": {"PK": large["PK"], "SK": large["SK"]}}},  # 2,916 B: 2 x 3
            {
                "ConditionCheck": {  # 2,016 B: 2 x 2
                    "TableName": TABLE,
                    "Key": {"PK": small["PK"], "SK": small["SK"]},
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {"Put": {"TableName": TABLE, "Item": _item("V#3", 10)}},  # 26 B: 2 x 1
        ]
    )
    transacted = wcu(capacity.take())

    # Then each is priced by the larger of before and after, a Query by its sum, a transaction twice
    assert writes == 1 + 3 + 2
    assert reads == 1 + 0.5 + 2
    assert transacted == 6 + 4 + 2
    assert capacity.failed == 0
