"""Settings from the chart's values reaching the consumer: every config value in the environment,
secrets only in Secrets, TLS and Avro schema files mounted, and the IRSA role for AWS identity."""

from __future__ import annotations

import json
import re
from typing import Any

import fastavro
import pytest

from tests.deploy.chart_support import VALUE_SETS, _kind, helm_fails, helm_renders
from tests.deploy.support import (
    RELEASE,
    Rendered,
    decode_secret,
)

#: config.<key> → the environment variable it sets (README.md of the repository, "Configuration").
CONFIG_ENV = {
    "kafkaBootstrapServers": "KAFKA_BOOTSTRAP_SERVERS",
    "kafkaGroupId": "KAFKA_GROUP_ID",
    "sourceTopics": "SOURCE_TOPICS",
    "deadLetterTopic": "DEAD_LETTER_TOPIC",
    "personalizeTrackingId": "PERSONALIZE_TRACKING_ID",
    "avroSchemaFile": "AVRO_SCHEMA_FILE",
    "avroReaderSchemaFile": "AVRO_READER_SCHEMA_FILE",
    "mappingFile": "MAPPING_FILE",
    "schemaRegistryUrl": "SCHEMA_REGISTRY_URL",
    "kafkaAutoOffsetReset": "KAFKA_AUTO_OFFSET_RESET",
    "kafkaStartupTimeoutS": "KAFKA_STARTUP_TIMEOUT_S",
    "awsRegion": "AWS_REGION",
    "awsEndpointUrlPersonalizeEvents": "AWS_ENDPOINT_URL_PERSONALIZE_EVENTS",
    "batchLingerMs": "BATCH_LINGER_MS",
    "maxInFlightCalls": "MAX_IN_FLIGHT_CALLS",
    "maxCallsPerSecond": "MAX_CALLS_PER_SECOND",
    "putItemsCallsPerSecond": "PUT_ITEMS_CALLS_PER_SECOND",
    "putUsersCallsPerSecond": "PUT_USERS_CALLS_PER_SECOND",
    "putActionsCallsPerSecond": "PUT_ACTIONS_CALLS_PER_SECOND",
    "putActionInteractionsCallsPerSecond": "PUT_ACTION_INTERACTIONS_CALLS_PER_SECOND",
    "maxBufferedRecords": "MAX_BUFFERED_RECORDS",
    "commitIntervalMs": "COMMIT_INTERVAL_MS",
    "shutdownTimeoutS": "SHUTDOWN_TIMEOUT_S",
    "consumeBatchSize": "CONSUME_BATCH_SIZE",
    "maxPollIntervalMs": "MAX_POLL_INTERVAL_MS",
    "logLevel": "LOG_LEVEL",
    "metricsPort": "METRICS_PORT",
    "settingsFile": "SETTINGS_FILE",
}
KAFKA_SECURITY_ENV = {
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_LOCATION",
    "KAFKA_SSL_CERTIFICATE_LOCATION",
    "KAFKA_SSL_KEY_LOCATION",
    "KAFKA_MSK_IAM",
    "KAFKA_MSK_IAM_REGION",
}
SECRET_ENV = {"KAFKA_SASL_PASSWORD", "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"}


def _env_value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, str):
        return value.replace(" ", "") if "," in value else value
    return str(value)


