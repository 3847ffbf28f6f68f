"""The model's engine rules on small hand-made graphs, one rule per test (sources in engine.py)."""

from __future__ import annotations

from typing import Any

from tests.conftest import COMMAND, SNIPPET, VM
from tests.lifecycle.engine import Mode, plan
from tests.program.harness import Recording, Registered


def res(name: str, type_: str = COMMAND, inputs: dict[str, Any] | None = None, *, deps: tuple[str, ...] = (),
        props: dict[str, list[str]] | None = None, **options: Any) -> Registered:
    """`deps` and `props` name URNs; a property dependency is a dependency too, as the SDK sends it."""
    all_deps = [*deps, *(u for urns in (props or {}).values() for u in urns)]
    return Registered(type=type_, name=name, urn=urn(name, type_), parent="", custom=True, dependencies=all_deps,
                      inputs=inputs or {}, secret_outputs=[], property_dependencies=props or {}, **options)


def urn(name: str, type_: str = COMMAND) -> str:
    return f"urn:pulumi:test::netstab::{type_}::{name}"


SNIPPET_URN = urn("snippet", SNIPPET)
VM_URN = urn("vm", VM)


def snippet(data: str, **options: Any) -> Registered:
    raw = {"data": data, "fileName": "cp1-user-data.yaml"}
    return res("snippet", SNIPPET, {"datastoreId": "local", "contentType": "snippets", "sourceRaw": raw}, **options)


def vm(*, props: dict[str, list[str]] | None = None, vm_id: int = 2711, **options: Any) -> Registered:
    inputs = {"vmId": vm_id, "name": "cp1", "initialization": {"userDataFileId": "local:snippets/cp1-user-data.yaml"}}
    return res("vm", VM, inputs, deps=(SNIPPET_URN,), props=props, **options)


def run(old: list[Registered], new: list[Registered], mode: Mode = "up", **flags: Any) -> list[str]:
    """The planned steps as "<op> <name>"."""
    return [f"{s.op} {s.name}" for s in plan(Recording(old), Recording(new), mode, **flags).steps]


def test_a_triggers_change_replaces_create_first_and_the_old_delete_runs_after_everything():
    old = [res("rules", inputs={"create": "apply", "delete": "remove", "triggers": ["a"]}), res("after", inputs={"create": "x"}, deps=(urn("rules"),))]
    new = [res("rules", inputs={"create": "apply", "delete": "remove", "triggers": ["b"]}), res("after", inputs={"create": "y"}, deps=(urn("rules"),))]
    assert run(old, new) == ["create rules", "update after", "delete rules"]


def test_a_text_change_updates_in_place_and_runs_no_delete():
    old = [res("rules", inputs={"create": "apply v1", "delete": "remove"})]
    new = [res("rules", inputs={"create": "apply v2", "delete": "remove"})]
    steps = plan(Recording(old), Recording(new), "up").steps
    assert [(s.op, s.script) for s in steps] == [("update", "apply v2")]


def test_delete_before_replace_deletes_the_old_one_first():
    old = [res("rules", inputs={"triggers": ["a"], "delete": "remove"}, delete_before_replace=True)]
    new = [res("rules", inputs={"triggers": ["b"], "delete": "remove"}, delete_before_replace=True)]
    assert run(old, new) == ["delete rules", "create rules"]


def test_depends_on_alone_never_drags_a_dependent_into_a_delete_first_replacement():
    old, new = [snippet("v1", delete_before_replace=True), vm()], [snippet("v2", delete_before_replace=True), vm()]
    assert run(old, new) == ["delete snippet", "create snippet"]


def test_a_forcenew_input_taken_from_a_delete_first_replacement_replaces_the_dependent_first():
    props = {"initialization": [SNIPPET_URN]}
    old, new = [snippet("v1", delete_before_replace=True), vm(props=props)], [snippet("v2", delete_before_replace=True), vm(props=props)]
    assert run(old, new) == ["delete vm", "delete snippet", "create snippet", "create vm"]


def test_a_non_forcenew_input_from_a_delete_first_replacement_does_not_replace():
    props = {"connection": [SNIPPET_URN]}
    step = res("step", inputs={"create": "x", "connection": {"host": "h"}}, deps=(SNIPPET_URN,), props=props)
    assert run([snippet("v1", delete_before_replace=True), step], [snippet("v2", delete_before_replace=True), step]) == [
        "delete snippet", "create snippet"]


