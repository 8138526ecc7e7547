package merkle_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/iden3/go-iden3-crypto/poseidon"
	iden3 "github.com/iden3/go-merkletree-sql/v2"

	"github.com/rustorium/rustorium/node/merkle"
)

func iden3Hash(t testing.TB, e fr.Element) *iden3.Hash {
	h, err := iden3.NewHashFromBigInt(big_(e))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestProofsAgainstIden3 checks membership and non-membership proofs both
// ways: ours verify with the library, the library's verify with ours, and
// the binary and JSON encodings are byte-identical.
func TestProofsAgainstIden3(t *testing.T) {
	for _, kind := range []string{"uniform", "small", "prefix"} {
		t.Run(kind, func(t *testing.T) {
			r, _ := seeded(t)
			gen := keyGen(kind, r)
			o, ref := newOurs(t, merkle.Options{}), newOracle(t, levels)
			state := map[fr.Element]fr.Element{}
			checkAll := func(probe []fr.Element) {
				root := o.tr.Root()
				libRoot := ref.mt.Root()
				if want := ref.root(); !root.Equal(&want) {
					t.Fatalf("roots differ")
				}
				proofs, values, proot, err := o.tr.ProveMany(probe)
				if err != nil || !proot.Equal(&root) {
					t.Fatal(err)
				}
				for i, k := range probe {
					p, v := proofs[i], values[i]
					wantV, present := state[k]
					if p.Existence != present || (present && !v.Equal(&wantV)) {
						t.Fatalf("key %s: existence %v value %s, want %v %s", k.String(), p.Existence, v.String(), present, wantV.String())
					}
					if err := merkle.VerifyProof(root, p, k, v); err != nil {
						t.Fatalf("our proof fails our verify: %v", err)
					}
					ours, err := p.MarshalBinary()
					if err != nil {
						t.Fatal(err)
					}
					lp, lv, err := ref.mt.GenerateProof(t.Context(), big_(k), nil)
					if err != nil {
						t.Fatal(err)
					}
					if theirs := lp.Bytes(); !bytes.Equal(ours, theirs) {
						t.Fatalf("binary proof differs:\nours   %x\ntheirs %x", ours, theirs)
					}
					// ours → library
					lpo, err := iden3.NewProofFromBytes(ours)
					if err != nil {
						t.Fatal(err)
					}
					if !iden3.VerifyProof(libRoot, lpo, big_(k), big_(v)) {
						t.Fatalf("library rejects our proof for %s (existence %v)", k.String(), p.Existence)
					}
					// library → ours (its value for a non-membership proof
					// is the aux leaf's; absence proves value 0)
					var q merkle.Proof
					if err := q.UnmarshalBinary(lp.Bytes()); err != nil {
						t.Fatal(err)
					}
					qv := fr.Element{}
					if lp.Existence {
						qv, _ = merkle.ElementFromBigInt(lv)
					}
					if err := merkle.VerifyProof(root, &q, k, qv); err != nil {
						t.Fatalf("we reject the library's proof: %v", err)
					}
					// JSON identical and decodable both ways
					oj, err := json.Marshal(p)
					if err != nil {
						t.Fatal(err)
					}
					tj, err := json.Marshal(lp)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(oj, tj) {
						t.Fatalf("JSON differs:\nours   %s\ntheirs %s", oj, tj)
					}
					var qj merkle.Proof
					if err := json.Unmarshal(tj, &qj); err != nil {
						t.Fatal(err)
					}
					if b, _ := qj.MarshalBinary(); !bytes.Equal(b, ours) {
						t.Fatal("JSON round trip changed the proof")
					}
				}
			}
			for b := 0; b < 4; b++ {
				var kvs []merkle.KV
				var probe []fr.Element
				for i := 0; i < 1+b*b*25; i++ {
					k, v := gen(), randElem(r)
					kvs = append(kvs, merkle.KV{Key: k, Value: v})
					state[k] = v
					ref.set(k, v)
					probe = append(probe, k, gen()) // present and (likely) absent
				}
				if err := o.apply(kvs); err != nil {
					t.Fatal(err)
				}
				checkAll(probe)
			}
		})
	}
	// empty tree: non-membership without aux
	o := newOurs(t, merkle.Options{})
	p, _, err := o.tr.Prove(elem(9))
	if err != nil || p.Existence || p.Aux != nil || p.Depth != 0 {
		t.Fatalf("empty tree proof %+v %v", p, err)
	}
	if err := merkle.VerifyProof(fr.Element{}, p, elem(9), fr.Element{}); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRejects(t *testing.T) {
	r, _ := seeded(t)
	o := newOurs(t, merkle.Options{})
	var kvs []merkle.KV
	for i := 0; i < 300; i++ {
		kvs = append(kvs, merkle.KV{Key: randElem(r), Value: randElem(r)})
	}
	if err := o.apply(kvs); err != nil {
		t.Fatal(err)
	}
	root := o.tr.Root()
	k, v := kvs[7].Key, kvs[7].Value
	p, _, _ := o.tr.Prove(k)
	if len(p.Siblings) == 0 {
		t.Fatal("expected siblings")
	}
	clone := func() *merkle.Proof {
		q := *p
		q.Siblings = append([]fr.Element(nil), p.Siblings...)
		return &q
	}
	one := elem(1)
	cases := []struct {
		name string
		p    *merkle.Proof
		key  fr.Element
		val  fr.Element
		root fr.Element
		want error
	}{
		{"wrong value", p, k, randElem(r), root, merkle.ErrRootMismatch},
		{"wrong key", p, randElem(r), v, root, merkle.ErrRootMismatch},
		{"wrong root", p, k, v, one, merkle.ErrRootMismatch},
		{"tampered sibling", func() *merkle.Proof { q := clone(); q.Siblings[0].Add(&q.Siblings[0], &one); return q }(), k, v, root, merkle.ErrRootMismatch},
		{"dropped sibling", func() *merkle.Proof { q := clone(); q.Siblings = q.Siblings[1:]; return q }(), k, v, root, merkle.ErrMalformedProof},
		{"deeper", func() *merkle.Proof { q := clone(); q.Depth++; return q }(), k, v, root, merkle.ErrMalformedProof},
		{"too deep", func() *merkle.Proof { q := clone(); q.Depth = 241; return q }(), k, v, root, merkle.ErrMalformedProof},
		{"existence with aux", func() *merkle.Proof { q := clone(); q.Aux = &merkle.NodeAux{Key: one}; return q }(), k, v, root, merkle.ErrMalformedProof},
		{"nil", nil, k, v, root, merkle.ErrMalformedProof},
		{"flipped existence", func() *merkle.Proof { q := clone(); q.Existence = false; return q }(), k, fr.Element{}, root, merkle.ErrRootMismatch},
	}
	for _, c := range cases {
		if err := merkle.VerifyProof(c.root, c.p, c.key, c.val); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}

	// non-membership: find an absent key that ends at an aux leaf
	var absent fr.Element
	var np *merkle.Proof
	for {
		absent = randElem(r)
		np, _, _ = o.tr.Prove(absent)
		if np.Aux != nil {
			break
		}
	}
	if err := merkle.VerifyProof(root, np, absent, fr.Element{}); err != nil {
		t.Fatal(err)
	}
	if err := merkle.VerifyProof(root, np, absent, one); !errors.Is(err, merkle.ErrNonMembershipValue) {
		t.Errorf("non-membership with value: %v", err)
	}
	// the aux leaf's own key must not be "proven absent" by it
	if err := merkle.VerifyProof(root, np, np.Aux.Key, fr.Element{}); !errors.Is(err, merkle.ErrAuxKeyIsQueried) {
		t.Errorf("aux key queried: %v", err)
	}
	// the library rejects it too
	b, _ := np.MarshalBinary()
	lp, _ := iden3.NewProofFromBytes(b)
	if iden3.VerifyProof(iden3Hash(t, root), lp, big_(np.Aux.Key), big.NewInt(0)) {
		t.Error("library accepted non-membership of the aux key")
	}
	// a present key cannot be shown absent with another key's proof
	if err := merkle.VerifyProof(root, np, k, fr.Element{}); err == nil {
		t.Error("non-membership proof of another key verified for a present key")
	}
}

func FuzzProofUnmarshalBinary(f *testing.F) {
	o := newOurs(f, merkle.Options{})
	var kvs []merkle.KV
	for i := uint64(1); i < 50; i++ {
		kvs = append(kvs, merkle.KV{Key: elem(i * 3), Value: elem(i)})
	}
	if err := o.apply(kvs); err != nil {
		f.Fatal(err)
	}
	for _, k := range []uint64{3, 6, 4, 1000} {
		p, _, _ := o.tr.Prove(elem(k))
		b, _ := p.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 32))
	f.Add(append([]byte{0x03, 0x01}, make([]byte, 30+64)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p merkle.Proof
		if err := p.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, merkle.ErrMalformedProof) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// canonical: re-encoding gives the same bytes
		out, err := p.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip: %v\nin  %x\nout %x", err, b, out)
		}
		_ = merkle.VerifyProof(o.tr.Root(), &p, elem(3), elem(1))
	})
}

