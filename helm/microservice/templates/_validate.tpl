{{/*
Contradictions the schema cannot express. Each `fail` is one line: the value, what is wrong, and
the fix. deployment.yaml includes this first, so a bad values file renders nothing.
*/}}
{{- define "microservice.validate" -}}
{{- $v := .Values -}}

{{- if not $v.app.env -}}
{{- fail "app.env is required and has no default: deploy with the environment's values file (for example -f values.yaml -f values-prod.yaml) or set app.env=prod" -}}
{{- end -}}

{{- if not $v.image.repository -}}
{{- fail "image.repository is required: set it to the app's image without the tag (for example registry.local:5000/apps/orders)" -}}
{{- end -}}
{{- if and (not $v.image.tag) (not $v.image.digest) -}}
{{- fail "image.tag is required: set it to the image's version (for example image.tag=1.4.2); the chart never defaults to latest" -}}
{{- end -}}
{{- if and (eq (toString $v.image.tag) "latest") (not $v.image.digest) (ne $v.image.pullPolicy "Always") -}}
{{- fail (printf "image.tag=latest with image.pullPolicy=%s keeps a stale image on nodes that already have one: pin a version in image.tag, set image.digest, or set image.pullPolicy=Always" $v.image.pullPolicy) -}}
{{- end -}}

{{- if and (eq $v.strategy.type "RollingUpdate") (eq (include "microservice.isZero" $v.strategy.maxSurge) "true") (eq (include "microservice.isZero" $v.strategy.maxUnavailable) "true") -}}
{{- fail (printf "strategy.maxSurge=%v and strategy.maxUnavailable=%v are both zero, so a rollout can never progress: raise one of them (for example strategy.maxSurge=25%%)" $v.strategy.maxSurge $v.strategy.maxUnavailable) -}}
{{- end -}}

{{- $minGrace := include "microservice.minGrace" . | int -}}
{{- if and (not (kindIs "invalid" $v.agent.terminationGracePeriodSeconds)) (lt (int $v.agent.terminationGracePeriodSeconds) $minGrace) -}}
{{- fail (printf "agent.terminationGracePeriodSeconds=%d is shorter than preStop + agent.drainSeconds + agent.stopTimeoutSeconds = %d, so the app would be SIGKILLed mid-stop: raise it to at least %d, or leave it null to compute %d" (int $v.agent.terminationGracePeriodSeconds) $minGrace $minGrace (add $minGrace (int $v.agent.graceMarginSeconds))) -}}
{{- end -}}

{{- $startup := $v.probes.startup -}}
{{- if and (ne $v.probes.handler "tcpSocket") (not (kindIs "invalid" $startup.failureThreshold)) -}}
{{- $window := mul (int $startup.failureThreshold) (int $startup.periodSeconds) -}}
{{- if lt $window (int $v.agent.readyTimeoutSeconds) -}}
{{- fail (printf "probes.startup.failureThreshold=%d × periodSeconds=%d = %ds is shorter than agent.readyTimeoutSeconds=%d, so the kubelet would restart an app that is still starting: raise it to at least %d, or leave it null to derive it" (int $startup.failureThreshold) (int $startup.periodSeconds) $window (int $v.agent.readyTimeoutSeconds) (div (add (int $v.agent.readyTimeoutSeconds) (sub (int $startup.periodSeconds) 1)) (int $startup.periodSeconds))) -}}
{{- end -}}
{{- end -}}

{{- if and (not (kindIs "invalid" $v.progressDeadlineSeconds)) (le (int $v.progressDeadlineSeconds) (int $v.agent.readyTimeoutSeconds)) -}}
{{- fail (printf "progressDeadlineSeconds=%d is not longer than agent.readyTimeoutSeconds=%d, so a rollout would be marked failed while pods are still starting: raise it above %d, or leave it null" (int $v.progressDeadlineSeconds) (int $v.agent.readyTimeoutSeconds) (int $v.agent.readyTimeoutSeconds)) -}}
{{- end -}}

