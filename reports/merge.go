package reports

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// TotalsFile is the report folder's HdrHistogram log of whole-run
// histograms, written with the hlog format: for every workload its stages'
// corrected and uncorrected histograms and its schedule lag, one entry each
// spanning the measured phase, tagged WORKLOAD/STAGE.corrected,
// WORKLOAD/STAGE.uncorrected and WORKLOAD/lag (the workload's name
// query-escaped: a tag holds no spaces or commas). With the per-workload
// interval logs it makes a folder mergeable: Merge adds these histograms,
// bucket by bucket.
const TotalsFile = "totals.hlog"

// ErrMerge is returned by Merge for folders that are not the workers of one
// split load.
var ErrMerge = errors.New("reports: cannot merge")

// writeTotals writes TotalsFile.
func writeTotals(dir string, snap *Snapshot) (string, error) {
	var buf bytes.Buffer
	lw := hdr.NewHistogramLogWriter(&buf)
	startMs := snap.Start.UnixMilli()
	lw.SetBaseTime(startMs)
	_ = lw.OutputLogFormatVersion()
	_ = lw.OutputComment("[Rustorium whole-run histograms; values in microseconds; tags WORKLOAD/STAGE.corrected, WORKLOAD/STAGE.uncorrected, WORKLOAD/lag]")
	_ = lw.OutputStartTime(startMs)
	_ = lw.OutputBaseTime(startMs)
	_ = lw.OutputLegend()
	endMs := snap.Taken.UnixMilli()
	put := func(h *hdr.Histogram, tag string) error {
		if h == nil || h.TotalCount() == 0 {
			return nil
		}
		h = h.Clone()
		h.SetTag(tag)
		h.SetStartTimeMs(startMs)
		h.SetEndTimeMs(max(endMs, startMs))
		return lw.OutputIntervalHistogram(h)
	}
	for _, w := range snap.Workloads {
		name := url.QueryEscape(w.Name)
		if err := put(w.Lag, name+"/lag"); err != nil {
			return "", fmt.Errorf("reports: totals: %w", err)
		}
		for _, st := range Stages() {
			s := w.Stages[st]
			if err := put(s.Corrected, name+"/"+HLogTag(st, true)); err != nil {
				return "", fmt.Errorf("reports: totals: %w", err)
			}
			if err := put(s.Uncorrected, name+"/"+HLogTag(st, false)); err != nil {
				return "", fmt.Errorf("reports: totals: %w", err)
			}
		}
	}
	return TotalsFile, writeFile(dir, TotalsFile, buf.Bytes())
}

// Merge combines the report folders of the workers of one split load
// (rustorium loadgen --worker I/N, every worker's folder) into the Result
// and Snapshot of one run that sent it all: histograms added, not averaged
// (a merged percentile is that of one histogram holding every worker's
// samples), per-interval series aligned on wall-clock intervals, counts and
// errors summed, the checker's counts combined, each worker's environment
// kept. Each worker timed only its own sends, so clock skew between hosts
// shifts the series' alignment, never a latency. The caller evaluates the
// SLOs and writes the folder. ErrMerge: the folders are not all the workers
// of one load.
func Merge(dirs []string) (*Result, *Snapshot, error) {
	workers, err := readWorkers(dirs)
	if err != nil {
		return nil, nil, err
	}
	m := newMerger(workers)
	for _, w := range workers {
		if err := m.add(w); err != nil {
			return nil, nil, err
		}
	}
	return m.result(), m.snap, nil
}

// worker is one worker's report folder.
type worker struct {
	dir   string
	res   *Result
	index int // 1-based
}

func readWorkers(dirs []string) ([]worker, error) {
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%w: no folders", ErrMerge)
	}
	var out []worker
	seen := map[int]string{}
	for _, dir := range dirs {
		res, err := ReadJSON(filepath.Join(dir, ResultFile))
		if err != nil {
			return nil, err
		}
		i, n, ok := parseWorker(res.Worker)
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: %s is not a worker's report (no \"worker\": I/N in its result.json)", ErrMerge, dir)
		case n != len(dirs):
			return nil, fmt.Errorf("%w: %s is worker %s, but %d folders were given: merge every worker of the load, once", ErrMerge, dir, res.Worker, len(dirs))
		case seen[i] != "":
			return nil, fmt.Errorf("%w: %s and %s are both worker %s", ErrMerge, seen[i], dir, res.Worker)
		}
		seen[i] = dir
		if len(out) > 0 {
			if f := out[0].res; res.Scenario != f.Scenario || res.Seed != f.Seed || res.IntervalS != f.IntervalS {
				return nil, fmt.Errorf("%w: %s ran %s (seed %d), %s ran %s (seed %d): not one load", ErrMerge, out[0].dir, f.Scenario, f.Seed, dir, res.Scenario, res.Seed)
			}
		}
		out = append(out, worker{dir: dir, res: res, index: i})
	}
	slices.SortFunc(out, func(a, b worker) int { return a.index - b.index })
	return out, nil
}