func FuzzProofUnmarshalJSON(f *testing.F) {
	o := newOurs(f, merkle.Options{})
	var kvs []merkle.KV
	for i := uint64(1); i < 50; i++ {
		kvs = append(kvs, merkle.KV{Key: elem(i * 3), Value: elem(i)})
	}
	if err := o.apply(kvs); err != nil {
		f.Fatal(err)
	}
	for _, k := range []uint64{3, 4, 1000} {
		p, _, _ := o.tr.Prove(elem(k))
		b, _ := json.Marshal(p)
		f.Add(b)
	}
	f.Add([]byte(`{"existence":true,"siblings":["0","1"]}`))
	f.Add([]byte(`{"existence":false,"siblings":[],"node_aux":{"key":"-1","value":"x"}}`))
	f.Add([]byte(fmt.Sprintf(`{"existence":true,"siblings":["%s"]}`, fr.Modulus().String())))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p merkle.Proof
		if err := json.Unmarshal(b, &p); err != nil {
			return
		}
		out, err := json.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		var q merkle.Proof
		if err := json.Unmarshal(out, &q); err != nil {
			t.Fatal(err)
		}
		b1, _ := p.MarshalBinary()
		b2, _ := q.MarshalBinary()
		if !bytes.Equal(b1, b2) {
			t.Fatal("JSON round trip changed the proof")
		}
	})
}