{{- $names := list -}}
{{- range $i, $p := $v.ports -}}
{{- if has $p.name $names -}}
{{- fail (printf "ports[%d].name=%s is used twice: give every port a distinct name" $i $p.name) -}}
{{- end -}}
{{- $names = append $names $p.name -}}
{{- if and (not (kindIs "invalid" $v.agent.httpPort)) (eq $p.name "agent") -}}
{{- fail (printf "ports[%d].name=agent is reserved for agent.httpPort: rename the port" $i) -}}
{{- end -}}
{{- if and (not (kindIs "invalid" $v.agent.httpPort)) (eq (int $p.containerPort) (int $v.agent.httpPort)) -}}
{{- fail (printf "agent.httpPort=%d is also ports[%d].containerPort: give the agent's endpoint a port of its own" (int $v.agent.httpPort) $i) -}}
{{- end -}}
{{- end -}}
{{- $probePorts := include "microservice.probePorts" . | fromYaml -}}
{{- if and (eq $v.probes.handler "tcpSocket") (not (and $probePorts.live $probePorts.ready)) -}}
{{- fail "probes.handler=tcpSocket needs agent.livePort and agent.readyPort (the agent's probe ports): set both, or choose probes.handler exec" -}}
{{- end -}}
{{- if and (eq $v.probes.handler "httpGet") (kindIs "invalid" $v.agent.httpPort) -}}
{{- fail "probes.handler=httpGet needs agent.httpPort (the agent's HTTP endpoint answers /startup /ready /live): set it, or choose probes.handler tcpSocket" -}}
{{- end -}}
{{- $taken := dict -}}
{{- if not (kindIs "invalid" $v.agent.httpPort) -}}{{- $_ := set $taken (toString (int $v.agent.httpPort)) "agent.httpPort" -}}{{- end -}}
{{- range $kind, $port := $probePorts -}}
{{- $key := printf "agent.%sPort" $kind -}}
{{- with get $taken (toString $port) -}}
{{- fail (printf "%s=%d is also %s: give each of the agent's listeners a port of its own" $key (int $port) .) -}}
{{- end -}}
{{- $_ := set $taken (toString $port) $key -}}
{{- end -}}
{{- range $i, $p := $v.ports -}}
{{- if has $p.name (list "probe-live" "probe-ready") -}}
{{- fail (printf "ports[%d].name=%s is reserved for the agent's probe ports: rename the port" $i $p.name) -}}
{{- end -}}
{{- range $kind, $port := $probePorts -}}
{{- if eq (int $p.containerPort) (int $port) -}}
{{- fail (printf "agent.%sPort=%d is also ports[%d].containerPort: give the agent's probe port a port of its own" $kind (int $port) $i) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $v.service.enabled (not $v.ports) -}}
{{- fail "service.enabled is true but ports is empty: list the app's ports, or set service.enabled=false" -}}
{{- end -}}

{{- if $v.ingress.enabled -}}
{{- if not $v.service.enabled -}}
{{- fail "ingress.enabled is true but service.enabled is false: the Ingress routes to the Service, so enable it" -}}
{{- end -}}
{{- if not $v.ingress.hosts -}}
{{- fail "ingress.enabled is true but ingress.hosts is empty: add at least one host with its paths" -}}
{{- end -}}
{{- end -}}

