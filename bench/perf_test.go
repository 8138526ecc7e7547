package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
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

// TestPerfProfile: perf script's samples become a pprof profile whose
// summary names the innermost frames by their CPU time and every frame of
// a stack once in its cumulative time.
func TestPerfProfile(t *testing.T) {
	p, err := perfProfile(strings.NewReader(perfScript))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sample) != 3 {
		t.Fatalf("%d samples, want 3", len(p.Sample))
	}
	path := filepath.Join(t.TempDir(), "perf.pprof")
	writeProfile(t, p, path)
	s, err := summarize("perf", path)
	if err != nil {
		t.Fatal(err)
	}
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

// TestPerfProfileRejects: what is not perf script's output is an error,
// never a panic or an empty profile.
func TestPerfProfileRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          "",
		"no frames":      "    1000 \n\n",
		"frame first":    "\t  8ea0df main.main\n",
		"bad period":     "  x12 \n\t 1 main.main\n",
		"negative":       "  -5 \n\t 1 main.main\n",
		"default fields": "base  4293 64570.444201:     250689 cpu-clock: \n\t 8ea0df main.main (/bin/x)\n",
	} {
		if _, err := perfProfile(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzPerfProfile: any input gives a valid profile or an error.
func FuzzPerfProfile(f *testing.F) {
	f.Add(perfScript)
	f.Add("    1 \n\t0 a\n\n  2 \n\t1 b+0x1\n\t2\n")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := perfProfile(strings.NewReader(in))
		if err == nil && (len(p.Sample) == 0 || p.CheckValid() != nil) {
			t.Fatalf("accepted %q into an invalid profile", in)
		}
	})
}
