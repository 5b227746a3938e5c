"""The Slurm backend: `sbatch` of a generated script that runs mlrun on the node.

Config keys follow mlflow-slurm where both have them (partition, account, time, mem,
gpus_per_node, gres, nodes, modules, environment, sbatch-script-file), plus cpus_per_task, qos,
constraint and sbatch_args. The job is submitted with `--export=NIL`: the script exports only
what the run needs (tracking variables, mlrun's cache folders, the names the config lists).
A sweep is one job array (`JobSpec.array`): task i execs its own mlrun command, and its
task id `ARRAYID_i` is an ordinary job id to scontrol and scancel.
Without accounting, `scontrol` only remembers a finished job for MinJobAge seconds; `sacct`
is asked when scontrol has forgotten it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlrun_cli.backends.jobs import JobSpec, JobState
from mlrun_cli.core.processes import CapturedOutcome, run_captured
from mlrun_cli.errors import LaunchError
from mlrun_cli.tracking.entities import RunStatus
from mlrun_cli.tracking.tags import SLURM_PARTITION_TAG

# sbatch option per config key; gpus_per_node may be a count or TYPE:count.
_DIRECTIVES = {
    "partition": "--partition",
    "account": "--account",
    "time": "--time",
    "mem": "--mem",
    "gpus_per_node": "--gpus-per-node",
    "gres": "--gres",
    "nodes": "--nodes",
    "cpus_per_task": "--cpus-per-task",
    "qos": "--qos",
    "constraint": "--constraint",
}
_WAITING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED",
            "RESV_DEL_HOLD", "SPECIAL_EXIT"}  # fmt: skip
_ACTIVE = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING", "STOPPED"}
_LOGIN = ("PATH", "HOME", "USER", "LANG")  # what a shell on the node needs to start at all
_KILLED = {"CANCELLED", "PREEMPTED", "REVOKED"}
_CANCEL_EXIT_CODE = 128 + signal.SIGTERM
_ASK_SECONDS = 30.0  # how long an unanswered question to the controller is asked again
_ASK_PAUSE_SECONDS = 0.5
_CANCEL_GRACE_SECONDS = 15.0  # for the node's mlrun to stop its entry point and record it


class SlurmBackend:
    name = "slurm"

    def __init__(self, config: Mapping[str, Any], environ: Mapping[str, str]) -> None:
        self.config = config
        self.environ = environ

    @classmethod
    def from_tags(cls, tags: Mapping[str, str], environ: Mapping[str, str]) -> SlurmBackend:
        return cls({}, environ)

    def run_tags(self) -> dict[str, str]:
        return {SLURM_PARTITION_TAG: str(self.config.get("partition", ""))}

    def submit(self, spec: JobSpec) -> str:
        script = self.script_path(spec)
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(self.script(spec), encoding="utf-8")
        script.chmod(0o700)
        extra = tuple(str(arg) for arg in self.config.get("sbatch_args", ()))
        done = self._slurm(("sbatch", "--parsable", *extra, str(script)), "submit the job")
        if done.returncode != 0:
            raise LaunchError(f"sbatch refused the job: {_last_line(done.stderr)}")
        job_id: str = done.stdout.strip().split(";")[0]
        return job_id

    def script_path(self, spec: JobSpec) -> Path:
        chosen = self.config.get("sbatch-script-file")
        return (
            Path(str(chosen)).expanduser().resolve()
            if chosen
            else spec.workdir.parent / "job.sbatch"
        )

    def script(self, spec: JobSpec) -> str:
        lines = ["#!/bin/bash", f"#SBATCH --job-name={spec.name}"]
        for key, option in _DIRECTIVES.items():
            if key in self.config:
                lines.append(f"#SBATCH {option}={self.config[key]}")
        if spec.array:
            throttle = f"%{spec.throttle}" if spec.throttle else ""
            lines.append(f"#SBATCH --array=0-{len(spec.array) - 1}{throttle}")
        lines += [
            f"#SBATCH --output={spec.output_log}",
            "#SBATCH --export=NIL",
            f"#SBATCH --chdir={spec.workdir}",
        ]
        lines += [f"module load {shlex.quote(str(m))}" for m in self.config.get("modules", ())]
        # --export=NIL: the job sees nothing of this shell but what is written here.
        env = {name: self.environ[name] for name in _LOGIN if name in self.environ}
        env.update(spec.env)
        lines += [f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())]
        if not spec.array:
            lines.append("exec " + shlex.join(spec.argv))
            return "\n".join(lines) + "\n"
        lines.append('case "$SLURM_ARRAY_TASK_ID" in')
        lines += [f"    {task}) exec {shlex.join(argv)} ;;" for task, argv in enumerate(spec.array)]
        lines += ['    *) echo "mlrun: no task $SLURM_ARRAY_TASK_ID in this array" >&2; exit 1 ;;',
                  "esac"]  # fmt: skip
        return "\n".join(lines) + "\n"

    def state(self, job_id: str) -> JobState | None:
        done = self._shown_job(job_id)
        if done.returncode == 0 and "JobState=" in done.stdout:
            fields = dict(_fields(done.stdout))
            return _job_state(fields["JobState"], fields.get("Reason", ""),
                              fields.get("ExitCode", ""))  # fmt: skip
        return self._accounted_state(job_id)

    def _shown_job(self, job_id: str) -> CapturedOutcome:
        """`scontrol show job`, asked again while the controller does not answer (a busy
        controller times out): only "Invalid job id" means that it has forgotten the job, and
        a run must never be settled from a question that went unanswered."""
        argv = ("scontrol", "show", "job", "-o", job_id)
        deadline = time.monotonic() + _ASK_SECONDS
        while True:
            done = self._slurm(argv, "ask about the job")
            if done.returncode == 0 or "Invalid job id" in done.stderr:
                return done
            if time.monotonic() >= deadline:
                raise LaunchError(f"cannot ask Slurm about job {job_id}: {_last_line(done.stderr)}")
            time.sleep(_ASK_PAUSE_SECONDS)

    def _accounted_state(self, job_id: str) -> JobState | None:
        """sacct, where the cluster keeps accounting; None when nothing knows the job."""
        if shutil.which("sacct", path=self.environ.get("PATH")) is None:
            return None
        argv = ("sacct", "-n", "-P", "-X", "-j", job_id, "-o", "State,Reason,ExitCode")
        done = run_captured(argv, self.environ)
        line = done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
        if done.returncode != 0 or line.count("|") != 2:
            return None
        state, reason, exit_code = line.split("|")
        return _job_state(state.split()[0], reason, exit_code)

    def cancel(self, job_id: str) -> None:
        """SIGTERM to the node's mlrun alone, and Slurm's cancel once it has acted on it.

        A plain `scancel` signals the job's processes one by one, children first: a shell
        entry point (`step; sleep 300; next`) can see its step die and run `next`, and exit 0,
        before its own SIGTERM arrives. The node's mlrun (the batch shell) instead forwards
        the signal to the entry point's whole process group at once, and records the run
        KILLED; the cancel that follows ends whatever is left. A pending job (or task) has no
        batch shell: only the cancel applies, and the signal is sent to running ones alone,
        since scancel retries a signal to a pending job for as long as it stays pending.
        """
        signal_running = ("scancel", "--batch", "--signal=TERM", "--state=RUNNING", job_id)
        signalled = self._slurm(signal_running, "signal the job")
        if signalled.returncode == 0:
            self._await_end(job_id, _CANCEL_GRACE_SECONDS)
        done = self._slurm(("scancel", job_id), "cancel the job")
        if done.returncode != 0 and "already completing or completed" not in done.stderr:
            raise LaunchError(f"scancel {job_id} failed: {_last_line(done.stderr)}")

    def _await_end(self, job_id: str, timeout: float) -> None:
        """Until no task of the job (each task of an array) has processes left, or `timeout`;
        a pending task has none to wait for."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self._shown_job(job_id).stdout.splitlines()
            states = [dict(_fields(line)).get("JobState", "").rstrip("+") for line in lines]
            if not _ACTIVE.intersection(states):
                return
            time.sleep(_ASK_PAUSE_SECONDS / 5)

    def _slurm(self, argv: tuple[str, ...], purpose: str) -> CapturedOutcome:
        if shutil.which(argv[0], path=self.environ.get("PATH", os.defpath)) is None:
            raise LaunchError(
                f"cannot {purpose}: '{argv[0]}' is not on PATH; run mlrun where Slurm's client "
                "commands are installed (a login node)"
            )
        return run_captured(argv, self.environ)


