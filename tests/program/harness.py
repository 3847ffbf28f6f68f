"""Run the whole program under Pulumi mocks and record what it registered.

The monitor records each RegisterResource request as sent by the SDK: type, name, parent,
dependencies, the serialized inputs (secrets still wrapped) and the lifecycle options the engine
acts on (tests/lifecycle plans a second `pulumi up` from two recordings). Tests assert on those
decisions, never on values a mock hands back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.sdkvalues import SIG_KEY as SECRET_SIG

DUMMY_SECRETS = {
    "proxmoxApiToken": "root@pam!netstab=dummy-proxmox-TOKEN-7f3a",
    "sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\ndummy-ssh-KEY-91c2\n-----END OPENSSH PRIVATE KEY-----",
    "k3sToken": "dummy-k3s-TOKEN-5e8d",
    "dopplerToken": "dp.st.dummy-DOPPLER-TOKEN-3b1",
}


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    # every dependency the SDK sends: explicit depends_on (components expanded) and property ones
    dependencies: list[str]
    inputs: dict[str, Any]  # serialized form: secrets appear as {SECRET_SIG: ..., "value": ...}
    secret_outputs: list[str]
    provider: str = ""
    # top-level input name -> the URNs its value came from (what the engine makes unknown)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    delete_before_replace: bool | None = None  # None: the provider decides
    replace_with: list[str] = field(default_factory=list)
    deleted_with: str = ""
    replace_on_changes: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # each alias as the SDK sends it (URN or spec), as text
    id: str = ""  # what the mocks answered (custom resources)

    def plain_text(self) -> str:
        """Every input string outside a secret wrapper, joined: where a leaked secret would show."""
        return "\n".join(_plain_strings(self.inputs))


@dataclass
class Recording:
    resources: list[Registered] = field(default_factory=list)
    # stack export name -> (resolved value, is_secret)
    outputs: dict[str, tuple[Any, bool]] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<recording of {len(self.resources)} resources>"

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Registered:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"expected one resource named {name}, found {[r.urn for r in matches]}"
        return matches[0]

    def depends_on(self, resource: Registered, other: Registered) -> bool:
        """True when `other` is an explicit or transitive (through parents/deps) dependency."""
        by_urn = {r.urn: r for r in self.resources}
        seen: set[str] = set()
        todo = list(resource.dependencies)
        while todo:
            urn = todo.pop()
            if urn == other.urn:
                return True
            if urn in seen or urn not in by_urn:
                continue
            seen.add(urn)
            todo.extend(by_urn[urn].dependencies)
            # depending on a component means depending on its children
            todo.extend(r.urn for r in self.resources if r.parent == urn)
        return False


def _plain_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return []
        return [s for v in value.values() for s in _plain_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _plain_strings(v)]
    return [value] if isinstance(value, str) else []


class RecordingMonitor(pmocks.MockMonitor):
    def __init__(self, mocks: pmocks.Mocks, recording: Recording):
        super().__init__(mocks)
        self.recording = recording

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.recording.resources.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    custom=request.custom,
                    dependencies=list(request.dependencies),
                    inputs=json_format.MessageToDict(request.object),
                    secret_outputs=list(request.additionalSecretOutputs),
                    provider=request.provider,
                    property_dependencies={k: sorted(v.urns) for k, v in request.propertyDependencies.items()},
                    delete_before_replace=request.deleteBeforeReplace if request.deleteBeforeReplaceDefined else None,
                    replace_with=list(request.replace_with),
                    deleted_with=request.deletedWith,
                    replace_on_changes=list(request.replaceOnChanges),
                    ignore_changes=list(request.ignoreChanges),
                    aliases=[json_format.MessageToJson(a, indent=None) for a in request.aliases] + list(request.aliasURNs),
                    id=response.id,
                )
            )
        return response


KUBECONFIG_STDOUT = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://127.0.0.1:6443\n"
# What the gateway's path MTU measurement prints (pathMtu: auto): here, a clean path at the node MTU.
CLEAN_MEASUREMENT = json.dumps({"schema": "netstab.gateway-measure/v1", "sweeps": [{"target": "ghcr.io:443", "verdict": "clean"}]})


class PassThroughMocks(pmocks.Mocks):
    """Resources get their inputs as state; commands print a kubeconfig shaped like K3s's, or
    `stdout[name suffix]` when given (the gateway measurement prints CLEAN_MEASUREMENT by default)."""

    def __init__(self, stdout: dict[str, str] | None = None):
        self.stdout = {"-measure": CLEAN_MEASUREMENT, **(stdout or {})}

    def new_resource(self, args: pmocks.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "command:remote:Command":
            state["stdout"] = next((out for suffix, out in self.stdout.items() if args.name.endswith(suffix)), KUBECONFIG_STDOUT)
        if args.typ == "pulumi-python:dynamic:Resource":
            state["secrets"] = {}  # the gate's real outputs are tested against a fake API (tests/real)
            if "host" in args.inputs:  # a HostKey: what its provider generates (tests/real drives the real one)
                state.update(private_key=f"PRIVATE-HOST-KEY-{args.inputs['host']}", public_key=f"ssh-ed25519 AAAAC3Nz {args.inputs['host']}")
        return f"{args.name}-id", state

    def call(self, args: pmocks.MockCallArgs):
        return {}


# The program refuses the shipped example's placeholder keys (components.config.placeholders): the
# program ring stands real-looking keys in for them unless a test keeps them (keep_placeholders).
STAND_IN = "StandInFor0"  # as long as PLACEHOLDER_MARK, and base64 too: the key grammar still holds


class CurrentEngine(pmocks.MockEngine):
    """The mocks' engine, answering the program's version check (components.program.require_engine) as a CLI
    at least as new as its minimum does: without complaint."""

    def RequirePulumiVersion(self, request: Any) -> None:  # noqa: N802 (the gRPC method's name)
        return None


def with_stand_ins(raw: dict[str, Any]) -> dict[str, Any]:
    """The stack as the program ring runs it: the example's placeholder keys replaced by stand-ins."""
    from components.config.stack import PLACEHOLDER_MARK

    return dict(json.loads(json.dumps(raw).replace(PLACEHOLDER_MARK, STAND_IN)))


