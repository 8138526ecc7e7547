package sigverify

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
)

// items returns n signatures by distinct seeded keys, and which are valid:
// about a third are broken, each in a different way.
func items(t testing.TB, seed uint64, n int) ([]Item, []bool) {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]Item, n)
	want := make([]bool, n)
	for i := range out {
		var s [32]byte
		for j := range s {
			s[j] = byte(r.Uint32())
		}
		k := ed25519.NewKeyFromSeed(s[:])
		msg := fmt.Appendf(nil, "tx %d %d", seed, i)
		it := Item{Pub: k.Public().(ed25519.PublicKey), Msg: msg, Sig: ed25519.Sign(k, msg)}
		want[i] = true
		switch r.IntN(9) {
		case 0: // flipped signature bit
			it.Sig = append([]byte(nil), it.Sig...)
			it.Sig[r.IntN(64)] ^= 1 << r.IntN(8)
			want[i] = false
		case 1: // other message
			it.Msg = append(append([]byte(nil), msg...), 'x')
			want[i] = false
		case 2: // short signature
			it.Sig = it.Sig[:63]
			want[i] = false
		}
		if want[i] != ed25519.Verify(it.Pub, it.Msg, it.Sig[:min(len(it.Sig), 64)]) && len(it.Sig) == 64 {
			t.Fatalf("item %d: the test's expectation disagrees with crypto/ed25519", i)
		}
		out[i] = it
	}
	return out, want
}

func TestVerifyMatchesStdlibOnHonestAndBrokenSignatures(t *testing.T) {
	its, want := items(t, 1, 300)
	for i, it := range its {
		if got := Verify(it.Pub, it.Msg, it.Sig); got != want[i] {
			t.Fatalf("item %d: Verify = %v, want %v", i, got, want[i])
		}
	}
	if Verify(nil, nil, nil) || Verify(make([]byte, 31), nil, make([]byte, 64)) {
		t.Fatal("wrong-length key accepted")
	}
}

func TestBatchAgreesWithSingle(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 64, 200} {
		its, want := items(t, uint64(n)+10, n)
		got := Batch(its)
		if len(got) != n {
			t.Fatalf("n=%d: %d answers", n, len(got))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("n=%d item %d: batch says %v, want %v", n, i, got[i], want[i])
			}
		}
	}
	// An all-valid batch takes the batch equation's fast path.
	its, _ := items(t, 99, 64)
	var valid []Item
	for _, it := range its {
		if Verify(it.Pub, it.Msg, it.Sig) {
			valid = append(valid, it)
		}
	}
	for i, ok := range Batch(valid) {
		if !ok {
			t.Fatalf("valid item %d rejected in a batch", i)
		}
	}
}

// TestVerifierBatchesWaitingRequests holds the only worker inside its first
// batch until every other request is queued: the next batch must hold them
// all, and every answer must still be right.
// TestVerifierBatchesWaitingRequests: a request that finds the one core
// free is checked alone, at once (on its caller's goroutine); those that
// arrive while it is busy wait, and are checked together in one batch.
func TestVerifierBatchesWaitingRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 64
		its, want := items(t, 3, n)
		var (
			mu     sync.Mutex
			sizes  []int
			inline bool
		)
		release := make(chan struct{})
		v := New(Options{Workers: 1, OnBatch: func(size int) {
			mu.Lock()
			sizes = append(sizes, size)
			first := len(sizes) == 1
			mu.Unlock()
			if first {
				// On the caller's goroutine, not a worker's.
				buf := make([]byte, 16<<10)
				inline = bytes.Contains(buf[:runtime.Stack(buf, false)], []byte("(*Verifier).VerifyBatch"))
				<-release // hold the core inside the first check
			}
		}})
		defer v.Close()

		got := make([]bool, n)
		var wg sync.WaitGroup
		call := func(i int) {
			ok, err := v.Verify(context.Background(), its[i].Pub, its[i].Msg, its[i].Sig)
			if err != nil {
				t.Error(err)
			}
			got[i] = ok
		}
		wg.Go(func() { call(0) })
		synctest.Wait() // request 0 is inside its check, alone
		if len(sizes) != 1 || len(v.reqs) != 0 || !inline {
			t.Fatalf("batches %v, %d queued, on the caller's goroutine %v; want request 0 checked alone at once, by its caller", sizes, len(v.reqs), inline)
		}
		for i := 1; i < n; i++ {
			wg.Go(func() { call(i) })
		}
		synctest.Wait() // the rest wait for the core
		close(release)
		wg.Wait()
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("item %d: %v, want %v", i, got[i], want[i])
			}
		}
		if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != n-1 {
			t.Fatalf("batch sizes %v, want [1 %d]", sizes, n-1)
		}
	})
}