def _fields(text: str) -> list[tuple[str, str]]:
    """`scontrol -o` output: space-separated KEY=value pairs on one line."""
    return [(key, value) for key, _, value in (item.partition("=") for item in text.split())]


def _job_state(word: str, reason: str, exit_code: str) -> JobState:
    state = word.rstrip("+").upper()
    code = _exit_code(exit_code)
    if state in _WAITING:
        return JobState(state, False, RunStatus.SCHEDULED, reason)
    if state in _ACTIVE:
        return JobState(state, False, RunStatus.RUNNING, reason)
    if state == "COMPLETED":
        return JobState(state, True, RunStatus.FINISHED, reason, code)
    described = state if reason in ("", "None") else f"{state} ({reason})"
    if state in _KILLED:
        # Cancelled while pending, Slurm says 0:0; the run was stopped as by its SIGTERM.
        return JobState(state, True, RunStatus.KILLED, described, code or _CANCEL_EXIT_CODE)
    if state == "FAILED" and code is not None and code > 128:
        # The node's mlrun exits 128+N when a signal stopped its run (a cancel that it
        # acted on before Slurm's own word arrived): KILLED, as it would record it.
        return JobState(state, True, RunStatus.KILLED, f"{state} (stopped by a signal)", code)
    return JobState(state, True, RunStatus.FAILED, described, code)


def _exit_code(text: str) -> int | None:
    """Slurm's `code:signal`; a signal becomes the shell's 128+N."""
    code, _, signal = text.partition(":")
    if not code.isdigit():
        return None
    return 128 + int(signal) if signal.isdigit() and int(signal) else int(code)


def _last_line(text: str) -> str:
    """The line that says what is wrong: Slurm's tools end with `Try "sbatch --help" ...`."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.startswith("Try ")]
    return (meaningful or lines or ["no message"])[-1]
