package reports

import (
	"math/bits"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Geometry of every histogram the package records: microseconds from 1 µs to
// one hour, 3 significant digits (0.1% resolution).
const (
	LowestMicros      = 1
	HighestMicros     = int64(time.Hour / time.Microsecond)
	SignificantDigits = 3
)

// NewHistogram returns an empty histogram with the package's geometry.
func NewHistogram() *hdr.Histogram { return hdr.New(LowestMicros, HighestMicros, SignificantDigits) }

func newPacked() *hdr.PackedHistogram {
	return hdr.NewPacked(LowestMicros, HighestMicros, SignificantDigits)
}

// RecorderOptions configures a Recorder.
type RecorderOptions struct {
	// Start is the start of measuring. Anything intended to be sent before it
	// is warmup: not recorded, only counted as discarded. Zero means the time
	// NewRecorder is called.
	Start time.Time
	// Interval is the length of the interval histograms (the .hlog and the
	// per-interval series). Zero means 1s.
	Interval time.Duration
	// MaxIntervals bounds the intervals kept per workload; later recordings
	// still count in the totals. Zero means 3600.
	MaxIntervals int
	// Shards is how many independently locked shards each workload spreads
	// its recordings over. Zero means GOMAXPROCS rounded up to a power of
	// two, at most 16.
	Shards int
}

// Recorder collects latency histograms and counters for the workloads of one
// run. All methods are safe for concurrent use.
type Recorder struct {
	opts RecorderOptions

	mu        sync.Mutex
	workloads map[string]*WorkloadRecorder
	order     []string
}

// NewRecorder returns an empty Recorder.
func NewRecorder(opts RecorderOptions) *Recorder {
	if opts.Start.IsZero() {
		opts.Start = time.Now()
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.MaxIntervals <= 0 {
		opts.MaxIntervals = 3600
	}
	if opts.Shards <= 0 {
		opts.Shards = min(runtime.GOMAXPROCS(0), 16)
	}
	opts.Shards = 1 << bits.Len(uint(opts.Shards-1)) // round up to a power of two
	return &Recorder{opts: opts, workloads: map[string]*WorkloadRecorder{}}
}

// Start returns the start of measuring.
func (r *Recorder) Start() time.Time { return r.opts.Start }

// Workload returns the recorder of the named workload, creating it on first
// use. Keep the result: this call takes a lock, the WorkloadRecorder's methods
// mostly do not contend.
func (r *Recorder) Workload(name string) *WorkloadRecorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w, ok := r.workloads[name]; ok {
		return w
	}
	w := &WorkloadRecorder{
		name:         name,
		start:        r.opts.Start,
		interval:     r.opts.Interval,
		maxIntervals: r.opts.MaxIntervals,
		mask:         uint64(r.opts.Shards - 1),
		shift:        uint(64 - bits.Len(uint(r.opts.Shards-1))),
		stages:       make([][NumStages]stageShard, r.opts.Shards),
		sends:        make([]sendShard, r.opts.Shards),
		errKinds:     map[string]int64{},
	}
	r.workloads[name] = w
	r.order = append(r.order, name)
	return w
}

// WorkloadRecorder records one workload. Its methods are safe for
// concurrent use and cheap: a hash of the intended send time picks a shard,
// and each (shard, stage) pair has its own lock.
type WorkloadRecorder struct {
	name         string
	start        time.Time
	interval     time.Duration
	maxIntervals int
	mask         uint64
	shift        uint

	stages [][NumStages]stageShard
	sends  []sendShard

	discarded atomic.Int64

	errMu    sync.Mutex
	errKinds map[string]int64
}

// stageShard holds one stage's histograms in one shard. The current
// interval records into dense histograms (as cheap as the totals); when a
// later interval starts they are folded into sparse packed ones, which is
// what the finished intervals keep.
type stageShard struct {
	mu          sync.Mutex
	corrected   *hdr.Histogram // nil until the first recording
	uncorrected *hdr.Histogram
	cur         int            // current interval number, -1 before the first
	curCor      *hdr.Histogram // the current interval, dense
	curUnc      *hdr.Histogram
	intervals   []intervalPair // finished intervals (and late arrivals), by number
	clamped     int64
	_           [40]byte // keep neighbouring locks off one cache line
}

// rotate folds the current dense interval into the packed list.
func (s *stageShard) rotate() {
	if s.cur < 0 || s.curCor.TotalCount() == 0 {
		return
	}
	p := s.pair(s.cur)
	p.corrected.MergeFrom(s.curCor)
	p.uncorrected.MergeFrom(s.curUnc)
	s.curCor.Reset()
	s.curUnc.Reset()
}

// pair returns the packed histograms of interval i, creating them.
func (s *stageShard) pair(i int) *intervalPair {
	for len(s.intervals) <= i {
		s.intervals = append(s.intervals, intervalPair{})
	}
	p := &s.intervals[i]
	if p.corrected == nil {
		p.corrected, p.uncorrected = newPacked(), newPacked()
	}
	return p
}

type intervalPair struct {
	corrected, uncorrected *hdr.PackedHistogram
}

// sendShard holds send-side counters in one shard.
type sendShard struct {
	mu      sync.Mutex
	lag     *hdr.Histogram
	sent    int64
	errors  int64
	perSent []int64 // by interval number
	perErr  []int64
	clamped int64
	_       [40]byte
}

// Name returns the workload's name.
func (w *WorkloadRecorder) Name() string { return w.name }

func (w *WorkloadRecorder) shard(intended time.Time) int {
	if w.mask == 0 {
		return 0
	}
	h := uint64(intended.UnixNano()) * 0x9E3779B97F4A7C15 // Fibonacci hashing
	return int(h >> w.shift & w.mask)
}

// micros converts d to whole microseconds clamped to the histogram range,
// reporting whether it had to clamp from above.
func micros(d time.Duration) (int64, bool) {
	us := int64(d / time.Microsecond)
	if us < 0 {
		return 0, false
	}
	if us > HighestMicros {
		return HighestMicros, true
	}
	return us, false
}

func (w *WorkloadRecorder) intervalOf(t time.Time) int {
	d := t.Sub(w.start)
	if d < 0 {
		return 0
	}
	i := int64(d / w.interval)
	if i >= int64(w.maxIntervals) {
		return -1
	}
	return int(i)
}

// Record records that the transaction intended to be sent at intended, and
// actually sent at sent, reached stage at done: corrected latency done −
// intended, uncorrected done − sent. For closed-loop sends pass intended ==
// sent. Transactions intended before the start of measuring are discarded.
// Latencies above an hour are clamped and counted.
func (w *WorkloadRecorder) Record(stage Stage, intended, sent, done time.Time) {
	w.record(stage, intended, sent, done, 0)
}

// RecordExpected records a closed-loop send (no schedule: intended = sent)
// that reached stage at done, given the loop's expected interval between
// sends. The uncorrected histogram gets done − sent once; the corrected one
// gets HdrHistogram's expected-interval correction: for a latency L above
// expected it also records L − expected, L − 2·expected, … (the sends a
// steady client would have made during the stall). expected <= 0 records
// like Record.
func (w *WorkloadRecorder) RecordExpected(stage Stage, sent, done time.Time, expected time.Duration) {
	w.record(stage, sent, sent, done, expected)
}

func (w *WorkloadRecorder) record(stage Stage, intended, sent, done time.Time, expected time.Duration) {
	if int(stage) >= NumStages {
		return
	}
	if intended.Before(w.start) {
		w.discarded.Add(1)
		return
	}
	cor, c1 := micros(done.Sub(intended))
	unc, c2 := micros(done.Sub(sent))
	iv := w.intervalOf(done)
	s := &w.stages[w.shard(intended)][stage]
	s.mu.Lock()
	if s.corrected == nil {
		s.corrected, s.uncorrected = NewHistogram(), NewHistogram()
		s.curCor, s.curUnc = NewHistogram(), NewHistogram()
		s.cur = -1
	}
	exp := int64(expected / time.Microsecond)
	recordCor := func(h *hdr.Histogram) {
		if exp > 0 {
			_ = h.RecordCorrectedValue(cor, exp)
		} else {
			_ = h.RecordValue(cor) // in range by construction
		}
	}
	recordCor(s.corrected)
	_ = s.uncorrected.RecordValue(unc)
	if c1 || c2 {
		s.clamped++
	}
	switch {
	case iv < 0: // past MaxIntervals: totals only
	case iv == s.cur:
		recordCor(s.curCor)
		_ = s.curUnc.RecordValue(unc)
	case iv > s.cur:
		s.rotate()
		s.cur = iv
		recordCor(s.curCor)
		_ = s.curUnc.RecordValue(unc)
	default: // a late completion for an earlier interval: corrected as the totals are
		p := s.pair(iv)
		if exp > 0 {
			_ = p.corrected.RecordCorrectedValue(cor, exp)
		} else {
			_ = p.corrected.RecordValue(cor)
		}
		_ = p.uncorrected.RecordValue(unc)
	}
	s.mu.Unlock()
}

// Sent records that a transaction intended for intended went out at actual:
// it counts the send and records the schedule lag actual − intended.
func (w *WorkloadRecorder) Sent(intended, actual time.Time) {
	if intended.Before(w.start) {
		w.discarded.Add(1)
		return
	}
	lag, clamped := micros(actual.Sub(intended))
	iv := w.intervalOf(actual)
	s := &w.sends[w.shard(intended)]
	s.mu.Lock()
	if s.lag == nil {
		s.lag = NewHistogram()
	}
	_ = s.lag.RecordValue(lag)
	s.sent++
	if clamped {
		s.clamped++
	}
	bump(&s.perSent, iv)
	s.mu.Unlock()
}

// Error records a failed transaction (intended for intended, failed at at)
// under a short kind such as "timeout" or "rejected".
func (w *WorkloadRecorder) Error(kind string, intended, at time.Time) {
	if intended.Before(w.start) {
		w.discarded.Add(1)
		return
	}
	iv := w.intervalOf(at)
	s := &w.sends[w.shard(intended)]
	s.mu.Lock()
	s.errors++
	bump(&s.perErr, iv)
	s.mu.Unlock()
	w.errMu.Lock()
	w.errKinds[kind]++
	w.errMu.Unlock()
}

// Snapshot is a frozen, merged copy of a Recorder's data. Its histograms are
// its own: later recordings do not change them.
type Snapshot struct {
	Start     time.Time     // start of measuring
	Interval  time.Duration // length of each interval
	Taken     time.Time     // when the snapshot was taken
	Workloads []*WorkloadSnapshot
}

// Workload returns the named workload's snapshot, or nil.
func (s *Snapshot) Workload(name string) *WorkloadSnapshot {
	for _, w := range s.Workloads {
		if w.Name == name {
			return w
		}
	}
	return nil
}

// WorkloadSnapshot is one workload's merged data.
type WorkloadSnapshot struct {
	Name         string
	Sent         int64
	Errors       int64
	ErrorsByKind map[string]int64
	Discarded    int64 // warmup records and sends, not counted anywhere else
	Clamped      int64 // latencies above an hour, recorded as an hour
	Lag          *hdr.Histogram
	Stages       [NumStages]StageSnapshot
	Intervals    []IntervalSnapshot
}

// StageSnapshot holds one stage's histograms; both are empty (never nil)
// when nothing reached the stage.
type StageSnapshot struct {
	Corrected   *hdr.Histogram
	Uncorrected *hdr.Histogram
}

// IntervalSnapshot is one interval of a workload, by completion time.
type IntervalSnapshot struct {
	Start  time.Duration // from Snapshot.Start
	Sent   int64
	Errors int64
	Stages [NumStages]IntervalStage
}

// IntervalStage holds one stage's histograms in one interval; both nil when
// nothing completed the stage in the interval.
type IntervalStage struct {
	Corrected   *hdr.PackedHistogram
	Uncorrected *hdr.PackedHistogram
}

// Snapshot merges the shards of every workload into a Snapshot. It may be
// called while recording goes on (for live progress); each shard is locked
// only while it is merged.
func (r *Recorder) Snapshot() *Snapshot {
	r.mu.Lock()
	ws := make([]*WorkloadRecorder, len(r.order))
	for i, n := range r.order {
		ws[i] = r.workloads[n]
	}
	r.mu.Unlock()
	snap := &Snapshot{Start: r.opts.Start, Interval: r.opts.Interval, Taken: time.Now()}
	for _, w := range ws {
		snap.Workloads = append(snap.Workloads, w.snapshot())
	}
	return snap
}

func (ws *WorkloadSnapshot) interval(i int, interval time.Duration) *IntervalSnapshot {
	for len(ws.Intervals) <= i {
		ws.Intervals = append(ws.Intervals, IntervalSnapshot{Start: time.Duration(len(ws.Intervals)) * interval})
	}
	return &ws.Intervals[i]
}

func (ws *WorkloadSnapshot) intervalStage(i int, interval time.Duration, st int) *IntervalStage {
	dst := &ws.interval(i, interval).Stages[st]
	if dst.Corrected == nil {
		dst.Corrected, dst.Uncorrected = newPacked(), newPacked()
	}
	return dst
}

func (w *WorkloadRecorder) snapshot() *WorkloadSnapshot {
	ws := &WorkloadSnapshot{
		Name:      w.name,
		Lag:       NewHistogram(),
		Discarded: w.discarded.Load(),
	}
	for st := range NumStages {
		ws.Stages[st] = StageSnapshot{Corrected: NewHistogram(), Uncorrected: NewHistogram()}
	}
	for i := range w.sends {
		s := &w.sends[i]
		s.mu.Lock()
		if s.lag != nil {
			ws.Lag.Merge(s.lag)
		}
		ws.Sent += s.sent
		ws.Errors += s.errors
		ws.Clamped += s.clamped
		for iv, n := range s.perSent {
			ws.interval(iv, w.interval).Sent += n
		}
		for iv, n := range s.perErr {
			ws.interval(iv, w.interval).Errors += n
		}
		s.mu.Unlock()
	}
	for i := range w.stages {
		for st := range NumStages {
			s := &w.stages[i][st]
			s.mu.Lock()
			if s.corrected != nil {
				ws.Stages[st].Corrected.Merge(s.corrected)
				ws.Stages[st].Uncorrected.Merge(s.uncorrected)
			}
			ws.Clamped += s.clamped
			for iv, p := range s.intervals {
				if p.corrected == nil {
					continue
				}
				dst := ws.intervalStage(iv, w.interval, st)
				dst.Corrected.Merge(p.corrected)
				dst.Uncorrected.Merge(p.uncorrected)
			}
			if s.curCor != nil && s.cur >= 0 && s.curCor.TotalCount() > 0 {
				dst := ws.intervalStage(s.cur, w.interval, st)
				dst.Corrected.MergeFrom(s.curCor)
				dst.Uncorrected.MergeFrom(s.curUnc)
			}
			s.mu.Unlock()
		}
	}
	w.errMu.Lock()
	if len(w.errKinds) > 0 {
		ws.ErrorsByKind = make(map[string]int64, len(w.errKinds))
		for k, v := range w.errKinds {
			ws.ErrorsByKind[k] = v
		}
	}
	w.errMu.Unlock()
	return ws
}

// ErrorKinds returns the error kinds of an errors-by-kind map sorted by
// count (most first), then name.
func ErrorKinds(m map[string]int64) []string {
	kinds := make([]string, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if m[kinds[i]] != m[kinds[j]] {
			return m[kinds[i]] > m[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	return kinds
}

// bump counts one in interval iv of counts, growing it as needed; a
// negative iv (outside the measured phase) counts nowhere.
func bump(counts *[]int64, iv int) {
	if iv < 0 {
		return
	}
	for len(*counts) <= iv {
		*counts = append(*counts, 0)
	}
	(*counts)[iv]++
}
