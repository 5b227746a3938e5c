"""Docs that run: the README's examples load, and every command explains itself."""

from __future__ import annotations

import re

import click

from mlrun_cli.cli.app import cli as app
from mlrun_cli.project.spec import load_project
from tests.conftest import REPO, write_files

README = (REPO / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_every_mlproject_in_the_readme_loads(tmp_path) -> None:
    projects = [b for b in blocks("yaml") if "entry_points:" in b]
    assert projects
    for index, text in enumerate(projects):
        env_files = re.findall(r"^(?:python_env|conda_env): (\S+)", text, flags=re.M)
        directory = write_files(
            tmp_path / str(index), {"MLproject": text, **dict.fromkeys(env_files, "")}
        )
        assert load_project(directory).entry_points


def test_the_readme_shows_the_real_validate_output() -> None:
    expected = (REPO / "tests/fixtures/invalid/many_problems/expected.txt").read_text()
    assert f"$ cd tests/fixtures/invalid && mlrun validate many_problems\n{expected}```" in README


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = "python3 -m pip install -e '.[test]' && python3 -m pytest"
    assert f"```\n{command}\n```" in README
    assert command in (REPO / ".ci" / "run").read_text().splitlines()


def all_commands(group: click.Group, prefix: str = "mlrun") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {prefix: group}
    context = click.Context(group)
    for name in group.list_commands(context):  # loads the commands the group imports lazily
        command = group.get_command(context, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            found.update(all_commands(command, f"{prefix} {name}"))
        else:
            found[f"{prefix} {name}"] = command
    return found


def test_every_command_and_option_has_help_text() -> None:
    for name, command in all_commands(app).items():
        assert command.help, f"{name} has no help text"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.opts[0]} has no help text"


def test_the_cli_offers_exactly_the_registered_environment_managers() -> None:
    from mlrun_cli.cli.run import run
    from mlrun_cli.envs import MANAGERS

    option = next(p for p in run.params if p.name == "env_manager")
    assert isinstance(option.type, click.Choice)
    assert list(option.type.choices) == list(MANAGERS)


def test_the_readme_layout_lists_exactly_the_packages_and_their_import_order() -> None:
    """The Layout section is the order `lint-imports` enforces: a package added, removed or
    moved in pyproject's layers contract without the README (or the other way) fails here."""
    import tomllib

    section = README.split("### Layout\n", 1)[1].split("```\n")[1]
    listed = re.findall(r"^  (\w+)(?:/|\.py)", section, flags=re.M)
    packages = [p.parent.name for p in (REPO / "mlrun_cli").glob("*/__init__.py")]
    modules = [p.stem for p in (REPO / "mlrun_cli").glob("*.py") if not p.stem.startswith("_")]
    packages = sorted(packages + modules)
    assert sorted(listed) == packages
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    [layers] = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    ordered = [name.strip() for layer in layers for name in layer.split("|")]
    assert [name for name in ordered if name in listed] == [
        name for name in listed if name in ordered
    ]
