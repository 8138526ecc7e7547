package consensus

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func valKey(i int) ed25519.PrivateKey {
	var s [32]byte
	s[0] = byte(i + 1)
	s[1] = 0xa7
	return ed25519.NewKeyFromSeed(s[:])
}

func valSet(n int) []ed25519.PublicKey {
	out := make([]ed25519.PublicKey, n)
	for i := range out {
		out[i] = valKey(i).Public().(ed25519.PublicKey)
	}
	return out
}

// tokVote maps a two-letter token to a vote: the first letter names the
// block, the second the state root ("xa" and "xb" are one block with two
// different roots).
func tokVote(tok string) Vote {
	var v Vote
	v.BlockHash[0], v.StateRoot[0] = tok[0], tok[1]
	return v
}

func voteTok(v Vote) string { return string([]byte{v.BlockHash[0], v.StateRoot[0]}) }

func attest(signer ed25519.PrivateKey, shard uint32, h uint64, tok string) Attestation {
	v := tokVote(tok)
	a := Attestation{Shard: shard, Height: h, BlockHash: v.BlockHash, StateRoot: v.StateRoot}
	a.Sign(signer)
	return a
}

// render prints an output and an error the way the scripts spell them.
func render(t *testing.T, vals []ed25519.PublicKey, out Output, err error) string {
	t.Helper()
	who := func(k ed25519.PublicKey) string {
		for i, v := range vals {
			if bytes.Equal(v, k) {
				return strconv.Itoa(i)
			}
		}
		return "?"
	}
	var parts []string
	for _, a := range out.Broadcast {
		if err := a.Verify(); err != nil {
			t.Fatalf("broadcast attestation does not verify: %v", err)
		}
		parts = append(parts, fmt.Sprintf("bcast %s%d", shardTag(a.Shard), a.Height))
	}
	for _, fin := range out.Final {
		var s []string
		for _, k := range fin.Signers {
			s = append(s, who(k))
		}
		parts = append(parts, fmt.Sprintf("final %s%d %s %s", shardTag(fin.Shard), fin.Height,
			voteTok(Vote{fin.BlockHash, fin.StateRoot}), strings.Join(s, ",")))
	}
	for _, a := range out.Alarms {
		switch a.Kind {
		case AlarmEquivocation:
			if len(a.Evidence) != 2 || a.Evidence[0].Verify() != nil || a.Evidence[1].Verify() != nil {
				t.Fatalf("equivocation evidence does not verify: %+v", a.Evidence)
			}
			parts = append(parts, fmt.Sprintf("alarm %v %s%d v%s %s/%s", a.Kind, shardTag(a.Shard), a.Height, who(a.Signer), voteTok(a.Ours), voteTok(a.Theirs)))
		default:
			parts = append(parts, fmt.Sprintf("alarm %v %s%d ours=%s theirs=%s", a.Kind, shardTag(a.Shard), a.Height, voteTok(a.Ours), voteTok(a.Theirs)))
		}
	}
	if err != nil {
		name := "other"
		for _, e := range []struct {
			n string
			e error
		}{{"shard", ErrShard}, {"not-validator", ErrNotValidator}, {"too-far", ErrTooFarAhead},
			{"halted", ErrHalted}, {"local-conflict", ErrLocalConflict}, {"signature", ErrSignature}} {
			if errors.Is(err, e.e) {
				name = e.n
			}
		}
		parts = append(parts, "err "+name)
	}
	return strings.Join(parts, "; ")
}

func shardTag(s uint32) string {
	if s == 0 {
		return ""
	}
	return fmt.Sprintf("@%d:", s)
}

