"""conda.yaml: read it, and translate it into a python_env when no conda engine can build it.

The translation keeps the Python version and everything pip can install: the `pip:` section
and conda packages whose names are PyPI names. It drops the rest and says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrun_cli.envs.python_env import PythonEnvSpec
from mlrun_cli.errors import Problem, SpecError
from mlrun_cli.project.located_yaml import load_located
from mlrun_cli.project.schema import format_path
from mlrun_cli.project.spec_text import read_spec_text

DEFAULT_CHANNELS = ("conda-forge",)
_SPEC = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(?:(==?|>=|<=|>|<|!=)\s*([^\s=]+))?(?:[=\s].*)?$")
# conda packages that are not Python packages on PyPI (toolchains, system libraries, runtimes).
_CONDA_ONLY = re.compile(
    r"^(python|pip|_libgcc_mutex|_openmp_mutex|libgcc.*|libstdcxx.*|libgfortran.*|ca-certificates|"
    r"openssl|mkl.*|intel-openmp|blas|libblas|libcblas|liblapack|openblas|libopenblas|cudatoolkit|"
    r"cuda.*|cudnn|nccl|nodejs|git|make|cmake|compilers|c-compiler|cxx-compiler|"
    r"fortran-compiler|zlib|xz|bzip2|sqlite|tk|readline|ncurses|libffi|r-.*|r)$"
)
# conda names whose PyPI name differs.
_PYPI_NAMES = {"pytorch": "torch", "py-xgboost": "xgboost", "pytorch-cpu": "torch"}


@dataclass(frozen=True)
class CondaFile:
    path: Path
    channels: tuple[str, ...]
    conda_specs: tuple[str, ...]
    pip_specs: tuple[str, ...]

    @property
    def python_version(self) -> str | None:
        """The version prefix of a `python=3.11` / `python==3.11.*` pin, if any."""
        for spec in self.conda_specs:
            match = re.match(r"^python\s*=?=\s*(\d+(?:\.\d+){0,2})", spec)
            if match:
                return match.group(1)
        return None


def load_conda_file(path: Path, label: str) -> CondaFile:
    """Refuses what MLflow's reading of a conda.yaml refuses (`_PythonEnv.from_conda_yaml`:
    an empty file, null dependencies, an item neither a string nor a `pip:` mapping, a `pip:`
    section that is not a list), each with its line; what it accepts is accepted."""
    doc = load_located(read_spec_text(path, label), label)
    data: Any = doc.data
    if not isinstance(data, dict):
        shown = "an empty file" if data is None else "not a mapping"
        message = f"{shown}; expected a mapping with dependencies (and channels)"
        raise SpecError([Problem(label, 1, "", message)])
    problems: list[Problem] = []
    channels = data.get("channels")
    if channels is not None and not _strings(channels):
        message = "expected a list of channel names, for example [conda-forge]"
        problems.append(Problem(label, doc.line_of(("channels",)), "channels", message))
    dependencies = data.get("dependencies", [])
    if not isinstance(dependencies, list):
        message = "expected a list of packages"
        problems.append(Problem(label, doc.line_of(("dependencies",)), "dependencies", message))
        dependencies = []
    conda_specs: list[str] = []
    pip_specs: list[str] = []
    for index, item in enumerate(dependencies):
        where: tuple[str | int, ...] = ("dependencies", index)
        if isinstance(item, str):
            conda_specs.append(item)
        elif isinstance(item, dict) and "pip" in item:
            pip = item["pip"] if item["pip"] is not None else []
            if _strings(pip):
                pip_specs.extend(pip)
            else:
                where = (*where, "pip")
                message = "expected a list of pip requirements"
                problems.append(Problem(label, doc.line_of(where), format_path(where), message))
        else:
            message = "expected a package spec or {pip: [requirements]}"
            problems.append(Problem(label, doc.line_of(where), format_path(where), message))
    if problems:
        raise SpecError(problems)
    chosen = tuple(channels) if channels else DEFAULT_CHANNELS
    return CondaFile(path, chosen, tuple(conda_specs), tuple(pip_specs))


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def translate(conda: CondaFile, default_python: str) -> PythonEnvSpec:
    """The closest python_env: PyPI-named conda packages become pip requirements."""
    kept: list[str] = []
    dropped: list[str] = []
    for spec in conda.conda_specs:
        requirement = _as_pip_requirement(spec)
        if requirement is None:
            if not re.match(r"^(python|pip)\b", spec):
                dropped.append(spec)
        else:
            kept.append(requirement)
    return PythonEnvSpec(
        python=conda.python_version or default_python,
        dependencies=tuple(kept + list(conda.pip_specs)),
        source=conda.path,
        dropped=tuple(dropped),
    )


def _as_pip_requirement(spec: str) -> str | None:
    if "::" in spec or "/" in spec:
        return None  # channel-qualified: only conda can provide it
    match = _SPEC.match(spec.strip())
    if not match or _CONDA_ONLY.match(match.group(1).lower()):
        return None
    name = _PYPI_NAMES.get(match.group(1).lower(), match.group(1))
    operator, version = match.group(2), match.group(3)
    if not version:
        return name
    return f"{name}{'==' if operator in ('=', '==') else operator}{version}"
