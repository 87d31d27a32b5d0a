"""The AWS clients and metrics a function makes: endpoints right in every partition, metrics under the
stack's own namespace."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from artreg.aws import clients
from artreg.observability import registry_metrics


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("eu-west-1", "bucket.s3.eu-west-1.amazonaws.com"),
        ("us-east-1", "bucket.s3.us-east-1.amazonaws.com"),  # regional, never the global endpoint
        ("cn-north-1", "bucket.s3.cn-north-1.amazonaws.com.cn"),  # the China partition's own suffix
    ],
)
def test_presigned_urls_name_the_regional_endpoint_of_the_partition(
    monkeypatch: pytest.MonkeyPatch, region: str, host: str
) -> None:
    # Given a function running in `region`
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    clients.s3_client.cache_clear()
    try:
        # When it presigns a GET
        url = clients.s3_client().generate_presigned_url("get_object", Params={"Bucket": "bucket", "Key": "k"})
    finally:
        clients.s3_client.cache_clear()
    # Then the URL names that region's endpoint in its partition, signed with SigV4
    assert urlsplit(url).hostname == host
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url


def test_metrics_go_to_the_stacks_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the namespace template.yaml sets for a stack, then none
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "artreg-dev")
    assert registry_metrics().namespace == "artreg-dev"
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE")
    assert registry_metrics().namespace == "artreg"
