#!/usr/bin/env bash
# Smoke test of the image (needs a Docker daemon; not part of `make test`, which cannot assume
# one): every role runs from IMAGE as its non-root user with a read-only root filesystem against
# a kubesim and a redis-server on the host; an Application syncs, a commit is synced by the
# next sweep, and `docker stop` ends every role with exit code 0 (a worker's warm shutdown).
# Usage: scripts/image_smoke.sh [IMAGE]   (default gitops-tasks:latest)
set -euo pipefail
IMAGE=${1:-gitops-tasks:latest}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/.venv/bin
WORK=$(mktemp -d)
RPORT=$("$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])')
NAMES=()
cleanup() {
  docker rm -f "${NAMES[@]}" >/dev/null 2>&1 || true
  kill "$SIM" "$REDIS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
"$BIN/python" -m kubesim --port 0 --kubeconfig "$WORK/kubeconfig" >"$WORK/kubesim.log" 2>&1 &
SIM=$!
"$("$BIN/python" -c 'from gitops_tasks.redisserver import require_redis_server as r; print(r())')" \
  --port "$RPORT" --save "" --appendonly no >"$WORK/redis.log" 2>&1 &
REDIS=$!
for _ in $(seq 50); do [ -s "$WORK/kubeconfig" ] && break; sleep 0.2; done
export KUBECONFIG=$WORK/kubeconfig
"$BIN/kubectl" apply --server-side -f "$ROOT/deploy/crds/application.yaml" >/dev/null
"$BIN/kubectl" create namespace gitops-tasks >/dev/null
git init -q -b main "$WORK/repo" && mkdir "$WORK/repo/app"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: smoke}\ndata: {hello: one}\n' \
  >"$WORK/repo/app/cm.yaml"
git -C "$WORK/repo" add -A && git -C "$WORK/repo" -c user.name=s -c user.email=s@s commit -qm one
chown -R 10001:10001 "$WORK/repo" 2>/dev/null || true  # the image's user must own a file:// repo
chmod -R a+rX "$WORK"
for role in "worker --concurrency 1 --probe-port 0" beat "webhook --port 0 --insecure" \
            "flower --port 0"; do
  name=smoke-${role%% *}-$$
  NAMES+=("$name")
  docker run -d --name "$name" --network host --read-only --tmpfs /tmp \
    --tmpfs /var/cache/gitops-tasks:uid=10001,gid=10001 \
    -e GITOPS_TASKS_REDIS_URL="redis://127.0.0.1:$RPORT/0" -e KUBECONFIG=/kube/config \
    -e GITOPS_TASKS_RECONCILE_INTERVAL=3 -e GITOPS_TASKS_RECONCILE_JITTER=0 \
    -e GITOPS_TASKS_FLOWER_BASIC_AUTH=admin:smoke \
    -v "$WORK/kubeconfig:/kube/config:ro" -v "$WORK/repo:$WORK/repo:ro" "$IMAGE" $role >/dev/null
done
"$BIN/kubectl" apply -f - >/dev/null <<APP
apiVersion: gitops-tasks.io/v1alpha1
kind: Application
metadata: {name: smoke, namespace: gitops-tasks}
spec:
  source: {repoURL: "file://$WORK/repo", path: app, targetRevision: main}
  destination: {server: https://kubernetes.default.svc, namespace: smoke}
  syncPolicy: {automated: {prune: true}, syncOptions: [CreateNamespace=true]}
APP
wait_for() {  # jsonpath value within 60 s
  for _ in $(seq 120); do
    [ "$("$BIN/kubectl" get cm smoke -n smoke -o jsonpath='{.data.hello}' 2>/dev/null)" = "$1" ] \
      && return 0
    sleep 0.5
  done
  echo "smoke: ConfigMap never showed hello=$1" >&2
  for n in "${NAMES[@]}"; do docker logs --tail 20 "$n" >&2; done
  exit 1
}
wait_for one && echo "synced from the image"
sed -i 's/hello: one/hello: two/' "$WORK/repo/app/cm.yaml"
git -C "$WORK/repo" -c safe.directory='*' -c user.name=s -c user.email=s@s commit -qam two
chown -R 10001:10001 "$WORK/repo" 2>/dev/null || true
wait_for two && echo "a new commit synced by the sweep"
docker stop "${NAMES[@]}" >/dev/null
for n in "${NAMES[@]}"; do
  code=$(docker inspect -f '{{.State.ExitCode}}' "$n")
  echo "$n exited $code"
  [ "$code" = 0 ]
done
echo "image smoke test passed: $IMAGE"
