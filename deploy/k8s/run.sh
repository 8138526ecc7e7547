#!/usr/bin/env bash
# The Kubernetes example end to end with kubectl: topics, validators, a
# split load, its merged report. Run from anywhere, with a kubectl context
# whose cluster can pull the image the manifests name (rustorium:latest,
# deploy/Dockerfile) and reach the brokers of cluster.yaml.
#
#   deploy/k8s/run.sh            # LEAD=120 (s from now to the load's start)
#   SKIP_TOPICS=1 deploy/k8s/run.sh   # the topics exist already
#   LOAD_TIMEOUT=7200 deploy/k8s/run.sh   # seconds the load may take (3600)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ns=rustorium
lead=${LEAD:-120}

# start_at prints the RFC 3339 time $1 seconds from now (GNU or BSD date).
start_at() {
	local t=$(($(date +%s) + $1))
	date -u -d "@$t" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$t" +%Y-%m-%dT%H:%M:%SZ
}

# wait_job NAME SECONDS waits until Job NAME completes (0) or fails or the
# time is up (1, with its pods' logs).
wait_job() {
	local deadline=$(($(date +%s) + $2)) state
	while :; do
		state=$(kubectl -n "$ns" get job "$1" -o jsonpath='{.status.conditions[?(@.status=="True")].type}')
		case $state in
		*Complete*) return 0 ;;
		*Failed*) break ;;
		esac
		[ "$(date +%s)" -lt "$deadline" ] || break
		sleep 5
	done
	echo "job $1 did not complete ($state); its pods' logs:" >&2
	kubectl -n "$ns" logs -l "job-name=$1" --all-containers --prefix --tail=30 >&2 || true
	return 1
}

kubectl apply -f "$here/namespace.yaml"
if [ -z "${SKIP_TOPICS:-}" ]; then
	kubectl -n "$ns" delete job rustorium-topics --ignore-not-found --wait
	kubectl apply -f "$here/topics.yaml"
	wait_job rustorium-topics 300
fi
kubectl apply -f "$here/cluster.yaml" -f "$here/node-keys.yaml" -f "$here/nodes.yaml"
kubectl -n "$ns" rollout status statefulset/rustorium --timeout=10m

# A fresh run: the last run's Jobs and results go (a Job's spec cannot change).
kubectl -n "$ns" delete job rustorium-loadgen rustorium-merge --ignore-not-found --wait
kubectl -n "$ns" delete pvc rustorium-results --ignore-not-found --wait
kubectl apply -f "$here/scenario.yaml" -f "$here/results.yaml"

# Every worker starts at the same instant, $lead seconds from now: enough
# to schedule the pods, pull the image and pre-sign the transactions.
at=$(start_at "$lead")
echo "the load starts at $at"
sed "s/2000-01-01T00:00:00Z/$at/" "$here/loadgen.yaml" | kubectl apply -f -
kubectl apply -f "$here/merge.yaml"
# The load's length plus LEAD, with room: raise it for long scenarios.
wait_job rustorium-loadgen "$((lead + ${LOAD_TIMEOUT:-3600}))" || {
	echo "the workers failed (kubectl -n $ns logs -l app.kubernetes.io/component=loadgen)" >&2
	exit 1
}
wait_job rustorium-merge 600
# The merged summary; the whole report is /results/merged on the volume.
kubectl -n "$ns" logs job/rustorium-merge
