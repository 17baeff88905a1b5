{{/*
A component's environment: what the chart sets (below), with the user's extraEnv merged in. An
extraEnv entry named like one of the chart's replaces it in place (so a later $(VAR) reference
still sees it defined first); the others follow; of several extraEnv entries of one name the
last wins. Two entries of one name would be rejected by server-side apply.
Called with (dict "root" $ "component" "processor").
*/}}
{{- define "batch-gateway.environment" -}}
{{- $extra := (index .root.Values .component).extraEnv | default list -}}
{{- $overrides := dict -}}
{{- range $extra }}{{ $_ := set $overrides .name . }}{{ end -}}
{{- $environment := list -}}
{{- range (include "batch-gateway.chartEnvironment" . | fromYamlArray) -}}
{{- $environment = append $environment (get $overrides .name | default .) -}}
{{- $_ := unset $overrides .name -}}
{{- end -}}
{{- range $extra -}}
{{- if hasKey $overrides .name -}}
{{- $environment = append $environment (get $overrides .name) -}}
{{- $_ := unset $overrides .name -}}
{{- end -}}
{{- end -}}
{{- toYaml $environment -}}
{{- end }}

{{/* The settings file, the secrets (from Secrets, never the ConfigMap) and OpenTelemetry. */}}
{{- define "batch-gateway.chartEnvironment" -}}
{{- $root := .root -}}
{{- $component := .component -}}
{{- $values := index $root.Values $component -}}
{{- $secretName := $root.Values.global.secretName -}}
- name: BATCH_GATEWAY_CONFIG
  value: /etc/batch-gateway/{{ $component }}.yaml
- name: BATCH_GATEWAY_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: redis-url
- name: BATCH_GATEWAY_POSTGRES_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: postgresql-url
{{- if has $component (splitList " " (include "batch-gateway.storageComponents" $root)) }}
{{- if ne $component "projector" }}
- name: BATCH_GATEWAY_SECRETS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "batch-gateway.secretsKeySecret" $root }}
      key: {{ include "batch-gateway.secretsKeyKey" $root }}
{{- end }}
{{- if eq $root.Values.global.fileClient.type "s3" }}
- name: BATCH_GATEWAY_STORAGE_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: s3-secret-access-key
{{- end }}
{{- end }}
{{- if and (eq $component "apiserver") $values.apiKeysSecretKey }}
- name: BATCH_GATEWAY_API_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ $values.apiKeysSecretKey }}
{{- end }}
{{- if eq $component "processor" }}
{{- with $values.inferenceApiKeySecretKey }}
- name: BATCH_GATEWAY_GLOBAL_INFERENCE_GATEWAY_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ . }}
      optional: true
{{- end }}
{{- with $values.webhookSecretKey }}
- name: BATCH_GATEWAY_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ . }}
      optional: true
{{- end }}
{{- end }}
{{- with $root.Values.global.otel }}
{{- if .endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: http/protobuf
- name: OTEL_SERVICE_NAME
  value: batch-gateway-{{ $component }}
- name: OTEL_TRACES_SAMPLER
  value: {{ .sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .samplerArg | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- $attributes := printf "k8s.namespace.name=%s,k8s.pod.name=$(POD_NAME)" $root.Release.Namespace }}
{{- if .resourceAttributes }}
{{- $attributes = printf "%s,%s" .resourceAttributes $attributes }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ $attributes | quote }}
{{- end }}
{{- end }}
{{- end }}
