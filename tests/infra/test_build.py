"""The layer: locked to the versions the tests run, refused without its bytecode (and `sam build` says
why), and, by `sam build` on this machine without Docker, built for the Lambda platform (arm64,
CPython 3.12) from the lock, well under Lambda's size limit."""

from __future__ import annotations

import importlib.metadata
import io
import os
import re
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
needs_sam = pytest.mark.skipif(SAM is None, reason="aws-sam-cli is not installed (pip install aws-sam-cli)")
LAYER = REPO_ROOT / "layer"
# the Lambda runtime's own, which the layer must not shadow
RUNTIME_PACKAGES = {"boto3", "botocore", "s3transfer", "urllib3", "python-dateutil", "six", "jmespath"}


def _locked() -> dict[str, str]:
    """name -> version of each package requirements.lock pins (names normalized as PyPI does)."""
    text = (LAYER / "requirements.lock").read_text()
    return {_normalized(m[0]): m[1] for m in re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\$", text, re.MULTILINE)}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _makefile_python312() -> str:
    """The python3.12 the layer's Makefile compiles with (empty: none found)."""
    probe = "print-python312: ; @echo $(PYTHON312)"
    result = subprocess.run(
        ["make", "-s", "-C", str(LAYER), "--eval", probe, "print-python312"], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def _sam_build(build_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    assert SAM is not None
    return subprocess.run(
        [SAM, "build", "--template-file", str(TEMPLATE_PATH), "--build-dir", str(build_dir), "--base-dir", "."],
        cwd=REPO_ROOT,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": os.pathsep.join([BIN, os.environ.get("PATH", "")]), **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_lock_pins_what_the_tests_run() -> None:
    # Given the layer's lock
    locked = _locked()
    # Then it pins every direct requirement of the layer, and each of its dependencies, with hashes
    direct = {
        _normalized(re.split(r"[\[<>=!~; ]", line)[0])
        for line in (LAYER / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert direct <= set(locked), direct - set(locked)
    assert {"pydantic", "pydantic-core", "pydantic-settings", "aws-lambda-powertools", "semver"} <= set(locked)
    entries = re.split(r"\n(?=[A-Za-z])", (LAYER / "requirements.lock").read_text().split("\n", 2)[2].strip())
    assert all("--hash=sha256:" in entry for entry in entries)
    # And the version of each is the one the tests run with here (`make lock` after an upgrade)
    installed = {name: importlib.metadata.version(name) for name in locked}
    assert installed == locked
    # And it leaves the Lambda runtime's own packages out
    assert not RUNTIME_PACKAGES & set(locked)
    # And the layer is installed from it, hashes checked, nothing else pulled in
    makefile = (LAYER / "Makefile").read_text()
    assert "-r requirements.lock" in makefile
    assert "--require-hashes" in makefile
    assert "--no-deps" in makefile


@needs_sam
def test_a_build_that_cannot_compile_the_layer_fails_and_sam_build_says_why(tmp_path: Path) -> None:
    # Given no python3.12 for the layer's Makefile to compile with
    # When sam builds the template
    result = _sam_build(tmp_path / "build", PYTHON312="")
    # Then the build fails, before fetching anything, and says why and what to do, where a person sees it
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "no python3.12 found" in output, output[-2000:]
    assert "ARTREG_LAYER_SOURCES_ONLY=1" in output
    assert not (tmp_path / "build" / "ArtifactsLayer" / "python").exists()


@pytest.mark.slow
@needs_sam
def test_sam_build_makes_an_arm64_cpython312_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given the template, and no Docker (the build must not ask for a container)
    build_dir = tmp_path / "build"
    # (a machine without a python3.12 builds the sources only, as it must ask for)
    compiles = _makefile_python312() != ""
    # When sam builds it
    result = _sam_build(build_dir, **({} if compiles else {"ARTREG_LAYER_SOURCES_ONLY": "1"}))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    # Then the layer holds the artreg package, its event schemas included, and no build leftovers
    site = build_dir / "ArtifactsLayer" / "python"
    assert (site / "artreg" / "__init__.py").is_file()
    assert (site / "artreg" / "events" / "schemas" / "ArtifactVersionCommitted.json").is_file()
    assert not list(site.glob("artreg*.egg-info"))
    # And bytecode, if any, is CPython 3.12's (a read-only layer cannot cache its own): there is some
    # whenever this machine has a python3.12 to compile with
    assert not [p.name for p in site.rglob("*.pyc") if ".cpython-312." not in p.name]
    assert (site / "artreg" / "api" / "__pycache__" / "app.cpython-312.pyc").is_file() == compiles
    # And it holds exactly the locked versions
    shipped = {
        _normalized(p.name.removesuffix(".dist-info").rsplit("-", 1)[0]): p.name.removesuffix(".dist-info").rsplit(
            "-", 1
        )[1]
        for p in site.glob("*.dist-info")
    }
    assert shipped == _locked()
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
    for function in ("ApiFunction", "PublisherFunction", "LineageFunction", "JanitorFunction", "VerifierFunction"):
        assert (build_dir / function / "app.py").is_file(), function