// parseWorker parses Result.Worker, "I/N".
func parseWorker(s string) (i, n int, ok bool) {
	a, b, found := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	return i, n, found && err1 == nil && err2 == nil && i >= 1 && i <= n
}

// merger accumulates the workers into one Snapshot.
type merger struct {
	workers []worker
	snap    *Snapshot
	end     time.Time
	byName  map[string]*WorkloadSnapshot
	resent  map[string]int64 // by workload: not in a Snapshot
}

func newMerger(workers []worker) *merger {
	m := &merger{workers: workers, byName: map[string]*WorkloadSnapshot{}, resent: map[string]int64{}}
	start, end := workers[0].res.Start, workers[0].res.End
	for _, w := range workers[1:] {
		start = minTime(start, w.res.Start)
		end = maxTime(end, w.res.End)
	}
	interval := time.Duration(workers[0].res.IntervalS * float64(time.Second))
	if interval <= 0 {
		interval = time.Second
	}
	m.snap = &Snapshot{Start: start, Interval: interval, Taken: end}
	m.end = end
	return m
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// workload returns the merged snapshot of the named workload.
func (m *merger) workload(name string) *WorkloadSnapshot {
	ws := m.byName[name]
	if ws == nil {
		ws = &WorkloadSnapshot{Name: name, ErrorsByKind: map[string]int64{}, Lag: NewHistogram()}
		for st := range ws.Stages {
			ws.Stages[st] = StageSnapshot{Corrected: NewHistogram(), Uncorrected: NewHistogram()}
		}
		m.byName[name] = ws
		m.snap.Workloads = append(m.snap.Workloads, ws)
	}
	return ws
}

// maxMergedIntervals bounds the merged series, whatever the logs say.
const maxMergedIntervals = 1 << 20

// interval returns the merged interval that holds the wall-clock instant
// at (completions may fall after the measured window, as in one run), or
// nil when at is before the merged start or absurdly far after it.
func (m *merger) interval(ws *WorkloadSnapshot, at time.Time) *IntervalSnapshot {
	d := at.Sub(m.snap.Start)
	if d < 0 || d/m.snap.Interval >= maxMergedIntervals {
		return nil
	}
	i := int(d / m.snap.Interval)
	for len(ws.Intervals) <= i {
		ws.Intervals = append(ws.Intervals, IntervalSnapshot{Start: time.Duration(len(ws.Intervals)) * m.snap.Interval})
	}
	return &ws.Intervals[i]
}

// add merges one worker's folder.
func (m *merger) add(w worker) error {
	if err := m.addTotals(w); err != nil {
		return err
	}
	names := make([]string, 0, len(w.res.Workloads))
	for name := range w.res.Workloads {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		wr := w.res.Workloads[name]
		ws := m.workload(name)
		ws.Sent += wr.Sent
		ws.Errors += wr.Errors
		ws.Discarded += wr.Discarded
		ws.Clamped += wr.Clamped
		m.resent[name] += wr.Resent
		for k, v := range wr.ErrorsByKind {
			ws.ErrorsByKind[k] += v
		}
		for _, ir := range wr.Series {
			// Interval starts are whole intervals from the worker's start:
			// take the middle, so a start a few ms off picks the same one.
			at := w.res.Start.Add(time.Duration((ir.T + w.res.IntervalS/2) * float64(time.Second)))
			if iv := m.interval(ws, at); iv != nil {
				iv.Sent += ir.Sent
				iv.Errors += ir.Errors
			}
		}
		if err := m.addIntervals(w, ws); err != nil {
			return err
		}
	}
	return nil
}

// addTotals adds the worker's whole-run histograms.
func (m *merger) addTotals(w worker) error {
	return readLog(filepath.Join(w.dir, TotalsFile), func(h *hdr.Histogram) error {
		escaped, what, ok := strings.Cut(h.Tag(), "/")
		name, err := url.QueryUnescape(escaped)
		if !ok || err != nil {
			return fmt.Errorf("tag %q is not WORKLOAD/…", h.Tag())
		}
		ws := m.workload(name)
		if what == "lag" {
			ws.Lag.Merge(h)
			return nil
		}
		st, corrected, err := parseHLogTag(what)
		if err != nil {
			return err
		}
		if corrected {
			ws.Stages[st].Corrected.Merge(h)
		} else {
			ws.Stages[st].Uncorrected.Merge(h)
		}
		return nil
	})
}

// addIntervals adds the worker's interval histograms of one workload.
func (m *merger) addIntervals(w worker, ws *WorkloadSnapshot) error {
	path := filepath.Join(w.dir, HLogName(ws.Name))
	return readLog(path, func(h *hdr.Histogram) error {
		st, corrected, err := parseHLogTag(h.Tag())
		if err != nil {
			return err
		}
		mid := time.UnixMilli(h.StartTimeMs()).Add(m.snap.Interval / 2)
		iv := m.interval(ws, mid)
		if iv == nil {
			return nil
		}
		p := &iv.Stages[st]
		if p.Corrected == nil {
			p.Corrected, p.Uncorrected = newPacked(), newPacked()
		}
		if corrected {
			p.Corrected.MergeFrom(h)
		} else {
			p.Uncorrected.MergeFrom(h)
		}
		return nil
	})
}

// parseHLogTag parses HLogTag's "STAGE.corrected" or "STAGE.uncorrected".
func parseHLogTag(tag string) (Stage, bool, error) {
	name, view, _ := strings.Cut(tag, ".")
	st, err := ParseStage(name)
	if err != nil || (view != "corrected" && view != "uncorrected") {
		return 0, false, fmt.Errorf("tag %q is not STAGE.corrected or STAGE.uncorrected", tag)
	}
	return st, view == "corrected", nil
}

// readLog calls each for every histogram of an HdrHistogram log file.
func readLog(path string, each func(*hdr.Histogram) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %w (the workers must write the hlog format)", ErrMerge, err)
	}
	defer f.Close()
	r := hdr.NewHistogramLogReader(io.LimitReader(f, MaxResultSize))
	for {
		h, err := r.NextIntervalHistogram()
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMerge, path, err)
		}
		if h == nil {
			return nil
		}
		if err := each(h); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMerge, path, err)
		}
	}
}

