"""The mapping file (`MAPPING_FILE`, YAML): read it, check it against the writer schema, plan.

Whatever can be wrong with a mapping is found here, at start-up, and reported naming the entry
(`MAPPING_FILE fields.sessionId.path[1]: ...`): a typo stops the consumer before it dead-letters a
whole topic. The result is a `MappingPlan`, which `consumer.mapping.Mapper` compiles.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import fastavro
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from consumer import SCHEMAS_DIR
from consumer.mapping import Mapper
from consumer.mappingschema import MappingPlan, did_you_mean, plan_mapping

DEFAULT_MAPPING_FILE = SCHEMAS_DIR / "interaction.mapping.yaml"
_PREFIX = "MAPPING_FILE"
_ENV_REF = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class MappingError(ValueError):
    """The mapping file is unusable; each message names the entry (never a record's value)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def load_mapping(path: Path, writer_schema: dict[str, Any], environ: Mapping[str, str]) -> Mapper:
    """Read, check and compile a mapping file for records of `writer_schema`."""
    return Mapper(load_plan(path, writer_schema, environ))


def load_writer_schema(path: Path) -> dict[str, Any]:
    schema = fastavro.schema.load_schema(str(path))
    if not isinstance(schema, dict):
        raise ValueError(f"{path}: the writer schema must be an Avro record")
    return schema


def load_plan(path: Path, writer_schema: dict[str, Any], environ: Mapping[str, str]) -> MappingPlan:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError([f"{_PREFIX}: cannot read {path}: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise MappingError([f"{_PREFIX}: {path} is not valid YAML: {problem}{where}"]) from None
    if not isinstance(raw, dict):
        raise MappingError([f"{_PREFIX}: {path} must hold a mapping (trackingId, topics, fields)"])
    raw.setdefault("trackingId", "${PERSONALIZE_TRACKING_ID}")
    unset: list[str] = []
    raw = _substitute(raw, environ, (), unset)
    if unset:
        raise MappingError(unset)
    try:
        spec = MappingFileSpec.model_validate(raw)
    except ValidationError as exc:
        raise MappingError([_describe(e) for e in exc.errors() if not _other_branch(e)]) from None
    plan, problems = plan_mapping(spec, writer_schema)
    if problems:
        raise MappingError([f"{_PREFIX} {loc}: {message}" for loc, message in problems])
    return plan


# -- the file's structure (keys are checked by hand for a "did you mean") ---------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    #: A bare path (or list of paths) stands for `{path: ...}`.
    shorthand: ClassVar[bool] = True

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """Unknown keys (with a suggestion) and the rest of the entry, reported together."""
        if cls.shorthand and isinstance(data, (str, list)):
            data = {"path": data}
        if not isinstance(data, dict):
            hint = "a path, a list of paths or a mapping" if cls.shorthand else "a mapping"
            raise PydanticCustomError("shape", "must be {hint}", {"hint": hint})
        known = [f.alias or name for name, f in cls.model_fields.items() if name != "single"]
        errors: list[InitErrorDetails] = []
        if unknown := [str(key) for key in data if key not in known]:
            keys = ", ".join(f"{k!r}{did_you_mean(k, known)}" for k in unknown)
            message = f"unknown key {keys} (known: {', '.join(known)})"
            errors.append(_error("key", message, (), data))
            data = {k: v for k, v in data.items() if k in known}
        path = data.get("path")
        if path is not None and not isinstance(path, (str, list)):
            errors.append(_error("path", "must be a path or a list of paths", ("path",), path))
            data = {k: v for k, v in data.items() if k != "path"}
        if isinstance(path, str):  # one path is a list of one, named without [0]
            data = {**data, "path": [path], "single": True}
        if not errors:
            return handler(data)
        try:
            handler(data)
        except ValidationError as exc:
            errors += [_error(e["type"], e["msg"], e["loc"], e["input"]) for e in exc.errors()]
        raise ValidationError.from_exception_data(cls.__name__, errors)


def _error(kind: str, message: str, loc: tuple[Any, ...], given: Any) -> InitErrorDetails:
    """An error carried through a `ValidationError` as it is (braces escaped for pydantic)."""
    text = message.replace("{", "{{").replace("}", "}}")
    return InitErrorDetails(type=PydanticCustomError(kind, text), loc=loc, input=given)


class PathSpec(_Spec):
    path: list[str] | None = None
    single: bool = False

    @model_validator(mode="after")
    def _has_a_path(self) -> PathSpec:
        if self.path == []:
            raise PydanticCustomError("path", "path: give at least one path")
        if self.path is None and not isinstance(self, SourceSpec):
            raise PydanticCustomError("path", "path: is required")
        return self


class SourceSpec(PathSpec):
    const: Any = None

    @field_validator("const")
    @classmethod
    def _scalar(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, (str, int, float)):
            raise PydanticCustomError("const", "must be a string, number or boolean")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> SourceSpec:
        if (self.path is None) == (self.const is None):
            raise PydanticCustomError("source", "give either path or const")
        return self


class EventTypeSpec(SourceSpec):
    include: list[str] | None = None
    exclude: list[str] = []
    rename: dict[str, Annotated[str, Field(min_length=1, max_length=256)]] = {}


class SentAtSpec(PathSpec):
    unit: Literal["seconds", "millis", "micros", "iso8601", "logical"]


class ImpressionSpec(PathSpec):
    delimiter: Annotated[str, Field(min_length=1)] | None = None


class PropertiesSpec(_Spec):
    shorthand: ClassVar[bool] = False
    from_: str | None = Field(default=None, alias="from")
    #: Paths (the key is the camelCase of the last segment), or camelCase key: source.
    fields: list[str] | dict[str, SourceSpec] = Field(default=[], union_mode="left_to_right")


class FieldsSpec(_Spec):
    """PutEvents' own names, so they read like the API reference."""

    shorthand: ClassVar[bool] = False
    userId: SourceSpec | None = None
    sessionId: SourceSpec
    eventId: SourceSpec | None = None
    eventType: EventTypeSpec
    sentAt: SentAtSpec
    eventValue: SourceSpec | None = None
    itemId: SourceSpec | None = None
    recommendationId: SourceSpec | None = None
    impression: ImpressionSpec | None = None
    properties: PropertiesSpec | None = None
    metricAttributionSource: SourceSpec | None = None


TrackingId = Annotated[str, Field(min_length=1, max_length=256)]


class TopicSpec(_Spec):
    shorthand: ClassVar[bool] = False
    trackingId: TrackingId


class MappingFileSpec(_Spec):
    shorthand: ClassVar[bool] = False
    version: Literal[1] = 1
    trackingId: TrackingId
    topics: dict[Annotated[str, Field(min_length=1)], TopicSpec] = {}
    fields: FieldsSpec


def _describe(error: Any) -> str:
    loc = _loc(tuple(p for p in error["loc"] if p not in ("list[str]", "dict[str,SourceSpec]")))
    message = "is required" if error["type"] == "missing" else error["msg"]
    if message.startswith("path: "):  # raised by the model, about its `path`
        loc, message = f"{loc}.path", message.removeprefix("path: ")
    return f"{_PREFIX} {loc}: {message}"


def _other_branch(error: Any) -> bool:
    """Of a list-or-mapping union, only the errors of the branch the file wrote are useful."""
    wanted = {"list_type": dict, "dict_type": list}.get(error["type"])
    return wanted is not None and isinstance(error["input"], wanted)


def _loc(parts: tuple[str | int, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _substitute(node: Any, environ: Mapping[str, str], loc: tuple[Any, ...], out: list[str]) -> Any:
    """`${NAME}` in any string (keys too) becomes the environment variable's value."""
    if isinstance(node, dict):
        return {
            _substitute(k, environ, loc, out): _substitute(v, environ, (*loc, k), out)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_substitute(v, environ, (*loc, i), out) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if not _ENV_NAME.fullmatch(name):
            out.append(f"{_PREFIX} {_loc(loc)}: '${{{name}}}' is not a variable reference")
        elif name not in environ:
            out.append(f"{_PREFIX} {_loc(loc)}: environment variable {name} is not set")
        else:
            return environ[name]
        return ""

    return _ENV_REF.sub(value_of, node)
