package loadgen

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rustorium/rustorium/internal/retry"
)

// streamCases are the workloads a stream must reproduce byte for byte:
// puts and transfers, whole and a worker's share.
func streamCases(t *testing.T, n int) map[string]struct {
	want   [][]byte
	stream func(StreamOptions) *Stream
} {
	t.Helper()
	out := map[string]struct {
		want   [][]byte
		stream func(StreamOptions) *Stream
	}{}
	ctx := t.Context()
	for _, split := range []Split{{}, {Index: 1, Count: 3}} {
		puts := func() *Puts {
			return &Puts{ChainID: 7, Signer: AccountKeys(3, 1)[0], Keys: &Uniform{N: 50, R: newRand(9)}, ValueSize: 16, Seed: 9, Salt: 4, Split: split}
		}
		want, err := puts().Generate(ctx, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		out["puts "+split.String()] = struct {
			want   [][]byte
			stream func(StreamOptions) *Stream
		}{want, func(o StreamOptions) *Stream { p := puts(); p.Plan(n); return p.Stream(n, o) }}

		accounts := AccountKeys(5, 6)
		transfers := func() *Transfers {
			return &Transfers{ChainID: 7, Accounts: accounts, Keys: &Uniform{N: 6, R: newRand(11)}, Amount: 1, Seed: 11, Split: split}
		}
		want, err = transfers().Generate(ctx, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		out["transfers "+split.String()] = struct {
			want   [][]byte
			stream func(StreamOptions) *Stream
		}{want, func(o StreamOptions) *Stream {
			tr := transfers()
			if err := tr.Plan(n); err != nil {
				t.Fatal(err)
			}
			st := *tr
			st.Keys = &Uniform{N: 6, R: newRand(11)}
			s, err := st.Stream(n, o)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}}
	}
	return out
}

// TestStreamMatchesGenerate: a stream with a lead far smaller than the run
// hands out exactly the transactions Generate signs beforehand, to
// concurrent takers, and tells OnSigned of each one once.
func TestStreamMatchesGenerate(t *testing.T) {
	const n = 300
	for name, c := range streamCases(t, n) {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			signed := map[uint64][]byte{}
			s := c.stream(StreamOptions{Lead: 8, Workers: 3, OnSigned: func(i uint64, raw []byte) {
				mu.Lock()
				defer mu.Unlock()
				if _, dup := signed[i]; dup {
					t.Errorf("OnSigned(%d) twice", i)
				}
				signed[i] = raw
			}})
			defer s.Close()
			if s.Len() != len(c.want) {
				t.Fatalf("Len = %d, want %d", s.Len(), len(c.want))
			}
			got := make([][]byte, s.Len())
			var next atomic.Uint64
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < uint64(len(got)); i = next.Add(1) - 1 {
						raw, err := s.Tx(t.Context(), i)
						if err != nil {
							t.Errorf("Tx(%d): %v", i, err)
							return
						}
						got[i] = raw
					}
				})
			}
			wg.Wait()
			for i := range got {
				if !bytes.Equal(got[i], c.want[i]) || !bytes.Equal(signed[uint64(i)], c.want[i]) {
					t.Fatalf("send %d: the stream's transaction differs from Generate's", i)
				}
			}
			if _, err := s.Tx(t.Context(), uint64(len(got))); !errors.Is(err, ErrNoSend) {
				t.Errorf("Tx(Len) = %v, want ErrNoSend", err)
			}
		})
	}
}

// TestStreamBoundsLead: a stream nobody takes from signs its lead and
// stops there; each chunk taken lets it sign one more.
func TestStreamBoundsLead(t *testing.T) {
	var signed atomic.Int64
	p := &Puts{Signer: AccountKeys(3, 1)[0], Keys: &Sequential{N: 10}, ValueSize: 8}
	s := p.Stream(1000, StreamOptions{Lead: 8, OnSigned: func(uint64, []byte) { signed.Add(1) }})
	defer s.Close()
	waitFor := func(n int64) {
		t.Helper()
		if err := retry.Poll(t.Context(), time.Millisecond, 10*time.Second, func() (bool, error) { return signed.Load() >= n, nil }); err != nil {
			t.Fatalf("signed %d, want %d: %v", signed.Load(), n, err)
		}
		time.Sleep(20 * time.Millisecond) // room to overrun, were it not bounded
		if got := signed.Load(); got != n {
			t.Fatalf("signed %d ahead of the takers, want the lead: %d", got, n)
		}
	}
	waitFor(8)
	for i := range uint64(2) { // one chunk (lead 8 → chunks of 2)
		if _, err := s.Tx(t.Context(), i); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(10)
}

// TestStreamSkipAndClose: skipped sends (the open loop dropped them) free
// the buffer, before or after they are signed; Close fails a waiting Tx
// and is safe twice.
func TestStreamSkipAndClose(t *testing.T) {
	p := &Puts{Signer: AccountKeys(3, 1)[0], Keys: &Sequential{N: 10}, ValueSize: 8}
	s := p.Stream(200, StreamOptions{Lead: 4})
	for i := range uint64(200) {
		if i%3 == 0 {
			s.Skip(i) // many of these come before their chunk is signed
			continue
		}
		if _, err := s.Tx(t.Context(), i); err != nil {
			t.Fatalf("Tx(%d) after skips: %v", i, err)
		}
	}
	s.Close()
	s.Close()

	s = p.Stream(200, StreamOptions{Lead: 4})
	done := make(chan error, 1)
	go func() { _, err := s.Tx(context.Background(), 150); done <- err }() // beyond the lead: it waits
	time.Sleep(10 * time.Millisecond)
	s.Close()
	if err := <-done; !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("Tx waiting on a closed stream: %v, want ErrStreamClosed", err)
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }
