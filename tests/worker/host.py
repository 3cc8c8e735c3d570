"""A stand-in for the Functions host: the real Python worker logic, driven with the host's own messages.

The worker's logic is ``azure_functions_runtime`` (PyPI; on Python 3.13+ it is what Azure runs
inside the Python worker). The messages are the host's compiled FunctionRpc protobufs, taken from
Microsoft's ``test-worker`` package, which ``make setup`` installs with ``pip --target`` into a
folder of its own (``.venv/host-protos``): its top-level ``tests`` package would shadow ours, so
the compiled modules are imported here under a package name of our choosing, without the
package's ``__init__`` (which needs grpc, a transport we do not use).

The flow is the host's: ``worker_init_request`` (the worker indexes ``function_app.py``),
``functions_metadata_request`` (the functions and the binding JSON the host receives),
``function_load_request`` per function, then ``invocation_request`` with host-shaped input.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import types
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PROTOS_ENV = "FRAUDOPS_HOST_PROTOS"
DEFAULT_PROTOS = ROOT / ".venv" / "host-protos" / "tests" / "protos"
PACKAGE = "fraudops_host_protos"
HOST_VERSION = "4.1043.0"


class ProtosMissing(RuntimeError):
    """The compiled FunctionRpc protobufs are not installed."""


def load_protos(directory: Path | None = None) -> types.SimpleNamespace:
    """The host's message classes (FunctionRpc and NullableTypes), as the worker expects ``protos``."""
    directory = directory or Path(os.environ.get(PROTOS_ENV, DEFAULT_PROTOS))
    if not (directory / "FunctionRpc_pb2.py").is_file():
        raise ProtosMissing(
            f"no FunctionRpc_pb2.py under {directory}: run 'make setup' (it installs Microsoft's test-worker "
            f"package into .venv/host-protos), or point {PROTOS_ENV} at a folder holding the compiled protos"
        )
    if PACKAGE not in sys.modules:
        package = types.ModuleType(PACKAGE)
        package.__path__ = [str(directory)]
        sys.modules[PACKAGE] = package
    rpc = importlib.import_module(f"{PACKAGE}.FunctionRpc_pb2")
    nullable = importlib.import_module(f"{PACKAGE}.shared.NullableTypes_pb2")
    names = {k: v for m in (rpc, nullable) for k, v in vars(m).items() if not k.startswith("_")}
    return types.SimpleNamespace(**names)


class _Envelope:
    """The host's top-level request as the worker's handlers receive it (message plus properties)."""

    def __init__(self, message: Any, protos: Any, host: str) -> None:
        self.request = message
        self.properties = {"host": host, "protos": protos}


def fresh_app_modules() -> None:
    """Forget ``function_app`` and the blueprints so the worker imports them anew, as a new worker process does."""
    for name in list(sys.modules):
        if name == "function_app" or name == "functions" or name.startswith("functions."):
            del sys.modules[name]


@dataclass(frozen=True)
class IndexedFunction:
    """One function as the host sees it after indexing."""

    name: str
    function_id: str
    bindings: list[dict[str, Any]]

    def binding(self, name: str) -> dict[str, Any]:
        return next(b for b in self.bindings if b["name"] == name)

    @property
    def trigger(self) -> dict[str, Any]:
        return next(b for b in self.bindings if b["type"].endswith("Trigger"))


@dataclass(frozen=True)
class Invocation:
    """What the worker answered to one invocation."""

    ok: bool
    error: str
    response: Any

    @property
    def http(self) -> Any:
        """The HTTP response message (status, headers, body) of an HTTP invocation."""
        return self.response.return_value.http


