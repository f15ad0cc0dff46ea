{{/* Object name prefix: the release name, plus the chart name unless the release name holds it. */}}
{{- define "gatehouse.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "gatehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the operator pods; never change them after a release exists. */}}
{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "gatehouse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gatehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: gatehouse
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "gatehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-operator" (include "gatehouse.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gatehouse.webhookServiceName" -}}
{{- printf "%s-webhook" (include "gatehouse.fullname" .) -}}
{{- end -}}

{{- define "gatehouse.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "gatehouse.fullname" .) -}}
{{- end -}}

{{/* Cluster-scoped: the release namespace is part of the name, so two releases never share one. */}}
{{- define "gatehouse.webhookConfigName" -}}
{{- printf "%s-%s" (include "gatehouse.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gatehouse.clusterRoleName" -}}
{{- printf "%s-%s-operator" (include "gatehouse.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gatehouse.certificateName" -}}
{{- printf "%s-webhook" (include "gatehouse.fullname" .) -}}
{{- end -}}

{{/* repository:tag, or repository@digest when a digest is pinned. */}}
{{- define "gatehouse.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .appVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The audit collector (collector.yaml): its objects' name, labels and the URL sidecars ship to. */}}
{{- define "gatehouse.collectorName" -}}
{{- printf "%s-collector" (include "gatehouse.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gatehouse.collectorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: collector
{{- end -}}

{{- define "gatehouse.collectorLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gatehouse.collectorSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: gatehouse
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Always https: sidecars send their pod's token and their audit records (docs/collector.md, "TLS"). */}}
{{- define "gatehouse.collectorUrl" -}}
{{- printf "https://%s.%s.svc:%v" (include "gatehouse.collectorName" .) .Release.Namespace .Values.collector.port -}}
{{- end -}}

{{/* The collector's serving certificate: written by the operator, or by cert-manager with webhook.certManager. */}}
{{- define "gatehouse.collectorSecretName" -}}
{{- printf "%s-collector-tls" (include "gatehouse.fullname" .) -}}
{{- end -}}
