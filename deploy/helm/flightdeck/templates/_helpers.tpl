{{/* Chart name, possibly overridden. */}}
{{- define "flightdeck.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix: the release name, with the chart name unless it already holds it. */}}
{{- define "flightdeck.fullname" -}}
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

{{/* A name with a suffix, kept within 63 characters. */}}
{{- define "flightdeck.suffixed" -}}
{{- $base := include "flightdeck.fullname" .ctx | trunc (int (sub 62 (len .suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $base .suffix }}
{{- end }}

{{- define "flightdeck.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "flightdeck.labels" -}}
helm.sh/chart: {{ include "flightdeck.chart" . }}
{{ include "flightdeck.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flightdeck
{{- end }}

{{/* Labels selecting the pods; never change them on an installed release (selectors are immutable). */}}
{{- define "flightdeck.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flightdeck.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "flightdeck.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flightdeck.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "flightdeck.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Where the secret files are. */}}
{{- define "flightdeck.secretsDir" -}}
{{- if eq .Values.secrets.source "vault" }}/vault/secrets{{ else }}/etc/flightdeck/secrets{{ end }}
{{- end }}

{{/* TLS files come from their own Secret when tls.existingSecret is set. */}}
{{- define "flightdeck.tlsFromSecret" -}}
{{- if and .Values.tls.enabled .Values.tls.existingSecret }}true{{ end }}
{{- end }}

{{/*
The secret files this configuration needs, as YAML {files: [{name, file}]}:
`name` is the logical name (keys of secrets.keys, secrets.values and
vault.files), `file` the file name under the secrets directory.
*/}}
{{- define "flightdeck.secretFiles" -}}
{{- $files := list (dict "name" "ticketSecret" "file" "ticket-secret") }}
{{- if .Values.secrets.adminToken }}
{{- $files = append $files (dict "name" "adminToken" "file" "admin-token") }}
{{- end }}
{{- if eq .Values.trinoCredentials "password" }}
{{- $files = append $files (dict "name" "trinoPassword" "file" "trino-password") }}
{{- else if eq .Values.trinoCredentials "token" }}
{{- $files = append $files (dict "name" "trinoToken" "file" "trino-token") }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- $files = append $files (dict "name" "tlsCert" "file" "tls.crt") }}
{{- $files = append $files (dict "name" "tlsKey" "file" "tls.key") }}
{{- end }}
{{- if eq (toString .Values.config.auth.mode) "password" }}
{{- $files = append $files (dict "name" "users" "file" "users") }}
{{- end }}
{{- toYaml (dict "files" $files) }}
{{- end }}

{{/* Name of the Secret mounted for sources existingSecret and values. */}}
{{- define "flightdeck.secretName" -}}
{{- if eq .Values.secrets.source "values" }}
{{- include "flightdeck.suffixed" (dict "ctx" . "suffix" "dev-secrets") }}
{{- else }}
{{- .Values.secrets.existingSecret | default (include "flightdeck.suffixed" (dict "ctx" . "suffix" "secrets")) }}
{{- end }}
{{- end }}

{{/* terminationGracePeriodSeconds: preStop sleep, then the drain, then a margin to exit. */}}
{{- define "flightdeck.terminationGrace" -}}
{{- add (int .Values.preStopSleepSeconds) (int .Values.shutdownGraceSeconds) (int .Values.terminationGraceMarginSeconds) }}
{{- end }}

{{/* A TOML value: string, bool, number, or a list of them. */}}
{{- define "flightdeck.tomlValue" -}}
{{- $v := . }}
{{- if kindIs "string" $v }}
{{- toJson $v }}
{{- else if kindIs "bool" $v }}
{{- $v }}
{{- else if or (kindIs "float64" $v) (kindIs "int" $v) (kindIs "int64" $v) }}
{{- if eq (float64 $v) (float64 (int64 $v)) }}{{ int64 $v }}{{ else }}{{ $v }}{{ end }}
{{- else if kindIs "slice" $v }}
{{- $items := list }}
{{- range $v }}{{ $items = append $items (include "flightdeck.tomlValue" .) }}{{ end }}
{{- printf "[%s]" (join ", " $items) }}
{{- else }}
{{- fail (printf "config: cannot render %v as a TOML value" $v) }}
{{- end }}
{{- end }}

{{/*
A TOML table: {header, values, extra}. Scalars and lists of `values` and
`extra` (keys set by the chart) as `key = value`, skipping nulls and empty
strings; nested maps of `values` as sub-tables [header.key]. `header` may be
`[[datasets]]`-style (array) or a plain table name.
*/}}
{{- define "flightdeck.tomlTable" -}}
{{- $header := .header }}
{{- $values := dict }}
{{- range $k, $v := (.values | default dict) }}{{ $_ := set $values $k $v }}{{ end }}
{{- range $k, $v := (.extra | default dict) }}{{ $_ := set $values $k $v }}{{ end }}
{{- if .array }}{{ printf "[[%s]]" $header }}{{ else }}{{ printf "[%s]" $header }}{{ end }}
{{- range $k, $v := $values }}
{{- if and (not (kindIs "map" $v)) (not (kindIs "invalid" $v)) (not (and (kindIs "string" $v) (eq $v ""))) }}
{{ $k }} = {{ include "flightdeck.tomlValue" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := $values }}
{{- if kindIs "map" $v }}
{{ printf "\n%s" (include "flightdeck.tomlTable" (dict "header" (printf "%s.%s" $header $k) "values" $v)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Values that would put a secret or a chart-owned key into the ConfigMap. */}}
{{- define "flightdeck.validate" -}}
{{- $c := .Values.config }}
{{- range $section, $keys := dict "flight" (list "ticket_secret" "ticket_secret_file" "listen" "tls_cert" "tls_key" "shutdown_grace_secs") "trino" (list "password" "password_file" "token" "token_file") "auth" (list "users_file") "admin" (list "token" "token_file" "listen") }}
{{- $s := get $c $section | default dict }}
{{- range $keys }}
{{- if hasKey $s . }}
{{- fail (printf "config.%s.%s is set by the chart (secrets come from files, see `secrets`; listen from `ports`; shutdown_grace_secs from `shutdownGraceSeconds`; TLS from `tls`): remove it" $section .) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not (has .Values.secrets.source (list "existingSecret" "vault" "values")) }}
{{- fail "secrets.source must be existingSecret, vault or values" }}
{{- end }}
{{- if not (has .Values.trinoCredentials (list "none" "password" "token")) }}
{{- fail "trinoCredentials must be none, password or token" }}
{{- end }}
{{- if and (eq .Values.trinoCredentials "password") (not .Values.config.trino.user) }}
{{- fail "trinoCredentials: password needs config.trino.user" }}
{{- end }}
{{- if and (eq (toString .Values.config.auth.mode) "password") (not .Values.tls.enabled) (not .Values.config.auth.allow_insecure_password) }}
{{- fail "config.auth.mode: password sends passwords over the network: enable tls (or, knowingly, config.auth.allow_insecure_password)" }}
{{- end }}
{{- if eq .Values.secrets.source "values" }}
{{- range (include "flightdeck.secretFiles" . | fromYaml).files }}
{{- if not (get $.Values.secrets.values .name) }}
{{- fail (printf "secrets.source values: secrets.values.%s is needed by this configuration" .name) }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq .Values.snapshots.type "pvc" }}
{{- if and (not (has "ReadWriteMany" .Values.snapshots.pvc.accessModes)) (or (gt (int .Values.replicaCount) 1) (and .Values.autoscaling.enabled (gt (int .Values.autoscaling.maxReplicas) 1))) }}
{{- fail "snapshots.type pvc without ReadWriteMany holds one replica only: set replicaCount 1 and autoscaling off, or use ReadWriteMany, or emptyDir" }}
{{- end }}
{{- else if ne .Values.snapshots.type "emptyDir" }}
{{- fail "snapshots.type must be emptyDir or pvc" }}
{{- end }}
{{- end }}

{{/* Flightdeck's TOML configuration file. */}}
{{- define "flightdeck.configToml" -}}
{{- include "flightdeck.validate" . }}
{{- $dir := include "flightdeck.secretsDir" . }}
{{- $c := .Values.config }}
{{- $flight := dict
  "listen" (printf "0.0.0.0:%d" (int .Values.ports.flight))
  "shutdown_grace_secs" (int .Values.shutdownGraceSeconds)
  "ticket_secret_file" (printf "%s/ticket-secret" $dir) }}
{{- if .Values.tls.enabled }}
{{- $tlsDir := ternary "/etc/flightdeck/tls" $dir (eq (include "flightdeck.tlsFromSecret" .) "true") }}
{{- $_ := set $flight "tls_cert" (printf "%s/tls.crt" $tlsDir) }}
{{- $_ := set $flight "tls_key" (printf "%s/tls.key" $tlsDir) }}
{{- end }}
{{- $trino := dict }}
{{- if eq .Values.trinoCredentials "password" }}
{{- $_ := set $trino "password_file" (printf "%s/trino-password" $dir) }}
{{- else if eq .Values.trinoCredentials "token" }}
{{- $_ := set $trino "token_file" (printf "%s/trino-token" $dir) }}
{{- end }}
{{- $auth := dict }}
{{- if eq (toString $c.auth.mode) "password" }}
{{- $_ := set $auth "users_file" (printf "%s/users" $dir) }}
{{- end }}
{{- $admin := dict "listen" (printf "0.0.0.0:%d" (int .Values.ports.admin)) }}
{{- if .Values.secrets.adminToken }}
{{- $_ := set $admin "token_file" (printf "%s/admin-token" $dir) }}
{{- end -}}
# Rendered by the Helm chart from its values; edit the values, not this file.

{{ include "flightdeck.tomlTable" (dict "header" "flight" "values" $c.flight "extra" $flight) }}

{{ include "flightdeck.tomlTable" (dict "header" "trino" "values" $c.trino "extra" $trino) }}

{{ include "flightdeck.tomlTable" (dict "header" "auth" "values" $c.auth "extra" $auth) }}

{{ include "flightdeck.tomlTable" (dict "header" "cache" "values" $c.cache) }}

{{ include "flightdeck.tomlTable" (dict "header" "admin" "values" $c.admin "extra" $admin) }}
{{- if .Values.datasets }}

{{ include "flightdeck.tomlTable" (dict "header" "accel" "values" .Values.accel "extra" (dict "dir" "/var/lib/flightdeck/accel")) }}
{{- range .Values.datasets }}

{{ include "flightdeck.tomlTable" (dict "header" "datasets" "values" . "array" true) }}
{{- end }}
{{- end }}
{{- end }}
