#!/usr/bin/env bash
# The Kubernetes example end to end with kubectl: topics, validators, a
# split load, its merged report. Run from anywhere, with a kubectl context
# whose cluster can pull the image the manifests name (rustorium:latest,
# deploy/Dockerfile) and reach the brokers of cluster.yaml.
#
#   deploy/k8s/run.sh            # LEAD=120 (s from now to the load's start)
#   SKIP_TOPICS=1 deploy/k8s/run.sh   # the topics exist already
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ns=rustorium
lead=${LEAD:-120}

# start_at prints the RFC 3339 time $1 seconds from now (GNU or BSD date).
start_at() {
	local t=$(($(date +%s) + $1))
	date -u -d "@$t" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$t" +%Y-%m-%dT%H:%M:%SZ
}

kubectl apply -f "$here/namespace.yaml"
if [ -z "${SKIP_TOPICS:-}" ]; then
	kubectl -n "$ns" delete job rustorium-topics --ignore-not-found
	kubectl apply -f "$here/topics.yaml"
	kubectl -n "$ns" wait --for=condition=complete job/rustorium-topics --timeout=5m
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
kubectl -n "$ns" wait --for=condition=complete job/rustorium-merge --timeout=2h || {
	kubectl -n "$ns" logs job/rustorium-merge || true
	echo "the merge did not complete (the workers' logs: kubectl -n $ns logs -l app.kubernetes.io/component=loadgen)" >&2
	exit 1
}
# The merged summary; the whole report is /results/merged on the volume.
kubectl -n "$ns" logs job/rustorium-merge