// TestFinalityScript drives one node's tracker (validator 0 unless the case
// says otherwise) with a script of inputs and checks every output.
//
// Steps: "L h tok" is this node's local result; "R i h tok" an attestation
// from validator i; "X h tok" one from a key outside the set; "B i h tok"
// one from validator i with a broken signature; "S h" restores height h as
// final. A leading "@s" puts the step on shard s. Outputs print as
// "bcast h", "final h tok signers", "alarm kind h ...", "err name".
func TestFinalityScript(t *testing.T) {
	type step struct{ in, want string }
	cases := []struct {
		name   string
		n      int
		cfg    FinalityConfig // Validators, Key and Shards are filled in
		selfIx int            // -1: an observer outside the set
		steps  []step
	}{
		{"3 nodes quorum 2", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"L 1 xa", "bcast 1"},
			{"R 1 1 xa", "final 1 xa 0,1"},
			{"R 2 1 xa", ""}, // late vote for a final height
			{"R 2 2 xa", ""},
			{"L 2 xa", "bcast 2; final 2 xa 0,2"},
		}},
		{"4 nodes quorum 3 (default)", 4, FinalityConfig{}, 0, []step{
			{"L 1 xa", "bcast 1"},
			{"R 1 1 xa", ""},
			{"R 2 1 xa", "final 1 xa 0,1,2"},
			{"R 3 1 xa", ""},
		}},
		{"out of order", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"R 1 3 xa", ""},
			{"R 2 2 xa", ""},
			{"L 3 xa", "bcast 3"},
			{"L 2 xa", "bcast 2"},
			{"R 1 1 xa", ""},
			{"L 1 xa", "bcast 1; final 1 xa 0,1; final 2 xa 0,2; final 3 xa 0,1"},
		}},
		{"votes before local execution", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"R 1 1 xa", ""},
			{"R 2 1 xa", ""}, // a quorum without us: final for them, not applied here yet
			{"L 1 xa", "bcast 1; final 1 xa 0,1,2"},
		}},
		{"duplicate votes do not make a quorum", 4, FinalityConfig{}, 0, []step{
			{"L 1 xa", "bcast 1"},
			{"R 1 1 xa", ""},
			{"R 1 1 xa", ""},
			{"R 1 1 xa", ""},
			{"L 1 xa", ""}, // our own result again: no second broadcast
			{"R 0 1 xa", ""},
			{"R 2 1 xa", "final 1 xa 0,1,2"},
		}},
		{"non-validator vote is ignored", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"L 1 xa", "bcast 1"},
			{"X 1 xa", "err not-validator"},
			{"X 1 xa", "err not-validator"},
			{"R 2 1 xa", "final 1 xa 0,2"},
		}},
		{"bad signature is ignored", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"L 1 xa", "bcast 1"},
			{"B 1 1 xa", "err signature"},
			{"R 1 1 xa", "final 1 xa 0,1"},
		}},
		{"wrong local root raises the alarm and halts", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"L 1 xa", "bcast 1"},
			{"R 1 1 xa", "final 1 xa 0,1"},
			{"L 2 xb", "bcast 2"},
			{"R 1 2 xa", ""}, // one against one: no quorum yet
			{"R 2 2 xa", "alarm divergence 2 ours=xb theirs=xa"},
			{"L 3 xa", "err halted"},
			{"R 1 3 xa", ""},
			{"R 2 3 xa", ""},
			{"@1 L 1 xa", "bcast @1:1"}, // other shards go on
			{"@1 R 2 1 xa", "final @1:1 xa 0,2"},
		}},
		{"divergence found before local execution", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"R 1 1 xa", ""},
			{"R 2 1 xa", ""},
			{"L 1 ya", "bcast 1; alarm divergence 1 ours=ya theirs=xa"}, // another block
		}},
		{"the others finalize without the wrong node", 3, FinalityConfig{Quorum: 2}, 1, []step{
			{"R 0 1 xb", ""},
			{"L 1 xa", "bcast 1"},
			{"R 2 1 xa", "final 1 xa 1,2"},
		}},
		{"equivocation detected", 4, FinalityConfig{}, 0, []step{
			{"L 1 xa", "bcast 1"},
			{"R 1 1 xa", ""},
			{"R 1 1 xb", "alarm equivocation 1 v1 xa/xb"},
			{"R 1 1 xb", ""}, // reported once
			{"R 1 1 xc", ""},
			{"R 2 1 xa", "final 1 xa 0,1,2"}, // the first vote still counts
			{"R 3 2 xa", ""},
			{"R 3 2 xd", "alarm equivocation 2 v3 xa/xd"}, // ahead of finality too
		}},
		{"heights finalize in order", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"L 3 xa", "bcast 3"},
			{"R 1 3 xa", ""}, // quorum at 3, but 1 and 2 are not final
			{"L 2 xa", "bcast 2"},
			{"R 2 2 xa", ""},
			{"L 1 xa", "bcast 1"},
			{"R 1 1 xa", "final 1 xa 0,1; final 2 xa 0,2; final 3 xa 0,1"},
		}},
		{"split votes stall", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"L 1 xa", "bcast 1"},
			{"R 1 1 xb", ""},
			{"R 2 1 xc", "alarm stalled 1 ours=xa theirs=xa"},
			{"L 2 xa", "bcast 2"},
		}},
		{"window bounds heights ahead", 3, FinalityConfig{Quorum: 2, Window: 4}, 0, []step{
			{"L 4 xa", "bcast 4"},
			{"L 5 xa", "err too-far"},
			{"R 1 5 xa", "err too-far"},
			{"L 1 xa", "bcast 1"},
			{"R 1 1 xa", "final 1 xa 0,1"},
			{"L 5 xa", "bcast 5"},
		}},
		{"restore skips committed heights", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"R 1 6 xa", ""},
			{"S 5", ""},
			{"R 1 5 xa", ""}, // stale
			{"L 5 xa", ""},   // stale: nothing to sign
			{"L 6 xa", "bcast 6; final 6 xa 0,1"},
			{"S 3", ""}, // backwards: no change
			{"L 7 xa", "bcast 7"},
		}},
		{"restore unblocks the next height", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"L 2 xa", "bcast 2"},
			{"R 1 2 xa", ""},
			{"S 1", "final 2 xa 0,1"},
		}},
		{"observer outside the set", 3, FinalityConfig{Quorum: 2}, -1, []step{
			{"L 1 xa", ""},
			{"R 0 1 xa", ""},
			{"R 1 1 xa", "final 1 xa 0,1"},
			{"L 2 xb", ""},
			{"R 0 2 xa", ""},
			{"R 2 2 xa", "alarm divergence 2 ours=xb theirs=xa"},
		}},
		{"single node quorum 1", 1, FinalityConfig{}, 0, []step{
			{"L 1 xa", "bcast 1; final 1 xa 0"},
			{"L 2 xa", "bcast 2; final 2 xa 0"},
		}},
		{"shards are independent and bounded", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"@1 L 1 xa", "bcast @1:1"},
			{"L 1 xb", "bcast 1"},
			{"@1 R 1 1 xa", "final @1:1 xa 0,1"},
			{"R 1 1 xb", "final 1 xb 0,1"},
			{"@2 L 1 xa", "err shard"},
			{"@7 R 1 1 xa", "err shard"},
		}},
		{"conflicting local results", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"L 1 xa", "bcast 1"},
			{"L 1 xb", "err local-conflict"},
			{"R 1 1 xa", "final 1 xa 0,1"},
		}},
		{"our own earlier vote comes back", 3, FinalityConfig{Quorum: 2}, 0, []step{
			{"R 0 1 xa", ""}, // sent by a previous run of this node
			{"L 1 xa", ""},   // same vote: nothing new to send
			{"R 1 1 xa", "final 1 xa 0,1"},
			{"R 0 2 xa", ""},
			{"L 2 xb", "alarm equivocation 2 v0 xa/xb"}, // we would equivocate: not sent
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vals := valSet(tc.n)
			cfg := tc.cfg
			cfg.Validators = vals
			cfg.Shards = 2
			if tc.selfIx >= 0 {
				cfg.Key = valKey(tc.selfIx)
			} else {
				cfg.Key = valKey(50)
			}
			f, err := NewFinality(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				fs := strings.Fields(s.in)
				var shard uint32
				if strings.HasPrefix(fs[0], "@") {
					n, _ := strconv.Atoi(fs[0][1:])
					shard, fs = uint32(n), fs[1:]
				}
				num := func(k int) int { n, _ := strconv.Atoi(fs[k]); return n }
				var out Output
				switch fs[0] {
				case "L":
					out, err = f.Local(shard, uint64(num(1)), tokVote(fs[2]).BlockHash, tokVote(fs[2]).StateRoot)
				case "R":
					out, err = f.Receive(attest(valKey(num(1)), shard, uint64(num(2)), fs[3]))
				case "B":
					a := attest(valKey(num(1)), shard, uint64(num(2)), fs[3])
					a.Sig[0] ^= 1
					out, err = f.Receive(a)
				case "X":
					out, err = f.Receive(attest(valKey(99), shard, uint64(num(1)), fs[2]))
				case "S":
					out, err = f.Restore(shard, uint64(num(1)))
				default:
					t.Fatalf("bad step %q", s.in)
				}
				if got := render(t, vals, out, err); got != s.want {
					t.Fatalf("step %d %q:\n got  %q\n want %q", i, s.in, got, s.want)
				}
			}
		})
	}
}

