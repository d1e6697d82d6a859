"""Start-up checks of a mapping file: structure, environment variables, and every path against the
writer schema. Each problem names its entry; all of them are reported at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from consumer import DEFAULT_MAPPING_FILE, DEFAULT_SCHEMA_FILE, SCHEMAS_DIR
from consumer.decode import load_schema_file
from consumer.mapping import Mapper, MappingError, load_mapping, load_plan
from consumer.mapping.plan import camel_case
from tests.mapping.mapper_support import CLICK

ENV = {"PERSONALIZE_TRACKING_ID": "tracker-1"}
MINIMAL: dict[str, Any] = {
    "sessionId": "anonymousId",
    "eventType": "event",
    "sentAt": {"path": "ts_millis", "unit": "millis"},
}
EXAMPLES = SCHEMAS_DIR / "examples"


def problems(tmp_path: Path, document: Any, environ: dict[str, str] | None = None) -> list[str]:
    """The messages loading `document` (YAML text, or data to dump) against CLICK raises."""
    path = tmp_path / "mapping.yaml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    with pytest.raises(MappingError) as raised:
        load_plan(path, CLICK, ENV if environ is None else environ)
    assert str(raised.value) == "; ".join(raised.value.problems)
    return raised.value.problems


def with_fields(**fields: Any) -> dict[str, Any]:
    return {"fields": MINIMAL | fields}


@pytest.mark.parametrize(
    ("mapping", "schema"),
    [
        (DEFAULT_MAPPING_FILE, DEFAULT_SCHEMA_FILE),
        (EXAMPLES / "segment_track.mapping.yaml", EXAMPLES / "segment_track.avsc"),
        (EXAMPLES / "snowplow_enriched.mapping.yaml", EXAMPLES / "snowplow_enriched.avsc"),
    ],
)
def test_shipped_mappings_load_against_their_schemas(mapping: Path, schema: Path) -> None:
    mapper = load_mapping(mapping, load_schema_file(schema), ENV)
    assert isinstance(mapper, Mapper)
    assert mapper.plan.tracking_id == "tracker-1"


def test_a_misspelt_path_is_named_with_a_suggestion(tmp_path: Path) -> None:
    document = with_fields(sessionId=["session.id", "anonymousID", "userId"])
    assert problems(tmp_path, document) == [
        "MAPPING_FILE fields.sessionId.path[1]: 'anonymousID' is not a field of record Click "
        "(did you mean 'anonymousId'?)"
    ]


def test_paths_follow_records_unions_and_maps_but_not_arrays_or_scalars(tmp_path: Path) -> None:
    document = with_fields(
        itemId="context.page.url.host", recommendationId="item_ids.first", userId="session.idd"
    )
    assert problems(tmp_path, document) == [
        "MAPPING_FILE fields.userId.path: 'idd' is not a field of record Session "
        "(did you mean 'id'?)",
        "MAPPING_FILE fields.itemId.path: 'context.page.url' is Avro string, not a record or map: "
        "no 'host' in it",
        "MAPPING_FILE fields.recommendationId.path: 'item_ids' is an array: a path cannot go "
        "into its items",
    ]


def test_any_key_below_a_map_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(with_fields(itemId="properties.anything_at_all")))
    assert load_plan(path, CLICK, ENV).sources["itemId"].paths == (
        ("properties", "anything_at_all"),
    )


def test_unknown_keys_are_named_with_a_suggestion(tmp_path: Path) -> None:
    document = with_fields(itemID="sku", eventValue={"paht": "properties.price"})
    [top, nested] = problems(tmp_path, document)
    assert top.startswith("MAPPING_FILE fields: unknown key 'itemID' (did you mean 'itemId'?)")
    assert nested.startswith(
        "MAPPING_FILE fields.eventValue: unknown key 'paht' (did you mean 'path'?) (known: path, "
    )


def test_wrong_types_and_an_unknown_unit(tmp_path: Path) -> None:
    document = {
        "trackingId": 5,
        "fields": MINIMAL
        | {
            "sessionId": {"path": 5},
            "sentAt": {"path": "ts_millis", "unit": "hours"},
            "eventValue": {"const": [1]},
            "impression": {"path": "item_list", "delimiter": 1},
        },
    }
    assert problems(tmp_path, document) == [
        "MAPPING_FILE trackingId: Input should be a valid string",
        "MAPPING_FILE fields.sessionId.path: must be a path or a list of paths",
        "MAPPING_FILE fields.sentAt.unit: Input should be 'seconds', 'millis', 'micros', "
        "'iso8601' or 'logical'",
        "MAPPING_FILE fields.eventValue.const: must be a string, number or boolean",
        "MAPPING_FILE fields.impression.delimiter: Input should be a valid string",
    ]


def test_required_entries_and_shapes(tmp_path: Path) -> None:
    document = {"fields": {"sessionId": 5, "eventType": [], "sentAt": {"path": "ts_millis"}}}
    assert problems(tmp_path, document) == [
        "MAPPING_FILE fields.sessionId: must be a path, a list of paths or a mapping",
        "MAPPING_FILE fields.eventType.path: give at least one path",
        "MAPPING_FILE fields.sentAt.unit: is required",
    ]
    assert problems(tmp_path, {"trackingId": "t"}) == ["MAPPING_FILE fields: is required"]
    assert problems(tmp_path, with_fields(itemId={"path": "sku", "const": "x"})) == [
        "MAPPING_FILE fields.itemId: give either path or const"
    ]


@pytest.mark.parametrize(
    ("sent_at", "message"),
    [
        (
            {"path": "ts_text", "unit": "logical"},
            "'ts_text' is Avro string; sentAt (logical) takes",
        ),
        ({"path": "ts_millis", "unit": "iso8601"}, "'ts_millis' is Avro long; sentAt (iso8601)"),
        ({"path": "ts_logical", "unit": "micros"}, "is Avro timestamp-micros; sentAt (micros)"),
    ],
)
def test_a_unit_that_does_not_fit_the_type(
    tmp_path: Path, sent_at: dict[str, str], message: str
) -> None:
    [problem] = problems(tmp_path, with_fields(sentAt=sent_at))
    assert problem.startswith("MAPPING_FILE fields.sentAt.path: ") and message in problem


def test_fields_that_cannot_hold_what_putevents_takes(tmp_path: Path) -> None:
    document = with_fields(
        itemId="context",
        eventValue="session",
        impression="item_list",
        eventType={"const": 3},
    )
    assert sorted(p.split(": ", 1)[0] for p in problems(tmp_path, document)) == [
        "MAPPING_FILE fields.eventType.const",
        "MAPPING_FILE fields.eventValue.path",
        "MAPPING_FILE fields.impression.path",
        "MAPPING_FILE fields.itemId.path",
    ]
    [delimited_array] = problems(
        tmp_path, with_fields(impression={"path": "item_ids", "delimiter": ","})
    )
    assert "an array needs no delimiter" in delimited_array


def test_properties_keys_must_be_camel_case_unique_and_not_reserved(tmp_path: Path) -> None:
    named = {"num_ratings": "num_ratings", "userId": "userId", "url": "context.page.url"}
    assert problems(tmp_path, with_fields(properties={"fields": named})) == [
        "MAPPING_FILE fields.properties.fields.num_ratings: property keys are camelCase: "
        "use 'numRatings'",
        "MAPPING_FILE fields.properties.fields.userId: property key 'userId' is reserved by "
        "PutEvents",
    ]
    listed = ["num_ratings", "properties.numRatings", "context"]
    assert problems(tmp_path, with_fields(properties={"fields": listed, "from": "session"})) == [
        "MAPPING_FILE fields.properties.from: 'session' is Avro record; properties.from takes map",
        "MAPPING_FILE fields.properties.fields[2]: 'context' is Avro record; a property takes "
        "boolean, double, enum, float, int, long, string, uuid",
        "MAPPING_FILE fields.properties.fields[1]: property key 'numRatings' is also made by "
        "fields.properties.fields[0]",
    ]


def test_event_type_filters_must_agree(tmp_path: Path) -> None:
    event_type = {"path": "event", "include": ["a", "b"], "exclude": ["b"], "rename": {"c": "C"}}
    assert problems(tmp_path, with_fields(eventType=event_type)) == [
        "MAPPING_FILE fields.eventType.exclude: 'b' is also in include",
        "MAPPING_FILE fields.eventType.rename: 'c' is filtered out, so never renamed",
    ]


def test_environment_variables_are_substituted(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    document = {
        "trackingId": "${WEB_TRACKER}",
        "topics": {"${APP_TOPIC}": {"trackingId": "app-${APP_SUFFIX}"}},
        "fields": MINIMAL,
    }
    path.write_text(yaml.safe_dump(document))
    environ = {"WEB_TRACKER": "web", "APP_TOPIC": "app-clicks", "APP_SUFFIX": "2"}
    plan = load_plan(path, CLICK, environ)
    assert (plan.tracking_id, dict(plan.topic_tracking_ids)) == ("web", {"app-clicks": "app-2"})


def test_the_tracking_id_defaults_to_personalize_tracking_id(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump({"fields": MINIMAL}))
    assert load_plan(path, CLICK, {"PERSONALIZE_TRACKING_ID": "from-env"}).tracking_id == "from-env"
    assert problems(tmp_path, {"fields": MINIMAL}, environ={}) == [
        "MAPPING_FILE trackingId: environment variable PERSONALIZE_TRACKING_ID is not set"
    ]


def test_unset_or_malformed_references_and_bad_tracking_ids(tmp_path: Path) -> None:
    document = {"trackingId": "x" * 257, "topics": {"a": {"trackingId": "${NOPE}${ }"}},
                "fields": MINIMAL}  # fmt: skip
    assert problems(tmp_path, document) == [
        "MAPPING_FILE topics.a.trackingId: environment variable NOPE is not set",
        "MAPPING_FILE topics.a.trackingId: '${ }' is not a variable reference",
    ]
    document = {"trackingId": "x" * 257, "fields": MINIMAL}
    assert problems(tmp_path, document) == [
        "MAPPING_FILE trackingId: String should have at most 256 characters"
    ]


def test_values_never_appear_in_messages(tmp_path: Path) -> None:
    secret = "s3cr3t-tracking-id"
    document = {"trackingId": "${SECRET}", "topics": {"a": {"trackingId": ""}}, "fields": MINIMAL}
    assert secret not in "".join(problems(tmp_path, document, environ={"SECRET": secret}))


def test_files_that_are_not_mappings(tmp_path: Path) -> None:
    [missing] = problems_of_path(tmp_path / "absent.yaml")
    assert missing.startswith("MAPPING_FILE: cannot read ")
    assert problems(tmp_path, "fields: [") == [
        f"MAPPING_FILE: {tmp_path / 'mapping.yaml'} is not valid YAML: expected the node "
        "content, but found '<stream end>' at line 1, column 10"
    ]
    assert problems(tmp_path, "- a list")[0].endswith(
        "must hold a mapping (trackingId, topics, fields)"
    )


def problems_of_path(path: Path) -> list[str]:
    with pytest.raises(MappingError) as raised:
        load_plan(path, CLICK, ENV)
    return raised.value.problems


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("num_ratings", "numRatings"),
        ("NUMBER_OF_RATINGS", "numberOfRatings"),
        ("se_category", "seCategory"),
        ("URL", "url"),
        ("pageURL", "pageURL"),
        ("Price", "price"),
        ("product-id", "productId"),
    ],
)
def test_camel_case(name: str, key: str) -> None:
    assert camel_case(name) == key


@given(st.from_regex(r"[A-Za-z][A-Za-z0-9_\-]{0,30}", fullmatch=True))
def test_camel_case_keys_are_alphanumeric_and_stable(name: str) -> None:
    key = camel_case(name)
    assert key.isalnum() and key[0].isalpha() and not key[0].isupper()
    assert camel_case(key) == key


def test_a_misspelt_key_does_not_hide_the_other_problems_of_the_file(tmp_path: Path) -> None:
    document = with_fields(sessionId="anonymousID", itemID="sku", eventValue={"path": 5})
    found = problems(tmp_path, document)
    assert any("unknown key 'itemID' (did you mean 'itemId'?)" in p for p in found)
    assert any("fields.eventValue.path" in p for p in found)  # an entry of the wrong shape
    assert any("'anonymousID' is not a field of record Click" in p for p in found)  # and the rest
