"""The options of run, sweep and reproduce: one declaration each, so they cannot drift apart."""

from __future__ import annotations

import inspect
from dataclasses import fields
from typing import TYPE_CHECKING

import click

from mlrun_cli.cli.reproduce import reproduce
from mlrun_cli.cli.run import run
from mlrun_cli.cli.sweep import sweep

if TYPE_CHECKING:
    from mlrun_cli.run.plan import RunRequest

COMMANDS = {"run": run, "sweep": sweep, "reproduce": reproduce}

# Options whose meaning differs between the commands that take them: each keeps its own help.
DIFFERENT = {
    "--param-list": "run takes one value per parameter, sweep a list of values (a grid)",
    "--run-name": "in a sweep it names the parent run, and the children after it",
    "--backend": "a sweep runs its children here or as one Slurm job array; run also offers "
    "docker and ray, and fills the RunRequest where sweep fills the SweepRequest",
    "--quiet": "run keeps the entry point's output, sweep the children's and the table",
}

# Declared once in cli/options.py as click.option decorators, which make one object per command;
# the first test keeps their declarations alike.
DECORATORS = ("--reuse", "--tracking-uri", "--json")

# RunRequest field -> arguments of `mlrun run` that move that field (alone) off its default
SETS_FIELD = [
    ("entry_point", ["-e", "train"]),
    ("parameters", ["-P", "alpha=0.5"]),
    ("env_manager", ["--env-manager", "uv"]),
    ("env_manager", ["--no-env"]),
    ("experiment_name", ["--experiment-name", "tuning"]),
    ("experiment_id", ["--experiment-id", "7"]),
    ("run_name", ["--run-name", "first"]),
    ("version", ["-v", "v1.0"]),
    ("rebuild_env", ["--rebuild-env"]),
    ("require_clean", ["--require-clean"]),
    ("digest_inputs", ["--no-digest"]),
    ("secret_params", ["--secret-param", "api"]),
    ("build_image", ["--build-image"]),
    ("docker_args", ["-A", "network=host"]),
    ("docker_user", ["--docker-user", "1000:1000"]),
    ("backend", ["--backend", "slurm"]),
    ("backend_config", ["--backend-config", '{"partition": "debug"}']),
    ("detach", ["--detach"]),
    ("run_id", ["--run-id", "abc"]),
    ("storage_dir", ["--storage-dir", "downloads"]),
]


def _long_name(option: click.Option) -> str:
    return max(option.opts, key=len)


def _options(command: click.Command) -> dict[str, click.Option]:
    return {_long_name(p): p for p in command.params if isinstance(p, click.Option)}


def _declaration(option: click.Option) -> tuple[object, ...]:
    """What a user sees of an option and what it parses into."""
    return (
        sorted(option.opts),
        option.name,
        option.help,
        repr(option.type),
        option.default,
        option.metavar,
        option.multiple,
        option.is_flag,
        option.show_default,
    )


def _shared(first: str, second: str) -> list[tuple[str, click.Option, click.Option]]:
    one, other = _options(COMMANDS[first]), _options(COMMANDS[second])
    return [(name, one[name], other[name]) for name in one.keys() & other.keys()]


def test_an_option_of_two_of_run_sweep_and_reproduce_reads_the_same_in_both() -> None:
    for first, second in (("run", "sweep"), ("run", "reproduce"), ("sweep", "reproduce")):
        for name, one, other in _shared(first, second):
            if name not in DIFFERENT:
                assert _declaration(one) == _declaration(other), f"{first}, {second}: {name}"


def test_run_and_sweep_take_one_object_for_each_run_request_option() -> None:
    """One declaration object, so a second `click.option("--rebuild-env", ...)` fails here;
    the options listed as different are separate objects, each with its own help."""
    shared = _shared("run", "sweep")
    names = {name for name, _, _ in shared}
    assert names >= {"--entry-point", "--version", "--no-env", "--no-digest", *DIFFERENT}
    for name, in_run, in_sweep in shared:
        if name in DIFFERENT:
            assert in_run is not in_sweep
            assert in_run.help != in_sweep.help
        elif name not in DECORATORS:
            assert in_run is in_sweep, f"{name} is declared twice"


def test_run_and_sweep_hand_exactly_their_request_options_to_run_request() -> None:
    """An option a command neither names in its signature nor lists in its options for the
    RunRequest would reach run_request as an unknown field."""
    from mlrun_cli.cli.options import run_options, sweep_options

    for command, request_options in ((run, run_options()), (sweep, sweep_options())):
        assert command.callback is not None
        named = set(inspect.signature(command.callback).parameters) - {"options"}
        assert {p.name for p in command.params} == named | {o.name for o in request_options}
        assert not named & {o.name for o in request_options}


def _parsed_request(args: list[str]) -> RunRequest:
    from mlrun_cli.cli.options import run_options, run_request

    with run.make_context("run", ["project", *args]) as context:
        values = {option.name: context.params[option.name] for option in run_options()}
        return run_request(context.params["uri"], values)


def test_every_run_request_field_is_an_option_of_mlrun_run() -> None:
    from mlrun_cli.run.plan import RunRequest

    assert {field for field, _ in SETS_FIELD} == {f.name for f in fields(RunRequest)} - {"uri"}
    default = _parsed_request([])
    assert default == RunRequest("project")
    for field, args in SETS_FIELD:
        request = _parsed_request(args)
        changed = {
            f.name
            for f in fields(RunRequest)
            if getattr(request, f.name) != getattr(default, f.name)
        }
        assert changed == {field}, args


def test_docker_args_and_no_env_become_what_the_run_needs() -> None:
    request = _parsed_request(["-A", "network=host", "-A", "privileged", "--no-env"])
    assert list(request.docker_args) == [("network", "host"), ("privileged", "")]
    assert request.env_manager == "local"