// FuzzParseElement checks ParseElement and ParseElementBytes (the fast
// 19-digits-at-a-time parser) against big.Int: both accept exactly the
// strings of 1 to 80 decimal digits below the modulus, with big.Int's value,
// and fail with a typed error otherwise.
func FuzzParseElement(f *testing.F) {
	q := fr.Modulus()
	for _, s := range []string{"0", "1", "007", "", "-1", "+1", "1e5", " 1", "9999999999999999999", "10000000000000000000",
		q.String(), new(big.Int).Sub(q, big.NewInt(1)).String(), new(big.Int).Lsh(big.NewInt(1), 256).String(),
		new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)).String(), "000" + q.String()[:76],
		strings.Repeat("9", 80), strings.Repeat("0", 80), strings.Repeat("0", 81)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := merkle.ParseElement(s)
		eb, errb := merkle.ParseElementBytes([]byte(s))
		if (err == nil) != (errb == nil) || (err != nil && err.Error() != errb.Error()) || !e.Equal(&eb) {
			t.Fatalf("%q: ParseElement %v, %v; ParseElementBytes %v, %v", s, e.String(), err, eb.String(), errb)
		}
		digits := len(s) > 0 && len(s) <= 80 && strings.Trim(s, "0123456789") == ""
		b, _ := new(big.Int).SetString(s, 10)
		valid := digits && b.Cmp(q) < 0
		if err != nil {
			if !errors.Is(err, merkle.ErrBadNumber) && !errors.Is(err, merkle.ErrOutOfField) {
				t.Fatalf("untyped error %v", err)
			}
			if valid {
				t.Fatalf("%q rejected: %v", s, err)
			}
			return
		}
		if !valid || e.BigInt(new(big.Int)).Cmp(b) != 0 {
			t.Fatalf("accepted %q as %s", s, e.String())
		}
	})
}