def expected_env(values: dict[str, Any]) -> dict[str, str]:
    """The variables a value set must produce, computed independently of the templates."""
    config = values["config"]
    env = {
        CONFIG_ENV[key]: _env_value(value)
        for key, value in config.items()
        if value not in ("", None)
    }
    schemas = values["schemas"]
    if schemas["files"] or schemas["mapping"] or schemas["existingConfigMap"]:
        writers = [f for f in schemas["files"] if f != schemas["readerFile"]]
        mounted = {
            "AVRO_SCHEMA_FILE": schemas["file"] or (writers[0] if len(writers) == 1 else ""),
            "AVRO_READER_SCHEMA_FILE": schemas["readerFile"],
            "MAPPING_FILE": schemas["mappingFile"]
            or ("mapping.yaml" if schemas["mapping"] else ""),
        }
        env.update({k: f"{schemas['mountPath']}/{f}" for k, f in mounted.items() if f})
    kafka = values["kafka"]
    msk = kafka["mskIam"]["enabled"]
    env["KAFKA_MSK_IAM"] = "true" if msk else "false"
    if msk and kafka["mskIam"]["region"]:
        env["KAFKA_MSK_IAM_REGION"] = kafka["mskIam"]["region"]
    protocol = kafka["securityProtocol"] or ("SASL_SSL" if msk else "PLAINTEXT")
    env["KAFKA_SECURITY_PROTOCOL"] = protocol
    if protocol.startswith("SASL_"):
        env["KAFKA_SASL_MECHANISM"] = kafka["sasl"]["mechanism"] or "OAUTHBEARER"
    if kafka["sasl"]["username"]:
        env["KAFKA_SASL_USERNAME"] = kafka["sasl"]["username"]
    if kafka["sasl"]["password"]:
        env["KAFKA_SASL_PASSWORD"] = kafka["sasl"]["password"]
    tls = kafka["tls"]
    if tls["existingSecret"] and tls["caKey"]:
        env["KAFKA_SSL_CA_LOCATION"] = f"{tls['mountPath']}/{tls['caKey']}"
    if tls["existingSecret"] and tls["certKey"]:
        env["KAFKA_SSL_CERTIFICATE_LOCATION"] = f"{tls['mountPath']}/{tls['certKey']}"
        env["KAFKA_SSL_KEY_LOCATION"] = f"{tls['mountPath']}/{tls['keyKey']}"
    if values["schemaRegistry"]["basicAuth"]["userInfo"]:
        env["SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"] = values["schemaRegistry"]["basicAuth"][
            "userInfo"
        ]
    env.update({k: str(v) for k, v in values["secretEnv"].items()})
    env.update({e["name"]: e["value"] for e in values["extraEnv"] if "value" in e})
    return env


# ---------------------------------------------------------------------------------- settings


@pytest.mark.parametrize("name", VALUE_SETS)
def test_env_carries_every_setting_from_values(
    rendered_sets: dict[str, Rendered], name: str
) -> None:
    rendered = rendered_sets[name]
    env = rendered.effective_env()
    expected = expected_env(rendered.values)
    if rendered.values["existingSecret"]:
        # secret settings come from the user's Secret, which the chart only references
        secret_refs = [
            s["secretRef"]["name"] for s in rendered.container["envFrom"] if "secretRef" in s
        ]
        assert secret_refs == [rendered.values["existingSecret"]]
    mismatched = {k: (env.get(k), v) for k, v in expected.items() if env.get(k) != v}
    assert not mismatched, f"{name}: (rendered, expected) {mismatched}"
    unexpected = set(env) - set(expected)
    assert not unexpected, f"{name}: variables nobody asked for: {unexpected}"


def test_value_sets_cover_every_setting(rendered_sets: dict[str, Rendered]) -> None:
    seen: set[str] = set()
    for name in VALUE_SETS:
        seen |= set(rendered_sets[name].effective_env())
    assert set(CONFIG_ENV.values()) | KAFKA_SECURITY_ENV <= seen
    assert set(CONFIG_ENV) == set(rendered_sets["required"].values["config"])


def test_numbers_render_without_exponents(rendered_sets: dict[str, Rendered]) -> None:
    env = rendered_sets["tls-scram"].effective_env()
    assert env["MAX_POLL_INTERVAL_MS"] == "86400000"
    assert rendered_sets["keda"].effective_env()["MAX_CALLS_PER_SECOND"] == "250.5"


