package api

import (
	"testing"

	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/consensus"
)

// TestFeedDropsLaggingSubscriber: Publish never blocks; a subscriber that
// fell a full buffer behind is dropped and told so, while one that keeps
// up gets every block in order.
func TestFeedDropsLaggingSubscriber(t *testing.T) {
	f := NewFeed()
	slow, cancelSlow := f.subscribe()
	defer cancelSlow()
	fast, cancelFast := f.subscribe()
	defer cancelFast()
	for h := range uint64(subscriberBuffer + 1) {
		f.Publish(node.BlockEvent{Header: consensus.Header{Height: h + 1}})
		if ev := <-fast.ch; ev.Header.Height != h+1 {
			t.Fatalf("fast subscriber got height %d, want %d", ev.Header.Height, h+1)
		}
	}
	select {
	case <-slow.lagged:
	default:
		t.Fatal("a subscriber a full buffer behind was not dropped")
	}
	select {
	case <-fast.lagged:
		t.Fatal("a subscriber that kept up was dropped")
	default:
	}
	if len(slow.ch) != subscriberBuffer {
		t.Fatalf("the dropped subscriber holds %d blocks, want the %d it buffered", len(slow.ch), subscriberBuffer)
	}
	cancelSlow() // after a drop: a no-op
	f.Publish(node.BlockEvent{})
	if len(f.subs) != 1 {
		t.Fatalf("%d subscribers left, want 1", len(f.subs))
	}
}
