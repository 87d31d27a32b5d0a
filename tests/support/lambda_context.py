"""The Lambda context a handler is given (the part of it artreg and Powertools read), for tests that
call a function's handler directly: the API's, the janitor's, the verifier's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LambdaContext:
    function_name: str = "artreg-api"
    memory_limit_in_mb: int = 1024
    remaining_ms: int = 29_000  # what is left of the function's timeout
    aws_request_id: str = "req-1"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
