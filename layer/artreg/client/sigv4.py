"""SigV4 for a deployed registry (API Gateway with IAM authorization): every API call is signed for
the `execute-api` service with the ordinary AWS credential chain. botocore is imported here only,
and only when a signer is made. Blob URLs are presigned and never pass through here."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from artreg.client.errors import ArtregError, Invalid

if TYPE_CHECKING:
    from botocore.credentials import Credentials

SERVICE = "execute-api"
_EXECUTE_API = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")
_ANY_REGION = re.compile(r"(?:^|\.)([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2})\.")


def wants_sigv4(url: str) -> bool:
    """A deployed stack's URL: the host is one of AWS's."""
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(".amazonaws.com")


def region_of(url: str) -> str | None:
    """The region in an AWS host name (`abc.execute-api.eu-west-1.amazonaws.com`), else from
    AWS_REGION / AWS_DEFAULT_REGION."""
    host = (urlsplit(url).hostname or "").lower()
    match = _EXECUTE_API.search(host) or (_ANY_REGION.search(host) if host.endswith(".amazonaws.com") else None)
    if match:
        return match.group(1)
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


class SigV4Signer:
    """Signs a request with `SigV4Auth(credentials, "execute-api", region)`. Without `credentials`,
    the default chain (environment, shared files, SSO, container and instance roles) provides them;
    refreshable credentials are read again at each signature."""

    def __init__(self, region: str | None = None, credentials: Credentials | None = None) -> None:
        import botocore.session

        session: Any = None
        if credentials is None or region is None:
            session = botocore.session.get_session()
        if credentials is None:
            credentials = session.get_credentials()
            if credentials is None:
                raise ArtregError(
                    "no AWS credentials found to sign requests with (environment, ~/.aws, SSO or role)",
                    code="no_credentials",
                )
        if region is None:
            region = session.get_config_variable("region")
            if not region:
                raise Invalid(
                    "cannot tell the AWS region to sign for: pass region= or set AWS_REGION",
                    details={"field": "region"},
                )
        self.region: str = region
        self.credentials = credentials

    def sign(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        """The headers to send: `headers` plus Authorization, X-Amz-Date (and X-Amz-Security-Token)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(self.credentials, SERVICE, self.region).add_auth(request)
        return {str(k): str(v) for k, v in request.headers.items()}
