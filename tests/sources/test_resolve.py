"""Project sources: local git projects, git URLs with #subdir and --version, zip archives."""

from __future__ import annotations

import http.server
import json
import threading
import zipfile
from pathlib import Path

import pytest

from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import write_files
from tests.gitrepos import commit_all, git, make_repo

PROJECT_V1 = {
    "README": "repo\n",
    "sub/MLproject": "entry_points:\n  main:\n    command: 'cat version.txt; echo written > out.txt'\n",
    "sub/version.txt": "v1\n",
}


def run_json(cli, *args: str) -> dict:
    result = cli("run", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["run"]


def tags_of(tmp_path: Path, run_id: str) -> dict[str, str]:
    return FileStore(tmp_path / "mlruns").read_run(run_id)[2]


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository, as a server would hold it: tag v1, then main moves on to v2."""
    work = make_repo(tmp_path / "work", PROJECT_V1)
    git(work, "tag", "v1")
    bare = tmp_path / "repo.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    (work / "sub" / "version.txt").write_text("v2\n")
    commit_all(work, "second")
    git(work, "push", "-q", str(bare), "main")
    return bare


def test_a_git_url_with_subdir_and_version_runs_that_version(
    cli, tmp_path, remote, monkeypatch
) -> None:
    monkeypatch.setenv("MLRUN_SOURCE_ROOT", str(tmp_path / "sources"))
    uri = f"{remote.as_uri()}#sub"
    first = run_json(cli, uri, "--version", "v1")
    assert Path(first["logs"]["stdout"]).read_text() == "v1\n"
    tags = tags_of(tmp_path, first["run_id"])
    assert tags["mlflow.source.name"] == uri
    assert tags["mlflow.source.git.commit"] == git(remote, "rev-parse", "v1^{commit}")
    assert tags["mlflow.source.git.repoURL"] == tags["mlflow.gitRepoURL"] == remote.as_uri()
    assert tags["mlflow.source.git.dirty"] == "false"
    [clone] = (tmp_path / "sources").glob("*/repo.git")
    (clone / "marker-from-first-run").write_text("")

    second = run_json(cli, uri, "--version", "v1")
    assert Path(second["logs"]["stdout"]).read_text() == "v1\n"  # a fresh checkout, not the first's
    assert [p.name for p in (tmp_path / "sources").glob("*/repo.git")] == ["repo.git"]
    assert (clone / "marker-from-first-run").exists()  # the clone was reused

    latest = run_json(cli, uri)
    assert Path(latest["logs"]["stdout"]).read_text() == "v2\n"
    assert tags_of(tmp_path, latest["run_id"])["mlflow.source.git.branch"] == "main"


def test_each_run_gets_a_clean_checkout(cli, tmp_path, remote, monkeypatch) -> None:
    monkeypatch.setenv("MLRUN_SOURCE_ROOT", str(tmp_path / "sources"))
    uri = f"{remote.as_uri()}#sub"
    run_json(cli, uri)
    run_json(cli, uri)
    outputs = sorted((tmp_path / "sources").glob("*/checkouts/*/sub/out.txt"))
    assert len(outputs) == 2  # each run wrote into its own checkout


@pytest.mark.parametrize(
    ("version", "expected"),
    [("main", "v2\n"), ("v1", "v1\n"), ("short-sha", "v1\n"), ("full-sha", "v1\n")],
)
def test_branches_tags_and_commits(cli, tmp_path, remote, monkeypatch, version, expected) -> None:
    monkeypatch.setenv("MLRUN_SOURCE_ROOT", str(tmp_path / "sources"))
    sha = git(remote, "rev-parse", "v1^{commit}")
    version = {"short-sha": sha[:8], "full-sha": sha}.get(version, version)
    run = run_json(cli, f"{remote.as_uri()}#sub", "--version", version)
    assert Path(run["logs"]["stdout"]).read_text() == expected


def test_an_unknown_version_is_one_line(cli, tmp_path, remote, monkeypatch) -> None:
    monkeypatch.setenv("MLRUN_SOURCE_ROOT", str(tmp_path / "sources"))
    result = cli("run", f"{remote.as_uri()}#sub", "--version", "v9")
    assert (result.exit_code, result.stderr) == (
        5,
        f"mlrun: error: {remote.as_uri()}: no branch, tag or commit named 'v9'\n",
    )
    missing = cli("run", f"{remote.as_uri()}#nowhere")
    assert (
        missing.stderr
        == f"mlrun: error: {remote.as_uri()}#nowhere: no directory 'nowhere' in the project\n"
    )


def test_a_local_directory_in_a_repo_is_named_as_mlflow_names_it(cli, tmp_path) -> None:
    repo = make_repo(tmp_path / "repo", PROJECT_V1)
    run = run_json(cli, "repo/sub")
    tags = tags_of(tmp_path, run["run_id"])
    assert tags["mlflow.source.name"] == f"{repo.as_uri()}#sub"
    assert tags["mlflow.source.git.commit"] == git(repo, "rev-parse", "HEAD")
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.git.dirty"] == "false"
    assert "mlflow.source.git.repoURL" not in tags  # no remote


def test_version_on_a_local_repo_never_touches_the_working_tree(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLRUN_SOURCE_ROOT", str(tmp_path / "sources"))
    repo = make_repo(tmp_path / "repo", PROJECT_V1)
    git(repo, "tag", "v1")
    (repo / "sub" / "version.txt").write_text("v2\n")
    commit_all(repo, "second")
    (repo / "sub" / "version.txt").write_text("uncommitted\n")
    run = run_json(cli, "repo/sub", "--version", "v1")
    assert Path(run["logs"]["stdout"]).read_text() == "v1\n"
    assert (repo / "sub" / "version.txt").read_text() == "uncommitted\n"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert not (repo / "sub" / "out.txt").exists()
    assert tags_of(tmp_path, run["run_id"])["mlflow.source.name"] == f"{repo.as_uri()}#sub"


def test_submodules_are_initialised(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLRUN_SOURCE_ROOT", str(tmp_path / "sources"))
    library = make_repo(tmp_path / "library", {"data.txt": "from the submodule\n"})
    main = make_repo(
        tmp_path / "main", {"MLproject": "entry_points:\n  main:\n    command: cat lib/data.txt\n"}
    )
    git(main, "submodule", "add", "-q", library.as_uri(), "lib")
    commit_all(main, "add submodule")
    run = run_json(cli, main.as_uri() + "/.git")
    assert Path(run["logs"]["stdout"]).read_text() == "from the submodule\n"


def make_zip(path: Path, entries: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, content in entries.items():
            bundle.writestr(name, content)
    return path


ZIPPED = {
    "project-1.0/sub/MLproject": "entry_points:\n  main:\n    command: cat version.txt\n",
    "project-1.0/sub/version.txt": "zipped\n",
}


def test_a_zip_archive_with_a_subdirectory(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLRUN_SOURCE_ROOT", str(tmp_path / "sources"))
    make_zip(tmp_path / "project.zip", ZIPPED)
    run = run_json(cli, "project.zip#sub")
    assert Path(run["logs"]["stdout"]).read_text() == "zipped\n"
    assert tags_of(tmp_path, run["run_id"])["mlflow.source.name"] == "project.zip#sub"


def test_a_zip_over_http(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLRUN_SOURCE_ROOT", str(tmp_path / "sources"))
    served = tmp_path / "served"
    served.mkdir()
    make_zip(served / "project.zip", ZIPPED)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/project.zip#sub"
        run = run_json(cli, url)
    finally:
        server.shutdown()
    assert Path(run["logs"]["stdout"]).read_text() == "zipped\n"


def test_a_zip_entry_that_escapes_is_refused(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLRUN_SOURCE_ROOT", str(tmp_path / "sources"))
    make_zip(tmp_path / "evil.zip", {"MLproject": "entry_points: {}\n", "../../escaped.txt": "x"})
    result = cli("run", "evil.zip")
    assert result.exit_code == 5
    assert result.stderr == (
        "mlrun: error: evil.zip: refused, entry '../../escaped.txt' would land outside the target\n"
    )
    assert not list(tmp_path.rglob("escaped.txt"))


def test_envs_prune_removes_old_checkouts_but_keeps_the_clone(
    cli, tmp_path, remote, monkeypatch
) -> None:
    monkeypatch.setenv("MLRUN_SOURCE_ROOT", str(tmp_path / "sources"))
    run_json(cli, f"{remote.as_uri()}#sub")
    run_json(cli, f"{remote.as_uri()}#sub")
    assert len(list((tmp_path / "sources").glob("*/checkouts/*"))) == 2
    assert cli("envs", "prune").stdout == "Removed 0 environments (0 B)\n"  # young checkouts stay
    assert (
        cli("envs", "prune", "--all").stdout
        == "Removed 0 environments (0 B) and 2 source checkouts\n"
    )
    assert list((tmp_path / "sources").glob("*/checkouts/*")) == []
    assert len(list((tmp_path / "sources").glob("*/repo.git"))) == 1
    assert Path(run_json(cli, f"{remote.as_uri()}#sub")["logs"]["stdout"]).read_text() == "v2\n"


def test_zip_subdirectory_is_relative_to_the_archive_root_as_in_mlflow(
    cli, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("MLRUN_SOURCE_ROOT", str(tmp_path / "sources"))
    make_zip(
        tmp_path / "steps.zip",
        {
            "steps/MLproject": "entry_points:\n  main:\n    command: cat version.txt\n",
            "steps/version.txt": "steps\n",
        },
    )
    run = run_json(cli, "steps.zip#steps")
    assert Path(run["logs"]["stdout"]).read_text() == "steps\n"


@pytest.mark.parametrize("in_repo", [False, True])
def test_a_local_subdirectory_is_recorded_as_given(cli, tmp_path, in_repo: bool) -> None:
    if in_repo:
        make_repo(tmp_path / "repo", PROJECT_V1)
    else:
        write_files(tmp_path / "repo", PROJECT_V1)
    run = run_json(cli, "repo#sub")
    assert tags_of(tmp_path, run["run_id"])["mlflow.source.name"] == "repo#sub"


def test_quotes_around_a_uri_are_stripped(cli, tmp_path) -> None:
    write_files(tmp_path / "repo", PROJECT_V1)
    uri = f"{(tmp_path / 'repo').as_uri()}#sub"
    run = run_json(cli, f"'{uri}'")
    assert Path(run["logs"]["stdout"]).read_text() == "v1\n"
    assert tags_of(tmp_path, run["run_id"])["mlflow.source.name"] == uri
