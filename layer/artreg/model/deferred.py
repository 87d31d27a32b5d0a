"""Building artreg's deferred pydantic models at once, for a process that validates on many threads.

Its models are `defer_build`: each builds its validator on first use, so that a Lambda's cold start
pays only for the models its request touches. That first build is not thread-safe in pydantic (2.11
to 2.13 at least: `model_rebuild` removes the model's mock validator while it builds, and a second
thread instantiating the model meanwhile gets BaseModel's own, "BaseModel cannot be instantiated
directly"; pydantic issue 11849). A process that serves from several threads (`artreg server`) builds
them all before its first request instead."""

from __future__ import annotations

import importlib

from pydantic import BaseModel

# the modules that define deferred models (imported here, so that none is missed for not being loaded yet)
_MODULES = ("artreg.model.wire", "artreg.model.manifest", "artreg.registry.records", "artreg.settings")


def build_all() -> int:
    """Builds every deferred model of artreg's model modules not built yet; answers how many it built."""
    for name in _MODULES:
        importlib.import_module(name)
    built = 0
    pending: list[type[BaseModel]] = list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model.__module__.startswith("artreg.") and not model.__pydantic_complete__:
            model.model_rebuild()
            built += 1
    from artreg.model.manifest import ENTRIES

    ENTRIES.rebuild()
    return built
