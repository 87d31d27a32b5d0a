"""The transaction items of a change's version updates and links (see `dynamodb` for the layout): a
link is an item under the version holding it plus a reverse item under its target, and a count of
the links to a version on that version's item, which a new link adds to on condition that the target
is committed and a deletion checks is zero, in the same transaction as the holder's head."""

from __future__ import annotations

from typing import Any

from artreg.aws import dynamodb_codec as codec
from artreg.aws.dynamodb_codec import Item
from artreg.registry.records import ArtifactChange, StoredLink, VersionDelta

Target = tuple[str, str]  # (name, version) of a link's target


def target_counts(change: ArtifactChange) -> dict[Target, tuple[int, StoredLink | None]]:
    """For each version a change links to or unlinks from, the net change of its count of links to it,
    and a link that needs it committed (None when it is only unlinked from). One entry a version: a
    transaction may act on an item once."""
    counts: dict[Target, tuple[int, StoredLink | None]] = {}

    def add(target: Target, by: int, needs: StoredLink | None) -> None:
        net, needed = counts.get(target, (0, None))
        counts[target] = (net + by, needed or needs)

    for link in change.links_set:
        target = (link.target.name, link.target.version)
        previous = (link.previous.name, link.previous.version) if link.previous else None
        add(target, 0 if previous == target else 1, link)
        if previous is not None and previous != target:
            add(previous, -1, None)
    for unlink in change.links_removed:
        add((unlink.link.target.name, unlink.link.target.version), -1, None)
    return counts


def version_update(
    table: str, project: str, name: str, delta: VersionDelta, linked_by: int, must_be_committed: bool
) -> Any:
    """The update of a version item. A deletion that must find it unlinked checks its count of links to
    it; a link of the same change to it adds to that count and needs it committed."""
    expression, values, attr_names = codec.delta_update(delta, linked_by)
    condition = "attribute_exists(PK)"
    if delta.require_unlinked:
        condition += " AND (attribute_not_exists(linked_by) OR linked_by = :unlinked)"
        values = {**values, ":unlinked": codec.n(0)}
    if must_be_committed:
        condition += " AND #state = :committed"
        attr_names = {**attr_names, "#state": "state"}
        values = {**values, ":committed": codec.s("committed")}
    return _update(table, codec.version_key(project, name, delta.version), expression, condition, values, attr_names)


def copy_update(table: str, key: Item, delta: VersionDelta) -> Any:
    """The same change on an alias item's copy of the version."""
    expression, values, attr_names = codec.delta_update(delta)
    return _update(table, key, expression, "attribute_exists(PK)", values, attr_names)


def target_update(table: str, project: str, name: str, version: str, by: int, must_be_committed: bool) -> Any:
    """Counts links to a version on its item (or only checks it is committed, when the count stays)."""
    key = codec.version_key(project, name, version)
    committed = {":committed": codec.s("committed")}
    if must_be_committed and not by:
        return {
            "ConditionCheck": {
                "TableName": table,
                "Key": key,
                "ConditionExpression": "#state = :committed",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": committed,
            }
        }
    if must_be_committed:
        return _update(
            table,
            key,
            "ADD linked_by :by",
            "#state = :committed",
            {":by": codec.n(by), **committed},
            {"#state": "state"},
        )
    return _update(table, key, "ADD linked_by :by", "attribute_exists(PK)", {":by": codec.n(by)}, {})


def link_writes(table: str, change: ArtifactChange) -> list[Any]:
    """The link items, reverse items and unlink records of a change."""
    items: list[Any] = []
    for link in change.links_set:
        items += [
            {"Put": {"TableName": table, "Item": codec.link_item(link)}},
            {"Put": {"TableName": table, "Item": codec.reverse_item(link)}},
        ]
        previous = link.previous
        if previous is not None and (previous.name, previous.version) != (link.target.name, link.target.version):
            items.append(
                {"Delete": {"TableName": table, "Key": codec.reverse_key(link, previous.name, previous.version)}}
            )
    for unlink in change.links_removed:
        gone = unlink.link
        items += [
            {"Delete": {"TableName": table, "Key": codec.link_key(gone.project, gone.name, gone.version, gone.role)}},
            {"Delete": {"TableName": table, "Key": codec.reverse_key(gone, gone.target.name, gone.target.version)}},
            {
                "Put": {
                    "TableName": table,
                    "Item": codec.unlink_item(unlink),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
    return items


def _update(
    table: str, key: Item, expression: str, condition: str, values: dict[str, Any], attr_names: dict[str, str]
) -> Any:
    return {
        "Update": {
            "TableName": table,
            "Key": key,
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            **({"ExpressionAttributeNames": attr_names} if attr_names else {}),
            **({"ExpressionAttributeValues": values} if values else {}),
        }
    }
