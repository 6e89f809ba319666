#!/bin/sh
# A config-management plugin: prints manifests built from Argo CD's build environment.
set -eu
cat <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: plugin-${ARGOCD_APP_NAME}
  namespace: ${ARGOCD_APP_NAMESPACE}
data:
  revision: "${ARGOCD_APP_REVISION}"
  greeting: "${ARGOCD_ENV_GREETING:-unset}"
  path: "${ARGOCD_APP_SOURCE_PATH}"
  input: "$(cat input.txt)"
YAML