// TestParseElementRandom checks the fast parser on random field elements and
// numbers around the modulus and 2^256, against big.Int (seeded).
func TestParseElementRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 77))
	mr := mrand.New(mrand.NewSource(5)) // for big.Int.Rand
	q := fr.Modulus()
	two256 := new(big.Int).Lsh(big.NewInt(1), 256)
	for i := 0; i < 20000; i++ {
		var b *big.Int
		switch i % 4 {
		case 0: // any field element
			b = new(big.Int).Rand(mr, q)
		case 1: // short numbers
			b = new(big.Int).SetUint64(r.Uint64() >> (r.Uint64() % 64))
		case 2: // near the modulus
			b = new(big.Int).Add(q, big.NewInt(int64(r.IntN(2001)-1000)))
		default: // up to 2^256 and a bit beyond
			b = new(big.Int).Rand(mr, new(big.Int).Add(two256, two256))
		}
		s := b.String()
		if r.IntN(8) == 0 && len(s) < 80 {
			s = strings.Repeat("0", r.IntN(80-len(s)+1)) + s
		}
		e, err := merkle.ParseElement(s)
		if b.Cmp(q) >= 0 {
			if !errors.Is(err, merkle.ErrOutOfField) {
				t.Fatalf("%s (≥ modulus): %v", s, err)
			}
			continue
		}
		if err != nil || e.BigInt(new(big.Int)).Cmp(b) != 0 {
			t.Fatalf("%s: got %s, %v", s, e.String(), err)
		}
	}
}

func TestParseElementRange(t *testing.T) {
	m := fr.Modulus()
	if _, err := merkle.ParseElement(m.String()); !errors.Is(err, merkle.ErrOutOfField) {
		t.Errorf("modulus: %v", err)
	}
	if _, err := merkle.ParseElement(new(big.Int).Sub(m, big.NewInt(1)).String()); err != nil {
		t.Errorf("modulus-1: %v", err)
	}
	for _, s := range []string{"", "-1", "+1", "0x10", "1 ", "١"} {
		if _, err := merkle.ParseElement(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if _, err := merkle.ElementFromBigInt(big.NewInt(-1)); !errors.Is(err, merkle.ErrOutOfField) {
		t.Error("negative accepted")
	}
	var le [32]byte
	for i := range le {
		le[i] = 0xff
	}
	if _, err := merkle.ElementFromLE(le[:]); !errors.Is(err, merkle.ErrOutOfField) {
		t.Error("out-of-field LE accepted")
	}
}

func TestBytesMapping(t *testing.T) {
	// KeyFromBytes/ValueFromBytes are poseidon.HashBytes (checked against
	// the library directly), and 0 for empty input.
	for _, s := range []string{"a", "hello world", string(make([]byte, 100))} {
		k := merkle.KeyFromBytes([]byte(s))
		h, err := poseidon.HashBytes([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := merkle.ElementFromBigInt(h); !k.Equal(&want) || k.IsZero() {
			t.Fatalf("%q: %s, want %s", s, k.String(), want.String())
		}
	}
	if k := merkle.KeyFromBytes(nil); !k.IsZero() {
		t.Fatal("empty key not 0")
	}
}

// TestElementsFromBytes checks the batch form against KeyFromBytes and
// ValueFromBytes, over the 8-lane groups, their scalar tail and the inputs
// hashed one at a time (empty, longer than one permutation).
func TestElementsFromBytes(t *testing.T) {
	var in [][]byte
	for i, n := range []int{0, 1, 31, 32, 64, 100, 495, 496, 497, 1000, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233} {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i*7 + j)
		}
		in = append(in, b)
	}
	for n := 0; n <= len(in); n++ {
		out := make([]fr.Element, n)
		merkle.ElementsFromBytes(out, in[:n])
		for i := range out {
			k, v := merkle.KeyFromBytes(in[i]), merkle.ValueFromBytes(in[i])
			if !out[i].Equal(&k) || !out[i].Equal(&v) {
				t.Fatalf("%d inputs, input %d (%d bytes): %s, KeyFromBytes %s", n, i, len(in[i]), out[i].String(), k.String())
			}
		}
	}
}
