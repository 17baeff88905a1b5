{{/* Names, labels and the image: what every template shares. */}}

{{- define "batch-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; at most 45 characters, so that with the longest suffix
(-processor-metrics) every name stays a 63-character DNS label. */}}
{{- define "batch-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "batch-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "batch-gateway.labels" -}}
helm.sh/chart: {{ include "batch-gateway.chart" . }}
{{ include "batch-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: batch-gateway
{{- end }}

{{- define "batch-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "batch-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* A component's labels and selector; called with (dict "root" $ "component" "processor"). */}}
{{- define "batch-gateway.componentLabels" -}}
{{ include "batch-gateway.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "batch-gateway.componentSelectorLabels" -}}
{{ include "batch-gateway.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "batch-gateway.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end -}}
{{- end }}

{{- define "batch-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "batch-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret and key holding BATCH_GATEWAY_SECRETS_KEY. */}}
{{- define "batch-gateway.secretsKeySecret" -}}
{{- .Values.secretsKey.existingSecret | default (printf "%s-encryption" (include "batch-gateway.fullname" .)) }}
{{- end }}

{{- define "batch-gateway.secretsKeyKey" -}}
{{- if .Values.secretsKey.existingSecret }}
{{- .Values.secretsKey.existingSecretKey }}
{{- else }}
{{- "secrets-key" }}
{{- end }}
{{- end }}

{{/* The port a component listens on: its config.port. */}}
{{- define "batch-gateway.port" -}}
{{- (index .root.Values .component).config.port }}
{{- end }}

{{/* The components that open file storage (the projector reads the log's archive there). */}}
{{- define "batch-gateway.storageComponents" -}}
apiserver projector processor gc
{{- end }}

{{/* How long the apiserver lets requests in flight finish after SIGTERM: uvicorn's
timeout_graceful_shutdown in gateway/component.py. Its grace period must cover this plus the
preStop sleep, or the kubelet kills it mid-drain. */}}
{{- define "batch-gateway.apiserverShutdownSeconds" -}}
30
{{- end }}
