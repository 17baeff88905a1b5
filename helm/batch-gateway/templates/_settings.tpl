{{/*
Each component's settings file, in the project's own format: the snake_case keys of
core/settings.py and storage/config.py, loaded with BATCH_GATEWAY_CONFIG. The chart's values
are camelCase; a key converts by snakecase (maxConcurrentJobs -> max_concurrent_jobs) unless
llm-d's chart named it differently (batchAPI -> batches, inputHeaders.tenant -> tenant_header,
tlsInsecureSkipVerify -> not tls_verify, ...), which is spelled out below. A setting left out
of the values keeps the code's default. No secret is ever written here: those reach the
containers as environment variables from Secrets (see _environment.tpl).
*/}}

{{/* A mapping with every key snake_cased, recursively (empty mappings left out); returns YAML. */}}
{{- define "batch-gateway.snakeKeys" -}}
{{- $out := dict -}}
{{- range $key, $value := . -}}
{{- if kindIs "map" $value -}}
{{- if $value -}}
{{- $_ := set $out (snakecase $key) (include "batch-gateway.snakeKeys" $value | fromYaml) -}}
{{- end -}}
{{- else -}}
{{- $_ := set $out (snakecase $key) $value -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end }}

{{/* What every component shares: where the stack lives, and the component's own port. */}}
{{- define "batch-gateway.commonSettings" -}}
{{- $global := .root.Values.global -}}
{{- $config := (index .root.Values .component).config -}}
{{- $settings := dict "host" "0.0.0.0" "port" (int $config.port) "log_level" $config.logLevel -}}
{{- $_ := set $settings "key_prefix" $global.keyPrefix -}}
{{- $_ := set $settings "postgres_schema" $global.postgresSchema -}}
{{- if hasKey $global "eventPartitions" -}}
{{- $_ := set $settings "event_partitions" (int $global.eventPartitions) -}}
{{- end -}}
{{- if hasKey $global "eventRetentionSeconds" -}}
{{- $_ := set $settings "event_retention_seconds" $global.eventRetentionSeconds -}}
{{- end -}}
{{- $_ := set $settings "storage" (include "batch-gateway.storageSettings" .root | fromYaml) -}}
{{- toYaml $settings -}}
{{- end }}

{{- define "batch-gateway.storageSettings" -}}
{{- $files := .Values.global.fileClient -}}
{{- if eq $files.type "s3" -}}
{{- $s3 := $files.s3 -}}
kind: s3
s3_endpoint: {{ required "global.fileClient.s3.endpoint is required when global.fileClient.type is s3" $s3.endpoint | quote }}
s3_bucket: {{ required "global.fileClient.s3.bucket is required when global.fileClient.type is s3" $s3.bucket | quote }}
s3_region: {{ $s3.region | quote }}
s3_access_key: {{ required "global.fileClient.s3.accessKeyId is required when global.fileClient.type is s3" $s3.accessKeyId | quote }}
s3_path_style: {{ $s3.usePathStyle }}
s3_create_bucket: {{ $s3.autoCreateBucket }}
{{- else -}}
kind: filesystem
fs_root: {{ $files.fs.basePath | quote }}
{{- end -}}
{{- end }}

{{/* An inference gateway: llm-d's TLS names, the rest snake_cased. */}}
{{- define "batch-gateway.gatewaySettings" -}}
{{- $gateway := include "batch-gateway.snakeKeys" (omit . "tlsInsecureSkipVerify" "tlsCaCertFile") | fromYaml -}}
{{- if hasKey . "tlsInsecureSkipVerify" -}}
{{- $_ := set $gateway "tls_verify" (not .tlsInsecureSkipVerify) -}}
{{- end -}}
{{- if hasKey . "tlsCaCertFile" -}}
{{- $_ := set $gateway "ca_file" .tlsCaCertFile -}}
{{- end -}}
{{- toYaml $gateway -}}
{{- end }}

