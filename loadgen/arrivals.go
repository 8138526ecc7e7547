package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rustorium/rustorium/node/tx"
)

// Poisson sends as a Poisson process: the arrivals of many independent
// clients. With Shape nil its rate is the constant Rate; with Shape set (a
// Constant or a Ramp) it follows that pacer's rate over time (a
// non-homogeneous process, by time rescaling: unit-rate exponential gaps
// mapped through the shape's cumulative count). The schedule is a pure
// function of Seed; the draws are memoized, so it is not safe for concurrent
// use.
type Poisson struct {
	Rate  float64 // per second, > 0; used when Shape is nil
	Shape Shaper
	Seed  uint64

	r  *rand.Rand
	at []time.Duration // at[i] = intended time of send i
	n  float64         // cumulative unit-rate arrivals behind at[len(at)-1]
}

// Shaper is a pacer whose intended times are defined for fractional counts:
// AtCount(x) is when x sends are due, for real x ≥ 0.
type Shaper interface {
	AtCount(x float64) time.Duration
}

// AtCount implements Shaper.
func (c Constant) AtCount(x float64) time.Duration {
	return time.Duration(x / c.Rate * float64(time.Second))
}

// AtCount implements Shaper.
func (r Ramp) AtCount(n float64) time.Duration { return r.at(n) }

// At implements Pacer.
func (p *Poisson) At(i uint64) time.Duration {
	if p.r == nil {
		p.r = rand.New(rand.NewPCG(p.Seed, p.Seed^0x5851f42d4c957f2d))
		p.at = []time.Duration{0}
	}
	shape := p.Shape
	if shape == nil {
		shape = Constant{Rate: p.Rate}
	}
	for uint64(len(p.at)) <= i {
		p.n += p.r.ExpFloat64()
		p.at = append(p.at, shape.AtCount(p.n))
	}
	return p.at[i]
}

// Due implements Pacer.
func (p *Poisson) Due(elapsed time.Duration) uint64 {
	if elapsed < 0 {
		return 0
	}
	// Extend the table past elapsed, then search it.
	p.At(0)
	for p.at[len(p.at)-1] <= elapsed {
		p.At(uint64(len(p.at)))
	}
	return uint64(sort.Search(len(p.at), func(i int) bool { return p.at[i] > elapsed }))
}

// Trace replays recorded send times. Beyond the last one nothing is due.
type Trace struct {
	Offsets []time.Duration // non-decreasing, from the start
	Keys    []string        // optional, aligned with Offsets
}

// At implements Pacer. Sends past the end of the trace are never due.
func (t *Trace) At(i uint64) time.Duration {
	if i >= uint64(len(t.Offsets)) {
		return math.MaxInt64
	}
	return t.Offsets[i]
}

// Due implements Pacer.
func (t *Trace) Due(elapsed time.Duration) uint64 {
	return uint64(sort.Search(len(t.Offsets), func(i int) bool { return t.Offsets[i] > elapsed }))
}

// ErrTrace: a trace file that cannot be replayed.
var ErrTrace = errors.New("loadgen: bad trace")

// ReadTrace parses a CSV trace: one send per line, "SECONDS[,KEY]" where
// SECONDS is the send time from the start (a decimal number, non-decreasing)
// and KEY a put key of at most tx.MaxKeySize bytes.
// Blank lines and lines starting with # are skipped; a first line whose first
// field is not a number is taken as a header.
func ReadTrace(r io.Reader) (*Trace, error) {
	t := &Trace{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		fields := strings.SplitN(s, ",", 2)
		sec, err := strconv.ParseFloat(strings.TrimSpace(fields[0]), 64)
		if err != nil {
			if len(t.Offsets) == 0 && line == 1 {
				continue // header
			}
			return nil, fmt.Errorf("%w: line %d: %q is not a time in seconds", ErrTrace, line, fields[0])
		}
		if sec < 0 || math.IsNaN(sec) || math.IsInf(sec, 0) || sec > 1e6 {
			return nil, fmt.Errorf("%w: line %d: time %v out of range", ErrTrace, line, sec)
		}
		off := time.Duration(sec * float64(time.Second))
		if n := len(t.Offsets); n > 0 && off < t.Offsets[n-1] {
			return nil, fmt.Errorf("%w: line %d: time %v goes back in time", ErrTrace, line, sec)
		}
		t.Offsets = append(t.Offsets, off)
		if len(fields) == 2 {
			key := strings.TrimSpace(fields[1])
			if len(key) > tx.MaxKeySize {
				return nil, fmt.Errorf("%w: line %d: a key of %d bytes (the node takes at most %d)", ErrTrace, line, len(key), tx.MaxKeySize)
			}
			t.Keys = append(t.Keys, key)
		} else if len(t.Keys) > 0 {
			return nil, fmt.Errorf("%w: line %d: no key, but earlier lines have one", ErrTrace, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrace, err)
	}
	if len(t.Keys) != 0 && len(t.Keys) != len(t.Offsets) {
		return nil, fmt.Errorf("%w: some lines have a key and some do not", ErrTrace)
	}
	if len(t.Offsets) == 0 {
		return nil, fmt.Errorf("%w: no sends", ErrTrace)
	}
	return t, nil
}
