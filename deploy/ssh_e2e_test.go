package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rustorium/rustorium/internal/kafkatest"
)

// fakeSSH and fakeSCP stand in for ssh and scp: host H is the folder
// $FAKE_HOSTS/H of this machine.
const (
	fakeSSH = `#!/usr/bin/env bash
while [ "$1" = "-o" ]; do shift 2; done
host=$1
shift
mkdir -p "$FAKE_HOSTS/$host"
cd "$FAKE_HOSTS/$host" && exec sh -c "$*"
`
	fakeSCP = `#!/usr/bin/env bash
args=()
while [ $# -gt 0 ]; do
	case $1 in -q | -r) shift ;; -o) shift 2 ;; *) args+=("$1"); shift ;; esac
done
dest=${args[-1]}
unset 'args[-1]'
local_path() { case $1 in *:*) echo "$FAKE_HOSTS/${1%%:*}/${1#*:}" ;; *) echo "$1" ;; esac; }
d=$(local_path "$dest")
for s in "${args[@]}"; do cp -r "$(local_path "$s")" "$d"; done
`
	e2eHosts = `node host-a 127.0.0.11
node host-b 127.0.0.12
node host-c 127.0.0.13
load load-a
load load-b
`
	e2eScenario = `name: ssh-e2e
seed: 42
warmup: 1s
duration: 5s
drain: 5s
workload:
  - {name: puts, kind: put, accounts: 10000, keys: uniform, rate: 200/s, client: quic, value_size: 32}
slo:
  - {metric: lost, max: 0}
  - {metric: duplicated, max: 0}
report:
  formats: [json, md, hlog]
`
)

// TestSSHScriptEndToEnd runs deploy/ssh/cluster.sh up, load and down for
// real, with ssh and scp stubs that run each host in a folder here: three
// nodes on 127.0.0.11-13 on an embedded broker, two workers, the merged
// report. It takes about a minute of both cores, so it runs only with
// RUSTORIUM_DEPLOY_E2E=1.
func TestSSHScriptEndToEnd(t *testing.T) {
	if os.Getenv("RUSTORIUM_DEPLOY_E2E") == "" {
		t.Skip("set RUSTORIUM_DEPLOY_E2E=1 to run deploy/ssh/cluster.sh end to end (about a minute)")
	}
	brokers := kafkatest.Embedded(t)
	dir := t.TempDir()
	bin := buildBinary(t)
	stubs := filepath.Join(dir, "stubs")
	files := map[string]string{
		filepath.Join(stubs, "ssh"): fakeSSH, filepath.Join(stubs, "scp"): fakeSCP,
		filepath.Join(dir, "hosts"): e2eHosts, filepath.Join(dir, "scenario.yaml"): e2eScenario,
	}
	if err := os.MkdirAll(stubs, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, text := range files {
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out")
	env := append(os.Environ(),
		"PATH="+stubs+string(os.PathListSeparator)+os.Getenv("PATH"),
		"FAKE_HOSTS="+filepath.Join(dir, "hosts.d"),
		"BROKERS="+strings.Join(brokers, ","), "BIN="+bin, "OUT="+out, "BIND=addr",
		"SCENARIO="+filepath.Join(dir, "scenario.yaml"), "LEAD=10")
	run := func(action string, timeout time.Duration) {
		t.Helper()
		cmd := exec.Command("bash", "ssh/cluster.sh", filepath.Join(dir, "hosts"), action)
		cmd.Env = env
		done := make(chan struct{})
		var outb []byte
		var err error
		go func() { outb, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(timeout):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("cluster.sh %s: still running after %v\n%s", action, timeout, outb)
		}
		if err != nil {
			t.Fatalf("cluster.sh %s: %v\n%s", action, err, outb)
		}
		t.Logf("cluster.sh %s:\n%s", action, outb)
	}
	t.Cleanup(func() { run("down", time.Minute) })
	run("up", 2*time.Minute)
	run("load", 3*time.Minute)
	for _, f := range []string{"cluster.yaml", "w1/result.json", "w2/result.json", "merged/result.json", "merged/report.md"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "merged", "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"workers": 2`) {
		t.Errorf("merged result.json does not say \"workers\": 2")
	}
}