{{- $a := $v.autoscaling -}}
{{- if $a.enabled -}}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) -}}
{{- fail (printf "autoscaling.minReplicas=%d is greater than autoscaling.maxReplicas=%d: lower minReplicas or raise maxReplicas" (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- end -}}
{{- $cpu := not (kindIs "invalid" $a.targetCPUUtilizationPercentage) -}}
{{- $mem := not (kindIs "invalid" $a.targetMemoryUtilizationPercentage) -}}
{{- if not (or $cpu $mem) -}}
{{- fail "autoscaling.enabled is true but both targetCPUUtilizationPercentage and targetMemoryUtilizationPercentage are null: set at least one" -}}
{{- end -}}
{{- /* "a target needs a request" is a schema rule (values.schema.json, allOf), which the generator reads too */ -}}
{{- end -}}

{{- if $v.pdb.enabled -}}
{{- $hasMax := not (kindIs "invalid" $v.pdb.maxUnavailable) -}}
{{- $hasMin := not (kindIs "invalid" $v.pdb.minAvailable) -}}
{{- if and $hasMax $hasMin -}}
{{- fail "pdb.minAvailable and pdb.maxUnavailable are both set: a PodDisruptionBudget takes one, so set the other to null" -}}
{{- end -}}
{{- if not (or $hasMax $hasMin) -}}
{{- fail "pdb.enabled is true but pdb.minAvailable and pdb.maxUnavailable are both null: set one (for example pdb.maxUnavailable=25%)" -}}
{{- end -}}
{{- if and $hasMax (eq (include "microservice.isZero" $v.pdb.maxUnavailable) "true") -}}
{{- fail (printf "pdb.maxUnavailable=%v blocks every voluntary eviction, so node drains hang: set it to at least 1 (or a non-zero percentage)" $v.pdb.maxUnavailable) -}}
{{- end -}}
{{- if and $hasMin (kindIs "float64" $v.pdb.minAvailable) -}}
{{- $floor := ternary (int $a.minReplicas) (int $v.replicaCount) $a.enabled -}}
{{- if ge (int $v.pdb.minAvailable) $floor -}}
{{- fail (printf "pdb.minAvailable=%d is not below the %d replicas the app may run with, so every voluntary eviction is blocked and node drains hang: lower pdb.minAvailable or use pdb.maxUnavailable" (int $v.pdb.minAvailable) $floor) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- if and $v.agent.scrapeAnnotations (kindIs "invalid" $v.agent.httpPort) -}}
{{- fail "agent.scrapeAnnotations is true but agent.httpPort is null: the prometheus.io/* annotations point at the agent's /metrics, so set agent.httpPort" -}}
{{- end -}}
{{- if $v.agent.scrapeAnnotations -}}
{{- range $key := list "prometheus.io/scrape" "prometheus.io/port" "prometheus.io/path" -}}
{{- if hasKey $v.podAnnotations $key -}}
{{- fail (printf "podAnnotations sets %s and agent.scrapeAnnotations is true: keep one (agent.scrapeAnnotations writes prometheus.io/scrape, port and path)" $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- $sm := $v.serviceMonitor -}}
{{- if $sm.enabled -}}
{{- if not $v.service.enabled -}}
{{- fail "serviceMonitor.enabled is true but service.enabled is false: a ServiceMonitor scrapes through the Service, so enable it" -}}
{{- end -}}
{{- $port := include "microservice.metricsPort" . -}}
{{- if not $port -}}
{{- fail "serviceMonitor.port is empty and agent.httpPort is null: name the port that serves metrics (one of ports[].name), or set agent.httpPort" -}}
{{- end -}}
{{- $known := $names -}}
{{- if not (kindIs "invalid" $v.agent.httpPort) -}}{{- $known = append $known "agent" -}}{{- end -}}
{{- if not (has $port $known) -}}
{{- fail (printf "serviceMonitor.port=%s is not a Service port (have: %s): use one of ports[].name, or agent when agent.httpPort is set" $port (join ", " $known)) -}}
{{- end -}}
{{- end -}}

{{- $reserved := dict
  "APP_NAME" "app.name" "APP_ENV" "app.env" "APP_HOME" "agent.appHome"
  "POD_IP" "the downward API" "POD_NAME" "the downward API" "POD_NAMESPACE" "the downward API" "NODE_NAME" "the downward API"
  "BOOTSTRAP_LOG_ROOT" "logs.mountPath" "BOOTSTRAP_LOG_DIR" "logs.dirPattern" "BOOTSTRAP_RUN_DIR" "agent.runDir"
  "BOOTSTRAP_DRAIN_SECONDS" "agent.drainSeconds" "BOOTSTRAP_STOP_TIMEOUT" "agent.stopTimeoutSeconds"
  "BOOTSTRAP_READY_TIMEOUT" "agent.readyTimeoutSeconds" "BOOTSTRAP_IMAGE" "image.repository/tag/digest"
  "BOOTSTRAP_HTTP_PORT" "agent.httpPort" "BOOTSTRAP_USER" "agent.user"
  "BOOTSTRAP_LIVE_PORT" "agent.livePort" "BOOTSTRAP_READY_PORT" "agent.readyPort"
  "BOOTSTRAP_LIVE_WINDOW" "agent.liveWindowSeconds" "BOOTSTRAP_CONF_OVERLAY" "configFiles.files"
  "BOOTSTRAP_RELOAD" "reload.action" "BOOTSTRAP_RELOAD_SPREAD" "reload.spread" "BOOTSTRAP_RELOAD_CHECK" "reload.check" -}}
{{- range $i, $e := $v.env -}}
{{- if hasKey $reserved $e.name -}}
{{- fail (printf "env[%d].name=%s is set by the chart from %s: set that value instead of env" $i $e.name (get $reserved $e.name)) -}}
{{- end -}}
{{- end -}}

{{- $home := $v.agent.appHome | default "/app" | trimSuffix "/" -}}
{{- $own := dict (trimSuffix "/" $v.agent.runDir) "agent.runDir" "/tmp" "the chart's /tmp" (printf "%s/conf" $home) "the config link directory (<appHome>/conf)" (trimSuffix "/" $v.logs.mountPath) "logs.mountPath" -}}
{{- range $i, $w := $v.writable -}}
{{- $path := trimSuffix "/" $w.path -}}
{{- range $taken, $what := $own -}}
{{- if or (eq $path $taken) (hasPrefix (printf "%s/" $taken) $path) (hasPrefix (printf "%s/" $path) $taken) -}}
{{- fail (printf "writable[%d].path=%s overlaps %s (%s), which the chart mounts already: pick a directory of its own, e.g. %s/data" $i $w.path $taken $what $home) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $own $path (printf "writable[%d]" $i) -}}
{{- end -}}

{{- if $v.agent.user -}}
{{- if or $v.podSecurityContext.runAsNonRoot $v.securityContext.runAsNonRoot -}}
{{- fail (printf "agent.user=%s needs the agent's setup to run as root, but runAsNonRoot is true: clear agent.user (and build the image with a non-root USER), or drop runAsNonRoot" $v.agent.user) -}}
{{- end -}}
{{- end -}}
{{- end -}}
