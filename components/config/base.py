"""What every config section shares: a frozen pydantic model with camelCase keys and unknown keys
forbidden, rules that see every field that is valid, and problems as `key.path: message` lines.

Every error pydantic raises is translated inside the section that raised it (where the accepted keys
are known), so one validation of the whole stack yields every problem, each already worded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from typing import Any, Self, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ModelWrapValidatorHandler, TypeAdapter, ValidationError, model_validator
from pydantic_core import ErrorDetails, InitErrorDetails

from components.config.fields import NETSTAB_ERROR, problem, show

Loc = tuple[str | int, ...]
Problems = Iterator[tuple[Loc, str]]  # what a rule yields: (key path inside its section, message)
F = TypeVar("F", bound=Callable[..., Problems])
_NEEDS = "__netstab_needs__"


class ConfigError(Exception):
    """Every problem found in a stack's config, one `path: message` per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def camel(name: str) -> str:
    """vm_id -> vmId, k3s_images -> k3sImages: the YAML key of a Python attribute."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def path(loc: Iterable[str | int]) -> str:
    """('nodes', 1, 'ip') -> 'nodes[1].ip'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def rule(*needs: str) -> Callable[[F], F]:
    """Mark a section method as a rule over the fields it names (dotted into nested sections).

    It runs on the validated section; when other fields are invalid it still runs, on the fields
    that are valid on their own, as long as every field it names is among them. A list of sections
    named with `[]` (`"nodes[]"`) is there even when some of its items are not: the rule then sees
    each invalid item as a Partial of its valid fields (and must look at what it holds), so a
    mistake in one node does not hide another node's clash.
    """

    def mark(method: F) -> F:
        setattr(method, _NEEDS, needs)
        return method

    return mark


def default(value: Any) -> Any:
    """A field default as YAML spells it (`[]`, `{"pathMtu": 1400}`): validation makes it the field's type."""
    return Field(value)


class Partial:
    """The fields of an invalid section that are valid on their own; the others are absent."""

    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)


class Items(tuple[Any, ...]):
    """A list of sections some of whose items are invalid (those are Partials)."""


def present(section: Any, dotted: str) -> bool:
    """Whether a (possibly partial) section holds this field, complete (`nodes[]`: a list, its items perhaps partial)."""
    value = section
    items_may_be_partial = dotted.endswith("[]")
    for name in dotted.removesuffix("[]").split("."):
        if isinstance(value, Partial) and name not in vars(value):
            return False
        value = getattr(value, name)
    if isinstance(value, Items):
        return items_may_be_partial
    return not isinstance(value, Partial)


def has(item: Any, *names: str) -> bool:
    """Whether an item of a `[]` list holds these fields (a valid section holds them all)."""
    return not isinstance(item, Partial) or all(name in vars(item) for name in names)


class Section(BaseModel):
    """One mapping of the stack config."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=camel,
        validate_by_alias=True,
        validate_by_name=True,  # Python code builds sections by attribute name; parse_config reads YAML keys only
        validate_default=True,  # defaults are written as YAML would spell them
        use_attribute_docstrings=True,  # the docstring under a field is its description in the schema
    )

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys this section accepts, in declaration order."""
        return tuple(info.alias or name for name, info in cls.model_fields.items())

    @model_validator(mode="wrap")
    @classmethod
    def _validate(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        try:
            section = handler(data)
        except ValidationError as exc:
            found = [cls._translate(e) for e in exc.errors()]
            if isinstance(data, Mapping):
                found += cls._run_rules(cls.partial(data))
            raise _validation_error(cls.__name__, found, data) from None
        found = cls._run_rules(section)
        if found:
            raise _validation_error(cls.__name__, found, data)
        return section

    @classmethod
    def partial(cls, data: Mapping[str, Any]) -> Partial:
        """The fields of `data` that validate on their own (a nested section that does not: its own partial)."""
        values: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            key = info.alias or name
            if key not in data and info.is_required():
                continue
            raw = data[key] if key in data else info.get_default(call_default_factory=True)
            try:
                values[name] = _adapter(cls, name).validate_python(raw, by_alias=True, by_name=False)
            except ValidationError:
                nested, many = section_of(info.annotation)
                if nested is not None and not many and isinstance(raw, Mapping):
                    values[name] = nested.partial(raw)
                elif nested is not None and many and isinstance(raw, list | tuple):
                    values[name] = Items(nested.item(raw_item) for raw_item in raw)
        return Partial(values)

    @classmethod
    def item(cls, raw: Any) -> Any:
        """One item of a list of sections: the section when it is valid, else a Partial of its valid fields."""
        if not isinstance(raw, Mapping):
            return Partial({})
        try:
            return cls.model_validate(raw, by_alias=True, by_name=False)
        except ValidationError:
            return cls.partial(raw)

    @classmethod
    def _translate(cls, error: ErrorDetails) -> tuple[Loc, str]:
        """Where a pydantic error is and how we word it."""
        loc, kind = error["loc"], error["type"]
        if kind == NETSTAB_ERROR:
            return (*loc, *error["ctx"]["at"]), str(error["ctx"]["message"])
        if kind == "invalid_key":  # the key itself is the input
            key = error["input"]
            return (*loc[:-1], repr(key)), (f"key {show(key)} is not text (YAML reads yes/no/on/off as booleans and bare numbers "
                                            f"as numbers); expected one of: {', '.join(cls.keys())}")
        return loc, cls._message(error)

    @classmethod
    def _message(cls, error: ErrorDetails) -> str:
        kind, value = error["type"], error["input"]
        if kind == "missing":
            return "missing required key"
        if kind == "extra_forbidden":
            return f"unknown key; expected one of: {', '.join(cls.keys())}"
        if kind in ("model_type", "model_attributes_type", "dict_type"):
            return f"expected a mapping, got {show(value)}"
        if kind in ("tuple_type", "list_type"):
            return f"{show(value)} is not a list"
        return f"{show(value)} is not valid here: {error['msg']}"

    @classmethod
    def _run_rules(cls, section: Any) -> list[tuple[Loc, str]]:
        found: list[tuple[Loc, str]] = []
        for method in _rules(cls):
            if all(present(section, need) for need in getattr(method, _NEEDS)):
                found.extend(method(section))
        return found


def _rules(cls: type[Section]) -> list[Callable[[Any], Problems]]:
    return [m for klass in reversed(cls.__mro__) for m in vars(klass).values() if callable(m) and hasattr(m, _NEEDS)]


@cache
def _adapter(cls: type[Section], name: str) -> TypeAdapter[Any]:
    return TypeAdapter(cls.model_fields[name].rebuild_annotation())


def section_of(annotation: Any) -> tuple[type[Section] | None, bool]:
    """The section a field holds (`GatewayConfig`, or `tuple[NodeConfig, ...]`: many), if any."""
    many = get_origin(annotation) is tuple
    held = get_args(annotation)[0] if many else annotation
    return (held, many) if isinstance(held, type) and issubclass(held, Section) else (None, False)


def _validation_error(title: str, found: list[tuple[Loc, str]], data: Any) -> ValidationError:
    details = [InitErrorDetails(type=problem(message), loc=loc, input=data) for loc, message in found]
    return ValidationError.from_exception_data(title, details)


def problem_lines(exc: ValidationError) -> list[str]:
    """A validation error of a Section as `key.path: message` lines."""
    return [f"{path(e['loc'])}: {e['ctx']['message']}" for e in exc.errors()]
