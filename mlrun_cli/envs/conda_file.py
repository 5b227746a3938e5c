"""conda.yaml: read it, and translate it into a python_env when no conda engine can build it.

The translation keeps the Python version and everything pip can install: the `pip:` section
and conda packages whose names are PyPI names. It drops the rest and says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlrun_cli.envs.python_env import PythonEnvSpec
from mlrun_cli.errors import Problem, SpecError

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
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SpecError([Problem(label, None, "", f"cannot read conda file: {exc}")]) from None
    if not isinstance(data, dict) or not isinstance(data.get("dependencies", []), list):
        raise SpecError([Problem(label, None, "dependencies", "expected a list of packages")])
    conda_specs: list[str] = []
    pip_specs: list[str] = []
    for item in data.get("dependencies") or []:
        if isinstance(item, dict) and isinstance(item.get("pip"), list):
            pip_specs.extend(str(p) for p in item["pip"])
        elif isinstance(item, (str, int, float)):
            conda_specs.append(str(item))
        else:
            raise SpecError([Problem(label, None, "dependencies", f"unexpected item {item!r}")])
    channels = tuple(str(c) for c in data.get("channels") or DEFAULT_CHANNELS)
    return CondaFile(path, channels, tuple(conda_specs), tuple(pip_specs))


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
