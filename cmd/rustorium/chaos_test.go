package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/reports"
)

// TestChaosTable: a run that lost, duplicated or diverged something, failed
// a proof or could not be done is a FAIL row; a clean one PASS.
func TestChaosTable(t *testing.T) {
	ok := &reports.Result{Checker: reports.Checker{Accepted: 10, Committed: 10, RootsEqual: true}, Workloads: map[string]*reports.WorkloadResult{"w": {Errors: 1, Resent: 2}}}
	lost := &reports.Result{Checker: reports.Checker{Accepted: 10, Committed: 9, Lost: 1, RootsEqual: true}}
	diverged := &reports.Result{Checker: reports.Checker{Accepted: 10, Committed: 10}}
	rows := []chaosRow{{"ok", 1, ok, nil}, {"lost", 2, lost, nil}, {"diverged", 3, diverged, nil}, {"broken", 4, nil, errors.New("no broker")}}
	var b bytes.Buffer
	if err := chaosTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("table:\n%s", b.String())
	}
	for i, want := range []string{"PASS", "FAIL", "FAIL", "error: no broker"} {
		if !strings.Contains(lines[i+1], want) {
			t.Errorf("row %d %q lacks %q", i, lines[i+1], want)
		}
	}
	if _, err := parseSeeds("1, 2,3"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "0", "a", "1,,2"} {
		if _, err := parseSeeds(bad); err == nil {
			t.Errorf("--seeds %q accepted", bad)
		}
	}
}
