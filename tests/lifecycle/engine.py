"""The smallest faithful model of how the Pulumi engine plans a second `pulumi up` (or a destroy).

Input: what the program registered on the last run (the old state) and on this one (the goals),
as recorded under mocks. Output: the ordered steps. Engine source: pulumi/pulumi @1b594989
pkg/resource/deploy/step_generator.go (facts §3):
- resources are handled in registration order; a new URN is created; otherwise the provider's
  diff (tests/lifecycle/providers.py) plus `replace_on_changes` decide same / update / replace,
  and `replace_with` / `deleted_with` targets replaced in this run replace it too (`diff`, 2895-2917);
- a replacement is create-before-delete, the old one deleted after every create and update, unless
  `delete_before_replace` (or the provider) says delete first (2030-2046, 2157-2165);
- delete-first first deletes, dependents first, every not yet registered resource that would be
  replaced by it: through its provider, its `deleted_with`, or an input whose property dependencies
  point at a replaced resource, made unknown and diffed; `depends_on` alone never cascades
  (calculateDependentReplacements 3268-3416); plus whatever has it in `replace_with` or
  `deleted_with` (findDependentCascadeReplacements 3419-3446);
- the remaining deletes run last, in reverse dependency order (ScheduleDeletes 2747-2797), and
  a resource `deleted_with` another one deleted in this run is not sent to its provider
  (step.go:663-664);
- a provider's Check sees the old inputs beside the new ones; a failure stops the run at that
  registration (the plan keeps the steps before it and says why: `refused`);
- inputs that come from a resource created, replaced or updated in this run are unknown in a
  preview (a command's outputs all follow its inputs, pulumi-go-provider infer); in `up` a value
  from a replaced resource is a new one unless its provider derives the outputs from its inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from tests.conftest import COMMAND
from tests.lifecycle.providers import rules_for
from tests.lifecycle.values import UNKNOWN, NewOutput, Path, changed_paths, covers, dotted, parse_path, unwrap
from tests.program.harness import Recording, Registered

Mode = Literal["preview", "up", "destroy"]


@dataclass(frozen=True)
class Step:
    op: Literal["create", "update", "delete"]
    res: Registered  # the new state for a create or update, the old one for a delete
    old: Registered | None = None  # the old state of an update
    replacing: bool = False  # one half of a replacement
    delete_first: bool = False  # ... whose old one was deleted first
    skipped: bool = False  # a delete not sent to the provider: its deleted_with target goes too
    why: str = ""  # the changed paths, or the cascade that replaced it

    @property
    def name(self) -> str:
        return self.res.name

    @property
    def script(self) -> str | None:
        """For a command: the text the provider runs (pulumi-command commandController.go: create;
        update runs `update`, else `create`; delete runs the old `delete`)."""
        if self.res.type != COMMAND or self.skipped:
            return None
        inputs = self.res.inputs
        if self.op == "update":
            return unwrap(inputs.get("update") or inputs.get("create"))
        return unwrap(inputs.get(self.op))

    def __str__(self) -> str:
        notes = [n for n in ("replacing" if self.replacing else "", "delete first" if self.delete_first else "",
                             "skipped: deleted with its target" if self.skipped else "", self.why) if n]
        return f"{self.op} {self.name}" + (f" ({'; '.join(notes)})" if notes else "")


class Refused(Exception):
    """A provider's Check failed: the engine stops before this resource's step."""


@dataclass
class Plan:
    mode: Mode
    steps: list[Step]
    refused: str = ""  # the Check failure that stopped the run

    def of(self, name: str) -> list[Step]:
        return [s for s in self.steps if s.name == name]

    def ops(self, name: str) -> list[str]:
        return [s.op for s in self.of(name)]

    def replaced(self) -> set[str]:
        return {s.name for s in self.steps if s.replacing and s.op == "create"}

    def updated(self) -> set[str]:
        return {s.name for s in self.steps if s.op == "update"}

    def index(self, name: str, op: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.name == name and s.op == op)

    def __str__(self) -> str:
        return "\n".join(str(s) for s in self.steps)

    def __repr__(self) -> str:
        return f"<{self.mode} plan of {len(self.steps)} steps>"


def plan(old: Recording, new: Recording | None, mode: Mode, *, deleted_with_replaces: bool = True) -> Plan:
    """The steps of `pulumi preview` / `pulumi up` from `old` to `new`, or of `pulumi destroy` of `old`.

    `deleted_with_replaces=False` is a CLI before 3.260 (pulumi#23818, commit 5cd93859): a replaced
    `deleted_with` target neither replaces nor pre-deletes the resource, and a delete-first
    replacement does not count its own target as deleted, so those deletes reach the provider.
    """
    planner = _Planner(old, mode, deleted_with_replaces)
    if mode != "destroy":
        assert new is not None, "preview and up need the new run's recording"
        try:
            for goal in new.resources:
                if goal.custom:
                    planner.register(goal)
        except Refused as refused:
            return Plan(mode, planner.steps, refused=str(refused))
    planner.delete_the_rest()
    return Plan(mode, planner.steps)


def _edges(res: Registered) -> set[str]:
    """What a resource depends on in the engine's graph (pkg/resource/state.go GetAllDependencies; parents aside)."""
    provider = [res.provider.rsplit("::", 1)[0]] if res.provider else []
    props = [u for urns in res.property_dependencies.values() for u in urns]
    return {*res.dependencies, *props, *provider, *res.replace_with, *([res.deleted_with] if res.deleted_with else [])}


class _Planner:
    def __init__(self, old: Recording, mode: Mode, deleted_with_replaces: bool):
        self.mode = mode
        self.cascade_deleted_with = deleted_with_replaces
        self.old_order = [r for r in old.resources if r.custom]
        self.olds = {r.urn: r for r in self.old_order}
        self.news: dict[str, Registered] = {}
        self.done: dict[str, str] = {}  # urn -> create / update / replace / same, as registered
        self.replaces: set[str] = set()
        self.deleted: set[str] = set()  # the engine's sg.deletes: what its deletes see as going too
        self.pre_deleted: set[str] = set()  # deleted by a delete-first replacement, recreated when registered
        self.later: list[Registered] = []  # create-before-delete: the old ones, deleted at the end
        self.steps: list[Step] = []

    # ---------------------------------------------------------------- one registration

    def register(self, goal: Registered) -> None:
        self.news[goal.urn] = goal
        old = self.olds.get(goal.urn)
        check = rules_for(goal).check
        failure = check(old.inputs if old else {}, goal.inputs) if check else None
        if failure:
            raise Refused(failure)
        if old is None:
            self.done[goal.urn] = "create"
            self.steps.append(Step("create", goal))
            return
        verdict, why = self._diff(old, goal, self._resolved(goal))
        if goal.urn in self.pre_deleted:
            verdict, why = "replace", why or "deleted with a delete-first replacement"
        self.done[goal.urn] = verdict
        if verdict == "same":
            return
        if verdict == "update":
            self.steps.append(Step("update", goal, old=old, why=why))
        elif self._deletes_first(goal):
            self._delete_first(old, goal, why)
        else:
            self.replaces.add(goal.urn)
            pre_deleted = goal.urn in self.pre_deleted  # GenerateDeletes skips what a delete-first already deleted
            self.steps.append(Step("create", goal, replacing=True, delete_first=pre_deleted, why=why))
            if not pre_deleted:
                self.later.append(old)

    def _resolved(self, goal: Registered) -> dict[str, Any]:
        """The goal's inputs as the provider sees them: values from this run's changes unknown in a preview, new in `up`."""
        inputs = dict(goal.inputs)
        for key, sources in goal.property_dependencies.items():
            for urn in sources:
                verdict, source = self.done.get(urn), self.news.get(urn)
                fresh = source is not None and rules_for(source).fresh_outputs
                updated_output = verdict == "update" and fresh and not _is_id_of(goal.inputs.get(key), source)
                if self.mode == "preview" and (verdict in ("create", "replace") or updated_output):
                    inputs[key] = UNKNOWN
                elif self.mode == "up" and fresh and verdict in ("create", "replace"):
                    inputs[key] = NewOutput(urn)
        return inputs

    def _diff(self, old: Registered, goal: Registered, inputs: dict[str, Any]) -> tuple[str, str]:
        if any(urn in self.replaces for urn in goal.replace_with):
            return "replace", "replace_with " + ", ".join(_name(u) for u in goal.replace_with if u in self.replaces)
        if self.cascade_deleted_with and goal.deleted_with in self.replaces:
            return "replace", f"deleted_with {_name(goal.deleted_with)}"
        if goal.provider and goal.provider.rsplit("::", 1)[0] in self.replaces:
            return "replace", "its provider is replaced"
        return _provider_diff(old, inputs, goal.replace_on_changes, goal.ignore_changes)

    def _deletes_first(self, goal: Registered) -> bool:
        if goal.delete_before_replace is not None:
            return goal.delete_before_replace
        return rules_for(goal).named_deletes_first and "name" in goal.inputs

    # ---------------------------------------------------------------- delete-before-replace

    def _delete_first(self, old: Registered, goal: Registered, why: str) -> None:
        self.replaces.add(goal.urn)
        condemned = [r for r in self._dependents(old) if r.urn not in self.pre_deleted]
        self.pre_deleted.update(r.urn for r in condemned)
        self.deleted.update(r.urn for r in condemned)
        first = old.urn not in self.pre_deleted
        self.pre_deleted.add(old.urn)
        if self.cascade_deleted_with:
            self.deleted.add(old.urn)
        for dependent in reversed(condemned):
            self.steps.append(self._delete(dependent, replacing=True, why=f"replaced with {old.name}"))
        if first:
            self.steps.append(self._delete(old, replacing=True, why=why))
        self.steps.append(Step("create", goal, replacing=True, delete_first=True, why=why))

    def _dependents(self, root: Registered) -> list[Registered]:
        """calculateDependentReplacements + findDependentCascadeReplacements, in dependency order."""
        replace_set, depending = {root.urn}, {root.urn}
        found: list[Registered] = []
        for res in self.old_order[self.old_order.index(root) + 1:]:
            if res.urn in self.done or not _edges(res) & depending:
                continue
            depending.add(res.urn)
            if self._replaced_with(res, replace_set):
                found.append(res)
                replace_set.add(res.urn)
        cascades = [r for r in self.old_order if root.urn in r.replace_with or (self.cascade_deleted_with and r.deleted_with == root.urn)]
        return found + [r for r in cascades if r not in found]

    def _replaced_with(self, res: Registered, replace_set: set[str]) -> bool:
        if res.provider and res.provider.rsplit("::", 1)[0] in replace_set:
            return True
        if self.cascade_deleted_with and res.deleted_with in replace_set:
            return True
        unknown = [k for k, urns in res.property_dependencies.items() if set(urns) & replace_set]
        if not unknown:
            return False  # a depends_on edge alone: nothing of its inputs can change
        inputs = {**res.inputs, **dict.fromkeys(unknown, UNKNOWN)}
        return _provider_diff(res, inputs, res.replace_on_changes, res.ignore_changes)[0] == "replace"

    # ---------------------------------------------------------------- the rest

    def delete_the_rest(self) -> None:
        """Old resources not registered again and create-before-delete leftovers, dependents first."""
        gone = [r for r in self.old_order if r.urn not in self.news and r.urn not in self.pre_deleted]
        condemned = self.later + gone
        self.deleted.update(r.urn for r in condemned)
        replaced = {r.urn for r in self.later}
        for res in _reverse_dependency_order(condemned):
            self.steps.append(self._delete(res, replacing=res.urn in replaced))

    def _delete(self, res: Registered, replacing: bool, why: str = "") -> Step:
        return Step("delete", res, replacing=replacing, skipped=res.deleted_with in self.deleted, why=why)


def _provider_diff(old: Registered, inputs: dict[str, Any], replace_on_changes: Iterable[str],
                   ignore_changes: Iterable[str]) -> tuple[str, str]:
    rules = rules_for(old)
    if rules.never_changes:
        return "same", ""
    ignored = [parse_path(p) for p in ignore_changes]
    paths = [p for p in changed_paths(old.inputs, inputs) if not any(covers(i, p) and len(p) >= len(i) for i in ignored)]
    if not paths:
        return "same", ""
    forced = [p for p in paths if rules.replaces(p) or _matches(replace_on_changes, p)]
    if rules.identity in old.inputs and rules.identity in inputs:
        forced = [p for p in paths if p[0] == rules.identity]
    return ("replace", _describe(forced)) if forced else ("update", _describe(paths))


def _matches(patterns: Iterable[str], path: Path) -> bool:
    return any(p == "*" or covers(parse_path(p), path) for p in patterns)


def _describe(paths: list[Path]) -> str:
    return ", ".join(dict.fromkeys(dotted(p) for p in paths))


def _reverse_dependency_order(condemned: list[Registered]) -> list[Registered]:
    """ScheduleDeletes: antichains of what depends on nothing still condemned, reversed."""
    left = {r.urn: r for r in condemned}
    layers: list[list[Registered]] = []
    while left:
        layer = [r for r in left.values() if not _edges(r) & (left.keys() - {r.urn})]
        assert layer, f"a dependency cycle among {sorted(left)}"
        layers.append(layer)
        for r in layer:
            del left[r.urn]
    return [r for layer in reversed(layers) for r in layer]


def _is_id_of(value: Any, source: Registered | None) -> bool:
    """An input that is the source's id: an update keeps the id known even in a preview
    (pulumi pkg/resource/deploy/step.go, UpdateStep.Apply: "Always propagate the ID ... even in previews")."""
    return source is not None and bool(source.id) and unwrap(value) == source.id


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]
