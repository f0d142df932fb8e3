{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "modelreg.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "modelreg.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "modelreg.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelreg.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelreg.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "modelreg.labels" -}}
helm.sh/chart: {{ include "modelreg.chart" . }}
{{ include "modelreg.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelreg
{{- end }}

{{- define "modelreg.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelreg.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "modelreg.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* A values scalar as the operator parses it: whole numbers without an exponent. */}}
{{- define "modelreg.scalar" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) }}
{{- int64 . }}
{{- else }}
{{- . }}
{{- end }}
{{- end }}

{{/*
The operator's rules on the modelreg kinds and the objects it writes, in one list
(shared by the ClusterRole and the per-namespace Roles). Keep in sync with the RBAC
table of docs/deploy.md; tests/integration/test_deploy.py asserts the exact set.
*/}}
{{- define "modelreg.operatorRules" -}}
- apiGroups: ["modelreg.io"]
  resources: ["registeredmodels", "performancesnapshots", "incidents", "metricsources"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["modelreg.io"]
  resources: ["incidents"]
  verbs: ["create", "delete"]
- apiGroups: ["modelreg.io"]
  resources: ["performancesnapshots"]
  verbs: ["create", "delete"]
- apiGroups: ["modelreg.io"]
  resources: ["registeredmodels/status", "performancesnapshots/status", "incidents/status", "metricsources/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "patch"]
- apiGroups: ["modelreg.io"]
  resources: ["incidentnotifiers"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["modelreg.io"]
  resources: ["incidentnotifiers/status"]
  verbs: ["get", "patch"]
# Serving targets (only the opted-in ones are ever written; see the README's serving section).
- apiGroups: ["argoproj.io"]
  resources: ["rollouts"]
  verbs: ["get", "patch"]
- apiGroups: ["serving.knative.dev"]
  resources: ["services"]
  verbs: ["get", "patch"]
- apiGroups: ["serving.kserve.io"]
  resources: ["inferenceservices"]
  verbs: ["get", "patch"]
- apiGroups: ["mlops.seldon.io"]
  resources: ["models"]
  verbs: ["get", "patch"]
{{- end }}

{{/* Sharding: the namespaces are watched to find the ones each shard's namespaceSelector matches. */}}
{{- define "modelreg.shardRules" -}}
{{- if .Values.shards }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- end }}

{{/*
Discovery rules (rbac.clusterDiscovery): read-only CustomResourceDefinitions (and, when watching
listed namespaces, Namespaces). The operator no longer needs them (Kopf scans nothing now); kept
for compatibility with existing installs (see docs/deploy.md).
*/}}
{{- define "modelreg.discoveryRules" -}}
{{- if .Values.rbac.clusterDiscovery }}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- if .Values.watchNamespaces }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- end }}
{{- end }}
