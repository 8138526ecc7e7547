package node

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logEvery is how often a rateLog lets a line of one kind through.
const logEvery = time.Second

// rateLog logs at most one line per kind per interval: a failure that
// repeats (every write on a full disk fails) is one line a second, not one
// per attempt. The next line of a kind says how many it suppressed
// ("suppressed"), and so does flush.
type rateLog struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time // time.Now; tests step it

	mu    sync.Mutex
	kinds map[string]*rateKind
}

type rateKind struct {
	last       time.Time
	suppressed int
}

func newRateLog(log *slog.Logger, every time.Duration) *rateLog {
	return &rateLog{log: log, every: every, now: time.Now, kinds: map[string]*rateKind{}}
}

// log logs msg at level unless a line of kind went out less than the
// interval ago; then it only counts it.
func (l *rateLog) logAt(level slog.Level, kind, msg string, args ...any) {
	l.mu.Lock()
	k := l.kinds[kind]
	if k == nil {
		k = &rateKind{}
		l.kinds[kind] = k
	}
	now := l.now()
	if !k.last.IsZero() && now.Sub(k.last) < l.every {
		k.suppressed++
		l.mu.Unlock()
		return
	}
	k.last = now
	n := k.suppressed
	k.suppressed = 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.log.Log(context.Background(), level, msg, args...)
}

// flush returns how many lines of kind were suppressed since its last
// line, and lets its next line through at once.
func (l *rateLog) flush(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.kinds[kind]
	if k == nil {
		return 0
	}
	delete(l.kinds, kind)
	return k.suppressed
}