def test_secret_values_only_in_the_secret(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["tls-scram"]
    secrets = {
        rendered.values["kafka"]["sasl"]["password"],
        rendered.values["schemaRegistry"]["basicAuth"]["userInfo"],
        *rendered.values["secretEnv"].values(),
    }
    secret = rendered.one("Secret")
    assert secrets <= set(decode_secret(secret).values())
    assert set(decode_secret(secret)) == SECRET_ENV | {"KAFKA_SSL_KEY_PASSWORD"}
    assert "stringData" not in secret  # base64 only: no clear text in the rendered release
    for manifest in rendered.manifests:
        text = json.dumps(manifest)
        for value in secrets:
            assert value not in text, f"{manifest['kind']} holds a secret in clear"
    configmap = rendered.named("ConfigMap", f"{RELEASE}-personalize-consumer")
    assert configmap is not None
    assert not SECRET_ENV & set(configmap["data"])
    assert not {"KAFKA_SSL_KEY_PASSWORD"} & set(configmap["data"])


def test_existing_secret_replaces_the_chart_secret(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["msk-iam"]
    assert rendered.maybe("Secret") is None
    assert {"secretRef": {"name": "personalize-consumer-managed"}} in rendered.container["envFrom"]
    assert (
        "checksum/secret"
        not in rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    )


def test_no_secret_without_secret_values(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["required"]
    assert rendered.maybe("Secret") is None
    assert all("secretRef" not in s for s in rendered.container["envFrom"])


def test_config_change_rolls_the_pods(helm: str, rendered_sets: dict[str, Rendered]) -> None:
    def checksum(manifests: list[Any]) -> str:
        meta = _kind(manifests, "Deployment")["spec"]["template"]["metadata"]
        value: str = meta["annotations"]["checksum/config"]
        return value

    before = checksum(rendered_sets["required"].manifests)
    after = checksum(helm_renders(helm, "config.logLevel=DEBUG"))
    assert re.fullmatch("[0-9a-f]{64}", before)
    assert before != after


def test_tls_files_mounted_from_the_secret(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["tls-scram"]
    tls = rendered.values["kafka"]["tls"]
    volumes = {v["name"]: v for v in rendered.pod_spec["volumes"]}
    mounts = {m["mountPath"]: m for m in rendered.container["volumeMounts"]}
    mount = mounts[tls["mountPath"]]
    assert mount["readOnly"] is True
    (source,) = volumes[mount["name"]]["projected"]["sources"]
    assert source["secret"]["name"] == "kafka-client-tls"
    files = {item["path"] for item in source["secret"]["items"]}
    assert files == {"ca.crt", "tls.crt", "tls.key"}
    env = rendered.effective_env()
    for var in (
        "KAFKA_SSL_CA_LOCATION",
        "KAFKA_SSL_CERTIFICATE_LOCATION",
        "KAFKA_SSL_KEY_LOCATION",
    ):
        directory, _, file = env[var].rpartition("/")
        assert directory == tls["mountPath"] and file in files, var


def test_tls_ca_from_a_configmap(helm: str) -> None:
    manifests = helm_renders(
        helm,
        "kafka.securityProtocol=SSL",
        "kafka.tls.existingConfigMap=corp-ca-bundle",
        "kafka.tls.caKey=ca-bundle.pem",
    )
    pod = _kind(manifests, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "projected" in v]
    assert volume["projected"]["sources"] == [
        {
            "configMap": {
                "name": "corp-ca-bundle",
                "items": [{"key": "ca-bundle.pem", "path": "ca-bundle.pem"}],
            }
        }
    ]
    data = _kind(manifests, "ConfigMap")["data"]
    assert data["KAFKA_SSL_CA_LOCATION"] == "/etc/personalize-consumer/kafka-tls/ca-bundle.pem"
    assert "KAFKA_SSL_CERTIFICATE_LOCATION" not in data


def test_custom_avro_schema_mounted_from_configmap(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["keda"]
    schemas = rendered.named("ConfigMap", f"{RELEASE}-personalize-consumer-schemas")
    assert schemas is not None
    schema = json.loads(schemas["data"]["interaction.avsc"])
    fastavro.parse_schema(schema)  # a valid Avro schema, not just JSON
    assert schema["name"] == "Interaction"
    mount_path = rendered.values["schemas"]["mountPath"]
    mounts = {m["name"]: m for m in rendered.container["volumeMounts"]}
    volumes = {v["name"]: v for v in rendered.pod_spec["volumes"]}
    (name,) = [n for n, m in mounts.items() if m["mountPath"] == mount_path]
    assert volumes[name]["configMap"]["name"] == schemas["metadata"]["name"]
    assert rendered.effective_env()["AVRO_SCHEMA_FILE"] == f"{mount_path}/interaction.avsc"


# ------------------------------------------------------------------------------ AWS identity


def test_irsa_annotation_on_the_pods_service_account(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["msk-iam"]
    account = rendered.one("ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == (
        "arn:aws:iam::123456789012:role/personalize-consumer"
    )
    assert rendered.pod_spec["serviceAccountName"] == account["metadata"]["name"]
    plain = rendered_sets["required"].one("ServiceAccount")
    assert "annotations" not in plain["metadata"]


def test_irsa_needs_a_created_service_account(helm: str) -> None:
    error = helm_fails(
        helm,
        "serviceAccount.create=false",
        "serviceAccount.irsaRoleArn=arn:aws:iam::123456789012:role/x",
    )
    assert "serviceAccount.irsaRoleArn needs serviceAccount.create=true" in error
