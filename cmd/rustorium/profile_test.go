package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartProfile: --profile takes the pkg/profile kinds and perf, each
// writing under its folder when stopped, a cpu profile saying how its
// samples split among the parts of the system; it refuses other names.
func TestStartProfile(t *testing.T) {
	kinds := map[string]string{"cpu": "cpu.pprof", "mem": "mem.pprof", "perf": "perf.pprof"}
	if _, err := exec.LookPath("perf"); err != nil {
		delete(kinds, "perf")
		if _, err := startProfile("perf", t.TempDir(), io.Discard); err == nil || !strings.Contains(err.Error(), "perf not found") {
			t.Fatalf("--profile perf without perf: %v", err)
		}
	}
	for kind, file := range kinds {
		dir := t.TempDir()
		var said strings.Builder
		stop, err := startProfile(kind, dir, &said)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if kind == "perf" {
			time.Sleep(300 * time.Millisecond) // perf attaches
		}
		for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); { // some CPU to sample
		}
		stop()
		if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if kind == "cpu" && !strings.Contains(said.String(), "--profile cpu ("+filepath.Join(dir, file)+", the whole process): ") || kind == "mem" && said.Len() > 0 {
			t.Fatalf("%s: said %q", kind, said.String())
		}
	}
	if _, err := startProfile("pref", t.TempDir(), io.Discard); err == nil || !strings.Contains(err.Error(), "perf") {
		t.Fatalf("--profile pref: %v", err)
	}
}