func TestFinalityConfig(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5, 10: 7} {
		c := FinalityConfig{Validators: valSet(n)}
		c.EnsureDefaults()
		if c.Quorum != want {
			t.Errorf("%d validators: default quorum %d, want %d", n, c.Quorum, want)
		}
	}
	bad := []struct {
		name string
		cfg  FinalityConfig
		want string
	}{
		{"quorum above n", FinalityConfig{Key: valKey(0), Validators: valSet(3), Quorum: 4, Shards: 1}, "quorum 4 not in 1..3"},
		{"negative quorum", FinalityConfig{Key: valKey(0), Validators: valSet(3), Quorum: -1, Shards: 1}, "quorum -1"},
		{"no validators", FinalityConfig{Key: valKey(0), Shards: 1}, "no validators"},
		{"duplicate validator", FinalityConfig{Key: valKey(0), Validators: append(valSet(2), valSet(1)...), Shards: 1}, "listed twice"},
		{"short key", FinalityConfig{Key: valKey(0), Validators: []ed25519.PublicKey{{1, 2}}, Shards: 1}, "validator 0 is not"},
		{"no key", FinalityConfig{Validators: valSet(3), Shards: 1}, "key is not"},
		{"no shards", FinalityConfig{Key: valKey(0), Validators: valSet(3)}, "shards 0"},
	}
	for _, tc := range bad {
		if _, err := NewFinality(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestFinalityStatsAndOwn(t *testing.T) {
	vals := valSet(3)
	f, err := NewFinality(FinalityConfig{Key: valKey(0), Validators: vals, Quorum: 2, Shards: 1, Retain: 2})
	if err != nil {
		t.Fatal(err)
	}
	for h := uint64(1); h <= 6; h++ {
		v := tokVote("xa")
		if _, err := f.Local(0, h, v.BlockHash, v.StateRoot); err != nil {
			t.Fatal(err)
		}
		if h <= 5 {
			if _, err := f.Receive(attest(valKey(1), 0, h, "xa")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if f.Finalized(0) != 5 || f.Halted(0) {
		t.Fatalf("finalized %d halted %v", f.Finalized(0), f.Halted(0))
	}
	var hs []uint64
	for _, a := range f.Own(0) {
		if a.Verify() != nil || !bytes.Equal(a.Signer, vals[0]) {
			t.Fatalf("own attestation %+v", a)
		}
		hs = append(hs, a.Height)
	}
	if !slices.Equal(hs, []uint64{4, 5, 6}) {
		t.Fatalf("own heights %v, want the last 2 final and the open one", hs)
	}
	for _, tc := range []struct {
		from uint64
		max  int
		want []uint64
	}{{0, 10, []uint64{4, 5, 6}}, {5, 10, []uint64{5, 6}}, {5, math.MaxInt, []uint64{5, 6}}, {5, 1, []uint64{5}}, {7, 10, nil}, {4, 0, nil}} {
		var got []uint64
		for _, a := range f.OwnFrom(0, tc.from, tc.max) {
			got = append(got, a.Height)
		}
		if !slices.Equal(got, tc.want) {
			t.Fatalf("OwnFrom(%d, %d) = %v, want %v", tc.from, tc.max, got, tc.want)
		}
	}
	if f.OwnFrom(9, 0, 10) != nil {
		t.Fatal("OwnFrom of a shard that does not exist")
	}
	f.Receive(attest(valKey(2), 0, 1, "xa"))     // stale
	f.Receive(attest(valKey(1), 0, 6, "xa"))     // final 6
	f.Receive(attest(valKey(1), 0, 6, "xa"))     // stale now
	f.Receive(attest(valKey(9), 0, 7, "xa"))     // not a validator
	f.Receive(attest(valKey(1), 3, 7, "xa"))     // no such shard
	f.Receive(attest(valKey(1), 0, 1<<40, "xa")) // too far
	f.Receive(attest(valKey(1), 0, 7, "xa"))     // accepted
	f.Receive(attest(valKey(1), 0, 7, "xa"))     // duplicate
	b := attest(valKey(2), 0, 7, "xa")
	b.Sig[5] ^= 1
	f.Receive(b) // bad signature
	want := FinalityStats{Accepted: 6 + 6 + 1, Duplicate: 1, Stale: 2, NotValidator: 1, TooFarAhead: 1, BadSignature: 1, BadShard: 1}
	if got := f.Stats(); got != want {
		t.Fatalf("stats\n got  %+v\n want %+v", got, want)
	}
}

// TestFinalityCluster runs whole clusters of trackers exchanging their
// broadcasts in a seeded random order, with duplicates and reordering. One
// node computes a wrong root from some height on: it must raise a
// divergence alarm and stop there, while the honest nodes finalize every
// height, in order, with the same votes.
func TestFinalityCluster(t *testing.T) {
	cases := []struct {
		n, quorum int
		wrongAt   uint64 // height from which node n-1 computes a wrong root; 0: never
	}{
		{3, 2, 0}, {3, 2, 4}, {4, 0, 1}, {4, 0, 7}, {7, 0, 3}, {1, 0, 0},
	}
	const heights, shards = 10, 2
	for _, tc := range cases {
		for seed := uint64(1); seed <= 5; seed++ {
			t.Run(fmt.Sprintf("n=%d q=%d wrong@%d seed=%d", tc.n, tc.quorum, tc.wrongAt, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 99))
				vals := valSet(tc.n)
				nodes := make([]*Finality, tc.n)
				for i := range nodes {
					f, err := NewFinality(FinalityConfig{Key: valKey(i), Validators: vals, Quorum: tc.quorum, Shards: shards})
					if err != nil {
						t.Fatal(err)
					}
					nodes[i] = f
				}
				type msg struct {
					to int
					a  Attestation
				}
				var pool []msg
				finals := make([][]Final, tc.n)
				alarms := make([][]Alarm, tc.n)
				take := func(i int, out Output, err error) {
					t.Helper()
					if err != nil && !errors.Is(err, ErrHalted) {
						t.Fatalf("node %d: %v", i, err)
					}
					finals[i] = append(finals[i], out.Final...)
					alarms[i] = append(alarms[i], out.Alarms...)
					for _, a := range out.Broadcast {
						for j := range nodes {
							if j != i {
								pool = append(pool, msg{j, a})
							}
						}
					}
				}
				next := make([][shards]uint64, tc.n) // next height each node executes, per shard
				for i := range next {
					for s := range shards {
						next[i][s] = 1
					}
				}
				for {
					// Either a node executes its next block or a message is delivered.
					var execs [][2]int
					for i := range nodes {
						for s := range shards {
							if next[i][s] <= heights {
								execs = append(execs, [2]int{i, s})
							}
						}
					}
					if len(execs) == 0 && len(pool) == 0 {
						break
					}
					if len(pool) == 0 || len(execs) > 0 && rng.IntN(3) == 0 {
						e := execs[rng.IntN(len(execs))]
						i, s := e[0], uint32(e[1])
						h := next[i][s]
						next[i][s]++
						v := tokVote("xa")
						v.BlockHash[1], v.BlockHash[2] = byte(s), byte(h)
						if tc.wrongAt != 0 && i == tc.n-1 && h >= tc.wrongAt {
							v.StateRoot = [32]byte{'w', byte(h)}
						}
						out, err := nodes[i].Local(s, h, v.BlockHash, v.StateRoot)
						take(i, out, err)
						continue
					}
					k := rng.IntN(len(pool))
					m := pool[k]
					if rng.IntN(4) != 0 { // a quarter of messages are delivered twice
						pool = slices.Delete(pool, k, k+1)
					}
					out, err := nodes[m.to].Receive(m.a)
					take(m.to, out, err)
				}
				for i := range nodes {
					wrong := tc.wrongAt != 0 && i == tc.n-1
					for s := range uint32(shards) {
						var hs []uint64
						for _, fin := range finals[i] {
							if fin.Shard != s {
								continue
							}
							hs = append(hs, fin.Height)
							if fin.StateRoot[0] != 'a' || len(fin.Signers) < nodes[i].Quorum() {
								t.Fatalf("node %d finalized a wrong vote or without a quorum: %+v", i, fin)
							}
						}
						wantN := heights
						if wrong {
							wantN = int(tc.wrongAt) - 1
						}
						for k, h := range hs {
							if h != uint64(k+1) {
								t.Fatalf("node %d shard %d finals out of order: %v", i, s, hs)
							}
						}
						if len(hs) != wantN {
							t.Fatalf("node %d shard %d: %d finals, want %d", i, s, len(hs), wantN)
						}
						if nodes[i].Halted(s) != wrong {
							t.Fatalf("node %d shard %d halted=%v", i, s, nodes[i].Halted(s))
						}
					}
					if wrong {
						if len(alarms[i]) != shards || alarms[i][0].Kind != AlarmDivergence || alarms[i][0].Height != tc.wrongAt {
							t.Fatalf("wrong node's alarms: %+v", alarms[i])
						}
					} else if len(alarms[i]) != 0 {
						t.Fatalf("honest node %d alarms: %+v", i, alarms[i])
					}
				}
			})
		}
	}
}

func TestAttestationRoundTrip(t *testing.T) {
	a := attest(valKey(3), 7, 42, "xa")
	b := a.Encode()
	if len(b) != AttestationSize {
		t.Fatalf("%d bytes", len(b))
	}
	got, err := DecodeAttestation(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Shard != 7 || got.Height != 42 || got.Vote() != a.Vote() || !bytes.Equal(got.Signer, a.Signer) || !bytes.Equal(got.Sig, a.Sig) {
		t.Fatalf("round trip %+v", got)
	}
	if err := got.Verify(); err != nil {
		t.Fatal(err)
	}
	// Every field is covered by the signature.
	for _, mut := range []func(*Attestation){
		func(a *Attestation) { a.Shard++ },
		func(a *Attestation) { a.Height++ },
		func(a *Attestation) { a.BlockHash[31] ^= 1 },
		func(a *Attestation) { a.StateRoot[0] ^= 1 },
		func(a *Attestation) { a.Signer = valKey(4).Public().(ed25519.PublicKey) },
		func(a *Attestation) { a.Sig = a.Sig[:10] },
		func(a *Attestation) { a.Signer = nil },
	} {
		c := got
		c.Sig = append([]byte(nil), got.Sig...)
		mut(&c)
		if err := c.Verify(); !errors.Is(err, ErrSignature) {
			t.Fatalf("mutated attestation: %v", err)
		}
	}
	// The domain separates attestations from other signed messages.
	if !bytes.HasPrefix(a.SigningBytes(), []byte("rustorium/attest/v1")) {
		t.Fatal("signing bytes lack the domain")
	}
	var unsigned Attestation
	unsigned.Height = 1
	u, err := DecodeAttestation(unsigned.Encode())
	if err != nil || u.Verify() == nil {
		t.Fatalf("unsigned attestation: %v", err)
	}
	for _, bad := range [][]byte{nil, b[:AttestationSize-1], append(append([]byte(nil), b...), 0), append([]byte{2}, b[1:]...)} {
		if _, err := DecodeAttestation(bad); !errors.Is(err, ErrAttestation) {
			t.Fatalf("bad input %x: %v", bad, err)
		}
	}
	zero := attest(valKey(1), 0, 0, "xa")
	if _, err := DecodeAttestation(zero.Encode()); !errors.Is(err, ErrAttestation) {
		t.Fatalf("height 0: %v", err)
	}
}

func FuzzDecodeAttestation(f *testing.F) {
	a := attest(valKey(0), 1, 2, "xa")
	f.Add(a.Encode())
	f.Add([]byte{1, 2, 3})
	f.Add(make([]byte, AttestationSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAttestation(b)
		if err != nil {
			if !errors.Is(err, ErrAttestation) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(a.Encode(), b) {
			t.Fatal("attestation does not re-encode to its input")
		}
		err = a.Verify()
		if err != nil && !errors.Is(err, ErrSignature) {
			t.Fatalf("untyped verify error %v", err)
		}
		if stdVerdict(&a) != (err == nil) {
			t.Fatalf("Verify says %v, crypto/ed25519 %v", err, stdVerdict(&a))
		}
	})
}

// stdVerdict is crypto/ed25519's verdict on a, with Verify's refusal of
// the zero signer or signature.
func stdVerdict(a *Attestation) bool {
	return len(a.Signer) == ed25519.PublicKeySize && len(a.Sig) == ed25519.SignatureSize &&
		!isZero(a.Signer) && !isZero(a.Sig) && ed25519.Verify(a.Signer, a.SigningBytes(), a.Sig)
}

// TestAttestationSignatureOracle: Sign makes crypto/ed25519's signature,
// byte for byte, and Verify says what crypto/ed25519.Verify says, also of
// the signatures and keys the curve's edge cases make: S not reduced
// (S+ℓ), keys and R of small order, a key's y not reduced (y+p).
func TestAttestationSignatureOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(48, 1))
	for i := range 64 {
		var seed [32]byte
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed[:])
		a := Attestation{Shard: rng.Uint32(), Height: rng.Uint64() | 1}
		for j := range a.BlockHash {
			a.BlockHash[j], a.StateRoot[j] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		a.Sign(priv)
		if want := ed25519.Sign(priv, a.SigningBytes()); !bytes.Equal(a.Sig, want) {
			t.Fatalf("key %d: signature %x, crypto/ed25519 %x", i, a.Sig, want)
		}
		if err := a.Verify(); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	// ℓ and p, little-endian.
	ell, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	p, _ := new(big.Int).SetString("57896044618658097711785492504343953926634992332820282019728792003956564819949", 10)
	le := func(x *big.Int) []byte {
		b := make([]byte, 32)
		x.FillBytes(b)
		slices.Reverse(b)
		return b
	}
	add := func(b []byte, x *big.Int) []byte { // b + x, b little-endian
		be := slices.Clone(b)
		slices.Reverse(be)
		return le(new(big.Int).Add(new(big.Int).SetBytes(be), x))
	}
	good := attest(valKey(5), 3, 9, "xa")
	identity := append([]byte{1}, make([]byte, 31)...) // y = 1: the neutral point
	order4 := append(make([]byte, 31), 0x80)           // y = 0, x's sign bit set: order 4
	minusOne := le(new(big.Int).Sub(p, big.NewInt(1))) // y = -1: order 2
	cases := map[string]func(*Attestation){
		"valid":          func(*Attestation) {},
		"S+ℓ":            func(a *Attestation) { a.Sig = append(a.Sig[:32:32], add(a.Sig[32:], ell)...) },
		"identity key":   func(a *Attestation) { a.Signer = identity },
		"key y = -1":     func(a *Attestation) { a.Signer = minusOne },
		"key of order 4": func(a *Attestation) { a.Signer = order4 },
		"identity R, S = 0": func(a *Attestation) {
			a.Signer = identity
			a.Sig = append(slices.Clone(identity), make([]byte, 32)...)
		},
		"key y+p": func(a *Attestation) {
			a.Signer = add(identity, p) // y = 1 + p, not reduced
			a.Sig = append(slices.Clone(identity), make([]byte, 32)...)
		},
		"R y+p": func(a *Attestation) {
			a.Sig = append(add(identity, p), make([]byte, 32)...)
			a.Signer = identity
		},
		"flipped bit": func(a *Attestation) { a.Sig[5] ^= 4 },
	}
	for name, mut := range cases {
		a := good
		a.Sig, a.Signer = slices.Clone(good.Sig), slices.Clone(good.Signer)
		mut(&a)
		if got, want := a.Verify() == nil, stdVerdict(&a); got != want {
			t.Errorf("%s: Verify %v, crypto/ed25519 %v", name, got, want)
		}
	}
}

// FuzzFinality feeds a 4-validator tracker arbitrary inputs and checks its
// invariants: no panic, finals per shard in height order without gaps and
// with a quorum of distinct matching signers, nothing final after a halt.
func FuzzFinality(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 1, 1, 2, 1, 1})
	f.Add([]byte{1, 1, 1, 0, 1, 1, 2, 1, 1, 3, 1, 2, 4, 9, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		vals := valSet(4)
		keys := []ed25519.PrivateKey{valKey(0), valKey(1), valKey(2), valKey(3), valKey(9)}
		fin, err := NewFinality(FinalityConfig{Key: keys[0], Validators: vals, Shards: 2, Window: 8, Retain: 2})
		if err != nil {
			t.Fatal(err)
		}
		last := [2]uint64{}
		halted := [2]bool{}
		for len(b) >= 3 {
			op, h, v := b[0], uint64(b[1]%12), "x"+string(rune('a'+b[2]%3))
			b = b[3:]
			shard := uint32(op>>3) % 3 // 2 is out of range
			vote := tokVote(v)
			var out Output
			switch op % 8 {
			case 0:
				out, _ = fin.Local(shard, h, vote.BlockHash, vote.StateRoot)
			case 1, 2, 3, 4:
				a := attest(keys[op%8], shard, h, v)
				out, _ = fin.Receive(a)
			case 5:
				a := attest(keys[1], shard, h, v)
				a.Sig[0] ^= 1
				out, _ = fin.Receive(a)
			case 6:
				out, _ = fin.Restore(shard, h)
				if shard < 2 && h > last[shard] {
					last[shard] = h
				}
			case 7:
				_ = fin.Own(shard)
			}
			for _, a := range out.Alarms {
				if a.Kind == AlarmDivergence {
					halted[a.Shard] = true
				}
			}
			for _, x := range out.Final {
				if halted[x.Shard] {
					t.Fatalf("final after a halt: %+v", x)
				}
				if x.Height != last[x.Shard]+1 {
					t.Fatalf("final %d after %d", x.Height, last[x.Shard])
				}
				last[x.Shard] = x.Height
				if len(x.Signers) < fin.Quorum() {
					t.Fatalf("final with %d signers", len(x.Signers))
				}
				seen := map[string]bool{}
				for _, s := range x.Signers {
					if seen[string(s)] {
						t.Fatal("signer counted twice")
					}
					seen[string(s)] = true
				}
			}
		}
	})
}

// BenchmarkFinalityHeight: one height of a 4-validator shard from this
// node's view: its own result and three peers' attestations (three
// signature checks), to a Final.
func BenchmarkFinalityHeight(b *testing.B) {
	vals := valSet(4)
	f, err := NewFinality(FinalityConfig{Key: valKey(0), Validators: vals, Shards: 1})
	if err != nil {
		b.Fatal(err)
	}
	const pre = 1024
	atts := make([][3]Attestation, pre)
	for i := range atts {
		for j := range 3 {
			atts[i][j] = attest(valKey(j+1), 0, uint64(i+1), "xa")
		}
	}
	v := tokVote("xa")
	b.ReportAllocs()
	b.ResetTimer()
	finals := 0
	for i := 0; i < b.N; i++ {
		h := uint64(i%pre + 1)
		if h == 1 && i > 0 {
			b.StopTimer()
			f, _ = NewFinality(FinalityConfig{Key: valKey(0), Validators: vals, Shards: 1})
			b.StartTimer()
		}
		f.Local(0, h, v.BlockHash, v.StateRoot)
		for j := range 3 {
			out, _ := f.Receive(atts[h-1][j])
			finals += len(out.Final)
		}
	}
	if finals != b.N {
		b.Fatalf("%d finals for %d heights", finals, b.N)
	}
}

// BenchmarkAttestation: Sign and Verify against crypto/ed25519's, their
// peer in the same run (go test -run '^$' -bench Attestation
// ./node/consensus).
func BenchmarkAttestation(b *testing.B) {
	priv := valKey(1)
	a := attest(priv, 3, 9, "xa")
	msg := a.SigningBytes()
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			a.Sign(priv)
		}
	})
	b.Run("sign/crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			_ = ed25519.Sign(priv, msg)
		}
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if a.Verify() != nil {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("verify/crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(a.Signer, msg, a.Sig) {
				b.Fatal("does not verify")
			}
		}
	})
}
