"""schemathesis hooks (SCHEMATHESIS_HOOKS=tests.support.fuzz_hooks): a page cursor is opaque, so the
fuzzer gets ones the API hands out instead of inventing text that could never be one."""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

from artreg.registry import cursors

# the first page's position in every listing, and later ones of the name-ordered listings
schemathesis.openapi.format(
    "artreg-cursor",
    st.one_of(
        st.just(cursors.encode({})), st.from_regex(r"\A[a-z0-9]{1,20}\Z").map(lambda n: cursors.encode({"after": n}))
    ),
)
