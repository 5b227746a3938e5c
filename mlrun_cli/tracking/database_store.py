"""Database tracking URIs (sqlite:, postgresql:, mysql:, mssql:) through MLflow's own store.

MLflow's schema must match its migrations exactly, so mlrun never writes it itself: MLflow's
SqlAlchemyStore, imported only for these URIs, does every read and write in this process. The
REST store's logic is reused as is: this transport answers MLflow's REST calls by calling the
store class and returning its entities in their REST (protobuf JSON) form.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mlrun_cli.core.credentials import display_uri
from mlrun_cli.core.tracking_uri import DEFAULT_ARTIFACT_DIR
from mlrun_cli.errors import ConflictError, NotFoundError, StoreError
from mlrun_cli.tracking.http_client import HttpClient
from mlrun_cli.tracking.remote_run import JsonObject
from mlrun_cli.tracking.rest_store import RestStore

if TYPE_CHECKING:
    from mlrun_cli.core.settings import Settings

MISSING_MLFLOW = (
    "tracking URI {uri}: database stores are written through MLflow's own store classes, "
    "which are not installed here; pip install 'mlrun-cli[mlflow]', or run "
    "`mlflow server --backend-store-uri {uri}` and point --tracking-uri at it"
)


def open_database_store(settings: Settings) -> RestStore:
    from mlrun_cli.core.caches import artifact_staging_dir, outbox_dir

    artifact_root = os.path.join(settings.cwd, DEFAULT_ARTIFACT_DIR)
    transport = DatabaseTransport(settings.tracking_uri, artifact_root)
    return RestStore(
        transport,
        settings.tracking_uri,
        artifact_staging_dir(settings.environ),
        outbox_dir(settings.environ),
    )


class DatabaseTransport:
    """MLflow's REST calls answered by MLflow's SqlAlchemyStore, created on the first call."""

    def __init__(self, uri: str, artifact_root: str) -> None:
        self.uri = uri
        self.artifact_root = artifact_root
        self._store: Any = None  # MLflow's SqlAlchemyStore: untyped, imported lazily
        self._handlers: dict[str, Callable[[Mapping[str, Any]], JsonObject]] = {
            "experiments/get": self._get_experiment,
            "experiments/get-by-name": self._get_experiment_by_name,
            "experiments/search": self._search_experiments,
            "experiments/create": self._create_experiment,
            "experiments/update": lambda p: self._done(
                self.store().rename_experiment(p["experiment_id"], p["new_name"])
            ),
            "experiments/delete": lambda p: self._done(
                self.store().delete_experiment(p["experiment_id"])
            ),
            "experiments/restore": lambda p: self._done(
                self.store().restore_experiment(p["experiment_id"])
            ),
            "runs/create": self._create_run,
            "runs/get": lambda p: {"run": _json(self.store().get_run(p["run_id"]))},
            "runs/update": self._update_run,
            "runs/search": self._search_runs,
            "runs/delete": lambda p: self._done(self.store().delete_run(p["run_id"])),
            "runs/restore": lambda p: self._done(self.store().restore_run(p["run_id"])),
            "runs/log-batch": self._log_batch,
            "runs/log-inputs": self._log_inputs,
            "metrics/get-history": lambda p: {
                "metrics": [
                    _json(m) for m in self.store().get_metric_history(p["run_id"], p["metric_key"])
                ]
            },
        }

    @property
    def location(self) -> str:
        return display_uri(self.uri)

    @property
    def server(self) -> HttpClient | None:
        return None

    def store(self) -> Any:
        if self._store is None:
            try:
                from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
            except ImportError:
                raise StoreError(MISSING_MLFLOW.format(uri=self.location)) from None
            self._store = self._guarded(
                lambda: SqlAlchemyStore(self.uri, self.artifact_root)  # type: ignore[no-untyped-call]
            )
        return self._store

    def call(
        self, method: str, endpoint: str, payload: Mapping[str, Any] | None = None
    ) -> JsonObject:
        handler = self._handlers[endpoint]
        self.store()  # says which package is missing before anything else
        answer: JsonObject = self._guarded(lambda: handler(payload or {}))
        return answer

    def _guarded(self, action: Callable[[], Any]) -> Any:
        """MLflow's exceptions as mlrun's errors, with the URI and without a traceback."""
        from mlflow.exceptions import MlflowException

        try:
            return action()
        except MlflowException as exc:
            code = getattr(exc, "error_code", "")
            message = f"{self.location}: {exc.message}".splitlines()[0]
            if code == "RESOURCE_DOES_NOT_EXIST":
                raise NotFoundError(message) from None
            if code == "RESOURCE_ALREADY_EXISTS":
                raise ConflictError(message) from None
            raise StoreError(message) from None
        except Exception as exc:  # a driver's error: a missing database, refused connection
            if isinstance(exc, StoreError):
                raise
            cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"database {self.location}: {cause}") from None

    @staticmethod
    def _done(_: object) -> JsonObject:
        return {}

    def _get_experiment(self, payload: Mapping[str, Any]) -> JsonObject:
        return {"experiment": _json(self.store().get_experiment(payload["experiment_id"]))}

    def _get_experiment_by_name(self, payload: Mapping[str, Any]) -> JsonObject:
        experiment = self.store().get_experiment_by_name(payload["experiment_name"])
        if experiment is None:
            raise NotFoundError(f"no experiment named {payload['experiment_name']!r}")
        return {"experiment": _json(experiment)}

    def _search_experiments(self, payload: Mapping[str, Any]) -> JsonObject:
        from mlflow.entities import ViewType

        page = self.store().search_experiments(
            view_type=ViewType.from_string(payload.get("view_type", "ACTIVE_ONLY").lower()),
            max_results=payload.get("max_results", 1000),
            page_token=payload.get("page_token"),
        )
        return {"experiments": [_json(e) for e in page], "next_page_token": page.token}

    def _create_experiment(self, payload: Mapping[str, Any]) -> JsonObject:
        experiment_id = self.store().create_experiment(
            payload["name"], payload.get("artifact_location")
        )
        return {"experiment_id": str(experiment_id)}

    def _create_run(self, payload: Mapping[str, Any]) -> JsonObject:
        from mlflow.entities import RunTag

        run = self.store().create_run(
            experiment_id=payload["experiment_id"],
            user_id=payload["user_id"],
            start_time=payload["start_time"],
            tags=[RunTag(t["key"], t["value"]) for t in payload.get("tags", [])],
            run_name=payload.get("run_name"),
        )
        return {"run": _json(run)}

    def _update_run(self, payload: Mapping[str, Any]) -> JsonObject:
        from mlflow.entities import RunStatus

        info = self.store().update_run_info(
            payload["run_id"],
            RunStatus.from_string(payload["status"]),
            payload.get("end_time"),
            None,
        )
        return {"run_info": _json(info)}

    def _search_runs(self, payload: Mapping[str, Any]) -> JsonObject:
        from mlflow.entities import ViewType

        page = self.store().search_runs(
            experiment_ids=payload["experiment_ids"],
            filter_string=payload.get("filter", ""),
            run_view_type=ViewType.from_string(payload.get("run_view_type", "ACTIVE_ONLY").lower()),
            max_results=payload.get("max_results", 1000),
            order_by=payload.get("order_by") or None,
            page_token=payload.get("page_token"),
        )
        return {"runs": [_json(r) for r in page], "next_page_token": page.token}

    def _log_batch(self, payload: Mapping[str, Any]) -> JsonObject:
        from mlflow.entities import Metric, Param, RunTag

        self.store().log_batch(
            payload["run_id"],
            metrics=[
                Metric(m["key"], m["value"], m["timestamp"], m.get("step", 0))
                for m in payload.get("metrics", [])
            ],
            params=[Param(p["key"], p["value"]) for p in payload.get("params", [])],
            tags=[RunTag(t["key"], t["value"]) for t in payload.get("tags", [])],
        )
        return {}

    def _log_inputs(self, payload: Mapping[str, Any]) -> JsonObject:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs = [
            DatasetInput(
                Dataset(**item["dataset"]),
                [InputTag(t["key"], t["value"]) for t in item.get("tags", [])],
            )
            for item in payload.get("datasets", [])
        ]
        self.store().log_inputs(payload["run_id"], inputs)
        return {}


def _json(entity: Any) -> JsonObject:
    """An MLflow entity in the JSON form its REST API sends."""
    import json

    from mlflow.utils.proto_json_utils import message_to_json

    result: JsonObject = json.loads(message_to_json(entity.to_proto()))
    return result
