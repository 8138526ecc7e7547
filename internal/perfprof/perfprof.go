// Package perfprof records CPU profiles with Linux perf: `perf record -e
// cpu-clock` of this process (and others), converted to a pprof profile of
// cpu nanoseconds by stack. Beside Go's own CPU profile it sees the
// kernel's share, and its samples come from a high-resolution timer per
// thread rather than the scheduler tick, on which Go's profiler samples a
// paced, mostly idle process out of proportion (see DESIGN, "A CPU profile
// of a paced run"). It needs the perf tool in PATH.
package perfprof

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// hz is perf record's sampling rate: cpu-clock samples on a
// high-resolution timer of each thread's CPU time, so a prime rate keeps
// step with no millisecond schedule.
const hz = 997

// MaxData bounds perf.data: perf record stops recording there (perf's
// --max-size), and Stop says so. A sample with its call chain takes about
// 170 bytes (13 MB for 75.8k samples of a saturated node, 2026-12-06), so
// two busy cores at hz fill it in about fifty minutes.
const MaxData = "1G"

// perfStopWait bounds how long perf record may take to write its file once
// interrupted, and perfScriptWait how long perf script may take to read it:
// it read 75.8k samples in 0.37 s here, so a full MaxData (about six
// million samples) in about half a minute.
const (
	perfStopWait   = 30 * time.Second
	perfScriptWait = 5 * time.Minute
)

// ErrNoPerf is why Start recorded nothing: the perf tool is not installed
// (Debian: linux-perf) or not in PATH.
var ErrNoPerf = errors.New("perf not found in PATH (install linux-perf, or linux-tools for your kernel)")

// Recorder is a running `perf record` of this process (and the run's
// others), into dir/perf.data. Stop ends it.
type Recorder struct {
	bin    string
	data   string
	names  map[int]string        // by pid, when it records more than this process
	nodes  func() map[string]int // the node processes now, by name (nil: none)
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan error // perf record's exit, once
}

// self names this process in a profile of several.
const self = "harness"

// Start starts sampling the threads of this process and of others (nodes:
// by name, their pids; nil: none) into dir/perf.data, kernel stacks too
// where perf_event_paranoid allows. perf follows the processes this one
// starts meanwhile (a node's restart), and Stop names them from nodes as
// they are then. With others, each stack ends in a frame "[process NAME]"
// ("harness" for this one).
func Start(dir string, nodes func() map[string]int) (*Recorder, error) {
	bin, err := exec.LookPath("perf")
	if err != nil {
		return nil, ErrNoPerf
	}
	r := &Recorder{bin: bin, data: filepath.Join(dir, "perf.data"), nodes: nodes, done: make(chan error, 1)}
	pids := []string{strconv.Itoa(os.Getpid())}
	if procs := r.procs(); len(procs) > 0 {
		r.names = map[int]string{os.Getpid(): self}
		for name, pid := range procs {
			r.names[pid] = name
			pids = append(pids, strconv.Itoa(pid))
		}
	}
	r.cmd = exec.Command(bin, "record", "-e", "cpu-clock", "-F", strconv.Itoa(hz), "-g", "--max-size="+MaxData,
		"-p", strings.Join(pids, ","), "-o", r.data)
	r.cmd.Stderr = &r.stderr
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting perf record: %w", err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	return r, nil
}

// procs is the node processes now (none without nodes).
func (r *Recorder) procs() map[string]int {
	if r.nodes == nil {
		return nil
	}
	return r.nodes()
}

// Stop interrupts perf record, waits for its file and converts it to a
// pprof profile at dir/perf.pprof (cpu nanoseconds by stack, function names
// only), whose path it returns, with a note when the recording ended before
// Stop (at MaxData, or interrupted with this process's group): the profile
// then covers what came before. perf record also stops by itself when the
// processes it records exit. Call it once.
func (r *Recorder) Stop(ctx context.Context) (path, note string, err error) {
	select {
	case err := <-r.done:
		note = fmt.Sprintf("perf record ended before the profile's end (%v): %s", err, lastLine(r.stderr.String()))
	default:
		_ = r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.done: // an interrupted perf record exits 130; its file says whether it worked
		case <-time.After(perfStopWait):
			_ = r.cmd.Process.Kill()
			<-r.done
			return "", "", fmt.Errorf("perf record did not stop within %v", perfStopWait)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, perfScriptWait)
	defer cancel()
	fields := "period,ip,sym"
	if r.names != nil {
		fields = "pid," + fields
		for name, pid := range r.procs() { // a node restarted since the start
			if _, ok := r.names[pid]; !ok {
				r.names[pid] = name
			}
		}
	}
	script := exec.CommandContext(ctx, r.bin, "script", "-i", r.data, "-F", fields)
	var stderr bytes.Buffer
	script.Stderr = &stderr
	out, err := script.StdoutPipe()
	if err != nil {
		return "", "", err
	}
	if err := script.Start(); err != nil {
		return "", "", fmt.Errorf("perf script: %w", err)
	}
	prof, perr := Parse(out, r.names)
	_, _ = io.Copy(io.Discard, out)
	if err := script.Wait(); err != nil {
		return "", "", fmt.Errorf("perf script: %w: %s %s", err, strings.TrimSpace(stderr.String()), strings.TrimSpace(r.stderr.String()))
	}
	if perr != nil {
		return "", "", perr
	}
	path = filepath.Join(filepath.Dir(r.data), "perf.pprof")
	f, err := os.Create(path)
	if err != nil {
		return "", "", err
	}
	if err := prof.Write(f); err != nil {
		f.Close()
		return "", "", err
	}
	return path, note, f.Close()
}

