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

{{/* The agent's probe ports that are set, as YAML: `live: PORT`, `ready: PORT` (may be empty). */}}
{{- define "microservice.probePorts" -}}
{{- range $kind := list "live" "ready" -}}
{{- with get $.Values.agent (printf "%sPort" $kind) }}
{{ $kind }}: {{ int . }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
One probe (kind: startup, readiness or liveness), its handler chosen by probes.handler:
- tcpSocket (default): the agent's probe-ports helper; nothing is forked. `probe-live` listens
  once the app has been started and while it is healthy, `probe-ready` exactly while it is ready.
- httpGet: the agent's HTTP endpoint (agent.httpPort): /startup, /ready, /live.
- exec: `bootstrap probe --startup`, `cat <runDir>/ready`, `bootstrap probe --live` (Python forks).
*/}}
{{- define "microservice.probe" -}}
{{- $v := .root.Values -}}
{{- $p := get $v.probes .kind -}}
{{- $handler := $v.probes.handler -}}
{{- if eq $handler "tcpSocket" }}
tcpSocket:
  port: {{ ternary "probe-ready" "probe-live" (eq .kind "readiness") }}
{{- else if eq $handler "httpGet" }}
httpGet:
  path: {{ get (dict "startup" "/startup" "readiness" "/ready" "liveness" "/live") .kind }}
  port: agent
{{- else }}
exec:
  {{- if eq .kind "readiness" }}
  command: [cat, {{ printf "%s/ready" ($v.agent.runDir | trimSuffix "/") | quote }}]
  {{- else }}
  command: [bootstrap, probe, {{ ternary "--startup" "--live" (eq .kind "startup") }}]
  {{- end }}
{{- end }}
periodSeconds: {{ int $p.periodSeconds }}
timeoutSeconds: {{ int $p.timeoutSeconds }}
failureThreshold: {{ ternary (include "microservice.startupFailureThreshold" .root) (int $p.failureThreshold) (eq .kind "startup") }}
{{- end -}}

{{/*
Startup failureThreshold: explicit, or derived.
- tcpSocket: the probe passes once the agent has started the app, so it only has to cover the
  agent's setup: ceil(probes.startup.setupSeconds / period). The startup deadline is the agent's
  (state `failed`), which closes the live port, so liveness restarts the container.
- httpGet and exec: `/startup` and `bootstrap probe --startup` pass once the app has been ready,
  so the window is ceil(readyTimeout / period) + 1 (one period of slack, so the agent's own
  deadline fires and is recorded before the kubelet restarts the container).
*/}}
{{- define "microservice.startupFailureThreshold" -}}
{{- $p := .Values.probes.startup -}}
{{- $period := int $p.periodSeconds -}}
{{- if not (kindIs "invalid" $p.failureThreshold) -}}
{{- int $p.failureThreshold -}}
{{- else if eq .Values.probes.handler "tcpSocket" -}}
{{- max 1 (div (add (int $p.setupSeconds) (sub $period 1)) $period) -}}
{{- else -}}
{{- add (div (add (int .Values.agent.readyTimeoutSeconds) (sub $period 1)) $period) 1 -}}
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

{{/* Where the ConfigMap is mounted as a directory: the agent's BOOTSTRAP_CONF_OVERLAY. */}}
{{- define "microservice.confOverlay" -}}
{{- printf "%s/conf.configmap" (.Values.agent.appHome | default "/app" | trimSuffix "/") -}}
{{- end -}}

{{/* "true" when a config change rolls the Deployment (checksum annotation), not the agent's reload. */}}
{{- define "microservice.rollout" -}}
{{- eq (.Values.reload.action | default "rollout") "rollout" -}}
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
Pod securityContext. Without agent.user the whole pod runs as the image's non-root USER (Pod
Security "restricted"): runAsNonRoot, and runAsUser/runAsGroup from image.uid/image.gid, which
Kubernetes needs for an image whose USER is a name. With agent.user, the agent does setup as root
and starts the app as that user, so runAsNonRoot cannot hold.
*/}}
{{- define "microservice.podSecurityContext" -}}
{{- $ctx := dict "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- if not .Values.agent.user -}}
{{- $_ := set $ctx "runAsNonRoot" true -}}
{{- if not (kindIs "invalid" .Values.image.uid) }}{{ $_ := set $ctx "runAsUser" (int64 .Values.image.uid) }}{{ end -}}
{{- if not (kindIs "invalid" .Values.image.gid) }}{{ $_ := set $ctx "runAsGroup" (int64 .Values.image.gid) }}{{ end -}}
{{- end -}}
{{- toYaml (mergeOverwrite $ctx (deepCopy .Values.podSecurityContext)) -}}
{{- end -}}

{{/*
The writable places of a read-only root filesystem, as (name, path, sizeLimit) emptyDirs: the
agent's run dir (probe files, the log link), /tmp (temp files, the JVM's hsperfdata), the config
link directory (<appHome>/conf), and each `writable` directory.
*/}}
{{- define "microservice.emptyDirs" -}}
{{- $home := .Values.agent.appHome | default "/app" | trimSuffix "/" -}}
- {name: run, path: {{ .Values.agent.runDir | trimSuffix "/" | quote }}, sizeLimit: {{ .Values.tmp.runSizeLimit | quote }}}
- {name: tmp, path: /tmp, sizeLimit: {{ .Values.tmp.sizeLimit | quote }}}
- {name: conf-links, path: {{ printf "%s/conf" $home | quote }}, sizeLimit: 16Mi}
{{- range $i, $w := .Values.writable }}
- {name: writable-{{ $i }}, path: {{ $w.path | trimSuffix "/" | quote }}{{ with $w.sizeLimit }}, sizeLimit: {{ . | quote }}{{ end }}}
{{- end }}
{{- end -}}

{{- define "microservice.securityContext" -}}
{{- $ctx := dict "allowPrivilegeEscalation" false "readOnlyRootFilesystem" true "privileged" false -}}
{{- if .Values.agent.user -}}
{{- $_ := set $ctx "runAsUser" 0 -}}
{{- $_ := set $ctx "runAsNonRoot" false -}}
{{- $_ := set $ctx "capabilities" (dict "drop" (list "ALL") "add" .Values.agent.rootCapabilities) -}}
{{- else -}}
{{- $_ := set $ctx "capabilities" (dict "drop" (list "ALL")) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $ctx (deepCopy .Values.securityContext)) -}}
{{- end -}}