def test_preview_sees_an_input_from_a_replacement_as_unknown_and_plans_a_forcenew_replace_that_up_does_not_do():
    props = {"initialization": [SNIPPET_URN]}
    old, new = [snippet("v1"), vm(props=props)], [snippet("v2"), vm(props=props)]
    assert run(old, new, "preview") == ["create snippet", "delete vm", "create vm", "delete snippet"]
    assert run(old, new, "up") == ["create snippet", "delete snippet"]


def test_an_explicit_vm_name_makes_the_bridge_replace_delete_first():
    assert run([vm(vm_id=1)], [vm(vm_id=2)]) == ["delete vm", "create vm"]


def test_replace_with_replaces_the_follower_and_a_delete_first_target_deletes_it_first():
    follower = res("step", inputs={"create": "x"}, deps=(VM_URN,), replace_with=[VM_URN])
    assert run([vm(vm_id=1), follower], [vm(vm_id=2), follower]) == ["delete step", "delete vm", "create vm", "create step"]


def test_a_delete_is_skipped_when_its_deleted_with_target_goes_too_and_runs_when_it_stays():
    step = res("step", inputs={"create": "write", "delete": "remove"}, deps=(VM_URN,), deleted_with=VM_URN)
    both_go = plan(Recording([vm(), step]), Recording([]), "up").steps
    assert [(s.name, s.skipped, s.script) for s in both_go] == [("step", True, None), ("vm", False, None)]
    vm_stays = plan(Recording([vm(), step]), Recording([vm()]), "up").steps
    assert [(s.name, s.skipped, s.script) for s in vm_stays] == [("step", False, "remove")]


def test_a_deleted_with_target_replaced_replaces_the_resource_only_on_cli_3_260_and_later():
    step = res("step", inputs={"create": "x"}, deps=(VM_URN,), deleted_with=VM_URN)
    old, new = [vm(vm_id=1), step], [vm(vm_id=2), step]
    assert run(old, new) == ["delete step", "delete vm", "create vm", "create step"]
    assert run(old, new, deleted_with_replaces=False) == ["delete vm", "create vm"]


def test_deletes_run_dependents_first():
    chain = [res("a"), res("b", deps=(urn("a"),)), res("c", deps=(urn("b"),))]
    assert run(chain, []) == ["delete c", "delete b", "delete a"]
    assert run(chain, [], "destroy") == ["delete c", "delete b", "delete a"]


def test_replace_on_changes_replaces_and_ignore_changes_hides_a_change():
    old = res("step", inputs={"create": "x", "environment": {"A": "1"}}, replace_on_changes=["environment"])
    new = res("step", inputs={"create": "x", "environment": {"A": "2"}}, replace_on_changes=["environment"])
    assert run([old], [new]) == ["create step", "delete step"]
    ignored = res("step", inputs={"create": "x", "environment": {"A": "2"}}, ignore_changes=["environment"])
    assert run([old], [ignored]) == []


def test_a_kubernetes_provider_with_a_cluster_identifier_is_replaced_only_when_the_identifier_changes():
    def provider(kubeconfig: str, **identity: str) -> Registered:
        return res("k8s", "pulumi:providers:kubernetes", {"kubeconfig": kubeconfig, **identity})

    assert run([provider("server: a")], [provider("server: b")]) == ["create k8s", "delete k8s"]
    assert run([provider("server: a", clusterIdentifier="c1")], [provider("server: b", clusterIdentifier="c1")]) == ["update k8s"]
    assert run([provider("server: a", clusterIdentifier="c1")], [provider("server: a", clusterIdentifier="c2")]) == ["create k8s", "delete k8s"]


def test_a_preview_keeps_an_updated_commands_id_known_and_its_stdout_unknown():
    """UpdateStep.Apply propagates the old id even in a preview; a command's stdout is new on update."""
    step_urn, k8s = urn("kubeconfig"), "pulumi:providers:kubernetes"

    def graph(server: str) -> list[Registered]:
        step = res("kubeconfig", inputs={"create": f"fetch {server}"}, id="kubeconfig-id")
        by_id = res("k8s", k8s, {"kubeconfig": "KUBECONFIG", "clusterIdentifier": "kubeconfig-id"},
                    props={"kubeconfig": [step_urn], "clusterIdentifier": [step_urn]})
        by_stdout = res("k8s-by-stdout", k8s, {"kubeconfig": "KUBECONFIG", "clusterIdentifier": "KUBECONFIG"},
                        props={"kubeconfig": [step_urn], "clusterIdentifier": [step_urn]})
        return [step, by_id, by_stdout]

    assert run(graph("a"), graph("b"), "preview") == ["update kubeconfig", "update k8s", "create k8s-by-stdout", "delete k8s-by-stdout"]
