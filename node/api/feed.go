package api

import (
	"sync"

	"github.com/rustorium/rustorium/node"
)

// Feed fans committed blocks out to WebSocket subscribers. Publish never
// blocks the node: a subscriber whose buffer is full is dropped (its
// connection is told it lagged and closed), never waited for. The zero
// value is not usable; call NewFeed.
type Feed struct {
	mu     sync.Mutex
	subs   map[*subscription]struct{}
	onDrop func() // counts a dropped subscriber; set by the Server before it serves
}

// subscription is one subscriber's buffered queue; lagged is closed when
// the feed dropped it.
type subscription struct {
	ch     chan node.BlockEvent
	lagged chan struct{}
}

// subscriberBuffer is how many blocks a subscriber may fall behind.
const subscriberBuffer = 1024

// NewFeed returns a Feed with no subscribers.
func NewFeed() *Feed { return &Feed{subs: map[*subscription]struct{}{}} }

// Publish hands ev to every subscriber. Use it as (or from) a node's
// Config.OnBlock.
func (f *Feed) Publish(ev node.BlockEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		select {
		case s.ch <- ev:
		default:
			delete(f.subs, s)
			close(s.lagged)
			if f.onDrop != nil {
				f.onDrop()
			}
		}
	}
}

// subscribe adds a subscriber; cancel removes it (safe after a drop).
func (f *Feed) subscribe() (s *subscription, cancel func()) {
	s = &subscription{ch: make(chan node.BlockEvent, subscriberBuffer), lagged: make(chan struct{})}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	return s, func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
	}
}
