"""Generated hostile inputs (hypothesis): over 500 malformed MLprojects, env files, names and
values through `validate` and `run --no-env`, each refused with its documented exit code and
one message, no traceback, nothing written, no run RUNNING, within 5 s (tests/hostile.py).

The explicit case of each class is in test_hostile_inputs.py; this module looks for the
inputs nobody thought of. It is marked slow (about half a minute).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile import HostileCli, check_handled, check_refused

pytestmark = pytest.mark.slow

MAIN = "entry_points:\n  main:\n    command: echo hi\n"
_MLFLOW_KEY_CHARACTER = re.compile(r"[\w.\- :/]")


def cases(count: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HostileCli:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLRUN_ENV_ROOT", str(tmp_path / "envs"))
    return HostileCli(tmp_path / "cases", monkeypatch.chdir)


# -- strategies ---------------------------------------------------------------------------------

_good_part = st.text(alphabet="abcXYZ019_-. :", min_size=1, max_size=12).filter(
    lambda p: p not in (".", "..")
)
# `=` ends a -P name and surrounding white space is stripped, so neither can be tested there.
_forbidden = st.characters(blacklist_categories=("Cs",)).filter(
    lambda c: not _MLFLOW_KEY_CHARACTER.fullmatch(c) and c != "=" and not c.isspace()
)


@st.composite
def bad_keys(draw: st.DrawFn) -> str:
    """Keys that break MLflow's rules by construction: a bad part, a leading '/', a character
    outside its set, or more than 250 characters."""
    kind = draw(st.sampled_from(["part", "leading", "character", "long"]))
    parts = draw(st.lists(_good_part, min_size=0, max_size=3))
    if kind == "part":
        position = draw(st.integers(0, len(parts)))
        parts.insert(position, draw(st.sampled_from(["", ".", ".."])))
        return "/".join(parts)
    if kind == "leading":
        return "/" + "/".join(parts or ["x"])
    if kind == "character":
        text = "/".join(parts)
        position = draw(st.integers(0, len(text)))
        return text[:position] + draw(_forbidden) + text[position:]
    return draw(st.text(alphabet="abc_", min_size=251, max_size=400))


@st.composite
def not_utf8(draw: st.DrawFn) -> str:
    """Command-line text as Python sees bytes that are not UTF-8 (surrogate escapes)."""
    raw = draw(st.binary(min_size=1, max_size=40))
    bad = draw(
        st.binary(min_size=1, max_size=3).map(lambda b: bytes([0x80 | (x & 0x3F) for x in b]))
    )
    position = draw(st.integers(0, len(raw)))
    text = (raw[:position] + bad + raw[position:]).decode("utf-8", errors="surrogateescape")
    return text if any("\udc80" <= c <= "\udcff" for c in text) else text + "\udcff"


_REFUSED_CHARACTERS = [chr(c) for c in [*range(0, 9), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]]
_REFUSED_CHARACTERS += ["\ufffe", "\uffff", "\x80", "\x9f"]


# -- names become paths ---------------------------------------------------------------------------


@cases(120)
@given(key=bad_keys())
def test_generated_bad_param_names_on_the_command_line(hostile: HostileCli, key: str) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": MAIN})
    check_refused(box, lambda: hostile(box, "run", "project", "--no-env", "-P", f"{key}=1"))


@cases(60)
@given(key=bad_keys())
def test_generated_bad_declared_param_names(hostile: HostileCli, key: str) -> None:
    box = hostile.sandbox()
    text = (
        f"entry_points:\n  main:\n    parameters:\n      {json.dumps(key)}: {{default: 1}}\n"
        "    command: echo hi\n"
    )
    box.project({"MLproject": text})
    check_refused(box, lambda: hostile(box, "validate", "project"))
    check_refused(box, lambda: hostile(box, "run", "project", "--no-env"))


@cases(60)
@given(option=st.sampled_from(["-P", "--run-name", "--experiment-name"]), text=not_utf8())
def test_generated_values_that_are_not_utf8(hostile: HostileCli, option: str, text: str) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": MAIN})
    value = f"alpha={text}" if option == "-P" else text
    check_refused(box, lambda: hostile(box, "run", "project", "--no-env", option, value))


@cases(30)
@given(ups=st.integers(1, 6), absolute=st.booleans(), name=st.sampled_from(["x.py", "x.sh"]))
def test_generated_entry_points_outside_the_project(
    hostile: HostileCli, ups: int, absolute: bool, name: str
) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": MAIN})
    (box.work / name).write_text("echo escaped\n")
    entry = str(box.work / name) if absolute else "../" * ups + name
    check_refused(box, lambda: hostile(box, "run", "project", "--no-env", "-e", entry))


# -- no traceback for bad YAML ----------------------------------------------------------------------


@cases(80)
@given(content=st.binary(max_size=400))
def test_generated_binary_mlprojects(hostile: HostileCli, content: bytes) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": content})
    check_handled(box, lambda: hostile(box, "validate", "project"))


@cases(80)
@given(content=st.text(max_size=300))
def test_generated_text_mlprojects(hostile: HostileCli, content: str) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": content.encode("utf-8", errors="surrogatepass")})
    check_handled(box, lambda: hostile(box, "validate", "project"))


@cases(50)
@given(character=st.sampled_from(_REFUSED_CHARACTERS), position=st.integers(0, len(MAIN)))
def test_generated_control_characters(hostile: HostileCli, character: str, position: int) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": MAIN[:position] + character + MAIN[position:]})
    result = check_refused(box, lambda: hostile(box, "validate", "project"))
    assert "not a YAML document" in result.stderr


@cases(30)
@given(depth=st.integers(51, 3000), flow=st.booleans())
def test_generated_deep_nesting(hostile: HostileCli, depth: int, flow: bool) -> None:
    box = hostile.sandbox()
    if flow:
        text = "name: " + "[" * depth + "]" * depth + "\n"
    else:
        text = "".join("  " * level + "k:\n" for level in range(depth))
    box.project({"MLproject": text})
    check_refused(box, lambda: hostile(box, "validate", "project"))
    check_refused(box, lambda: hostile(box, "run", "project", "--no-env"))


@cases(30)
@given(width=st.integers(2, 12), levels=st.integers(2, 12))
def test_generated_alias_bombs(hostile: HostileCli, width: int, levels: int) -> None:
    box = hostile.sandbox()
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    box.project({"MLproject": "\n".join(lines) + "\n"})
    check_refused(box, lambda: hostile(box, "validate", "project"))


@cases(30)
@given(names=st.lists(st.sampled_from(["main", "train", "eval", "a", "b"]), min_size=2, max_size=6))
def test_generated_duplicate_keys(hostile: HostileCli, names: list[str]) -> None:
    box = hostile.sandbox()
    names = [*names, names[0]]
    body = "".join(f"  {name}:\n    command: echo {index}\n" for index, name in enumerate(names))
    box.project({"MLproject": "entry_points:\n" + body})
    result = check_refused(box, lambda: hostile(box, "validate", "project"))
    assert "duplicate key (first on line" in result.stderr


# -- env files --------------------------------------------------------------------------------------

_not_a_channel_list = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.dictionaries(st.text(alphabet="abc", min_size=1), st.integers(), min_size=1),
    st.lists(st.one_of(st.integers(), st.booleans(), st.none()), min_size=1),
)


@cases(30)
@given(channels=_not_a_channel_list)
def test_generated_conda_channels(hostile: HostileCli, channels: object) -> None:
    box = hostile.sandbox()
    conda = f"channels: {json.dumps(channels)}\ndependencies: [numpy]\n"
    box.project({"MLproject": MAIN, "conda.yaml": conda})
    result = check_refused(box, lambda: hostile(box, "validate", "project"))
    assert "channels" in result.stderr


_json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@cases(40)
@given(
    data=st.dictionaries(
        st.sampled_from(["python", "dependencies", "build_dependencies", "other"]), _json_like
    )
)
def test_generated_python_env_files(hostile: HostileCli, data: dict[str, object]) -> None:
    box = hostile.sandbox()
    box.project({"MLproject": MAIN, "python_env.yaml": json.dumps(data)})
    check_handled(box, lambda: hostile(box, "validate", "project"))
