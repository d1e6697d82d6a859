"""The mapping file (`MAPPING_FILE`, YAML): read it, check it against the writer schema, plan.

Whatever can be wrong with a mapping is found here, at start-up, and reported naming the entry
(`MAPPING_FILE fields.sessionId.path[1]: ...`): a typo stops the consumer before it dead-letters a
whole topic. The result is a `MappingPlan`, which `consumer.mapping.mapper.Mapper` compiles.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from consumer.errors import ConfigError
from consumer.mapping.operations import RoutePlan, plan_routes
from consumer.mapping.plan import MappingPlan, plan_mapping
from consumer.mapping.spec import LENIENT, MappingFileSpec

_PREFIX = "MAPPING_FILE"
_ENV_REF = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class MappingError(ConfigError):
    """The mapping file is unusable; each problem names the entry (never a record's value)."""


def load_plan(path: Path, writer_schema: dict[str, Any], environ: Mapping[str, str]) -> MappingPlan:
    """Read, check and plan a mapping file for records of `writer_schema`; `MappingError` lists
    every problem found, each naming its entry."""
    return load_file(path, writer_schema, environ)[0]


def load_file(
    path: Path,
    writer_schema: dict[str, Any],
    environ: Mapping[str, str],
    load_schema: Callable[[Path], dict[str, Any]] | None = None,
) -> tuple[MappingPlan, dict[str, RoutePlan]]:
    """The PutEvents plan (records of `writer_schema`) and the routes of topics that feed the
    other operations (records of the schema each names, read by `load_schema`); `MappingError`
    lists every problem of the file."""
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
        problems = [_describe(e) for e in exc.errors() if not _other_branch(e)]
        raise MappingError(problems + _plan_what_is_valid(raw, writer_schema)) from None
    plan, found = plan_mapping(spec, writer_schema)
    routes, route_problems = plan_routes(spec, path.parent, load_schema or _read_schema)
    found += route_problems
    if found:
        raise MappingError([f"{_PREFIX} {loc}: {message}" for loc, message in found])
    return plan, routes


def _read_schema(path: Path) -> dict[str, Any]:
    try:
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    return schema


def _plan_what_is_valid(raw: dict[str, Any], writer_schema: dict[str, Any]) -> list[str]:
    """What the schema says of the entries that are valid, so one wrong entry (a misspelt key,
    say) does not hide the others' problems: unknown keys are left out, then every entry still
    wrong is removed, for a few rounds. Nothing when too little is left to plan."""
    raw = copy.deepcopy(raw)
    for _round in range(5):
        try:
            spec = MappingFileSpec.model_validate(raw, context=LENIENT)
        except ValidationError as exc:
            if not any([_remove(raw, e["loc"]) for e in exc.errors()]):
                return []
            continue
        _plan, found = plan_mapping(spec, writer_schema)
        return [f"{_PREFIX} {loc}: {message}" for loc, message in found]
    return []


def _remove(raw: Any, loc: tuple[Any, ...]) -> bool:
    """Delete the deepest entry of `raw` on the path `loc` (pydantic's union branch markers
    skipped); whether anything was deleted."""
    parts = [p for p in loc if p not in ("list[str]", "dict[str,SourceSpec]")]
    node: Any = raw
    parent: Any = None
    key: Any = None
    for part in parts:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            parent, key, node = node, part, node[part]
        else:
            break
    if parent is None:
        return False
    del parent[key]
    return True


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
