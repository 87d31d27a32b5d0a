"""Materializers: how `Registry.save` writes a Python object as files and `LoggedArtifact.load` reads
it back. The one chosen (by the object's type) is recorded in the version's metadata under
`artreg.materializer` (`{"name", "version", ...what it needs to read the files back}`), so that
`load()` needs no hint.

Built in (artreg.client.materializers.builtin), the heavy libraries imported only when used:

- `bytes`: `bytes`, `bytearray`, as `data.bin`.
- `text`: `str`, as `data.txt` (UTF-8).
- `json`: what JSON gives back equal (dicts with string keys, lists, numbers, booleans, None), as
  `data.json`.
- `numpy`: a `numpy.ndarray` not of Python objects, as `array.npy`, read with `allow_pickle=False`.
- `pandas`: a `pandas.DataFrame`, as `frame.parquet` when pyarrow is installed, else as
  `frame.json` in pandas' Table Schema JSON (which keeps the index and the common dtypes); never a
  pickle.
- `torch`: a state dict (str -> `torch.Tensor`), as `state.safetensors` when safetensors is
  installed, else `state.pt`, read with `torch.load(weights_only=True)`.
- `sklearn`: a scikit-learn estimator, as `model.skops` when skops is installed (loading types skops
  does not trust needs `allow_pickle=True`), else as a pickle, like `pickle`.
- `pickle`: anything, as `object.pkl`, saved only with `save(..., allow_pickle=True)` and loaded only
  with `load(allow_pickle=True)`: unpickling runs code.

A third party adds one with an entry point in the group `artreg.materializers` naming a
`Materializer` subclass:

    [project.entry-points."artreg.materializers"]
    polars = "mypkg.artreg_polars:PolarsMaterializer"

Those are tried before the built-in ones when saving; a name may not be taken twice.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

from artreg.client.errors import Invalid, PickleRefused

log = logging.getLogger("artreg")
ENTRY_POINT_GROUP = "artreg.materializers"
METADATA_KEY = "artreg.materializer"


class Materializer(ABC):
    """Writes objects of some types into a folder and reads them back.

    `save` writes files into an empty folder and answers what `load` needs to read them back (a
    JSON object, recorded with the name and version); `load` gets the folder with those files and
    that JSON. `version` is raised when the files change shape: a version written by a newer
    materializer is refused rather than misread."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    artifact_type: ClassVar[str] = "artifact"  # the type of a new artifact saved by it

    @abstractmethod
    def can_save(self, obj: Any) -> bool: ...

    @abstractmethod
    def save(self, obj: Any, folder: Path, *, allow_pickle: bool) -> dict[str, Any]: ...

    @abstractmethod
    def load(self, folder: Path, info: dict[str, Any], *, allow_pickle: bool) -> Any: ...


def refuse_pickle(what: str, *, on_load: bool) -> PickleRefused:
    if on_load:
        return PickleRefused(
            f"{what} is a pickle, and unpickling runs whatever code its writer put in it: if you trust"
            " who logged it, load it with allow_pickle=True (e.g. reg.load('name@ref', allow_pickle=True))",
            details={"allow": "allow_pickle=True"},
        )
    return PickleRefused(
        f"{what} has no materializer but pickle; save it with allow_pickle=True to store it as a pickle"
        " (loading it will need allow_pickle=True too), or register a materializer for its type",
        details={"allow": "allow_pickle=True"},
    )


@functools.cache
def _plugins() -> tuple[Materializer, ...]:
    """The materializers of installed packages' entry points, loaded once; one that fails to load
    is skipped with a warning (a broken plugin must not break every save)."""
    found: list[Materializer] = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = point.load()
            found.append(cls() if isinstance(cls, type) else cls)
        except Exception as error:
            log.warning("artreg: materializer entry point %s could not be loaded: %s", point.value, error)
    return tuple(found)


def all_materializers() -> list[Materializer]:
    """Third parties' first, then the built-in ones, pickle last."""
    from artreg.client.materializers.builtin import BUILTIN

    builtin_names = {m.name for m in BUILTIN}
    plugins = [m for m in _plugins() if m.name not in builtin_names]
    return [*plugins, *BUILTIN]


def for_object(obj: Any, name: str | None = None, *, allow_pickle: bool = False) -> Materializer:
    """The materializer named `name`, or the first that takes `obj`."""
    if name is not None:
        return by_name(name)
    for materializer in all_materializers():
        if materializer.name == "pickle" and not allow_pickle:
            continue
        if materializer.can_save(obj):
            return materializer
    raise refuse_pickle(f"an object of type {type(obj).__module__}.{type(obj).__qualname__}", on_load=False)


def by_name(name: str) -> Materializer:
    for materializer in all_materializers():
        if materializer.name == name:
            return materializer
    raise Invalid(
        f"no materializer {name!r} is installed (built in: {', '.join(m.name for m in all_materializers())};"
        f" others come from the entry point group {ENTRY_POINT_GROUP!r})",
        details={"materializer": name},
    )