def stack_config(raw: dict[str, Any], secrets: dict[str, str], keep_placeholders: bool = False) -> tuple[dict[str, str], list[str]]:
    raw = raw if keep_placeholders else with_stand_ins(raw)
    config = {f"netstab:{k}": json.dumps(v) if not isinstance(v, str) else v for k, v in raw.items()}
    config.update({f"netstab:{k}": v for k, v in secrets.items()})
    return config, [f"netstab:{k}" for k in secrets]


def _ensure_event_loop() -> None:
    """The mocks run on the thread's event loop; a test that ran asyncio.run() before leaves none."""
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
        if not loop.is_closed():
            return
    except RuntimeError:
        pass
    asyncio.set_event_loop(asyncio.new_event_loop())


def run_program(
    raw: dict[str, Any],
    secrets: dict[str, str] | None = None,
    program: Callable[[], Any] | None = None,
    plain_keys: tuple[str, ...] = (),
    recording: Recording | None = None,
    stdout: dict[str, str] | None = None,
    keep_placeholders: bool = False,
) -> Recording:
    """Run `program` (default: the real `main`) against this config; return what it registered.
    `stdout`: what commands whose name ends with a key print (see PassThroughMocks)."""
    from components.program import main

    recording = recording if recording is not None else Recording()
    mocks = PassThroughMocks(stdout)
    settings.ROOT.set(None)  # a fresh root stack per run, so exports never carry over
    _ensure_event_loop()
    pmocks.set_mocks(mocks, project="netstab", stack="test", preview=False, monitor=RecordingMonitor(mocks, recording))
    settings.SETTINGS.engine = CurrentEngine(None)
    config, secret_keys = stack_config(raw, DUMMY_SECRETS if secrets is None else secrets, keep_placeholders)
    set_all_config(config, [k for k in secret_keys if k.split(":", 1)[1] not in plain_keys])
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    def body() -> None:
        (program or main)()

    _sync_await(run_pulumi_func(body))
    root = settings.get_root_resource()
    for key, value in getattr(root, "outputs", {}).items():
        output = pulumi.Output.from_input(value)
        recording.outputs[key] = (_sync_await(output.future()), _sync_await(output.is_secret()))
    return recording