func TestVerifierClose(t *testing.T) {
	v := New(Options{})
	its, want := items(t, 4, 1)
	if ok, err := v.Verify(context.Background(), its[0].Pub, its[0].Msg, its[0].Sig); err != nil || ok != want[0] {
		t.Fatalf("Verify = %v, %v; want %v", ok, err, want[0])
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := v.Verify(context.Background(), its[0].Pub, its[0].Msg, its[0].Sig); !errors.Is(err, ErrClosed) {
		t.Fatalf("Verify after Close: %v, want ErrClosed", err)
	}
}

// FuzzBatch checks that a fuzzed signature gets the same answer alone and
// in a batch beside an honest one, and that the honest one stays valid.
func FuzzBatch(f *testing.F) {
	k := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := k.Public().(ed25519.PublicKey)
	f.Add([]byte("m"), ed25519.Sign(k, []byte("m")), []byte(pub))
	f.Add([]byte("m"), make([]byte, 64), make([]byte, 32))
	f.Add([]byte{}, []byte{1, 2, 3}, []byte{4})
	honest := Item{Pub: pub, Msg: []byte("honest"), Sig: ed25519.Sign(k, []byte("honest"))}
	f.Fuzz(func(t *testing.T, msg, sig, key []byte) {
		single := Verify(key, msg, sig)
		got := Batch([]Item{honest, {Pub: key, Msg: msg, Sig: sig}})
		if !got[0] || got[1] != single {
			t.Fatalf("batch %v, single %v", got, single)
		}
		if len(key) == 32 && len(sig) == 64 && canonical(key) && ed25519.Verify(key, msg, sig) && !single {
			t.Fatal("a signature crypto/ed25519 accepts under a canonical key was rejected")
		}
	})
}

// canonical reports whether a 32-byte point encoding's y is below the field
// prime 2^255-19.
func canonical(enc []byte) bool {
	var y [32]byte
	copy(y[:], enc)
	y[31] &= 0x7f
	slices.Reverse(y[:])
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	return new(big.Int).SetBytes(y[:]).Cmp(p) < 0
}

// TestNonCanonicalKeyRefused: the identity point encoded with y = 1+p (not
// canonical) "signs" every message with R = B, S = 1 under crypto/ed25519,
// which accepts non-canonical keys. The node's rules refuse it, alone and
// in a batch, so a key cannot be re-encoded into a second account.
func TestNonCanonicalKeyRefused(t *testing.T) {
	key := make([]byte, 32)
	key[0] = 0xee
	for i := 1; i < 31; i++ {
		key[i] = 0xff
	}
	key[31] = 0x7f
	if canonical(key) {
		t.Fatal("test key is canonical")
	}
	sig := make([]byte, 64)
	copy(sig, basePointEncoding())
	sig[32] = 1 // S = 1
	msg := []byte("anything at all")
	if !ed25519.Verify(key, msg, sig) {
		t.Skip("this crypto/ed25519 refuses non-canonical keys too")
	}
	if Verify(key, msg, sig) {
		t.Fatal("a forgery under a non-canonical key was accepted")
	}
	if got := Batch([]Item{{Pub: key, Msg: msg, Sig: sig}, {Pub: key, Msg: msg, Sig: sig}}); got[0] || got[1] {
		t.Fatalf("batch accepted the forgery: %v", got)
	}
}

// basePointEncoding is the canonical encoding of the ed25519 base point
// (y = 4/5).
func basePointEncoding() []byte {
	b, _ := hex.DecodeString("5866666666666666666666666666666666666666666666666666666666666666")
	return b
}

// BenchmarkCheck is the cost per signature of a single check, of
// crypto/ed25519's, and of batches (the figure the package doc quotes):
// compare the ns/sig of the sub-benchmarks of one run.
func BenchmarkCheck(b *testing.B) {
	all, valid := items(b, 1, 1024)
	var its []Item // honest ones only: a batch with a bad one falls back to single checks
	for i, it := range all {
		if valid[i] && len(its) < 256 {
			its = append(its, it)
		}
	}
	if len(its) < 256 {
		b.Fatalf("only %d honest items", len(its))
	}
	report := func(b *testing.B, per int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*per), "ns/sig")
	}
	b.Run("single", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			it := its[i%len(its)]
			if !Verify(it.Pub, it.Msg, it.Sig) {
				b.Fatal("invalid")
			}
		}
		report(b, 1)
	})
	b.Run("stdlib", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			it := its[i%len(its)]
			if !ed25519.Verify(it.Pub, it.Msg, it.Sig) {
				b.Fatal("invalid")
			}
		}
		report(b, 1)
	})
	for _, n := range []int{8, 64, 256} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			for b.Loop() {
				for _, ok := range Batch(its[:n]) {
					if !ok {
						b.Fatal("invalid")
					}
				}
			}
			report(b, n)
		})
	}
}