class Host:
    """Drives the worker's handlers the way the host does over its gRPC stream (messages, not sockets)."""

    def __init__(self, app_dir: Path = ROOT, protos: types.SimpleNamespace | None = None) -> None:
        from azure_functions_runtime import handle_event

        self.app_dir = app_dir
        self.protos = protos or load_protos()
        self.worker = handle_event
        self.loop = asyncio.new_event_loop()
        self.functions: dict[str, IndexedFunction] = {}

    def close(self) -> None:
        """Cancel what the app left running on the loop (the ASGI lifespan task), then close the loop."""
        pending = [t for t in asyncio.all_tasks(self.loop) if t.get_loop() is self.loop]
        for task in pending:
            task.cancel()

        async def settle() -> None:
            await asyncio.wait(pending)

        if pending:
            self.loop.run_until_complete(settle())
        self.loop.close()

    def _call(self, handler: Any, **message: Any) -> Any:
        envelope = _Envelope(self.protos.StreamingMessage(**message), self.protos, "127.0.0.1")
        return self.loop.run_until_complete(handler(envelope))

    def start(self) -> Any:
        """``worker_init_request`` (the worker indexes the app), then the metadata and a load per function."""
        init = self._call(
            self.worker.worker_init_request,
            worker_init_request=self.protos.WorkerInitRequest(
                host_version=HOST_VERSION,
                function_app_directory=str(self.app_dir),
                worker_directory=str(self.app_dir),
                capabilities={},
            ),
        )
        if init.result.status != self.protos.StatusResult.Success:
            return init
        metadata = self.loop.run_until_complete(self.worker.functions_metadata_request(None))
        for meta in metadata.function_metadata_results:
            bindings = [json.loads(raw) for raw in meta.raw_bindings]
            self.functions[meta.name] = IndexedFunction(meta.name, meta.function_id, bindings)
            load = self.protos.FunctionLoadRequest(function_id=meta.function_id, metadata=meta)
            loaded = self._call(self.worker.function_load_request, function_load_request=load)
            if loaded.result.status != self.protos.StatusResult.Success:
                raise AssertionError(f"{meta.name} did not load: {loaded.result.exception.message}")
        return init

    # --- invocations -------------------------------------------------------------------------------

    def invoke(
        self, name: str, inputs: Mapping[str, Any], trigger_metadata: Mapping[str, Any] | None = None
    ) -> Invocation:
        p = self.protos
        request = p.InvocationRequest(
            invocation_id=str(uuid.uuid4()),
            function_id=self.functions[name].function_id,
            input_data=[p.ParameterBinding(name=k, data=v) for k, v in inputs.items()],
            trigger_metadata=dict(trigger_metadata or {}),
            trace_context=p.RpcTraceContext(trace_parent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"),
            retry_context=p.RetryContext(retry_count=0, max_retry_count=0),
        )
        response = self._call(self.worker.invocation_request, invocation_request=request)
        ok = response.result.status == p.StatusResult.Success
        return Invocation(ok, "" if ok else response.result.exception.message, response)

    def http(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Invocation:
        """An HTTP request as the host forwards it: RpcHttp with the raw body bytes (RawHttpBodyBytes)."""
        p = self.protos
        fn = next(f for f in self.functions.values() if f.trigger["type"] == "httpTrigger")
        url = f"https://fraudops.azurewebsites.net{path}"
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        message = p.RpcHttp(
            method=method,
            url=url,
            headers={k.lower(): v for k, v in (headers or {}).items()},
            body=p.TypedData(bytes=body),
            rawBody=p.TypedData(bytes=body),
            query=dict(query or {}),
            params={"route": path.lstrip("/")},
        )
        return self.invoke(fn.name, {fn.trigger["name"]: p.TypedData(http=message)})

    def timer(self, name: str, *, past_due: bool) -> Invocation:
        """A timer tick: the JSON the host's TimerTrigger sends (Schedule, ScheduleStatus, IsPastDue)."""
        now = datetime.now(UTC).isoformat()
        payload = {
            "Schedule": {"AdjustForDST": True},
            "ScheduleStatus": {"Last": now, "Next": now, "LastUpdated": now},
            "IsPastDue": past_due,
        }
        fn = self.functions[name]
        return self.invoke(name, {fn.trigger["name"]: self.protos.TypedData(json=json.dumps(payload))})

    def eventhub_batch(
        self,
        name: str,
        bodies: Iterable[bytes],
        *,
        partition: str,
        first_sequence: int,
        hub: str = "transactions",
        consumer_group: str = "$Default",
    ) -> Invocation:
        """A batch of one partition (cardinality many): bodies as collection_bytes, per-event SystemProperties."""
        p = self.protos
        bodies = list(bodies)
        enqueued = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        system = [
            {
                "x-opt-sequence-number": first_sequence + i,
                "x-opt-offset": str(4096 * (first_sequence + i)),
                "x-opt-enqueued-time": enqueued,
                "SequenceNumber": first_sequence + i,
                "Offset": 4096 * (first_sequence + i),
                "PartitionKey": None,
                "EnqueuedTimeUtc": enqueued,
            }
            for i in range(len(bodies))
        ]
        context = {
            "ConsumerGroup": consumer_group,
            "EventHubName": hub,
            "PartitionId": partition,
            "FullyQualifiedNamespace": "fraudops-ehns.servicebus.windows.net",
        }
        metadata = {
            "PartitionContext": p.TypedData(json=json.dumps(context)),
            "SystemPropertiesArray": p.TypedData(json=json.dumps(system)),
            "PropertiesArray": p.TypedData(json=json.dumps([{} for _ in bodies])),
            "EnqueuedTimeUtcArray": p.TypedData(json=json.dumps([enqueued for _ in bodies])),
            "SequenceNumberArray": p.TypedData(json=json.dumps([s["SequenceNumber"] for s in system])),
            "OffsetArray": p.TypedData(json=json.dumps([str(s["Offset"]) for s in system])),
            "PartitionKeyArray": p.TypedData(json=json.dumps([None for _ in bodies])),
        }
        fn = self.functions[name]
        data = p.TypedData(collection_bytes=p.CollectionBytes(bytes=bodies))
        return self.invoke(name, {fn.trigger["name"]: data}, metadata)

    def blob(self, name: str, *, container: str, blob_name: str, connection: str) -> Invocation:
        """A blob trigger with the SDK-type (deferred) binding: ModelBindingData naming the blob, not its bytes."""
        p = self.protos
        content = json.dumps({"Connection": connection, "ContainerName": container, "BlobName": blob_name})
        data = p.TypedData(
            model_binding_data=p.ModelBindingData(
                version="1.0", source="AzureStorageBlobs", content_type="application/json", content=content.encode()
            )
        )
        metadata = {
            "BlobTrigger": p.TypedData(string=f"{container}/{blob_name}"),
            "name": p.TypedData(string=blob_name),
            "Uri": p.TypedData(string=f"http://127.0.0.1/devstoreaccount1/{container}/{blob_name}"),
        }
        fn = self.functions[name]
        return self.invoke(name, {fn.trigger["name"]: data}, metadata)
