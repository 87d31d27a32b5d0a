"""The built-in materializers (see artreg.client.materializers). A library's materializer looks for
the library in `sys.modules` to tell whether an object is one of its types: an object of numpy's
cannot exist unless numpy was imported, so `save` imports nothing to find the materializer, and
each library is imported only by the materializer that writes or reads it."""

from __future__ import annotations

import importlib.util
import json
import pickle
import sys
from pathlib import Path
from typing import Any

from artreg.client.errors import Invalid
from artreg.client.materializers import Materializer, refuse_pickle


def _installed(module: str) -> bool:
    return module in sys.modules or importlib.util.find_spec(module) is not None


def _file(info: dict[str, Any], default: str) -> str:
    name = info.get("file", default)
    if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
        raise Invalid(f"materializer metadata names file {name!r}, not a file name")
    return name


class BytesMaterializer(Materializer):
    name = "bytes"

    def can_save(self, obj: Any) -> bool:
        return isinstance(obj, bytes | bytearray)

    def save(self, obj: Any, folder: Path, *, allow_pickle: bool) -> dict[str, Any]:
        (folder / "data.bin").write_bytes(bytes(obj))
        return {"file": "data.bin"}

    def load(self, folder: Path, info: dict[str, Any], *, allow_pickle: bool) -> Any:
        return (folder / _file(info, "data.bin")).read_bytes()


class TextMaterializer(Materializer):
    name = "text"

    def can_save(self, obj: Any) -> bool:
        return isinstance(obj, str)

    def save(self, obj: Any, folder: Path, *, allow_pickle: bool) -> dict[str, Any]:
        (folder / "data.txt").write_bytes(obj.encode("utf-8"))  # bytes as given: no newline translation
        return {"file": "data.txt", "encoding": "utf-8"}

    def load(self, folder: Path, info: dict[str, Any], *, allow_pickle: bool) -> Any:
        return (folder / _file(info, "data.txt")).read_bytes().decode(info.get("encoding", "utf-8"))


class JsonMaterializer(Materializer):
    """Values that JSON gives back equal: dicts with string keys, lists, numbers, booleans, None
    (a tuple, a NaN or an int key would come back otherwise, so those are not taken)."""

    name = "json"

    def can_save(self, obj: Any) -> bool:
        if not isinstance(obj, dict | list | int | float | bool) and obj is not None:
            return False
        try:
            return bool(json.loads(json.dumps(obj, allow_nan=False)) == obj)
        except (TypeError, ValueError, RecursionError):
            return False

    def save(self, obj: Any, folder: Path, *, allow_pickle: bool) -> dict[str, Any]:
        text = json.dumps(obj, allow_nan=False, ensure_ascii=False, indent=1)
        (folder / "data.json").write_text(text, encoding="utf-8")
        return {"file": "data.json"}

    def load(self, folder: Path, info: dict[str, Any], *, allow_pickle: bool) -> Any:
        return json.loads((folder / _file(info, "data.json")).read_text(encoding="utf-8"))


class NumpyMaterializer(Materializer):
    """`.npy`, never pickled: an array of Python objects is not taken (it would need a pickle)."""

    name = "numpy"

    def can_save(self, obj: Any) -> bool:
        np = sys.modules.get("numpy")
        return np is not None and isinstance(obj, np.ndarray) and not obj.dtype.hasobject

    def save(self, obj: Any, folder: Path, *, allow_pickle: bool) -> dict[str, Any]:
        import numpy as np

        np.save(folder / "array.npy", obj, allow_pickle=False)
        return {"file": "array.npy", "dtype": str(obj.dtype), "shape": list(obj.shape)}

    def load(self, folder: Path, info: dict[str, Any], *, allow_pickle: bool) -> Any:
        import numpy as np

        return np.load(folder / _file(info, "array.npy"), allow_pickle=False)


class PandasMaterializer(Materializer):
    """Parquet when pyarrow is installed (column names must then be strings); otherwise pandas'
    Table Schema JSON (`orient="table"`), which keeps the index and the common dtypes. Never a
    pickle."""

    name = "pandas"
    artifact_type = "dataset"

    def can_save(self, obj: Any) -> bool:
        pd = sys.modules.get("pandas")
        return pd is not None and isinstance(obj, pd.DataFrame)

    def save(self, obj: Any, folder: Path, *, allow_pickle: bool) -> dict[str, Any]:
        if _installed("pyarrow"):
            obj.to_parquet(folder / "frame.parquet", engine="pyarrow")
            return {"file": "frame.parquet", "format": "parquet"}
        obj.to_json(folder / "frame.json", orient="table")
        return {"file": "frame.json", "format": "json-table"}

    def load(self, folder: Path, info: dict[str, Any], *, allow_pickle: bool) -> Any:
        import pandas as pd

        if info.get("format") == "parquet":
            return pd.read_parquet(folder / _file(info, "frame.parquet"), engine="pyarrow")
        return pd.read_json(folder / _file(info, "frame.json"), orient="table")


