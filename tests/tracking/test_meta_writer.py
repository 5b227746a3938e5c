"""meta.yaml written without PyYAML must be byte for byte what PyYAML (and so MLflow) writes."""

from __future__ import annotations

import random
import string

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from mlrun_cli.tracking.meta_files import dump_flat_meta, dump_yaml, parse_flat_meta, parse_meta

TRICKY = [
    "", "a", "y", "n", "yes", "No", "OFF", "True", "null", "Null", "~", "0", "7", "09", "0123",
    "123", "1e5", "3.5", "1_000", "0b0101", "0x1f", "12:30", "2020-01-01", "a:", "a:b", "::",
    "file:///tmp/x/y", "http://h:80/p", "a.b-c_d/e", "/abs", "_x", "-x", ".x", "=", "<<",
    "x" * 300, "a" * 32, "0" * 31 + "a", "deadbeef" * 4, "12345678" * 4, "123456789012345678",
    "09", "0" + "9" * 31, "0b" + "a" * 30, "0b" + "1" * 30, "0b" + "01" * 15,
]  # fmt: skip


def pyyaml(data: dict[str, object]) -> str:
    return yaml.safe_dump(data, default_flow_style=False, allow_unicode=True, sort_keys=True)


@pytest.mark.parametrize("value", [*TRICKY, None, 0, -3, 5, True, []])
def test_every_value_it_writes_itself_is_written_as_pyyaml_does(value) -> None:
    data = {"value": value, "run_id": "4f2c" * 8}
    ours = dump_flat_meta(data)
    if ours is not None:
        assert ours == pyyaml(data)
    assert dump_yaml(data) == pyyaml(data)


def test_random_simple_strings_match_pyyaml() -> None:
    rng = random.Random(3)
    alphabet = string.digits * 4 + string.ascii_letters + "_./:-"
    for _ in range(5000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10)))
        data = {"k": value}
        assert dump_yaml(data) == pyyaml(data), value
        assert parse_meta(dump_yaml(data)) == yaml.safe_load(pyyaml(data))


run_ids = st.one_of(
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    st.text(alphabet="0123456789abcdef", min_size=30, max_size=30).map(lambda rest: "0b" + rest),
    st.text(alphabet="01", min_size=30, max_size=30).map(lambda bits: "0b" + bits),
    st.text(alphabet="0123456789", min_size=31, max_size=31).map(lambda rest: "0" + rest),
)


@given(run_ids)
@example("0b" + "4f2c" * 7 + "4f")  # 1 in 256 uuid4 ids: read back by the next run with PyYAML
@example("0" + "123456789" * 3 + "0000")
def test_a_real_run_meta_needs_no_pyyaml(run_id: str) -> None:
    """Every run id, so that the next run reads and writes the store without importing PyYAML."""
    meta = {
        "artifact_uri": f"file:///tmp/store/0/{run_id}/artifacts",
        "end_time": None,
        "entry_point_name": "",
        "experiment_id": "0",
        "lifecycle_stage": "active",
        "run_id": run_id,
        "run_name": "calm-otter-464",
        "source_type": 4,
        "start_time": 1795913521532,
        "status": 1,
        "tags": [],
        "user_id": "root",
    }
    written = dump_flat_meta(meta)
    assert written == pyyaml(meta)
    assert parse_flat_meta(written) == yaml.safe_load(written) == meta


def test_values_it_cannot_write_go_to_pyyaml() -> None:
    for value in ["two words", "ünïcode", "it's", {"nested": 1}, 1.5, "a" * 90 + " b"]:
        data = {"k": value}
        assert dump_flat_meta(data) is None
        assert dump_yaml(data) == pyyaml(data)
