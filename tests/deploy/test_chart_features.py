"""The chart's optional features and the settings they feed: every variable of the repository
README has a value; schemas and the mapping given as values (or a ConfigMap of yours) reach the
consumer; the Schema Registry's credentials come from a Secret; the startup probe outlasts the wait
for a broker; the dead-letter topic as a Strimzi KafkaTopic; the README's image and topic
commands."""

from __future__ import annotations

import itertools
import json
import re
import shlex
from pathlib import Path
from typing import Any

import fastavro
import pytest
import yaml

from tests.deploy.chart_support import (
    CI_DIR,
    VALUE_SETS,
    _kind,
    ci_values_files,
    helm_fails,
    helm_renders,
    render_ci,
)
from tests.deploy.support import CHART, RELEASE, REPO, Rendered

SCHEMAS_CONFIGMAP = f"{RELEASE}-personalize-consumer-schemas"


def _configuration_variables() -> set[str]:
    """The variables of the repository README's configuration table."""
    readme = (REPO / "README.md").read_text()
    table = readme.split("### Configuration", 1)[1].split("\n\n", 2)[1]
    names = set()
    for row in table.splitlines():
        first_cell = row.split("|")[1] if row.startswith("|") else ""
        names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    assert len(names) > 20, "the README's configuration table was not found"
    return names


