"""The SDK's and the CLI's settings (artreg.client.settings): where each value comes from, how a
boolean is spelled, and what a value that does not parse says. Only these tests set ARTREG_*
variables: reading them is what they test; every other test builds a `ClientSettings`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from artreg.client import ClientSettings, Invalid, Registry, load_settings

TRUE = ["1", "true", "True", "TRUE", "yes", "Yes", "on", "ON", "t", "y"]
FALSE = ["0", "false", "False", "FALSE", "no", "No", "off", "OFF", "f", "n"]


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ARTREG_* variable of the machine's own, and a config file of the test's (not written yet)."""
    for name in list(os.environ):
        if name.upper().startswith("ARTREG_"):
            monkeypatch.delenv(name)
    config = tmp_path / "config.toml"
    monkeypatch.setenv("ARTREG_CONFIG", str(config))
    return config


def test_an_argument_wins_over_the_environment_which_wins_over_the_file(
    monkeypatch: pytest.MonkeyPatch, clean: Path
) -> None:
    # Given the project in all three places, the URL in the file and the environment, the run id in the file
    clean.write_text('project = "file"\nurl = "http://file:1"\nrun_id = "run-file"\n')
    monkeypatch.setenv("ARTREG_PROJECT", "env")
    monkeypatch.setenv("ARTREG_URL", "http://env:2")

    # When the settings are read with the project given
    read = load_settings(project="argument")

    # Then each value comes from the first place that has it, and the rest are defaults
    assert read.project == "argument"
    assert read.url == "http://env:2"
    assert read.run_id == "run-file"
    assert read.cache is True
    assert read.cache_dir == Path.home() / ".cache" / "artreg"


def test_with_nothing_set_every_setting_is_its_default() -> None:
    # When settings are read with no variable and no file / Then they equal the model's defaults
    assert load_settings() == ClientSettings()
    assert ClientSettings().url == "http://127.0.0.1:8080"


def test_a_config_file_elsewhere_is_named_by_argument(tmp_path: Path) -> None:
    # Given a config file outside ARTREG_CONFIG's place
    other = tmp_path / "team.toml"
    other.write_text('project = "team"\ncache_dir = "~/team-cache"\n')

    # When it is read / Then its values count, with ~ expanded
    read = load_settings(config_file=other)
    assert read.project == "team"
    assert read.cache_dir == Path.home() / "team-cache"


@pytest.mark.parametrize("field", ["cache", "progress"])
@pytest.mark.parametrize(("spelling", "expected"), [(s, True) for s in TRUE] + [(s, False) for s in FALSE])
def test_each_boolean_spelling_means_the_same_for_every_flag(
    monkeypatch: pytest.MonkeyPatch, field: str, spelling: str, expected: bool
) -> None:
    # Given a boolean variable spelled one way
    monkeypatch.setenv(f"ARTREG_{field.upper()}", spelling)

    # When the settings are read / Then cache and progress read it alike
    assert getattr(load_settings(), field) is expected


@pytest.mark.parametrize("field", ["cache", "progress"])
def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch, clean: Path, field: str) -> None:
    # Given the file turns the flag off, and the variable is set to nothing
    clean.write_text(f"{field} = false\n")
    monkeypatch.setenv(f"ARTREG_{field.upper()}", "")

    # When the settings are read / Then the file's value holds
    assert getattr(load_settings(), field) is False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ARTREG_CACHE", "maybe"),
        ("ARTREG_PROGRESS", "2"),
        ("ARTREG_WORKERS", "0"),
        ("ARTREG_TIMEOUT", "soon"),
        ("ARTREG_RETRY_ATTEMPTS", "-1"),
    ],
)
def test_a_bad_variable_is_invalid_and_named(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    # Given a variable that does not parse
    monkeypatch.setenv(variable, value)

    # When the settings are read / Then the error names the variable and the value refused
    with pytest.raises(Invalid) as raised:
        load_settings()
    assert raised.value.message.startswith(f"{variable}: ")
    assert repr(value) in raised.value.message


def test_a_bad_value_in_the_file_names_the_file_and_the_key(clean: Path) -> None:
    # Given a config file with a boolean that is not one
    clean.write_text('cache = "sometimes"\n')

    # When the settings are read / Then the error names the file and the key
    with pytest.raises(Invalid) as raised:
        load_settings()
    assert raised.value.message.startswith(f"{clean}: cache: ")


def test_an_unknown_key_in_the_file_is_refused(clean: Path) -> None:
    # Given a config file with a misspelt key
    clean.write_text('projet = "vision"\n')

    # When the settings are read / Then the misspelling is named rather than ignored
    with pytest.raises(Invalid, match="projet"):
        load_settings()


def test_a_file_that_is_not_toml_is_named(clean: Path) -> None:
    # Given a config file that does not parse
    clean.write_text("project = vision\n")

    # When the settings are read / Then the error names the file
    with pytest.raises(Invalid, match=str(clean)):
        load_settings()


def test_a_bad_argument_is_named() -> None:
    # When a Registry is given a setting that cannot be / Then the argument is named
    with pytest.raises(Invalid, match=r"^workers: "):
        Registry(project="vision", settings=ClientSettings(), workers=0)


def test_server_variables_in_the_same_environment_are_not_the_sdks_business(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the variables of the server beside the SDK's (as in a Lambda or `artreg server`)
    monkeypatch.setenv("ARTREG_TABLE_NAME", "artreg")
    monkeypatch.setenv("ARTREG_MULTIPART_THRESHOLD", "5242880")
    monkeypatch.setenv("ARTREG_PROJECT", "vision")

    # When the SDK's settings are read / Then they read theirs and leave the others alone
    assert load_settings().project == "vision"


def test_a_registry_takes_what_it_is_not_given_from_its_settings() -> None:
    # Given settings with a project, no cache, a run and a retry budget
    settings = ClientSettings(
        url="http://registry.test/", project="vision", cache=False, run_id="run-9", retry_attempts=2, timeout=5
    )

    # When a Registry is made from them, and another with arguments too
    plain = Registry(settings=settings)
    argued = Registry("http://other.test", settings=settings, cache=True, cache_dir="/tmp/artreg-c")

    # Then the first has the settings' values, and the arguments win in the second
    assert (plain.url, plain.project, plain.cache) == ("http://registry.test", "vision", None)
    assert plain.transport.retry.attempts == 2
    assert plain.transport.timeout.read_timeout == 5
    assert plain.settings.run_id == "run-9"
    assert argued.url == "http://other.test"
    assert argued.cache is not None
    assert argued.cache.root == Path("/tmp/artreg-c")


def test_no_project_anywhere_says_where_to_give_one() -> None:
    # When a Registry has no project / Then the error says how to give one
    with pytest.raises(Invalid, match="ARTREG_PROJECT"):
        Registry(settings=ClientSettings())
