"""Verifying a large multipart blob after the call that completed it answered (see `artreg.aws.s3`):
the API starts the verifier function with an asynchronous invocation, and the function settles that one
object version within its own 15 minutes.

`InvocationType="Event"`: Lambda queues the event and answers 202 at once; it runs the function later,
retries a failed run twice (the function's `MaximumRetryAttempts`), and hands an event it gave up on to
the on-failure destination. Settling is idempotent, so a retried run does no harm."""

# no `from __future__ import annotations` here: pydantic would compile each field's annotation from its text
# when the class is made, a cost of every cold start (benchmarks/cold_start.py)

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from artreg.aws.errors import translate
from artreg.model.names import PROJECT_RE, SHA256_RE, anchored

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


class VerifyBlob(BaseModel):
    """The verifier's event: which object version of which blob to settle."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    project: str = Field(pattern=anchored(PROJECT_RE))
    sha256: str = Field(pattern=anchored(SHA256_RE))
    version_id: str = Field(min_length=1, max_length=1024)


class LambdaVerification:
    """The S3 store's `start_verification`: one asynchronous invocation of the verifier function."""

    def __init__(self, client: "LambdaClient", function_name: str):
        self.client = client
        self.function_name = function_name

    def __call__(self, project: str, sha256: str, version_id: str) -> None:
        payload = VerifyBlob(project=project, sha256=sha256, version_id=version_id).model_dump_json()
        try:
            self.client.invoke(FunctionName=self.function_name, InvocationType="Event", Payload=payload.encode())
        except ClientError as error:
            raise translate(error) from error
