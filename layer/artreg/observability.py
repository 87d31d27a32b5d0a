"""The registry's EMF metrics, one definition for every function."""

from __future__ import annotations

import os

from aws_lambda_powertools import Metrics


def registry_metrics() -> Metrics:
    """Powertools' metrics under the stack's own namespace (`POWERTOOLS_METRICS_NAMESPACE`, which
    template.yaml sets per stack so that two stacks in one account keep their metrics apart); `artreg`
    where none is set (the local server, which never flushes them)."""
    return Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "artreg", service="artreg")
