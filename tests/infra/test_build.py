"""`sam build` on this machine, without Docker: the layer holds artreg and its dependencies built for
the Lambda platform (arm64, CPython 3.12), and stays well under Lambda's size limit."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.template import REPO_ROOT, TEMPLATE_PATH

UNZIPPED_LIMIT = 20 * 1024**2  # our own target; Lambda's limit is 250 MB for function and layers


def _tags(wheel_file: Path) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in wheel_file.read_text().splitlines() if line.startswith("Tag:")]


def _zipped_size(root: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root))
    return len(buffer.getvalue())


# the dev extras install aws-sam-cli beside this interpreter, which need not be on PATH (scripts/test)
BIN = str(Path(sys.executable).parent)
SAM = shutil.which("sam", path=os.pathsep.join([BIN, os.environ.get("PATH", "")]))


def _python312() -> bool:
    """A python3.12 that runs (a pyenv shim of a version not selected does not), as the Makefile asks."""
    try:
        return subprocess.run(["python3.12", "-c", "pass"], capture_output=True, check=False).returncode == 0
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(SAM is None, reason="aws-sam-cli is not installed (pip install aws-sam-cli)")
def test_sam_build_makes_an_arm64_cpython312_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given the template, and no Docker (the build must not ask for a container)
    build_dir = tmp_path / "build"
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": os.pathsep.join([BIN, os.environ.get("PATH", "")])}
    # When sam builds it
    result = subprocess.run(
        [str(SAM), "build", "--template-file", str(TEMPLATE_PATH), "--build-dir", str(build_dir), "--base-dir", "."],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    # Then the layer holds the artreg package, its event schemas included, and no build leftovers
    site = build_dir / "ArtifactsLayer" / "python"
    assert (site / "artreg" / "__init__.py").is_file()
    assert (site / "artreg" / "events" / "schemas" / "ArtifactVersionCommitted.json").is_file()
    assert not list(site.glob("artreg*.egg-info"))
    # And bytecode, if any, is CPython 3.12's (a read-only layer cannot cache its own): there is some
    # whenever this machine has a python3.12 to compile with
    assert not [p.name for p in site.rglob("*.pyc") if ".cpython-312." not in p.name]
    if _python312():
        assert (site / "artreg" / "api" / "__pycache__" / "app.cpython-312.pyc").is_file()
    # And every dependency is a wheel for CPython 3.12 on arm64, or a pure-Python one
    wheels = {p.parent.name: _tags(p) for p in site.glob("*.dist-info/WHEEL")}
    assert {"pydantic_core", "aws_lambda_powertools", "pydantic_settings", "semver"} <= {
        name.split("-")[0] for name in wheels
    }
    for name, tags in wheels.items():
        for tag in tags:
            python, abi, platform = tag.split("-")
            assert (abi, platform) == ("none", "any") or (
                python == "cp312" and abi in {"cp312", "abi3"} and "aarch64" in platform
            ), (name, tag)
    assert any("aarch64" in tag for tags in wheels.values() for tag in tags)
    # And the layer stays small (the Lambda runtime's own boto3 and botocore are not copied)
    for runtime_package in ("botocore", "urllib3", "dateutil", "jmespath", "six.py"):
        assert not (site / runtime_package).exists(), runtime_package
    unzipped = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    zipped = _zipped_size(site.parent)
    with capsys.disabled():
        print(f"\nlayer: {unzipped / 1024**2:.1f} MB unzipped, {zipped / 1024**2:.1f} MB zipped")
    assert unzipped <= UNZIPPED_LIMIT
    # And each function's folder holds its handler only
    for function in ("ApiFunction", "PublisherFunction", "LineageFunction", "JanitorFunction"):
        assert (build_dir / function / "app.py").is_file(), function