class TorchStateDictMaterializer(Materializer):
    """A state dict (string keys, tensor values): safetensors when installed (tensors that share
    memory, which it cannot store, fall back), else `torch.save`, read with `weights_only=True`,
    which unpickles tensors and containers only."""

    name = "torch"
    artifact_type = "model"

    def can_save(self, obj: Any) -> bool:
        torch = sys.modules.get("torch")
        return (
            torch is not None
            and isinstance(obj, dict)
            and bool(obj)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
        )

    def save(self, obj: Any, folder: Path, *, allow_pickle: bool) -> dict[str, Any]:
        import torch

        if _installed("safetensors"):
            from safetensors.torch import save_file

            try:
                save_file({k: v.contiguous() for k, v in obj.items()}, str(folder / "state.safetensors"))
                return {"file": "state.safetensors", "format": "safetensors"}
            except (RuntimeError, ValueError):  # shared tensors: torch.save keeps them shared
                (folder / "state.safetensors").unlink(missing_ok=True)
        torch.save(dict(obj), folder / "state.pt")
        return {"file": "state.pt", "format": "torch"}

    def load(self, folder: Path, info: dict[str, Any], *, allow_pickle: bool) -> Any:
        if info.get("format") == "safetensors":
            from safetensors.torch import load_file

            return load_file(str(folder / _file(info, "state.safetensors")))
        import torch

        return torch.load(folder / _file(info, "state.pt"), weights_only=True, map_location="cpu")


class SklearnMaterializer(Materializer):
    """skops (`.skops`, which loads only the types it is told to trust) when installed; otherwise
    a pickle, saved and loaded only with `allow_pickle=True`."""

    name = "sklearn"
    artifact_type = "model"

    def can_save(self, obj: Any) -> bool:
        base = sys.modules.get("sklearn.base")
        return base is not None and isinstance(obj, base.BaseEstimator)

    def save(self, obj: Any, folder: Path, *, allow_pickle: bool) -> dict[str, Any]:
        if _installed("skops"):
            import skops.io as sio

            sio.dump(obj, folder / "model.skops")
            return {"file": "model.skops", "format": "skops"}
        if not allow_pickle:
            raise refuse_pickle(f"a {type(obj).__name__}: skops is not installed, so it", on_load=False)
        return {**PickleMaterializer().save(obj, folder, allow_pickle=True), "format": "pickle"}

    def load(self, folder: Path, info: dict[str, Any], *, allow_pickle: bool) -> Any:
        if info.get("format") != "skops":
            return PickleMaterializer().load(folder, info, allow_pickle=allow_pickle)
        import skops.io as sio

        path = folder / _file(info, "model.skops")
        untrusted = sio.get_untrusted_types(file=path)
        if untrusted and not allow_pickle:
            raise Invalid(
                f"this skops file holds types skops does not trust by default ({', '.join(untrusted[:5])}):"
                " if you trust who logged it, load it with allow_pickle=True",
                code="untrusted_types",
                details={"types": untrusted[:50]},
            )
        return sio.load(path, trusted=untrusted)


class PickleMaterializer(Materializer):
    """Anything pickle takes, only when the caller says so, both ways."""

    name = "pickle"

    def can_save(self, obj: Any) -> bool:
        return True

    def save(self, obj: Any, folder: Path, *, allow_pickle: bool) -> dict[str, Any]:
        if not allow_pickle:
            raise refuse_pickle(f"an object of type {type(obj).__qualname__}", on_load=False)
        with open(folder / "object.pkl", "wb") as out:
            pickle.dump(obj, out, protocol=pickle.DEFAULT_PROTOCOL)
        return {"file": "object.pkl", "python": "{}.{}".format(*sys.version_info[:2])}

    def load(self, folder: Path, info: dict[str, Any], *, allow_pickle: bool) -> Any:
        if not allow_pickle:
            raise refuse_pickle("this version", on_load=True)
        with open(folder / _file(info, "object.pkl"), "rb") as source:
            return pickle.load(source)  # noqa: S301 - the caller allowed it explicitly


BUILTIN: tuple[Materializer, ...] = (
    BytesMaterializer(),
    TextMaterializer(),
    NumpyMaterializer(),
    PandasMaterializer(),
    TorchStateDictMaterializer(),
    SklearnMaterializer(),
    JsonMaterializer(),
    PickleMaterializer(),
)
