package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/rustorium/rustorium/internal/perfprof"
	"github.com/rustorium/rustorium/reports"
)

func writeProfile(t *testing.T, p *profile.Profile, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// summarizeScript parses perf script output (perfprof.Parse, with names
// or without), writes it as perf.pprof and summarizes that as a run does.
func summarizeScript(t *testing.T, script string, names map[int]string) reports.ProfileSummary {
	t.Helper()
	p, err := perfprof.Parse(strings.NewReader(script), names)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "perf.pprof")
	writeProfile(t, p, path)
	s, err := SummarizeProfile("perf", path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// perfScript is `perf script -F period,ip,sym` output as perf 6.1 writes
// it: a kernel stack under a Go one, an unnamed frame, ABI suffixes.
const perfScript = `    250689 
	ffffffff81737272 __x64_sys_fdatasync
	ffffffff81000130 entry_SYSCALL_64_after_hwframe
	            e60e internal/runtime/syscall/linux.Syscall6
	          4f19ea golang.org/x/sys/unix.Fdatasync+0x2a
	          7c3746 github.com/cockroachdb/pebble/v2/record.(*LogWriter).syncWithLatency+0x66

    1003000 
	          8ea0df github.com/rustorium/rustorium/node/merkle/poseidon.permute3asm.abi0
	          7c3746 github.com/cockroachdb/pebble/v2/record.(*LogWriter).syncWithLatency

    500000 
	               0 [unknown]
	          8ea0df github.com/rustorium/rustorium/node/merkle/poseidon.permute3asm.abi0+0x3f

`

// TestPerfProfile: perf script's samples (perfprof.Parse) become a pprof
// profile whose summary names the innermost frames by their CPU time and
// every frame of a stack once in its cumulative time.
func TestPerfProfile(t *testing.T) {
	s := summarizeScript(t, perfScript, nil)
	if s.Unit != "cpu (nanoseconds)" || s.Total != 250689+1003000+500000 {
		t.Fatalf("unit %q total %d", s.Unit, s.Total)
	}
	flat := map[string]int64{}
	for _, f := range s.TopFlat {
		flat[f.Func] = f.Flat
	}
	cum := map[string]int64{}
	for _, f := range s.TopCum {
		cum[f.Func] = f.Cum
	}
	const poseidon = "github.com/rustorium/rustorium/node/merkle/poseidon.permute3asm"
	const wal = "github.com/cockroachdb/pebble/v2/record.(*LogWriter).syncWithLatency"
	if flat["__x64_sys_fdatasync"] != 250689 || flat[poseidon] != 1003000 || flat["[unknown]"] != 500000 {
		t.Fatalf("flat %v", flat)
	}
	if cum[wal] != 250689+1003000 || cum[poseidon] != 1003000+500000 || cum["golang.org/x/sys/unix.Fdatasync"] != 250689 {
		t.Fatalf("cum %v", cum)
	}
}

// TestPerfProfileProcesses: with the run's processes named, each stack
// ends in its process, so the profile splits by process; a process the
// names lack is named by its id.
func TestPerfProfileProcesses(t *testing.T) {
	const script = `  4242    1000000 
	          8ea0df main.harness
	           1 runtime.goexit

  5151    3000000 
	          8ea0df github.com/rustorium/rustorium/node/merkle/poseidon.permute3asm.abi0
	           1 runtime.goexit

   777     500000 
	          8ea0df main.main

`
	s := summarizeScript(t, script, map[int]string{4242: "harness", 5151: "node-1"})
	cum := map[string]int64{}
	for _, f := range s.TopCum {
		cum[f.Func] = f.Cum
	}
	if cum["[process harness]"] != 1000000 || cum["[process node-1]"] != 3000000 || cum["[process 777]"] != 500000 || cum["runtime.goexit"] != 4000000 {
		t.Fatalf("cum %v", cum)
	}
	for _, f := range s.TopFlat {
		if strings.HasPrefix(f.Func, "[process") && f.Flat != 0 {
			t.Fatalf("a process is a stack's outermost frame, never its own cost: %+v", f)
		}
	}
}

// TestPerfProfileEveryProcess: a process cluster's perf summary lists every
// process's share, also one below the top functions (a node restarted late
// in the run), after them.
func TestPerfProfileEveryProcess(t *testing.T) {
	var script strings.Builder
	for i := range profileTop + 5 {
		fmt.Fprintf(&script, "  4242    1000000 \n\t          8ea0df main.f%d\n\n", i)
	}
	script.WriteString("  5151    1000 \n\t          8ea0df main.late\n\n")
	s := summarizeScript(t, script.String(), map[int]string{4242: "harness", 5151: "node-1"})
	last := s.TopCum[len(s.TopCum)-1]
	if len(s.TopCum) != profileTop+1 || last.Func != "[process node-1]" || last.Cum != 1000 {
		t.Fatalf("%d functions by cumulative cost, the last %+v", len(s.TopCum), last)
	}
	if len(s.TopFlat) != profileTop {
		t.Fatalf("%d functions by flat cost", len(s.TopFlat))
	}
}
