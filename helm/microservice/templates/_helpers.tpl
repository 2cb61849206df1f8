{{/*
Names, labels and the values every template derives from. All arithmetic that two objects must
agree on (grace period, startup threshold, env dir) lives here, once.
*/}}

{{/* The app's name: APP_NAME and app.kubernetes.io/name (the schema checks its pattern). */}}
{{- define "microservice.name" -}}
{{- .Values.app.name | default .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name of every object: a DNS-1123 label (Services need one), so dots and underscores from
APP_NAME become "-", cut to 63 characters.
*/}}
{{- define "microservice.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "microservice.name" . -}}
{{- $full := ternary .Release.Name (printf "%s-%s" .Release.Name $name) (contains $name .Release.Name) -}}
{{- $full | replace "." "-" | replace "_" "-" | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "microservice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* A label value: at most 63 characters, starting and ending with an alphanumeric. */}}
{{- define "microservice.labelValue" -}}
{{- regexReplaceAll "^[^A-Za-z0-9]+|[^A-Za-z0-9]+$" (. | toString | replace "+" "_" | trunc 63) "" -}}
{{- end -}}

{{- define "microservice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "microservice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "microservice.labels" -}}
helm.sh/chart: {{ include "microservice.chart" . }}
{{ include "microservice.selectorLabels" . }}
{{- with .Values.image.tag }}
app.kubernetes.io/version: {{ include "microservice.labelValue" . | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "microservice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "microservice.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* repository:tag, or repository@digest when a digest pins the image. */}}
{{- define "microservice.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (toString .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Seconds the preStop hook may take (0 when there is none). */}}
{{- define "microservice.preStopSeconds" -}}
{{- ternary (int .Values.preStop.seconds) 0 .Values.preStop.enabled -}}
{{- end -}}

{{/* The least grace period that lets the agent finish: preStop + drain + stop timeout. */}}
{{- define "microservice.minGrace" -}}
{{- add (include "microservice.preStopSeconds" . | int) (int .Values.agent.drainSeconds) (int .Values.agent.stopTimeoutSeconds) -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: explicit, or preStop + drain + stop + margin. */}}
{{- define "microservice.grace" -}}
{{- if kindIs "invalid" .Values.agent.terminationGracePeriodSeconds -}}
{{- add (include "microservice.minGrace" . | int) (int .Values.agent.graceMarginSeconds) -}}
{{- else -}}
{{- int .Values.agent.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* Startup failureThreshold: explicit, or ceil(readyTimeout / period) + 1 (one period of slack,
so the agent's own deadline fires and is recorded before the kubelet restarts the container). */}}
{{- define "microservice.startupFailureThreshold" -}}
{{- $p := .Values.probes.startup -}}
{{- if kindIs "invalid" $p.failureThreshold -}}
{{- $period := int $p.periodSeconds -}}
{{- add (div (add (int .Values.agent.readyTimeoutSeconds) (sub $period 1)) $period) 1 -}}
{{- else -}}
{{- int $p.failureThreshold -}}
{{- end -}}
{{- end -}}

{{- define "microservice.progressDeadline" -}}
{{- if kindIs "invalid" .Values.progressDeadlineSeconds -}}
{{- max 600 (add (int .Values.agent.readyTimeoutSeconds) 120) -}}
{{- else -}}
{{- int .Values.progressDeadlineSeconds -}}
{{- end -}}
{{- end -}}

{{/*
The container's resources: the user's whole, or the chart's defaults when unset. Never a merge of
the two (Helm merges maps key by key, which would add default requests to a user's limits).
*/}}
{{- define "microservice.resources" -}}
{{- if .Values.resources -}}
{{- toYaml .Values.resources -}}
{{- else -}}
{{- toYaml (dict "requests" (dict "cpu" "250m" "memory" "512Mi") "limits" (dict "cpu" "1" "memory" "1Gi")) -}}
{{- end -}}
{{- end -}}

{{/* The conf.d directory the agent picks for app.env (same aliases as the agent). */}}
{{- define "microservice.envDir" -}}
{{- if .Values.configFiles.envDir -}}
{{- .Values.configFiles.envDir -}}
{{- else -}}
{{- $env := lower .Values.app.env -}}
{{- $aliases := dict "production" "prod" "prd" "prod" "development" "dev" -}}
{{- get $aliases $env | default $env -}}
{{- end -}}
{{- end -}}

{{- define "microservice.confDir" -}}
{{- printf "%s/conf.d/%s" (.Values.agent.appHome | default "/app" | trimSuffix "/") (include "microservice.envDir" .) -}}
{{- end -}}

{{/* The Service port name ServiceMonitor scrapes. */}}
{{- define "microservice.metricsPort" -}}
{{- .Values.serviceMonitor.port | default (ternary "" "agent" (kindIs "invalid" .Values.agent.httpPort)) -}}
{{- end -}}

{{/* True ("true") when a rolling-update bound is zero: 0, "0" or "0%". */}}
{{- define "microservice.isZero" -}}
{{- regexMatch "^0+%?$" (toString .) -}}
{{- end -}}

{{/*
Pod securityContext. Without agent.user the whole pod runs as the image's non-root USER; with it,
the agent does setup as root and starts the app as that user, so runAsNonRoot cannot hold.
*/}}
{{- define "microservice.podSecurityContext" -}}
{{- $ctx := dict "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- if not .Values.agent.user -}}
{{- $_ := set $ctx "runAsNonRoot" true -}}
{{- end -}}
{{- toYaml (mergeOverwrite $ctx (deepCopy .Values.podSecurityContext)) -}}
{{- end -}}

{{- define "microservice.securityContext" -}}
{{- $ctx := dict "allowPrivilegeEscalation" false "readOnlyRootFilesystem" false "privileged" false -}}
{{- if .Values.agent.user -}}
{{- $_ := set $ctx "runAsUser" 0 -}}
{{- $_ := set $ctx "runAsNonRoot" false -}}
{{- $_ := set $ctx "capabilities" (dict "drop" (list "ALL") "add" .Values.agent.rootCapabilities) -}}
{{- else -}}
{{- $_ := set $ctx "capabilities" (dict "drop" (list "ALL")) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $ctx (deepCopy .Values.securityContext)) -}}
{{- end -}}
