// Package deploy holds no code: it is the home of the deployment examples
// (issue #12) — deploy/k8s, Kubernetes manifests for a StatefulSet of
// `rustorium node` validators and an Indexed Job of `rustorium loadgen`
// workers with the merge step; deploy/ssh, the same over plain ssh;
// deploy/Dockerfile — and of deploy/grafana/rustorium.json, a Grafana
// dashboard of the node's metrics (issue #15). Its test, run by `make
// test`, checks them without a cluster: every YAML document parses and
// names apiVersion, kind and metadata.name; the objects refer to each other
// consistently (volumes, Service and StatefulSet, the number of workers and
// merged folders); the embedded cluster file and scenario pass the
// project's own parsers, and the example keys match it; every rustorium
// subcommand and flag the manifests and scripts use exists in the binary
// built from this tree; the shell scripts parse (and pass shellcheck where
// it is installed); the dashboard is valid Grafana JSON, every metric its
// queries use is one a running `rustorium node` exports, and every
// rustorium_ metric the node exports is on a panel. With
// RUSTORIUM_DEPLOY_E2E=1, TestSSHScriptEndToEnd also runs the ssh script
// for real on this machine (ssh and scp stubbed, an embedded broker).
package deploy
