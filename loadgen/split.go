package loadgen

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Split is one worker's share of a load that N workers send together: the
// worker with 0-based Index of Count owns the sends whose key (the send's
// index, or for a transfer its sender's account index, so that one
// sender's nonces stay in order on one worker) is Index modulo Count. N
// workers together send exactly what one would, each at the send's own
// intended time. The zero value is the whole load.
type Split struct {
	Index, Count uint64
}

// ErrSplit wraps a worker split that does not parse or make sense.
var ErrSplit = errors.New("loadgen: bad worker split")

// ParseSplit parses "I/N", the I-th (1-based) of N workers.
func ParseSplit(s string) (Split, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 32)
	n, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 32)
	if !ok || err1 != nil || err2 != nil || n == 0 || i == 0 || i > n {
		return Split{}, fmt.Errorf("%w: %q (want I/N with 1 ≤ I ≤ N, such as 2/4)", ErrSplit, s)
	}
	return Split{Index: i - 1, Count: n}, nil
}

// Whole reports whether s is the whole load (one worker).
func (s Split) Whole() bool { return s.Count <= 1 }

// Owns reports whether the worker owns the send with key k.
func (s Split) Owns(k uint64) bool { return s.Whole() || k%s.Count == s.Index }

func (s Split) String() string {
	if s.Whole() {
		return "1/1"
	}
	return fmt.Sprintf("%d/%d", s.Index+1, s.Count)
}

// Subset is the schedule of some of a Pacer's sends: send j of the subset
// is send Of[j] of the whole, at that send's intended time. Of must be
// increasing.
type Subset struct {
	Pacer Pacer
	Of    []uint64
}

// At implements Pacer. Past the end of Of it returns the largest
// time.Duration: never due.
func (s Subset) At(j uint64) time.Duration {
	if j >= uint64(len(s.Of)) {
		return time.Duration(1<<63 - 1)
	}
	return s.Pacer.At(s.Of[j])
}

// Due implements Pacer: the subset's sends among the whole's due ones.
func (s Subset) Due(elapsed time.Duration) uint64 {
	due := s.Pacer.Due(elapsed)
	return uint64(sort.Search(len(s.Of), func(j int) bool { return s.Of[j] >= due }))
}
