package node

import (
	"context"
	"log/slog"
	"strings"
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

// allow reports whether a line of kind may go out now, and how many were
// suppressed before it; if not, it counts it.
func (l *rateLog) allow(kind string) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.kinds[kind]
	if k == nil {
		k = &rateKind{}
		l.kinds[kind] = k
	}
	now := l.now()
	if !k.last.IsZero() && now.Sub(k.last) < l.every {
		k.suppressed++
		return false, 0
	}
	k.last = now
	suppressed, k.suppressed = k.suppressed, 0
	return true, suppressed
}

// logAt logs msg at level unless a line of kind went out less than the
// interval ago; then it only counts it.
func (l *rateLog) logAt(level slog.Level, kind, msg string, args ...any) {
	ok, n := l.allow(kind)
	if !ok {
		return
	}
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

// rateHandler rate-limits another slog.Handler's warnings and errors
// through a rateLog: at most one record a second per kind, the kind being
// the level and the message's first 48 bytes without digits (a broker's
// "persist batch transactions-3-0: write …: no space left on device" is
// one kind for every partition). The next record of a kind carries
// "suppressed". Records below Warn pass. The node gives it the embedded
// broker's and the Kafka clients' logs, which repeat once per failed
// request.
type rateHandler struct {
	next slog.Handler
	rl   *rateLog
}

func (h rateHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }
func (h rateHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return rateHandler{h.next.WithAttrs(as), h.rl}
}
func (h rateHandler) WithGroup(g string) slog.Handler { return rateHandler{h.next.WithGroup(g), h.rl} }

func (h rateHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	kind := strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' {
			return -1
		}
		return c
	}, r.Message)
	kind = r.Level.String() + " " + kind[:min(len(kind), 48)]
	ok, n := h.rl.allow(kind)
	if !ok {
		return nil
	}
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return h.next.Handle(ctx, r)
}
