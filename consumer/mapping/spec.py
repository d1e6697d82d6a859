"""The mapping file's structure (YAML, `MAPPING_FILE`), checked with pydantic.

Unknown keys are reported with a "did you mean", together with every other problem of the entry,
so a typo names itself instead of hiding the rest.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError


def did_you_mean(name: str, known: list[str]) -> str:
    same = [k for k in known if k.casefold() == name.casefold()]
    close = same or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


#: Validation context: drop unknown keys instead of reporting them.
LENIENT = {"unknown_keys": "drop"}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    #: A bare path (or list of paths) stands for `{path: ...}`.
    shorthand: ClassVar[bool] = True

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(
        cls, data: Any, handler: ModelWrapValidatorHandler[Any], info: ValidationInfo
    ) -> Any:
        """Unknown keys (with a suggestion) and the rest of the entry, reported together.

        With the `LENIENT` context, unknown keys are dropped without a word: the file's loader
        uses it to check the rest of a file against the schema after reporting them.
        """
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
            if info.context is not LENIENT:
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
OperationName = Literal["PutEvents", "PutItems", "PutUsers", "PutActions", "PutActionInteractions"]


class CatalogFieldsSpec(_Spec):
    """PutItems, PutUsers, PutActions: the entry's id (the one its operation takes) and its
    properties."""

    shorthand: ClassVar[bool] = False
    itemId: SourceSpec | None = None
    userId: SourceSpec | None = None
    actionId: SourceSpec | None = None
    properties: PropertiesSpec | None = None


class ActionInteractionFieldsSpec(_Spec):
    """PutActionInteractions' own names, as the API reference has them."""

    shorthand: ClassVar[bool] = False
    actionId: SourceSpec
    userId: SourceSpec | None = None
    sessionId: SourceSpec
    eventId: SourceSpec | None = None
    eventType: EventTypeSpec
    timestamp: SentAtSpec
    recommendationId: SourceSpec | None = None
    impression: ImpressionSpec | None = None
    properties: PropertiesSpec | None = None


class TopicSpec(_Spec):
    """What a topic feeds. Without `operation`, PutEvents with the top-level `fields`."""

    shorthand: ClassVar[bool] = False
    operation: OperationName = "PutEvents"
    trackingId: TrackingId | None = None
    datasetArn: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    #: The Avro schema of the topic's records (a path, relative to the mapping file): the writer
    #: schema of schemaless records; with a registry, the shape the mapping is checked against.
    schema_: str | None = Field(default=None, alias="schema")
    fields: dict[str, Any] | None = None


class MappingFileSpec(_Spec):
    shorthand: ClassVar[bool] = False
    version: Literal[1] = 1
    trackingId: TrackingId
    topics: dict[Annotated[str, Field(min_length=1)], TopicSpec] = {}
    fields: FieldsSpec