def _env_names(manifests: list[Any]) -> set[str]:
    """Variables the chart gives the consumer: its ConfigMap and Secret keys, and its env."""
    names: set[str] = set()
    deployment = _kind(manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    sources = {
        (kind, source[ref]["name"])
        for source in container.get("envFrom", [])
        for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef"))
        if ref in source
    }
    for manifest in manifests:
        if (manifest["kind"], manifest["metadata"]["name"]) in sources:
            names |= set(manifest.get("data", {}))
    return names | {var["name"] for var in container.get("env", [])}


# ---------------------------------------------------------------------------------- settings


def test_every_readme_variable_has_a_value(helm: str, rendered_sets: dict[str, Rendered]) -> None:
    """The repository README says the chart sets every variable of its table: some value does."""
    given: set[str] = set()
    for name in VALUE_SETS:
        given |= _env_names(rendered_sets[name].manifests)
    for path in ci_values_files():
        given |= _env_names(render_ci(helm, path))
    missing = _configuration_variables() - given
    assert not missing, f"README variables no chart value sets: {sorted(missing)}"


def test_kafka_startup_timeout_and_the_startup_probe(helm: str) -> None:
    (default,) = [m for m in helm_renders(helm) if m["kind"] == "ConfigMap"]
    assert default["data"]["KAFKA_STARTUP_TIMEOUT_S"] == "60"
    manifests = helm_renders(helm, "config.kafkaStartupTimeoutS=300")
    assert _kind(manifests, "ConfigMap")["data"]["KAFKA_STARTUP_TIMEOUT_S"] == "300"
    container = _kind(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["startupProbe"]["failureThreshold"] == 165  # (300 + 30) / 2
    explicit = helm_renders(helm, "startupProbe.failureThreshold=100")
    container = _kind(explicit, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["startupProbe"]["failureThreshold"] == 100


@pytest.mark.parametrize("name", VALUE_SETS)
def test_startup_probe_outlasts_the_wait_for_a_broker(
    rendered_sets: dict[str, Rendered], name: str
) -> None:
    """/healthz answers only after start-up: the probe must not kill a consumer still waiting."""
    rendered = rendered_sets[name]
    probe = rendered.container["startupProbe"]
    timeout = float(rendered.effective_env()["KAFKA_STARTUP_TIMEOUT_S"])
    assert probe["periodSeconds"] * probe["failureThreshold"] >= timeout + 30


def test_msk_iam_region_reaches_the_consumer(rendered_sets: dict[str, Rendered]) -> None:
    env = rendered_sets["msk-iam"].effective_env()
    assert env["KAFKA_MSK_IAM_REGION"] == "eu-central-1"
    assert env["AWS_REGION"] == "eu-west-1"
    assert "KAFKA_MSK_IAM_REGION" not in rendered_sets["keda"].effective_env()


# ------------------------------------------------------------------------ schemas and mapping


def _features(helm: str, *sets: str) -> list[Any]:
    return render_ci(helm, CI_DIR / "features-values.yaml", *sets)


def _named(manifests: list[Any], kind: str, name: str) -> dict[str, Any]:
    (found,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    result: dict[str, Any] = found
    return result


def test_mapping_and_reader_schema_as_values(helm: str, tmp_path: Path) -> None:
    """The files land in the mounted ConfigMap, the variables point at them, and the consumer's
    own loader accepts the mapping against the reader schema."""
    from consumer.mapping import load_mapping

    manifests = _features(helm)
    files = _named(manifests, "ConfigMap", SCHEMAS_CONFIGMAP)["data"]
    assert set(files) == {"track.avsc", "mapping.yaml"}
    reader = json.loads(files["track.avsc"])
    fastavro.parse_schema(reader)
    env = _named(manifests, "ConfigMap", f"{RELEASE}-personalize-consumer")
    mount = "/etc/personalize-consumer/schemas"
    assert env["data"]["AVRO_READER_SCHEMA_FILE"] == f"{mount}/track.avsc"
    assert env["data"]["MAPPING_FILE"] == f"{mount}/mapping.yaml"
    assert "AVRO_SCHEMA_FILE" not in env["data"]  # the registry has the writer schemas
    pod = _kind(manifests, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [
        v for v in pod["volumes"] if v.get("configMap", {}).get("name") == SCHEMAS_CONFIGMAP
    ]
    (mounted,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert mounted == {"name": volume["name"], "mountPath": mount, "readOnly": True}
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(files["mapping.yaml"])
    load_mapping(mapping, reader, {"PERSONALIZE_TRACKING_ID": "tracker"})


def test_mapping_given_as_yaml_renders_as_yaml(helm: str) -> None:
    mapping = {"fields": {"sessionId": "sessionId", "eventType": "eventType"}}
    manifests = helm_renders(
        helm,
        "schemas.mapping.fields.sessionId=sessionId",
        "schemas.mapping.fields.eventType=eventType",
    )
    files = _named(manifests, "ConfigMap", SCHEMAS_CONFIGMAP)["data"]
    assert yaml.safe_load(files["mapping.yaml"]) == mapping


def test_a_mapping_change_rolls_the_pods(helm: str) -> None:
    def checksum(*sets: str) -> str:
        meta = _kind(_features(helm, *sets), "Deployment")["spec"]["template"]["metadata"]
        value: str = meta["annotations"]["checksum/schemas"]
        return value

    assert checksum() != checksum("schemas.mapping=fields: {eventType: event}")


def test_your_configmap_of_schemas_and_mapping(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["registry"]
    assert rendered.named("ConfigMap", SCHEMAS_CONFIGMAP) is None
    volumes = {v["name"]: v for v in rendered.pod_spec["volumes"]}
    mounts = {m["mountPath"]: m for m in rendered.container["volumeMounts"]}
    assert volumes[mounts["/etc/segment"]["name"]]["configMap"] == {"name": "segment-schemas"}
    env = rendered.effective_env()
    assert env["AVRO_READER_SCHEMA_FILE"] == "/etc/segment/track-v3.avsc"
    assert env["MAPPING_FILE"] == "/etc/segment/segment.mapping.yaml"
    assert "AVRO_SCHEMA_FILE" not in env
    annotations = rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/schemas" not in annotations  # nothing the chart could hash


# ---------------------------------------------------------------------------- schema registry


def test_registry_credentials_from_your_secret(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["registry"]
    assert rendered.effective_env()["SCHEMA_REGISTRY_URL"] == "https://schema-registry.kafka:8081"
    (var,) = [e for e in rendered.container["env"] if e["name"].startswith("SCHEMA_REGISTRY")]
    assert var == {
        "name": "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
        "valueFrom": {"secretKeyRef": {"name": "schema-registry-credentials", "key": "user-info"}},
    }
    assert rendered.maybe("Secret") is None


def test_registry_credentials_in_the_chart_secret(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["tls-scram"]
    env = rendered.effective_env()
    assert env["SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"] == "personalize-consumer:r3g1stry-p4ss"
    configmap = rendered.named("ConfigMap", f"{RELEASE}-personalize-consumer")
    assert configmap is not None
    assert "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO" not in configmap["data"]
    assert "r3g1stry" not in json.dumps(configmap)


# ------------------------------------------------------------------------- refused values


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("config.mappingFile=/m.yaml", "schemas.mapping=fields: {}"), "config.mappingFile and"),
        (
            ("schemas.existingConfigMap=x", "schemas.mapping=fields: {}"),
            "schemas.existingConfigMap and schemas.files/schemas.mapping are both set",
        ),
        (
            ("schemas.files.a\\.avsc={}", "schemas.files.b\\.avsc={}"),
            "schemas.file is required when schemas.files holds more than one writer schema",
        ),
        (
            ("schemas.files.a\\.avsc={}", "schemas.readerFile=b.avsc"),
            "schemas file b.avsc is not one of schemas.files",
        ),
        (("schemas.readerFile=r.avsc",), "schemas.file/readerFile/mappingFile name files"),
        (("schemas.files.a\\.avsc=not json",), "schemas.files.a.avsc is not a JSON object"),
        (("schemas.mapping=fields: [a",), "schemas.mapping is not YAML"),
        (
            (
                "schemas.files.mapping\\.yaml={}",
                "schemas.file=mapping.yaml",
                "schemas.mapping=a: 1",
            ),
            "schemas.mappingFile mapping.yaml is also one of schemas.files",
        ),
        (
            ("schemaRegistry.basicAuth.userInfo=u:p",),
            "schemaRegistry.basicAuth needs config.schemaRegistryUrl",
        ),
        (
            (
                "config.schemaRegistryUrl=http://r:8081",
                "schemaRegistry.basicAuth.existingSecret=s",
            ),
            "schemaRegistry.basicAuth.existingSecret and existingSecretKey go together",
        ),
        (
            (
                "config.schemaRegistryUrl=http://r:8081",
                "schemaRegistry.basicAuth.userInfo=u:p",
                "existingSecret=mine",
            ),
            "schemaRegistry.basicAuth.userInfo and existingSecret are both set",
        ),
        (
            ("startupProbe.failureThreshold=30",),
            "startupProbe allows 60 s (periodSeconds x failureThreshold), not more than",
        ),
        (("deadLetterTopic.create=true",), "deadLetterTopic.create needs deadLetterTopic.strimzi"),
        (
            (
                "deadLetterTopic.create=true",
                "deadLetterTopic.strimziCluster=c",
                "deadLetterTopic.config.retention\\.ms=1",
            ),
            "deadLetterTopic.config.retention.ms: set deadLetterTopic.retentionMs instead",
        ),
        (("prometheusRule.enabled=true",), "prometheusRule.enabled without serviceMonitor"),
        (("kafka.mskIam.region=eu-west-2",), "kafka.mskIam.region is set but kafka.mskIam.enabled"),
    ],
)
def test_inconsistent_feature_values_are_refused(
    helm: str, sets: tuple[str, ...], message: str
) -> None:
    error = helm_fails(helm, *sets)
    assert "personalize-consumer: invalid values:" in error
    assert message in error


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("schemaRegistry.basicAuth.userInfo=no-colon", "/schemaRegistry/basicAuth/userInfo"),
        ("config.schemaRegistryUrl=registry:8081", "/config/schemaRegistryUrl"),
        ("config.kafkaStartupTimeoutS=0", "/config/kafkaStartupTimeoutS"),
        ("config.mappingFile=relative.yaml", "/config/mappingFile"),
        ("deadLetterTopic.replicas=0", "/deadLetterTopic/replicas"),
        ("prometheusRule.alerts.throttling.threshold=5", "/prometheusRule/alerts/throttling"),
        ("prometheusRule.alerts.stuck.for=15 minutes", "/prometheusRule/alerts/stuck/for"),
    ],
)
def test_schema_rejects_bad_feature_values(helm: str, setting: str, named: str) -> None:
    error = helm_fails(helm, setting)
    assert "values don't meet the specifications of the schema" in error
    assert named in error


# --------------------------------------------------------------------------- dead-letter topic


def test_dead_letter_topic_as_a_strimzi_kafka_topic(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["registry"]
    topic = rendered.one("KafkaTopic")
    meta = topic["metadata"]
    assert meta["name"] == "segment-tracks.dlq"  # Segment_Tracks.DLQ as a resource name
    assert meta["namespace"] == "kafka"
    assert meta["labels"]["strimzi.io/cluster"] == "my-cluster"
    assert "annotations" not in meta  # keep: false
    assert topic["spec"] == {
        "topicName": rendered.effective_env()["DEAD_LETTER_TOPIC"],
        "partitions": 6,
        "replicas": 3,
        "config": {
            "retention.ms": 2592000000,  # an integer, not 2.592e+09
            "max.message.bytes": 2097152,
            "min.insync.replicas": 2,
            "compression.type": "zstd",
        },
    }


def test_dead_letter_topic_kept_on_uninstall_by_default(helm: str) -> None:
    topic = _kind(_features(helm), "KafkaTopic")
    assert topic["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert topic["spec"]["config"]["retention.ms"] == 1209600000
    assert topic["spec"]["config"]["max.message.bytes"] == 1048588


def test_readme_creates_the_topic_as_the_chart_would() -> None:
    """The kafka-topics.sh command of the README has the KafkaTopic's defaults."""
    readme = (CHART / "README.md").read_text()
    block = readme.split("```bash\nkafka-topics.sh", 1)[1].split("```", 1)[0]
    words = shlex.split("kafka-topics.sh" + block.replace("\\\n", " "))
    assert "--create" in words
    options = dict(itertools.pairwise(words))
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["deadLetterTopic"]
    assert options["--partitions"] == str(defaults["partitions"])
    assert options["--replication-factor"] == str(defaults["replicas"])
    configs = {w for w in words if "=" in w}
    assert f"retention.ms={defaults['retentionMs']}" in configs
    assert f"max.message.bytes={defaults['maxMessageBytes']}" in configs


def test_readme_builds_and_pushes_the_image_the_chart_runs(helm: str) -> None:
    readme = (CHART / "README.md").read_text()
    (build,) = re.findall(r"^docker build -t (\S+) \.$", readme, flags=re.MULTILINE)
    (push,) = re.findall(r"^docker push (\S+)$", readme, flags=re.MULTILINE)
    assert build == push
    sets = re.findall(r"--set (image\.\w+=\S+)", readme)
    assert {s.split("=")[0] for s in sets} == {"image.registry", "image.repository", "image.tag"}
    deployment = _kind(helm_renders(helm, *sets), "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == build
    assert (REPO / "Dockerfile").is_file()


def test_a_catalog_topic_beside_the_clickstream(helm: str, tmp_path: Path) -> None:
    """ci/catalog-values.yaml: the item schema and the mapping land side by side in the mounted
    ConfigMap, and the consumer's loader routes the catalog topic to PutItems with them."""
    from consumer import DEFAULT_SCHEMA_FILE
    from consumer.decode import load_schema_file
    from consumer.mapping import load_file

    manifests = render_ci(helm, CI_DIR / "catalog-values.yaml")
    files = _named(manifests, "ConfigMap", SCHEMAS_CONFIGMAP)["data"]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = _named(manifests, "ConfigMap", f"{RELEASE}-personalize-consumer")["data"]
    assert env["SOURCE_TOPICS"] == "clickstream,catalog.items"
    assert env["PUT_ITEMS_CALLS_PER_SECOND"] == "5"
    container = _kind(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    extra = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    _plan, routes = load_file(
        tmp_path / "mapping.yaml",
        load_schema_file(DEFAULT_SCHEMA_FILE),
        {"PERSONALIZE_TRACKING_ID": "tracker", **extra},
        load_schema_file,
    )
    assert routes["catalog.items"].operation == "PutItems"
    assert routes["catalog.items"].target == extra["ITEMS_DATASET_ARN"]