// lastLine is s's last non-empty line (perf's last message).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// Parse reads `perf script -F period,ip,sym` (each sample a line with
// its period in nanoseconds, then one line per frame, innermost first: an
// address and a symbol; a blank line after each) into a pprof profile of
// samples and cpu nanoseconds by stack (each distinct stack one sample,
// the samples it had counted in). Frames perf could not name (a
// binary without its symbol table: go build -ldflags=-s, as go test links)
// count as "[unknown]"; a sample without frames is dropped. With names,
// the input is `-F pid,period,ip,sym` (a sample's line starts with its
// process id) and each stack gets an outermost frame "[process NAME]"
// (the pid when names lacks it), so the profile splits by process.
func Parse(r io.Reader, names map[int]string) (*profile.Profile, error) {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     int64(time.Second / hz),
	}
	locs := map[string]*profile.Location{}
	loc := func(name string) *profile.Location {
		if l := locs[name]; l != nil {
			return l
		}
		fn := &profile.Function{ID: uint64(len(p.Function) + 1), Name: name, SystemName: name}
		l := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: fn}}}
		p.Function, p.Location = append(p.Function, fn), append(p.Location, l)
		locs[name] = l
		return l
	}
	var (
		period int64
		proc   string // the sample's "[process NAME]", with names
		stack  []*profile.Location
		header bool
		// samples by stack (their locations' ids): a profile holds each
		// distinct stack once, however long the recording
		byStack = map[string]*profile.Sample{}
		key     []byte
	)
	flush := func() {
		if header && len(stack) > 0 {
			if proc != "" {
				stack = append(stack, loc(proc))
			}
			key = key[:0]
			for _, l := range stack {
				key = strconv.AppendUint(key, l.ID, 36)
				key = append(key, ' ')
			}
			if s := byStack[string(key)]; s != nil {
				s.Value[0]++
				s.Value[1] += period
			} else {
				s = &profile.Sample{Location: stack, Value: []int64{1, period}}
				byStack[string(key)] = s
				p.Sample = append(p.Sample, s)
			}
		}
		header, stack = false, nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == '\t':
			f := strings.Fields(line)
			if !header || len(f) == 0 {
				return nil, fmt.Errorf("perf script line %d: a frame outside a sample: %q", n, line)
			}
			fn := "[unknown]"
			if len(f) > 1 && f[1] != "[unknown]" {
				fn = strings.Join(f[1:], " ")
				if i := strings.LastIndex(fn, "+0x"); i > 0 {
					fn = fn[:i]
				}
				fn = strings.TrimSuffix(fn, ".abi0")
			}
			stack = append(stack, loc(fn))
		default:
			flush()
			f := strings.Fields(line)
			want := 1
			if names != nil {
				want = 2
			}
			if len(f) != want {
				return nil, fmt.Errorf("perf script line %d: want a sample's %d fields, got %q", n, want, line)
			}
			v, err := strconv.ParseInt(f[want-1], 10, 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("perf script line %d: want a sample's period, got %q", n, line)
			}
			if names != nil {
				pid, err := strconv.Atoi(f[0])
				if err != nil || pid <= 0 {
					return nil, fmt.Errorf("perf script line %d: want a sample's process id, got %q", n, line)
				}
				name, ok := names[pid]
				if !ok {
					name = f[0]
				}
				proc = processFrame(name)
			}
			period, header = v, true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading perf script: %w", err)
	}
	flush()
	if len(p.Sample) == 0 {
		return nil, errors.New("perf recorded no samples")
	}
	return p, p.CheckValid()
}

// processFrame is the outermost frame Parse gives the stacks of the process
// named name, when it is given names: "[process NAME]".
func processFrame(name string) string { return "[process " + name + "]" }

// IsProcessFrame reports whether fn is the outermost frame Parse gives the
// stacks of a process when it is given names, "[process NAME]".
func IsProcessFrame(fn string) bool {
	return strings.HasPrefix(fn, "[process ") && strings.HasSuffix(fn, "]")
}