// result summarises the merged snapshot like one run's.
func (m *merger) result() *Result {
	first := m.workers[0].res
	res := NewResult(m.snap, m.end.Sub(m.snap.Start))
	res.Scenario, res.Seed, res.Description = first.Scenario, first.Seed, first.Description
	res.WarmupS, res.Resolved = first.WarmupS, first.Resolved
	res.Environment = first.Environment
	res.Workers = len(m.workers)
	for name, w := range res.Workloads {
		if fw := first.Workloads[name]; fw != nil {
			w.Kind, w.Client = fw.Kind, fw.Client
		}
		w.Resent = m.resent[name]
	}
	c := &res.Checker
	c.RootsEqual = true
	c.Notes = append(c.Notes, fmt.Sprintf("merged from %d workers' report folders", len(m.workers)))
	for _, w := range m.workers {
		res.WorkerEnvironments = append(res.WorkerEnvironments, w.res.Environment)
		wc := w.res.Checker
		c.Accepted += wc.Accepted
		c.Committed += wc.Committed
		c.Lost += wc.Lost
		c.Duplicated += wc.Duplicated
		c.Divergent += wc.Divergent
		c.ProofsChecked += wc.ProofsChecked
		c.ProofsFailed += wc.ProofsFailed
		c.ReadsChecked += wc.ReadsChecked
		c.ReadsOffHistory += wc.ReadsOffHistory
		c.RootsEqual = c.RootsEqual && wc.RootsEqual
		c.RootsUnchecked = c.RootsUnchecked || wc.RootsUnchecked
		if wc.BalancesConserved != nil {
			ok := *wc.BalancesConserved && (c.BalancesConserved == nil || *c.BalancesConserved)
			c.BalancesConserved = &ok
		}
		for _, n := range wc.Notes {
			c.Notes = append(c.Notes, fmt.Sprintf("worker %s: %s", w.res.Worker, n))
		}
	}
	return res
}
