"""Hostile and malformed inputs, one explicit case per class: `validate` and `run --no-env`
refuse each with one message and the documented exit code, and write nothing.

The generated (property-based) cases of the same classes are in test_hostile_generated.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hostile import HostileCli, check_handled, check_refused

MAIN = "entry_points:\n  main:\n    command: echo hi\n"


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HostileCli:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLRUN_ENV_ROOT", str(tmp_path / "envs"))
    return HostileCli(tmp_path / "cases", monkeypatch.chdir)


def both_refuse(
    hostile: HostileCli, files: dict[str, str | bytes], *run_args: str, codes=(2,)
) -> tuple[str, str]:
    """`validate` and `run --no-env` of the same project both refuse it."""
    box = hostile.sandbox()
    box.project(files)
    checked = check_refused(box, lambda: hostile(box, "validate", "project"), codes)
    ran = check_refused(box, lambda: hostile(box, "run", "project", "--no-env", *run_args), codes)
    return checked.stderr, ran.stderr


# -- names become paths ----------------------------------------------------------------------

BAD_KEYS = [
    "../../../esc/pwned",
    "..",
    ".",
    "/",
    "/abs",
    "a//b",
    "a/",
    "a/./b",
    "a/../b",
    "x" * 251,
    "a\0b",
    "tab\there",
    "new\nline",
    "semi;colon",
    "quote'",
    "dollar$",
    "star*",
    ("y" * 201) + "/z",
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=range(len(BAD_KEYS)))
def test_a_bad_param_name_on_the_command_line_is_refused_before_the_run(
    hostile: HostileCli, key: str
) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": MAIN})
    result = check_refused(
        box, lambda: hostile(box, "run", "project", "--no-env", "-P", f"{key}=1")
    )
    assert "-P" in result.stderr


@pytest.mark.parametrize(
    "key", [k for k in BAD_KEYS if "\0" not in k and "\n" not in k and "\t" not in k]
)
def test_a_bad_declared_param_name_fails_validate_and_run(hostile: HostileCli, key: str) -> None:
    quoted = key.replace("'", "''")
    text = f"entry_points:\n  main:\n    parameters:\n      '{quoted}': {{default: 1}}\n    command: echo hi\n"
    checked, ran = both_refuse(hostile, {"MLproject": text})
    assert "MLproject:4:" in checked and "parameter name" in checked
    assert checked == ran


def test_a_name_that_is_also_a_folder_is_refused(hostile: HostileCli) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": MAIN})
    result = check_refused(
        box, lambda: hostile(box, "run", "project", "--no-env", "-P", "x=1", "-P", "x/y=2")
    )
    assert "'x' and 'x/y'" in result.stderr
    text = (
        "entry_points:\n  main:\n    parameters:\n      x: {default: 1}\n"
        "      x/y: {default: 2}\n    command: echo {x}\n"
    )
    checked, _ = both_refuse(hostile, {"MLproject": text})
    assert "'x' and 'x/y'" in checked


@pytest.mark.parametrize("flag", ["--run-name", "--experiment-name"])
@pytest.mark.parametrize(
    "value", ["bad\udcffbytes", "nul\0byte", "x" * 501], ids=["not-utf8", "nul", "long"]
)
def test_run_and_experiment_names_that_cannot_be_stored_are_refused(
    hostile: HostileCli, flag: str, value: str
) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": MAIN})
    result = check_refused(box, lambda: hostile(box, "run", "project", "--no-env", flag, value))
    assert flag in result.stderr


def test_a_value_that_is_not_utf8_is_refused_and_no_run_stays_running(hostile: HostileCli) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": MAIN})
    result = check_refused(
        box, lambda: hostile(box, "run", "project", "--no-env", "-P", "alpha=\udcff\udcfe")
    )
    assert "UTF-8" in result.stderr


@pytest.mark.parametrize("entry", ["../outside.py", "/abs/outside.py", "link/outside.py"])
def test_an_entry_point_file_outside_the_project_is_refused(
    hostile: HostileCli, entry: str
) -> None:
    box = hostile.sandbox()
    project = box.project({"MLproject": MAIN})
    (box.work / "outside.py").write_text("open('/tmp/pwned-by-mlrun-test', 'w')\n")
    if entry == "/abs/outside.py":
        entry = str(box.work / "outside.py")
    (project / "link").symlink_to(box.work)
    for command in ("validate", "run"):
        extra = ("--no-env",) if command == "run" else ()
        args = (command, "project", "-e", entry, *extra)
        result = check_refused(box, lambda args=args: hostile(box, *args))
        assert "outside the project" in result.stderr


def test_a_secret_path_parameter_leaves_no_trace(hostile: HostileCli) -> None:
    box = hostile.sandbox()
    text = (
        "entry_points:\n  main:\n    parameters:\n      api_token: path\n"
        "      data: path\n    command: cat {api_token} > /dev/null\n"
    )
    box.project({"MLproject": text})
    secret = box.work / "very-secret-credentials.txt"
    secret.write_text("s3cr3t")
    (box.work / "data.csv").write_text("a,b\n")
    result = hostile(
        box, "run", "project", "--no-env", "-P", f"api_token={secret}", "-P", "data=data.csv"
    )
    assert result.exit_code == 0, result.stderr
    recorded = [p for p in (box.work / "mlruns").rglob("*") if p.is_file()]
    assert any("inputs.json" in p.name for p in recorded)  # the other input is recorded
    for path in recorded:
        text = path.read_text(errors="replace")
        assert "very-secret-credentials" not in text, path
        assert "s3cr3t" not in text, path


# -- no traceback for bad YAML ----------------------------------------------------------------

YAML_CASES: dict[str, bytes] = {
    "nul": b"name: a\0b\n",
    "del": b"name: a\x7fb\n",
    "escape": b"name: \x1b[31m\n",
    "bell": b"entry_points:\n  main:\n    command: echo \x07\n",
    "ufffe": "name: \ufffe\n".encode(),
    "utf16-no-bom": "name: x\n".encode("utf-16-le"),
    "latin1": "name: caf\xe9\n".encode("latin-1"),
    "binary": bytes(range(256)) * 4,
    "elf": b"\x7fELF\x02\x01\x01\0" + b"\0" * 64,
    "deep-flow": b"name: " + b"[" * 600 + b"]" * 600 + b"\n",
    "deep-block": b"".join(b"  " * i + b"k:\n" for i in range(600)),
    "recursive-alias": b"entry_points: &a\n  main: *a\n",
    "recursive-list": b"name: &a [*a]\n",
    "billion-laughs": b"a: &a [x,x,x,x,x,x,x,x,x]\n"
    + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n".encode()
        for i in range(9)
    ),
    "two-documents": b"name: a\n---\nname: b\n",
    "tab-indent": b"entry_points:\n\tmain:\n\t\tcommand: x\n",
    "unclosed-quote": b'name: "abc\n',
    "bad-tag": b"name: !!python/object:os.system x\n",
    "huge-int-key": b"entry_points:\n  main:\n    command: x\n  " + b"9" * 5000 + b": 1\n",
}


@pytest.mark.parametrize("case", YAML_CASES)
def test_yaml_the_reader_refuses_is_one_line_and_exit_2(hostile: HostileCli, case: str) -> None:
    checked, ran = both_refuse(hostile, {"MLproject": YAML_CASES[case]})
    assert checked.startswith("project/MLproject"), checked
    assert checked == ran


def test_a_billion_laughs_is_refused_quickly_and_says_why(hostile: HostileCli) -> None:
    checked, _ = both_refuse(hostile, {"MLproject": YAML_CASES["billion-laughs"]})
    assert "not a YAML document (more than" in checked


def test_control_characters_name_the_character(hostile: HostileCli) -> None:
    checked, _ = both_refuse(hostile, {"MLproject": YAML_CASES["nul"]})
    assert checked.splitlines()[0].startswith("project/MLproject: not a YAML document (")
    assert "#x0000" in checked


@pytest.mark.parametrize(
    "text, lines",
    [
        ("name: a\nname: b\n" + MAIN, ("2", "1")),
        (MAIN + "  main:\n    command: echo again\n", ("4", "2")),
        (
            "entry_points:\n  main:\n    parameters:\n      a: float\n      a: int\n"
            "    command: echo {a}\n",
            ("5", "4"),
        ),
    ],
    ids=["top-level", "entry-point", "parameter"],
)
def test_duplicate_keys_report_both_lines(
    hostile: HostileCli, text: str, lines: tuple[str, str]
) -> None:
    checked, ran = both_refuse(hostile, {"MLproject": text})
    second, first = lines
    assert f"MLproject:{second}:" in checked
    assert f"first on line {first}" in checked
    assert checked == ran


def test_a_file_over_the_size_cap_is_refused_and_the_cap_is_configurable(
    hostile: HostileCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = MAIN + "#" + "x" * (1 << 20) + "\n"
    checked, _ = both_refuse(hostile, {"MLproject": text})
    assert "larger than 1048576 bytes" in checked and "MLRUN_MAX_SPEC_BYTES" in checked
    monkeypatch.setenv("MLRUN_MAX_SPEC_BYTES", str(4 << 20))
    box = hostile.sandbox()
    box.project({"MLproject": text})
    assert hostile(box, "validate", "project").exit_code == 0


@pytest.mark.parametrize("kind", ["directory", "fifo", "dev-zero", "dangling", "loop"])
def test_an_mlproject_that_is_not_a_file_fails_validate(hostile: HostileCli, kind: str) -> None:
    box = hostile.sandbox()
    project = box.project({"train.py": "print(1)\n"})
    target = project / "MLproject"
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev-zero":
        target.symlink_to("/dev/zero")
    elif kind == "dangling":
        target.symlink_to(project / "missing")
    else:
        target.symlink_to(project / "MLproject")
    result = check_refused(box, lambda: hostile(box, "validate", "project"))
    assert "not a regular file" in result.stderr


@pytest.mark.parametrize(
    "text",
    [
        'entry_points:\n  main:\n    command: "echo a\\0b"\n',
        MAIN.replace("echo hi", "echo {x}") + '    parameters:\n      x: {default: "a\\0b"}\n',
    ],
    ids=["command", "default"],
)
def test_a_nul_in_a_command_or_default_is_refused(hostile: HostileCli, text: str) -> None:
    checked, ran = both_refuse(hostile, {"MLproject": text})
    assert "NUL" in checked and checked == ran


def test_paths_too_long_are_refused(hostile: HostileCli) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": MAIN})
    long_part = "d" * 300
    for args in (
        ("validate", f"project/{long_part}"),
        ("run", "project", "--no-env", "-e", f"{long_part}.py"),
        ("run", "project", "--no-env", "-e", "/".join(["d" * 250] * 20) + ".py"),
        ("run", f"project/{long_part}", "--no-env"),
    ):
        check_refused(box, lambda args=args: hostile(box, *args), codes=(2, 5))


# -- env files: validate and run agree ----------------------------------------------------------

ENV_CASES = {
    "python-float": ("python_env.yaml", "python: 3.10\ndependencies: []\n"),
    "python-deep": ("python_env.yaml", "python: '3.11'\ndependencies: " + "[" * 300 + "]" * 300),
    "python-recursive": ("python_env.yaml", "python: '3.11'\ndependencies: &d [*d]\n"),
    "python-dependencies-int": ("python_env.yaml", "python: '3.11'\ndependencies: 5\n"),
    "python-duplicate": ("python_env.yaml", "python: '3.11'\npython: '3.12'\n"),
    "conda-channels-int": ("conda.yaml", "channels: 1\ndependencies: [numpy]\n"),
    "conda-channels-true": ("conda.yaml", "channels: true\ndependencies: [numpy]\n"),
    "conda-channels-float": ("conda.yaml", "channels: 1.5\ndependencies: [numpy]\n"),
    "conda-channels-mapping": ("conda.yaml", "channels: {a: 1}\ndependencies: [numpy]\n"),
    "conda-deps-string": ("conda.yaml", "dependencies: numpy\n"),
    "conda-pip-int": ("conda.yaml", "dependencies: [{pip: 3}]\n"),
    "conda-binary": ("conda.yaml", "name: \x00\x01\n"),
    "conda-recursive": ("conda.yaml", "dependencies: &d [*d]\n"),
}


@pytest.mark.parametrize("case", ENV_CASES)
def test_validate_checks_env_files_as_run_does(hostile: HostileCli, case: str) -> None:
    name, content = ENV_CASES[case]
    box = hostile.sandbox()
    box.project({"MLproject": MAIN, name: content})
    checked = check_refused(box, lambda: hostile(box, "validate", "project"))
    ran = check_refused(
        box, lambda: hostile(box, "run", "project", "--env-manager", "uv"), codes=(2,)
    )
    assert checked.stderr == ran.stderr
    assert checked.stderr.startswith(f"project/{name}")


def test_an_unquoted_python_version_fails_both_with_the_same_fix(hostile: HostileCli) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": MAIN, "python_env.yaml": "python: 3.10\n"})
    checked = check_refused(box, lambda: hostile(box, "validate", "project"))
    assert 'python: "3.10"' in checked.stderr


# -- a broken machine -----------------------------------------------------------------------------


def test_a_store_that_is_a_file_is_refused(hostile: HostileCli) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": MAIN})
    (box.work / "mlruns").write_text("not a store")
    result = check_refused(box, lambda: hostile(box, "run", "project", "--no-env"), codes=(4,))
    assert "mlruns" in result.stderr


def test_home_unset_still_runs(hostile: HostileCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.delenv("MLRUN_CACHE_DIR", raising=False)
    box = hostile.sandbox()
    box.project({"MLproject": MAIN})
    check_handled(box, lambda: hostile(box, "validate", "project"), codes=(0,))


def test_an_unwritable_cache_only_costs_time(
    hostile: HostileCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("MLRUN_CACHE_DIR", str(blocker))
    box = hostile.sandbox()
    box.project({"MLproject": MAIN})
    checked = hostile(box, "validate", "project")
    assert checked.exit_code == 0
    assert checked.stderr.count("validation cache") == 1
    result = hostile(box, "run", "project", "--no-env")
    assert result.exit_code == 0, result.stderr


# -- sources ---------------------------------------------------------------------------------------


def _zip(path: Path, entries: list[tuple[str, str, int]]) -> None:
    import warnings
    import zipfile

    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as bundle:
        warnings.simplefilter("ignore")  # a duplicate name is the point of one case
        for name, content, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            bundle.writestr(info, content)


@pytest.mark.parametrize(
    "entries, says",
    [
        (
            [
                ("p/MLproject", MAIN, 0o100644),
                ("p/link", "/tmp", 0o120777),
                ("p/link/x", "x", 0o100644),
            ],
            "symbolic link the archive creates",
        ),
        (
            [("p/MLproject", MAIN, 0o100644), ("p/a", "file", 0o100644), ("p/a/b", "x", 0o100644)],
            "both a file and a folder",
        ),
        ([("p/MLproject", MAIN, 0o100644), ("p/MLproject", MAIN, 0o100644)], "appears twice"),
    ],
    ids=["through-symlink", "file-and-folder", "twice"],
)
def test_an_archive_that_is_not_a_plain_tree_is_refused(
    hostile: HostileCli, entries: list[tuple[str, str, int]], says: str
) -> None:
    box = hostile.sandbox()
    _zip(box.work / "project.zip", entries)
    for command in ("validate", "run"):
        args = (command, "project.zip", *(("--no-env",) if command == "run" else ()))
        result = check_refused(box, lambda args=args: hostile(box, *args), codes=(5,))
        assert says in result.stderr


@pytest.mark.parametrize(
    "uri",
    ["git+fd::3", "git+ext::sh -c true", "fd::0", "ext::sh", "git+ftp://example.com/r.git"],
)
def test_git_transports_mlflow_does_not_allow_are_refused_at_once(
    hostile: HostileCli, uri: str
) -> None:
    box = hostile.sandbox()
    result = check_refused(box, lambda: hostile(box, "run", uri, "--no-env"), codes=(5,))
    assert uri.removeprefix("git+").split(":")[0] in result.stderr


def test_a_parameter_name_with_a_line_break_stays_on_one_line(hostile: HostileCli) -> None:
    text = (
        'entry_points:\n  main:\n    parameters:\n      "a\\nb\\u0000": {default: 1}\n'
        "    command: echo hi\n"
    )
    checked, _ = both_refuse(hostile, {"MLproject": text})
    assert "entry_points.main.parameters.'a\\nb\\x00'" in checked
