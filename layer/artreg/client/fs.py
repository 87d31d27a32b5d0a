"""An fsspec file system for `artreg://` URIs, read-only, registered under the protocol `artreg`
through the `fsspec.specs` entry point (install the `fsspec` extra):

    import fsspec, pandas
    fsspec.open("artreg://iris/train@production/train.csv").open().read()
    pandas.read_csv("artreg://iris/train@production/train.csv")

A file is served from the local cache when it holds the blob, else fetched whole into it (or into
a temporary file, the cache being off); either way its bytes are checked against the manifest's
SHA-256 before any is handed out (`Registry.open`). The registry's URL is the SDK's setting
(`ARTREG_URL`, the config file), or the `url=` storage option; the project is the URI's.
"""

from __future__ import annotations

import threading
from typing import IO, Any

from fsspec.spec import AbstractFileSystem

from artreg.client.errors import NotFound
from artreg.client.registry import Registry
from artreg.client.settings import load_settings
from artreg.client.uris import SCHEME, ArtregUri, parse_uri
from artreg.model.wire import FileEntry


class ArtregFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    protocol = "artreg"
    root_marker = ""

    def __init__(self, url: str | None = None, **storage_options: Any) -> None:
        super().__init__(url=url, **storage_options)
        self.url = url
        self._lock = threading.Lock()
        # by (URL, project, cache folder) as the settings stand at each call: ARTREG_URL may change
        # while fsspec keeps this instance (it caches instances by their arguments)
        self._registries: dict[tuple[str, str, str], Registry] = {}

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        path = path[len(SCHEME) :] if path.startswith(SCHEME) else path
        return path.rstrip("/")

    def _parts(self, path: str) -> tuple[Registry, ArtregUri]:
        uri = parse_uri(SCHEME + self._strip_protocol(path))
        settings = load_settings(url=self.url, project=uri.project)
        key = (settings.url, uri.project, str(settings.cache_dir))
        with self._lock:
            if key not in self._registries:
                self._registries[key] = Registry(settings=settings, progress=False)
            return self._registries[key], uri

    def _entries(self, path: str) -> tuple[ArtregUri, list[dict[str, Any]]]:
        reg, uri = self._parts(path)
        version = reg.get_artifact(uri.name, uri.ref).version  # one resolve: a moving alias lists one version
        base = f"{uri.project}/{uri.name}@{uri.ref}"
        found = [
            {
                "name": f"{base}/{e.path}",
                "size": e.size,
                "type": "file",
                "version": version,
                **({"sha256": e.sha256, "metadata": e.metadata} if isinstance(e, FileEntry) else {"uri": e.uri}),
            }
            for e in reg.files(uri.name, version)
        ]
        return uri, found

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """The files and folders directly under `path` (a version, or a folder in one)."""
        uri, entries = self._entries(path)
        prefix = self._strip_protocol(path) + "/"
        if uri.path and any(e["name"] == prefix[:-1] for e in entries):  # a file lists itself
            out = [e for e in entries if e["name"] == prefix[:-1]]
            return out if detail else [e["name"] for e in out]
        listed: dict[str, dict[str, Any]] = {}
        for entry in entries:
            if not entry["name"].startswith(prefix):
                continue
            head, sep, _ = entry["name"][len(prefix) :].partition("/")
            if sep:
                listed.setdefault(prefix + head, {"name": prefix + head, "size": 0, "type": "directory"})
            else:
                listed[entry["name"]] = entry
        if not listed and uri.path:
            raise FileNotFoundError(path)
        out = sorted(listed.values(), key=lambda e: str(e["name"]))
        return out if detail else [e["name"] for e in out]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        uri, entries = self._entries(path)
        name = self._strip_protocol(path)
        for entry in entries:
            if entry["name"] == name:
                return entry
        if uri.path is None or any(e["name"].startswith(name + "/") for e in entries):
            return {"name": name, "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> IO[bytes]:
        if mode != "rb":
            raise NotImplementedError("the artreg file system is read-only: log a new version to change files")
        reg, uri = self._parts(path)
        try:
            return reg.open(uri.version_uri, uri.path)
        except NotFound as error:
            raise FileNotFoundError(f"{path}: {error.message}") from error
