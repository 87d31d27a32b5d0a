"""The SDK's links, runs and model versions against `artreg server` over HTTP, as a training job uses
them: a model version linking its dataset by alias, checkpoints per epoch gathered while training."""

from __future__ import annotations

from pathlib import Path

import pytest

from artreg.client import Artifact, Invalid, NotFound, PreconditionFailed, Registry
from tests.support.server import RunningServer


@pytest.fixture
def reg(server: RunningServer, tmp_path: Path) -> Registry:
    return Registry(server.url, "vision", progress=False, cache_dir=tmp_path / "cache")


def artifact(tmp_path: Path, name: str, content: bytes, type: str = "dataset", **options: object) -> Artifact:
    folder = tmp_path / f"{name}-{abs(hash(content))}"
    folder.mkdir()
    (folder / "data.bin").write_bytes(content)
    return Artifact(name, type=type, **options).add(str(folder / "data.bin"))  # type: ignore[arg-type]


def test_a_model_logged_with_links_keeps_the_dataset_version_it_was_trained_on(reg: Registry, tmp_path: Path) -> None:
    # Given a dataset at stable
    iris1 = reg.log_artifact(artifact(tmp_path, "iris", b"v1", aliases={"stable"}))
    # When a model is logged linking it by alias, and the alias then moves on
    model = reg.log_artifact(artifact(tmp_path, "fraud", b"w", "model"), links={"training_data": "iris@stable"})
    reg.log_artifact(artifact(tmp_path, "iris", b"v2", aliases={"stable"}))
    # Then the model's link names the version it was trained on, with its digest
    (link,) = reg.get_artifact("fraud@latest").links
    assert (link.role, link.target.name, link.target.version, link.target.digest) == (
        "training_data",
        "iris",
        "1.0.0",
        iris1.digest,
    )
    # And the dataset version says who links to it
    (holder,) = iris1.linked_by()
    assert (holder.role, holder.source.name, holder.source.version) == ("training_data", "fraud", model.version)


def test_link_and_unlink_a_logged_version(reg: Registry, tmp_path: Path) -> None:
    iris = reg.log_artifact(artifact(tmp_path, "iris", b"v1"))
    iris2 = reg.log_artifact(artifact(tmp_path, "iris", b"v2"))
    model = reg.log_artifact(artifact(tmp_path, "fraud", b"w", "model"))
    made = model.link("data/train", iris)
    assert (made.target.version, [x.role for x in model.links]) == ("1.0.0", ["data/train"])
    # compare-and-swap on the current target's digest
    with pytest.raises(PreconditionFailed):
        model.link("data/train", iris2, if_match=iris2.digest)
    model.link("data/train", iris2, if_match=iris.digest)
    assert [x.target.version for x in model.refresh().links] == ["2.0.0"]
    with pytest.raises(Invalid):
        model.link("Bad Role", iris)
    with pytest.raises(NotFound):
        model.link("eval", "iris@9.0.0")
    model.unlink("data/train")
    assert model.links == []
    assert model.refresh().links == []


def test_checkpoints_per_epoch_gathered_into_one_model_version(reg: Registry, tmp_path: Path) -> None:
    # Given a dataset, and a model trained for 10 epochs, a checkpoint logged each epoch
    reg.log_artifact(artifact(tmp_path, "iris", b"v1", aliases={"stable"}))
    reg.log_artifact(artifact(tmp_path, "fraud", b"first", "model"))
    with reg.model_version("fraud", bump="minor", metadata={"framework": "sklearn"}) as mv:
        mv.link("training_data", "iris@stable")
        for epoch in range(10):
            mv.log_artifact(
                artifact(tmp_path, "fraud-ckpt", f"e{epoch}".encode(), "checkpoint"), role=f"checkpoints/epoch-{epoch}"
            )
        # a version logged through the registry itself with role= is linked too
        reg.log_artifact(artifact(tmp_path, "fraud-metrics", b"0.97", "metrics"), role="metrics")
        (tmp_path / "model.pt").write_bytes(b"final weights")
        mv.artifact.add(str(tmp_path / "model.pt"))  # the model version's own files
    # Then one model version was committed at the end of the block, holding every link, pinned
    assert mv.logged is not None
    assert mv.logged.version == "1.1.0"
    model = reg.get_artifact("fraud", "latest")
    roles = [link.role for link in model.links]
    assert roles == sorted([f"checkpoints/epoch-{e}" for e in range(10)] + ["metrics", "training_data"])
    by_role = {link.role: link.target for link in model.links}
    assert (by_role["checkpoints/epoch-3"].name, by_role["checkpoints/epoch-3"].version) == ("fraud-ckpt", "4.0.0")
    assert by_role["training_data"].version == "1.0.0"
    assert [f.path for f in model.files] == ["model.pt"]


def test_a_block_that_raises_makes_no_model_version(reg: Registry, tmp_path: Path) -> None:
    opened = []

    def train() -> None:
        with reg.model_version("fraud") as mv:
            opened.append(mv)
            mv.log_artifact(artifact(tmp_path, "fraud-ckpt", b"e0", "checkpoint"), role="checkpoints/epoch-0")
            raise RuntimeError("training diverged")

    # When the training block raises, the error goes on
    with pytest.raises(RuntimeError):
        train()
    # Then no model version was made; the checkpoint stays, a version of its own
    assert opened[0].logged is None
    assert reg.get_artifact("fraud-ckpt").version == "1.0.0"
    with pytest.raises(NotFound):
        reg.get_artifact("fraud")
    # And role= with no model version open is refused, before anything is logged
    with pytest.raises(Invalid):
        reg.log_artifact(artifact(tmp_path, "x", b"x"), role="x")
    with pytest.raises(NotFound):
        reg.get_artifact("x")


def test_runs_are_listed_most_recently_seen_first(reg: Registry, tmp_path: Path) -> None:
    reg.log_artifact(artifact(tmp_path, "iris", b"v1"), run_id="prep-1")
    reg.log_artifact(artifact(tmp_path, "fraud", b"w", "model"), run_id="train-1", inputs=["iris@latest"])
    reg.use_artifact("fraud@latest", run_id="eval-1")
    runs = list(reg.runs())
    assert [(r.run_id, r.produced, r.used) for r in runs] == [("eval-1", 0, 1), ("train-1", 1, 1), ("prep-1", 1, 0)]
    assert list(reg.runs(page_size=1))[1].run_id == "train-1"
