{{/* vim: set filetype=mustache: */}}

{{/*
Chart name, truncated to 63 characters (the DNS label limit of some Kubernetes name fields).
*/}}
{{- define "personalize-consumer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified app name: release-chart, or the release name alone when it already contains the
chart name; fullnameOverride replaces it.
*/}}
{{- define "personalize-consumer.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "personalize-consumer.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels: stable for the life of a release (a Deployment's selector is immutable).
*/}}
{{- define "personalize-consumer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "personalize-consumer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Common labels, on every object.
*/}}
{{- define "personalize-consumer.labels" -}}
helm.sh/chart: {{ include "personalize-consumer.chart" . }}
{{ include "personalize-consumer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | toString | replace "+" "_" | replace "@" "_" | replace ":" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: consumer
app.kubernetes.io/part-of: personalize-consumer
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Name of the ServiceAccount the pods run as.
*/}}
{{- define "personalize-consumer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "personalize-consumer.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Container image: repository:tag, or repository@digest when a digest is given.
*/}}
{{- define "personalize-consumer.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry -}}
{{- $repo = printf "%s/%s" .Values.image.registry .Values.image.repository -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- settings */}}

{{/*
SOURCE_TOPICS: a list is joined with commas; a string is taken as is.
*/}}
{{- define "personalize-consumer.sourceTopics" -}}
{{- $topics := .Values.config.sourceTopics -}}
{{- if kindIs "slice" $topics -}}
{{- join "," $topics -}}
{{- else -}}
{{- $topics | toString | nospace -}}
{{- end -}}
{{- end -}}

{{/*
KAFKA_SECURITY_PROTOCOL: the value given, else SASL_SSL with MSK IAM, else PLAINTEXT.
*/}}
{{- define "personalize-consumer.kafka.securityProtocol" -}}
{{- if .Values.kafka.securityProtocol -}}
{{- .Values.kafka.securityProtocol -}}
{{- else if .Values.kafka.mskIam.enabled -}}
SASL_SSL
{{- else -}}
PLAINTEXT
{{- end -}}
{{- end -}}

{{/*
KAFKA_SASL_MECHANISM: the value given, else OAUTHBEARER with MSK IAM, else none (empty).
*/}}
{{- define "personalize-consumer.kafka.saslMechanism" -}}
{{- if .Values.kafka.sasl.mechanism -}}
{{- .Values.kafka.sasl.mechanism -}}
{{- else if .Values.kafka.mskIam.enabled -}}
OAUTHBEARER
{{- end -}}
{{- end -}}

{{- define "personalize-consumer.kafka.usesSasl" -}}
{{- if hasPrefix "SASL_" (include "personalize-consumer.kafka.securityProtocol" .) -}}true{{- end -}}
{{- end -}}

{{- define "personalize-consumer.kafka.usesTls" -}}
{{- if has (include "personalize-consumer.kafka.securityProtocol" .) (list "SSL" "SASL_SSL") -}}true{{- end -}}
{{- end -}}

{{/*
"true" when the SASL mechanism takes a username and password (PLAIN, SCRAM-*).
*/}}
{{- define "personalize-consumer.kafka.usesPassword" -}}
{{- if and (include "personalize-consumer.kafka.usesSasl" .) (has (include "personalize-consumer.kafka.saslMechanism" .) (list "PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512")) -}}true{{- end -}}
{{- end -}}

{{/*
"true" when TLS files (CA, client certificate and key) are mounted into the pod.
*/}}
{{- define "personalize-consumer.kafka.tlsMounted" -}}
{{- $tls := .Values.kafka.tls -}}
{{- if or $tls.existingConfigMap $tls.existingSecret -}}true{{- end -}}
{{- end -}}

{{/*
Path of the CA bundle in the pod, or empty when none is mounted (the system store is used).
*/}}
{{- define "personalize-consumer.kafka.caLocation" -}}
{{- $tls := .Values.kafka.tls -}}
{{- if and $tls.caKey (or $tls.existingConfigMap $tls.existingSecret) -}}
{{- printf "%s/%s" (trimSuffix "/" $tls.mountPath) $tls.caKey -}}
{{- end -}}
{{- end -}}

{{/*
Schemas and mapping. One ConfigMap (the chart's `<fullname>-schemas` from schemas.files and
schemas.mapping, or schemas.existingConfigMap) is mounted at schemas.mountPath; the variables
point at its files when they were given there, else at config.* paths, else stay unset (the
image's defaults).
*/}}
{{- define "personalize-consumer.schemasConfigMapRendered" -}}
{{- if or .Values.schemas.files .Values.schemas.mapping -}}true{{- end -}}
{{- end -}}

{{- define "personalize-consumer.schemasMounted" -}}
{{- if or (include "personalize-consumer.schemasConfigMapRendered" .) .Values.schemas.existingConfigMap -}}true{{- end -}}
{{- end -}}

{{/*
The mounted file that is the writer schema: schemas.file, else the one file of schemas.files that
is not the reader schema, else none.
*/}}
{{- define "personalize-consumer.schemas.writerFile" -}}
{{- $s := .Values.schemas -}}
{{- if $s.file -}}
{{- $s.file -}}
{{- else -}}
{{- $candidates := without (keys ($s.files | default dict)) $s.readerFile -}}
{{- if eq (len $candidates) 1 -}}{{- first $candidates -}}{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The mounted file that is the mapping: schemas.mappingFile, else mapping.yaml when schemas.mapping
is given, else none.
*/}}
{{- define "personalize-consumer.schemas.mappingFile" -}}
{{- $s := .Values.schemas -}}
{{- if $s.mappingFile -}}
{{- $s.mappingFile -}}
{{- else if $s.mapping -}}
mapping.yaml
{{- end -}}
{{- end -}}

{{- define "personalize-consumer.schemas.path" -}}
{{- printf "%s/%s" (trimSuffix "/" .root.Values.schemas.mountPath) .file -}}
{{- end -}}

{{/*
AVRO_SCHEMA_FILE, AVRO_READER_SCHEMA_FILE and MAPPING_FILE: the mounted file, else config.*, else
empty (unset: the image's shipped schema and identity mapping).
*/}}
{{- define "personalize-consumer.avroSchemaFile" -}}
{{- $file := "" -}}
{{- if include "personalize-consumer.schemasMounted" . -}}
{{- $file = include "personalize-consumer.schemas.writerFile" . -}}
{{- end -}}
{{- if $file -}}
{{- include "personalize-consumer.schemas.path" (dict "root" . "file" $file) -}}
{{- else -}}
{{- .Values.config.avroSchemaFile -}}
{{- end -}}
{{- end -}}

{{- define "personalize-consumer.avroReaderSchemaFile" -}}
{{- if and (include "personalize-consumer.schemasMounted" .) .Values.schemas.readerFile -}}
{{- include "personalize-consumer.schemas.path" (dict "root" . "file" .Values.schemas.readerFile) -}}
{{- else -}}
{{- .Values.config.avroReaderSchemaFile -}}
{{- end -}}
{{- end -}}

{{- define "personalize-consumer.mappingFile" -}}
{{- $file := "" -}}
{{- if include "personalize-consumer.schemasMounted" . -}}
{{- $file = include "personalize-consumer.schemas.mappingFile" . -}}
{{- end -}}
{{- if $file -}}
{{- include "personalize-consumer.schemas.path" (dict "root" . "file" $file) -}}
{{- else -}}
{{- .Values.config.mappingFile -}}
{{- end -}}
{{- end -}}

{{/*
schemas.mapping as the file's text: a string as given, a map as YAML.
*/}}
{{- define "personalize-consumer.schemas.mappingText" -}}
{{- $m := .Values.schemas.mapping -}}
{{- if kindIs "string" $m -}}
{{- $m | trim -}}
{{- else -}}
{{- toYaml $m | trim -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- secrets */}}

{{/*
"true" when the chart renders its own Secret: secret values are given and no existingSecret.
*/}}
{{- define "personalize-consumer.createSecret" -}}
{{- if and (not .Values.existingSecret) (or .Values.kafka.sasl.password .Values.schemaRegistry.basicAuth.userInfo .Values.secretEnv) -}}true{{- end -}}
{{- end -}}

{{/*
Name of the Secret the pods read secret settings from (the chart's or existingSecret), or empty.
*/}}
{{- define "personalize-consumer.secretName" -}}
{{- if .Values.existingSecret -}}
{{- tpl .Values.existingSecret . -}}
{{- else if include "personalize-consumer.createSecret" . -}}
{{- include "personalize-consumer.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- lifecycle */}}

{{/*
terminationGracePeriodSeconds: the value given, else the drain bound (SHUTDOWN_TIMEOUT_S, rounded
up) plus 15 s for closing the consumer (leaving the group) and the last commit.
*/}}
{{- define "personalize-consumer.terminationGracePeriodSeconds" -}}
{{- if not (kindIs "invalid" .Values.terminationGracePeriodSeconds) -}}
{{- .Values.terminationGracePeriodSeconds | int64 -}}
{{- else -}}
{{- add (.Values.config.shutdownTimeoutS | float64 | ceil | int64) 15 -}}
{{- end -}}
{{- end -}}

{{/*
The startup probe's failureThreshold: the value given, else enough periods to cover the wait for
a broker (KAFKA_STARTUP_TIMEOUT_S) plus 30 s for the rest of start-up. The metrics port, and so
/healthz, opens only once start-up is done; a shorter probe would kill the consumer before it
says which brokers it could not reach.
*/}}
{{- define "personalize-consumer.startupFailureThreshold" -}}
{{- $p := .Values.startupProbe -}}
{{- if not (kindIs "invalid" $p.failureThreshold) -}}
{{- $p.failureThreshold | int64 -}}
{{- else -}}
{{- $period := $p.periodSeconds | default 10 | float64 -}}
{{- divf (addf (.Values.config.kafkaStartupTimeoutS | float64) 30.0) $period | ceil | int64 -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- extras */}}

{{/*
PromQL label matchers of this release's metrics: prometheusRule.selector, else the namespace and
the job the ServiceMonitor gives them (the Service's name).
*/}}
{{- define "personalize-consumer.metricSelector" -}}
{{- if .Values.prometheusRule.selector -}}
{{- .Values.prometheusRule.selector -}}
{{- else -}}
{{- printf "namespace=%q,job=%q" .Release.Namespace (include "personalize-consumer.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
metadata.name of the dead-letter KafkaTopic: deadLetterTopic.resourceName, else the topic's name
made a valid resource name (lower case, `_` as `-`).
*/}}
{{- define "personalize-consumer.deadLetterTopic.resourceName" -}}
{{- if .Values.deadLetterTopic.resourceName -}}
{{- .Values.deadLetterTopic.resourceName -}}
{{- else -}}
{{- .Values.config.deadLetterTopic | lower | replace "_" "-" | trunc 253 | trimAll ".-" -}}
{{- end -}}
{{- end -}}

{{/*
Upper bound of replicas for the HPA and for KEDA: the value given, else the partition count (a
consumer beyond one per partition gets no partition and sits idle).
*/}}
{{- define "personalize-consumer.hpa.maxReplicas" -}}
{{- $a := .Values.autoscaling -}}
{{- if not (kindIs "invalid" $a.maxReplicas) -}}{{ $a.maxReplicas | int64 }}{{- else -}}{{ $a.partitionCount | default 0 | int64 }}{{- end -}}
{{- end -}}

{{- define "personalize-consumer.keda.maxReplicaCount" -}}
{{- $k := .Values.keda -}}
{{- if not (kindIs "invalid" $k.maxReplicaCount) -}}{{ $k.maxReplicaCount | int64 }}{{- else -}}{{ $k.partitionCount | default 0 | int64 }}{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- KEDA */}}

{{/*
The kafka trigger's `sasl` value for a PLAIN/SCRAM mechanism.
*/}}
{{- define "personalize-consumer.keda.saslMode" -}}
{{- $m := include "personalize-consumer.kafka.saslMechanism" . -}}
{{- if eq $m "PLAIN" -}}plaintext
{{- else if eq $m "SCRAM-SHA-256" -}}scram_sha256
{{- else if eq $m "SCRAM-SHA-512" -}}scram_sha512
{{- end -}}
{{- end -}}

{{/*
"true" when the chart renders a TriggerAuthentication for the kafka trigger: MSK IAM (pod
identity), a SASL password, or mounted TLS files, unless keda.authenticationRef names another one.
*/}}
{{- define "personalize-consumer.keda.createTriggerAuth" -}}
{{- if and .Values.keda.enabled (not .Values.keda.authenticationRef.name) -}}
{{- if or .Values.kafka.mskIam.enabled (include "personalize-consumer.kafka.usesPassword" .) (and (include "personalize-consumer.kafka.usesTls" .) (include "personalize-consumer.kafka.tlsMounted" .)) -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- checks */}}

{{/*
Every cross-field rule values.schema.json cannot express. All violations are reported at once.
*/}}
{{- define "personalize-consumer.validateValues" -}}
{{- $errors := list -}}
{{- $c := .Values.config -}}
{{- $k := .Values.kafka -}}
{{- $hpa := .Values.autoscaling -}}
{{- $keda := .Values.keda -}}
{{- $protocol := include "personalize-consumer.kafka.securityProtocol" . -}}
{{- $mechanism := include "personalize-consumer.kafka.saslMechanism" . -}}

{{- if and $hpa.enabled $keda.enabled -}}
{{- $errors = append $errors "autoscaling.enabled (HPA) and keda.enabled (KEDA ScaledObject) are mutually exclusive: both would scale the same Deployment; enable only one" -}}
{{- end -}}

{{- if $hpa.enabled -}}
{{- $max := include "personalize-consumer.hpa.maxReplicas" . | int64 -}}
{{- if not $hpa.partitionCount -}}
{{- $errors = append $errors "autoscaling.partitionCount is required with autoscaling.enabled: the number of partitions of the source topics (together) bounds useful replicas" -}}
{{- else if and (gt $max ($hpa.partitionCount | int64)) (not $hpa.allowMoreReplicasThanPartitions) -}}
{{- $errors = append $errors (printf "autoscaling.maxReplicas (%d) exceeds autoscaling.partitionCount (%d): replicas beyond one per partition get no partition and sit idle; lower it or set autoscaling.allowMoreReplicasThanPartitions=true" $max ($hpa.partitionCount | int64)) -}}
{{- end -}}
{{- if gt ($hpa.minReplicas | int64) $max -}}
{{- $errors = append $errors (printf "autoscaling.minReplicas (%d) is above the maximum (%d)" ($hpa.minReplicas | int64) $max) -}}
{{- end -}}
{{- end -}}

{{- if $keda.enabled -}}
{{- $max := include "personalize-consumer.keda.maxReplicaCount" . | int64 -}}
{{- if not $keda.partitionCount -}}
{{- $errors = append $errors "keda.partitionCount is required with keda.enabled: the number of partitions of the source topics (together) bounds useful replicas" -}}
{{- else if and (gt $max ($keda.partitionCount | int64)) (not $keda.allowMoreReplicasThanPartitions) -}}
{{- $errors = append $errors (printf "keda.maxReplicaCount (%d) exceeds keda.partitionCount (%d): replicas beyond one per partition get no partition and sit idle; lower it or set keda.allowMoreReplicasThanPartitions=true" $max ($keda.partitionCount | int64)) -}}
{{- end -}}
{{- if gt ($keda.minReplicaCount | int64) $max -}}
{{- $errors = append $errors (printf "keda.minReplicaCount (%d) is above the maximum (%d)" ($keda.minReplicaCount | int64) $max) -}}
{{- end -}}
{{- if and (eq $mechanism "OAUTHBEARER") (not $k.mskIam.enabled) (not $keda.authenticationRef.name) -}}
{{- $errors = append $errors "keda.enabled with SASL OAUTHBEARER other than MSK IAM: the chart cannot build the scaler's credentials; set keda.authenticationRef.name to a TriggerAuthentication of your own" -}}
{{- end -}}
{{- end -}}

{{- if and $keda.enabled $k.mskIam.enabled (not $keda.authenticationRef.name) (not $keda.podIdentity.roleArn) (eq $keda.podIdentity.identityOwner "workload") .Values.serviceAccount.create -}}
{{- if not (or .Values.serviceAccount.irsaRoleArn (hasKey .Values.serviceAccount.annotations "eks.amazonaws.com/role-arn")) -}}
{{- $errors = append $errors "keda.enabled with MSK IAM uses the workload's IRSA role (keda.podIdentity.identityOwner=workload), but the ServiceAccount has none: set serviceAccount.irsaRoleArn, or keda.podIdentity.roleArn" -}}
{{- end -}}
{{- end -}}

{{- if gt (mulf ($c.shutdownTimeoutS | float64) 2000.0) ($c.maxPollIntervalMs | float64) -}}
{{- $errors = append $errors (printf "config.shutdownTimeoutS (%v) must be at most half of config.maxPollIntervalMs (%d ms), as the consumer requires" $c.shutdownTimeoutS ($c.maxPollIntervalMs | int64)) -}}
{{- end -}}
{{- if not (kindIs "invalid" .Values.terminationGracePeriodSeconds) -}}
{{- if le (.Values.terminationGracePeriodSeconds | float64) ($c.shutdownTimeoutS | float64) -}}
{{- $errors = append $errors (printf "terminationGracePeriodSeconds (%d) must be above config.shutdownTimeoutS (%v), or Kubernetes kills the consumer while it drains; leave it null to compute it" (.Values.terminationGracePeriodSeconds | int64) $c.shutdownTimeoutS) -}}
{{- end -}}
{{- end -}}

{{- if $k.mskIam.enabled -}}
{{- if ne $protocol "SASL_SSL" -}}
{{- $errors = append $errors (printf "kafka.mskIam.enabled needs kafka.securityProtocol SASL_SSL (or empty), not %s" $protocol) -}}
{{- end -}}
{{- if ne $mechanism "OAUTHBEARER" -}}
{{- $errors = append $errors (printf "kafka.mskIam.enabled needs kafka.sasl.mechanism OAUTHBEARER (or empty), not %s" $mechanism) -}}
{{- end -}}
{{- end -}}
{{- if include "personalize-consumer.kafka.usesSasl" . -}}
{{- if not $mechanism -}}
{{- $errors = append $errors (printf "kafka.securityProtocol %s needs kafka.sasl.mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)" $protocol) -}}
{{- end -}}
{{- else if $k.sasl.mechanism -}}
{{- $errors = append $errors (printf "kafka.sasl.mechanism %s needs kafka.securityProtocol SASL_PLAINTEXT or SASL_SSL, not %s" $k.sasl.mechanism $protocol) -}}
{{- end -}}
{{- if include "personalize-consumer.kafka.usesPassword" . -}}
{{- if not $k.sasl.username -}}
{{- $errors = append $errors (printf "kafka.sasl.username is required with SASL %s" $mechanism) -}}
{{- end -}}
{{- if and (not $k.sasl.password) (not .Values.existingSecret) -}}
{{- $errors = append $errors (printf "SASL %s needs a password: set kafka.sasl.password, or existingSecret naming a Secret with the key KAFKA_SASL_PASSWORD" $mechanism) -}}
{{- end -}}
{{- end -}}
{{- if and $k.sasl.password .Values.existingSecret -}}
{{- $errors = append $errors "kafka.sasl.password and existingSecret are both set: put KAFKA_SASL_PASSWORD in the existing Secret and leave kafka.sasl.password empty" -}}
{{- end -}}
{{- if and .Values.secretEnv .Values.existingSecret -}}
{{- $errors = append $errors "secretEnv and existingSecret are both set: put those variables in the existing Secret instead" -}}
{{- end -}}

{{- if and (include "personalize-consumer.kafka.tlsMounted" .) (not (include "personalize-consumer.kafka.usesTls" .)) -}}
{{- $errors = append $errors (printf "kafka.tls files are mounted but kafka.securityProtocol is %s: use SSL or SASL_SSL" $protocol) -}}
{{- end -}}
{{- if ne (empty $k.tls.certKey) (empty $k.tls.keyKey) -}}
{{- $errors = append $errors "kafka.tls.certKey and kafka.tls.keyKey go together (client certificate and its key)" -}}
{{- end -}}
{{- if and $k.tls.existingConfigMap (not $k.tls.caKey) -}}
{{- $errors = append $errors "kafka.tls.existingConfigMap needs kafka.tls.caKey: the key of the CA bundle in it" -}}
{{- end -}}
{{- if and $k.tls.existingSecret (not $k.tls.certKey) (or (not $k.tls.caKey) $k.tls.existingConfigMap) -}}
{{- $errors = append $errors "kafka.tls.existingSecret mounts nothing: set kafka.tls.caKey (CA from the Secret) or kafka.tls.certKey/keyKey (client certificate)" -}}
{{- end -}}
{{- if and $k.tls.certKey (not $k.tls.existingSecret) -}}
{{- $errors = append $errors "kafka.tls.certKey/keyKey need kafka.tls.existingSecret: a private key belongs in a Secret" -}}
{{- end -}}

{{- if and .Values.serviceAccount.irsaRoleArn (not .Values.serviceAccount.create) -}}
{{- $errors = append $errors "serviceAccount.irsaRoleArn needs serviceAccount.create=true; with your own ServiceAccount, annotate it with eks.amazonaws.com/role-arn yourself" -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled (not .Values.service.enabled) -}}
{{- $errors = append $errors "serviceMonitor.enabled needs service.enabled: the ServiceMonitor scrapes through the Service" -}}
{{- end -}}

{{- $s := .Values.schemas -}}
{{- $files := $s.files | default dict -}}
{{- if include "personalize-consumer.schemasMounted" . -}}
{{- $writer := include "personalize-consumer.schemas.writerFile" . -}}
{{- $mapping := include "personalize-consumer.schemas.mappingFile" . -}}
{{- if and $writer $c.avroSchemaFile -}}
{{- $errors = append $errors (printf "config.avroSchemaFile and the mounted schema %s are both set: leave config.avroSchemaFile empty, or name no writer schema in schemas.*" $writer) -}}
{{- end -}}
{{- if and $s.readerFile $c.avroReaderSchemaFile -}}
{{- $errors = append $errors "config.avroReaderSchemaFile and schemas.readerFile are both set: use one" -}}
{{- end -}}
{{- if and $mapping $c.mappingFile -}}
{{- $errors = append $errors "config.mappingFile and schemas.mapping/schemas.mappingFile are both set: use one" -}}
{{- end -}}
{{- if and .Values.schemas.existingConfigMap (include "personalize-consumer.schemasConfigMapRendered" .) -}}
{{- $errors = append $errors "schemas.existingConfigMap and schemas.files/schemas.mapping are both set: use one" -}}
{{- end -}}
{{- if and (not $s.file) (gt (len (without (keys $files) $s.readerFile)) 1) -}}
{{- $errors = append $errors "schemas.file is required when schemas.files holds more than one writer schema: which file is AVRO_SCHEMA_FILE" -}}
{{- end -}}
{{- if and $s.existingConfigMap (not (or $s.file $s.readerFile $s.mappingFile)) -}}
{{- $errors = append $errors "schemas.existingConfigMap mounts nothing the consumer reads: name its files with schemas.file, schemas.readerFile and/or schemas.mappingFile" -}}
{{- end -}}
{{- if $files -}}
{{- range $name := list $s.file $s.readerFile -}}
{{- if and $name (not (hasKey $files $name)) -}}
{{- $errors = append $errors (printf "schemas file %s is not one of schemas.files" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $s.mapping (hasKey $files $mapping) -}}
{{- $errors = append $errors (printf "schemas.mappingFile %s is also one of schemas.files: name the mapping differently" $mapping) -}}
{{- end -}}
{{- if and $s.readerFile (eq $s.readerFile $writer) -}}
{{- $errors = append $errors (printf "schemas.readerFile and schemas.file are both %s: the reader schema is another file" $writer) -}}
{{- end -}}
{{- else if or $s.file $s.readerFile $s.mappingFile -}}
{{- $errors = append $errors "schemas.file/readerFile/mappingFile name files of a mounted ConfigMap: give schemas.files, schemas.mapping or schemas.existingConfigMap too (or use config.* paths)" -}}
{{- end -}}
{{- range $name, $schema := $files -}}
{{- if and (kindIs "string" $schema) (hasKey (fromJson $schema) "Error") -}}
{{- $errors = append $errors (printf "schemas.files.%s is not a JSON object: %s" $name (get (fromJson $schema) "Error")) -}}
{{- end -}}
{{- end -}}
{{- if and $s.mapping (kindIs "string" $s.mapping) (hasKey (fromYaml $s.mapping) "Error") -}}
{{- $errors = append $errors (printf "schemas.mapping is not YAML: %s" (get (fromYaml $s.mapping) "Error")) -}}
{{- end -}}

{{- $auth := .Values.schemaRegistry.basicAuth -}}
{{- if and (or $auth.userInfo $auth.existingSecret) (not $c.schemaRegistryUrl) -}}
{{- $errors = append $errors "schemaRegistry.basicAuth needs config.schemaRegistryUrl: the credentials are for the Schema Registry" -}}
{{- end -}}
{{- if and $auth.userInfo $auth.existingSecret -}}
{{- $errors = append $errors "schemaRegistry.basicAuth.userInfo and schemaRegistry.basicAuth.existingSecret are both set: use one" -}}
{{- end -}}
{{- if and $auth.userInfo .Values.existingSecret -}}
{{- $errors = append $errors "schemaRegistry.basicAuth.userInfo and existingSecret are both set: put SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO in the existing Secret, or use schemaRegistry.basicAuth.existingSecret" -}}
{{- end -}}
{{- if ne (empty $auth.existingSecret) (empty $auth.existingSecretKey) -}}
{{- $errors = append $errors "schemaRegistry.basicAuth.existingSecret and existingSecretKey go together: the Secret and the key of user:password in it" -}}
{{- end -}}
{{- if and $c.schemaRegistryUrl (hasKey .Values.secretEnv "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO") -}}
{{- if or $auth.userInfo $auth.existingSecret -}}
{{- $errors = append $errors "secretEnv.SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO and schemaRegistry.basicAuth are both set: use schemaRegistry.basicAuth" -}}
{{- end -}}
{{- end -}}

{{- $startup := .Values.startupProbe -}}
{{- if and $startup.enabled (not (kindIs "invalid" $startup.failureThreshold)) -}}
{{- $budget := mul ($startup.periodSeconds | default 10 | int64) ($startup.failureThreshold | int64) -}}
{{- if le ($budget | float64) ($c.kafkaStartupTimeoutS | float64) -}}
{{- $errors = append $errors (printf "startupProbe allows %d s (periodSeconds x failureThreshold), not more than config.kafkaStartupTimeoutS (%v): the probe would kill the consumer while it waits for a broker; leave startupProbe.failureThreshold null to compute it" $budget $c.kafkaStartupTimeoutS) -}}
{{- end -}}
{{- end -}}

{{- $dlt := .Values.deadLetterTopic -}}
{{- if $dlt.create -}}
{{- if not $dlt.strimziCluster -}}
{{- $errors = append $errors "deadLetterTopic.create needs deadLetterTopic.strimziCluster: the name of the Strimzi Kafka cluster (the strimzi.io/cluster label)" -}}
{{- end -}}
{{- range $key := list "retention.ms" "max.message.bytes" -}}
{{- if hasKey $dlt.config $key -}}
{{- $errors = append $errors (printf "deadLetterTopic.config.%s: set deadLetterTopic.%s instead" $key (ternary "retentionMs" "maxMessageBytes" (eq $key "retention.ms"))) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- if and .Values.prometheusRule.enabled (not .Values.prometheusRule.selector) (not .Values.serviceMonitor.enabled) -}}
{{- $errors = append $errors "prometheusRule.enabled without serviceMonitor.enabled: the alerts select the labels the ServiceMonitor gives; set prometheusRule.selector to the labels your scrape gives this release's metrics" -}}
{{- end -}}
{{- if and $k.mskIam.region (not $k.mskIam.enabled) -}}
{{- $errors = append $errors "kafka.mskIam.region is set but kafka.mskIam.enabled is not: it is the MSK cluster's region for IAM auth" -}}
{{- end -}}

{{- if $errors -}}
{{- fail (printf "\n\npersonalize-consumer: invalid values:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
