{{/* Names and labels shared by the templates. */}}
{{- define "natter.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "natter.labels" -}}
app.kubernetes.io/name: natter-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "natter.selector" -}}
app.kubernetes.io/name: natter-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
