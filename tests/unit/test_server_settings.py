"""`artreg server`'s `ARTREG_*` settings: one model (artreg.settings.ServerSettings), and a bad value
ends the server saying which variable and why, before it listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from artreg.local.server import server_settings


def test_the_server_reads_its_variables_into_one_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given the server's variables
    monkeypatch.setenv("ARTREG_TRUST_ORIGINS", "https://notebook.example, http://localhost:8888,")
    monkeypatch.setenv("ARTREG_MULTIPART_THRESHOLD", str(8 * 1024**2))
    monkeypatch.setenv("ARTREG_PART_SIZE", str(5 * 1024**2))
    monkeypatch.setenv("ARTREG_HTTP", "h11")
    monkeypatch.setenv("ARTREG_UI_DIR", str(tmp_path))
    monkeypatch.setenv("ARTREG_PROTECTED_ALIASES", "prod")
    # When they are read, with and without the --protected-alias flag
    read = server_settings()
    flagged = server_settings(["gate"])
    # Then each is what its variable says (the origins split on commas), and the flag wins over its variable
    assert read.trust_origins == ("https://notebook.example", "http://localhost:8888")
    assert (read.multipart_threshold, read.part_size) == (8 * 1024**2, 5 * 1024**2)
    assert (read.http, read.ui_dir, read.protected_aliases) == ("h11", tmp_path, {"prod"})
    assert flagged.protected_aliases == {"gate"}


def test_without_variables_the_server_keeps_its_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRUST_ORIGINS", "MULTIPART_THRESHOLD", "PART_SIZE", "HTTP", "UI_DIR", "PROTECTED_ALIASES"):
        monkeypatch.delenv(f"ARTREG_{name}", raising=False)
    read = server_settings()
    assert (read.trust_origins, read.multipart_threshold, read.part_size, read.ui_dir) == ((), None, None, None)
    assert (read.http, read.protected_aliases, read.event_source) == ("httptools", {"production"}, "artreg")


@pytest.mark.parametrize(
    ("name", "value"),
    [("ARTREG_MULTIPART_THRESHOLD", "1024"), ("ARTREG_PART_SIZE", "lots"), ("ARTREG_HTTP", "h2")],
)
def test_a_bad_variable_stops_the_server_naming_it(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    # Given a variable whose value breaks its rule
    monkeypatch.setenv(name, value)
    # When the server reads its settings / Then it stops, saying which variable, why, and what it got
    with pytest.raises(SystemExit) as stopped:
        server_settings()
    message = str(stopped.value)
    assert message.startswith(f"{name}: "), message
    assert repr(value) in message, message