{{- define "batch-gateway.settings.apiserver" -}}
{{- $config := .Values.apiserver.config -}}
{{- $settings := include "batch-gateway.commonSettings" (dict "root" . "component" "apiserver") | fromYaml -}}
{{- $rest := omit $config "port" "logLevel" "inputHeaders" "batchAPI" "fileAPI" -}}
{{- $settings = merge $settings (include "batch-gateway.snakeKeys" $rest | fromYaml) -}}
{{- with $config.inputHeaders -}}
{{- if .tenant -}}
{{- $_ := set $settings "tenant_header" .tenant -}}
{{- end -}}
{{- end -}}
{{- with $config.batchAPI -}}
{{- $_ := set $settings "batches" (include "batch-gateway.snakeKeys" . | fromYaml) -}}
{{- end -}}
{{- with $config.fileAPI -}}
{{- $files := include "batch-gateway.snakeKeys" (omit . "maxSizeBytes" "maxLineCount" "defaultExpirationSeconds") | fromYaml -}}
{{- if hasKey . "maxSizeBytes" }}{{ $_ := set $files "max_bytes" .maxSizeBytes }}{{ end -}}
{{- if hasKey . "maxLineCount" }}{{ $_ := set $files "max_batch_lines" .maxLineCount }}{{ end -}}
{{- if hasKey . "defaultExpirationSeconds" }}{{ $_ := set $files "batch_default_expiry_seconds" .defaultExpirationSeconds }}{{ end -}}
{{- $_ := set $settings "files" $files -}}
{{- end -}}
{{- toYaml $settings -}}
{{- end }}

{{- define "batch-gateway.settings.projector" -}}
{{- $settings := include "batch-gateway.commonSettings" (dict "root" . "component" "projector") | fromYaml -}}
{{- $rest := omit .Values.projector.config "port" "logLevel" -}}
{{- toYaml (merge $settings (include "batch-gateway.snakeKeys" $rest | fromYaml)) -}}
{{- end }}

{{- define "batch-gateway.settings.processor" -}}
{{- $config := .Values.processor.config -}}
{{- $settings := include "batch-gateway.commonSettings" (dict "root" . "component" "processor") | fromYaml -}}
{{- $rest := omit $config "port" "logLevel" "globalInferenceGateway" "modelGateways" "tenantWeights" "defaultOutputExpirationSeconds" -}}
{{- $settings = merge $settings (include "batch-gateway.snakeKeys" $rest | fromYaml) -}}
{{- with $config.globalInferenceGateway -}}
{{- $_ := set $settings "global_inference_gateway" (include "batch-gateway.gatewaySettings" . | fromYaml) -}}
{{- end -}}
{{- with $config.modelGateways -}}
{{- $models := dict -}}
{{- range $model, $gateway := . -}}
{{- $_ := set $models $model (include "batch-gateway.gatewaySettings" $gateway | fromYaml) -}}
{{- end -}}
{{- $_ := set $settings "model_gateways" $models -}}
{{- end -}}
{{- /* Tenant names are keys, not settings: they stay as written. */ -}}
{{- with $config.tenantWeights -}}
{{- $_ := set $settings "tenant_weights" . -}}
{{- end -}}
{{- if hasKey $config "defaultOutputExpirationSeconds" -}}
{{- $_ := set $settings "output_expiry_seconds" $config.defaultOutputExpirationSeconds -}}
{{- end -}}
{{- toYaml $settings -}}
{{- end }}

{{- define "batch-gateway.settings.gc" -}}
{{- $settings := include "batch-gateway.commonSettings" (dict "root" . "component" "gc") | fromYaml -}}
{{- $rest := omit .Values.gc.config "port" "logLevel" -}}
{{- $settings = merge $settings (include "batch-gateway.snakeKeys" $rest | fromYaml) -}}
{{- /* Output files the gc expires on the processors' behalf live as long as theirs. */ -}}
{{- if hasKey .Values.processor.config "defaultOutputExpirationSeconds" -}}
{{- $_ := set $settings "output_expiry_seconds" .Values.processor.config.defaultOutputExpirationSeconds -}}
{{- end -}}
{{- toYaml $settings -}}
{{- end }}
