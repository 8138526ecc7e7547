package tx

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"testing"
)

func testKey(seed byte) ed25519.PrivateKey {
	var s [ed25519.SeedSize]byte
	s[0] = seed
	return ed25519.NewKeyFromSeed(s[:])
}

func signedPut(t testing.TB, key, value string) *Tx {
	t.Helper()
	x := &Tx{Kind: KindPut, ChainID: 7, Nonce: 42, Key: []byte(key), Value: []byte(value)}
	x.Sign(testKey(1))
	return x
}

func TestRoundTripAndValidate(t *testing.T) {
	cases := []*Tx{
		signedPut(t, "k", "v"),
		signedPut(t, "key", ""),
		func() *Tx {
			x := &Tx{Kind: KindTransfer, ChainID: 7, Nonce: 1, To: [32]byte{9}, Amount: 1000}
			x.Sign(testKey(2))
			return x
		}(),
	}
	for _, x := range cases {
		enc := x.Encode()
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("%s: decode: %v", x.Kind, err)
		}
		if !bytes.Equal(got.Encode(), enc) {
			t.Fatalf("%s: re-encoding differs", x.Kind)
		}
		if got.ID() != x.ID() || got.ID() != IDOf(enc) {
			t.Fatalf("%s: id differs", x.Kind)
		}
		if err := got.Validate(7); err != nil {
			t.Fatalf("%s: validate: %v", x.Kind, err)
		}
	}
}

// TestSignMatchesStdlib: Sign makes crypto/ed25519's signature, byte for
// byte, over keys and bodies of every kind.
func TestSignMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(48, 2))
	for i := range 64 {
		var seed [ed25519.SeedSize]byte
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed[:])
		x := &Tx{Kind: KindPut, ChainID: rng.Uint32(), Nonce: rng.Uint64(), Key: []byte{byte(i), 1}, Value: make([]byte, i)}
		if i%2 == 1 {
			x = &Tx{Kind: KindTransfer, ChainID: 7, Nonce: rng.Uint64(), To: [32]byte{byte(i)}, Amount: rng.Uint64()}
		}
		x.Sign(priv)
		if want := ed25519.Sign(priv, x.SigningBytes()); !bytes.Equal(x.Sig, want) {
			t.Fatalf("%d: signature %x, crypto/ed25519 %x", i, x.Sig, want)
		}
	}
}

func TestRejections(t *testing.T) {
	good := signedPut(t, "k", "v")
	tamper := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good.Encode()...)) }
	cases := []struct {
		name    string
		enc     []byte
		chain   uint32
		want    error
		wantErr Code
	}{
		{"wrong chain", good.Encode(), 8, ErrChainID, CodeChainID},
		{"flipped value byte", tamper(func(b []byte) []byte { b[len(b)-65] ^= 1; return b }), 7, ErrSignature, CodeSignature},
		{"flipped sig byte", tamper(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), 7, ErrSignature, CodeSignature},
		{"bad version", tamper(func(b []byte) []byte { b[0] = 9; return b }), 7, ErrEncoding, CodeEncoding},
		{"unknown kind", tamper(func(b []byte) []byte { b[1] = 99; return b }), 7, ErrUnknownKind, CodeUnknownKind},
		{"truncated", good.Encode()[:50], 7, ErrEncoding, CodeEncoding},
		{"trailing", tamper(func(b []byte) []byte {
			return append(b[:len(b)-64:len(b)-64], append([]byte{0}, good.Sig...)...)
		}), 7, ErrEncoding, CodeEncoding},
		{"too large", make([]byte, MaxSize+1), 7, ErrTooLarge, CodeTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x, err := Decode(c.enc)
			if err == nil {
				err = x.Validate(c.chain)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if CodeOf(err) != c.wantErr {
				t.Fatalf("code %v, want %v", CodeOf(err), c.wantErr)
			}
		})
	}
}

func TestNonMinimalLengthRejected(t *testing.T) {
	x := signedPut(t, "k", "v")
	enc := x.Encode()
	// Key length 1 is encoded as 0x01; 0x81 0x00 is the same value, not minimal.
	i := headerSize
	bad := append(append(append([]byte(nil), enc[:i]...), 0x81, 0x00), enc[i+1:]...)
	if _, err := Decode(bad); !errors.Is(err, ErrEncoding) {
		t.Fatalf("non-minimal varint: got %v", err)
	}
}

func TestCreditNotSubmittable(t *testing.T) {
	x := &Tx{Kind: KindCredit, ChainID: 7, To: [32]byte{1}, Amount: 5, SourceShard: 3, SourceHeight: 1 << 40}
	x.Sign(testKey(3))
	got, err := Decode(x.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.SourceShard != 3 || got.SourceHeight != 1<<40 || got.Amount != 5 {
		t.Fatalf("credit round trip: %+v", got)
	}
	// A credit without its source (the transfer body) is not a credit.
	short := append([]byte(nil), x.Encode()...)
	short = append(short[:len(short)-64-12], short[len(short)-64:]...)
	if _, err := Decode(short); !errors.Is(err, ErrEncoding) {
		t.Fatalf("credit without its source: got %v", err)
	}
	if err := got.Validate(7); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("credit from a client: got %v", err)
	}
}

func TestSizeLimits(t *testing.T) {
	x := &Tx{Kind: KindPut, ChainID: 7, Key: make([]byte, MaxKeySize), Value: make([]byte, MaxValueSize)}
	x.Sign(testKey(1))
	if len(x.Encode()) > MaxSize {
		t.Fatalf("largest valid tx is %d bytes > MaxSize %d", len(x.Encode()), MaxSize)
	}
	if _, err := Decode(x.Encode()); err != nil {
		t.Fatalf("largest valid tx: %v", err)
	}
	x.Key = make([]byte, MaxKeySize+1)
	if _, err := Decode(x.Encode()); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized key: got %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(signedPut(f, "k", "v").Encode())
	tr := &Tx{Kind: KindTransfer, ChainID: 7, To: [32]byte{1}, Amount: 3}
	tr.Sign(testKey(1))
	f.Add(tr.Encode())
	cr := &Tx{Kind: KindCredit, ChainID: 7, To: [32]byte{2}, Amount: 3, SourceShard: 1, SourceHeight: 9, Sig: make([]byte, 64)}
	f.Add(cr.Encode())
	r := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		b := make([]byte, r.IntN(200))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := Decode(b)
		if err != nil {
			if CodeOf(err) == CodeInternal {
				t.Fatalf("untyped decode error: %v", err)
			}
			return
		}
		// Canonical: whatever decodes re-encodes to the same bytes.
		if !bytes.Equal(x.Encode(), b) {
			t.Fatalf("decode/encode not canonical:\n in %x\nout %x", b, x.Encode())
		}
		_ = x.Validate(7)
	})
}

func BenchmarkSign(b *testing.B) {
	k := testKey(1)
	x := &Tx{Kind: KindPut, ChainID: 7, Key: []byte("key-000001"), Value: make([]byte, 32)}
	for b.Loop() {
		x.Sign(k)
	}
}

func BenchmarkValidate(b *testing.B) {
	x := signedPut(b, "key-000001", "0123456789abcdef0123456789abcdef")
	for b.Loop() {
		if err := x.Validate(7); err != nil {
			b.Fatal(err)
		}
	}
}
