// Package tx defines Rustorium's transactions: their canonical binary encoding
// (exactly one byte sequence per transaction, which is what is hashed and signed),
// ed25519 signing, transaction ids, and the stateless checks every node runs at
// ingress before a transaction may enter the ordered log.
package tx

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/rustorium/rustorium/node/sigverify"
)

// Kind is the type of a transaction.
type Kind uint8

const (
	// KindPut sets Key to Value in the sender's shard.
	KindPut Kind = 1
	// KindTransfer moves Amount from the sender's account to To.
	KindTransfer Kind = 2
	// KindCredit is a system transaction emitted by a shard leader to credit
	// the receiver of a cross-shard transfer. Clients cannot submit it.
	KindCredit Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindPut:
		return "put"
	case KindTransfer:
		return "transfer"
	case KindCredit:
		return "credit"
	default:
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
}

// Size limits. They bound what a node allocates for one transaction.
const (
	// MaxKeySize is the largest key of a put, in bytes.
	MaxKeySize = 256
	// MaxValueSize is the largest value of a put, in bytes.
	MaxValueSize = 16 << 10
	// MaxSize is the largest encoded transaction, in bytes.
	MaxSize = headerSize + 2*binary.MaxVarintLen64 + MaxKeySize + MaxValueSize + ed25519.SignatureSize
)

// version is the first byte of every encoded transaction.
const version = 1

// headerSize is version + kind + chain id + nonce + sender public key.
const headerSize = 1 + 1 + 4 + 8 + ed25519.PublicKeySize

// signDomain separates transaction signatures from every other use of a key.
var signDomain = []byte("rustorium/tx/v1\x00")

// Errors returned by Decode and Validate. Each names one way a transaction
// can be rejected at ingress; Code maps them onto wire error codes.
var (
	// ErrEncoding: the bytes are not a canonical encoding of a transaction.
	ErrEncoding = errors.New("tx: bad encoding")
	// ErrTooLarge: the transaction or one of its fields exceeds a size limit.
	ErrTooLarge = errors.New("tx: too large")
	// ErrUnknownKind: the kind byte names no transaction kind (or a system kind
	// that clients may not submit).
	ErrUnknownKind = errors.New("tx: unknown kind")
	// ErrSignature: the signature does not verify under the sender's key.
	ErrSignature = errors.New("tx: bad signature")
	// ErrChainID: the transaction is for another chain.
	ErrChainID = errors.New("tx: wrong chain id")
)

// ID identifies a transaction: SHA-256 of its canonical encoding.
type ID [32]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Tx is one transaction. Fields not used by its Kind must be zero.
type Tx struct {
	Kind    Kind
	ChainID uint32
	// Nonce is chosen by the sender. For puts it only makes ids unique; for
	// transfers it must equal the sender account's next nonce.
	Nonce uint64
	From  ed25519.PublicKey // 32 bytes
	// Put fields.
	Key   []byte
	Value []byte
	// Transfer and credit fields.
	To     [32]byte
	Amount uint64
	// Credit fields: the block whose execution emitted the credit. The
	// receiving shard's replicas apply a credit only if their own execution
	// of that block emitted it too.
	SourceShard  uint32
	SourceHeight uint64

	Sig []byte // 64 bytes
}

// RoutingKey is the key whose hash picks the transaction's shard: the key
// of a put, the sender of a transfer, the receiver of a credit.
func (t *Tx) RoutingKey() []byte {
	switch t.Kind {
	case KindPut:
		return t.Key
	case KindCredit:
		return t.To[:]
	default:
		return t.From
	}
}

// appendBody appends everything but the signature.
func (t *Tx) appendBody(b []byte) []byte {
	b = append(b, version, byte(t.Kind))
	b = binary.BigEndian.AppendUint32(b, t.ChainID)
	b = binary.BigEndian.AppendUint64(b, t.Nonce)
	var from [ed25519.PublicKeySize]byte
	copy(from[:], t.From)
	b = append(b, from[:]...)
	switch t.Kind {
	case KindPut:
		b = binary.AppendUvarint(b, uint64(len(t.Key)))
		b = append(b, t.Key...)
		b = binary.AppendUvarint(b, uint64(len(t.Value)))
		b = append(b, t.Value...)
	case KindTransfer:
		b = append(b, t.To[:]...)
		b = binary.BigEndian.AppendUint64(b, t.Amount)
	case KindCredit:
		b = append(b, t.To[:]...)
		b = binary.BigEndian.AppendUint64(b, t.Amount)
		b = binary.BigEndian.AppendUint32(b, t.SourceShard)
		b = binary.BigEndian.AppendUint64(b, t.SourceHeight)
	}
	return b
}

// SigningBytes returns the bytes the sender signs: a domain tag followed by
// the canonical encoding without the signature.
func (t *Tx) SigningBytes() []byte {
	return t.appendBody(append(make([]byte, 0, len(signDomain)+headerSize+len(t.Key)+len(t.Value)+24), signDomain...))
}

// Sign sets From to priv's public key and Sig to the signature: RFC
// 8032's, the bytes crypto/ed25519.Sign makes, on curve25519-voi, in
// about half to two thirds of the time (consensus.BenchmarkAttestation; the
// load generator signs every transaction it sends).
func (t *Tx) Sign(priv ed25519.PrivateKey) {
	t.From = priv.Public().(ed25519.PublicKey)
	t.Sig = voi.Sign(voi.PrivateKey(priv), t.SigningBytes())
}

// AppendEncode appends the canonical encoding of t to b.
func (t *Tx) AppendEncode(b []byte) []byte {
	b = t.appendBody(b)
	var sig [ed25519.SignatureSize]byte
	copy(sig[:], t.Sig)
	return append(b, sig[:]...)
}

// Encode returns the canonical encoding of t.
func (t *Tx) Encode() []byte {
	return t.AppendEncode(make([]byte, 0, headerSize+len(t.Key)+len(t.Value)+2*binary.MaxVarintLen64+52+ed25519.SignatureSize))
}

// ID returns the transaction id.
func (t *Tx) ID() ID { return sha256.Sum256(t.Encode()) }

// IDOf returns the id of an already encoded transaction.
func IDOf(encoded []byte) ID { return sha256.Sum256(encoded) }

// Decode parses a canonical encoding. It checks structure and size only; call
// Validate for the signature and chain. The returned Tx does not alias b.
func Decode(b []byte) (*Tx, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(b), MaxSize)
	}
	if len(b) < headerSize+ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d bytes is shorter than any transaction", ErrEncoding, len(b))
	}
	if b[0] != version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrEncoding, b[0], version)
	}
	t := &Tx{
		Kind:    Kind(b[1]),
		ChainID: binary.BigEndian.Uint32(b[2:]),
		Nonce:   binary.BigEndian.Uint64(b[6:]),
		From:    ed25519.PublicKey(append([]byte(nil), b[14:headerSize]...)),
	}
	rest := b[headerSize : len(b)-ed25519.SignatureSize]
	switch t.Kind {
	case KindPut:
		var err error
		if t.Key, rest, err = readBytes(rest, MaxKeySize, "key"); err != nil {
			return nil, err
		}
		if t.Value, rest, err = readBytes(rest, MaxValueSize, "value"); err != nil {
			return nil, err
		}
	case KindTransfer, KindCredit:
		want := 40
		if t.Kind == KindCredit {
			want = 52
		}
		if len(rest) < want {
			return nil, fmt.Errorf("%w: %s body is %d bytes, want %d", ErrEncoding, t.Kind, len(rest), want)
		}
		copy(t.To[:], rest)
		t.Amount = binary.BigEndian.Uint64(rest[32:])
		if t.Kind == KindCredit {
			t.SourceShard = binary.BigEndian.Uint32(rest[40:])
			t.SourceHeight = binary.BigEndian.Uint64(rest[44:])
		}
		rest = rest[want:]
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnknownKind, b[1])
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrEncoding, len(rest))
	}
	t.Sig = append([]byte(nil), b[len(b)-ed25519.SignatureSize:]...)
	return t, nil
}

// readBytes reads a canonical (minimal) uvarint length and that many bytes.
func readBytes(b []byte, limit int, field string) (v, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, nil, fmt.Errorf("%w: %s length", ErrEncoding, field)
	}
	if k != uvarintLen(n) {
		return nil, nil, fmt.Errorf("%w: %s length is not minimally encoded", ErrEncoding, field)
	}
	if n > uint64(limit) {
		return nil, nil, fmt.Errorf("%w: %s is %d bytes > %d", ErrTooLarge, field, n, limit)
	}
	if uint64(len(b)-k) < n {
		return nil, nil, fmt.Errorf("%w: %s truncated", ErrEncoding, field)
	}
	return append([]byte(nil), b[k:k+int(n)]...), b[k+int(n):], nil
}

func uvarintLen(n uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], n)
}

// Validate runs the stateless checks a node applies at ingress: Check, then
// the signature (sigverify's cofactored RFC 8032 rules, which accept every
// signature crypto/ed25519 accepts under a canonically encoded key). It does
// not look at state (balances, nonces).
// A node checks many signatures at once with a sigverify.Verifier instead.
func (t *Tx) Validate(chainID uint32) error {
	if err := t.Check(chainID); err != nil {
		return err
	}
	if !sigverify.Verify(t.From, t.SigningBytes(), t.Sig) {
		return ErrSignature
	}
	return nil
}

// Check runs every stateless ingress check but the signature's: a kind that
// clients may submit, size limits, the chain id, and the lengths of the key
// and the signature.
func (t *Tx) Check(chainID uint32) error {
	switch t.Kind {
	case KindPut:
		if len(t.Key) == 0 {
			return fmt.Errorf("%w: empty key", ErrEncoding)
		}
		if len(t.Key) > MaxKeySize || len(t.Value) > MaxValueSize {
			return fmt.Errorf("%w: key %d / value %d bytes", ErrTooLarge, len(t.Key), len(t.Value))
		}
	case KindTransfer:
	default:
		return fmt.Errorf("%w: %s cannot be submitted", ErrUnknownKind, t.Kind)
	}
	if t.ChainID != chainID {
		return fmt.Errorf("%w: %d, this chain is %d", ErrChainID, t.ChainID, chainID)
	}
	if len(t.From) != ed25519.PublicKeySize || len(t.Sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: key or signature has the wrong length", ErrSignature)
	}
	return nil
}

// Code is a transaction rejection as carried on the wire.
type Code uint16

// Wire codes. Zero is never sent.
const (
	CodeInternal    Code = 1
	CodeEncoding    Code = 2
	CodeTooLarge    Code = 3
	CodeUnknownKind Code = 4
	CodeSignature   Code = 5
	CodeChainID     Code = 6
	CodeOverloaded  Code = 7
)

// CodeOf maps an error from this package onto its wire code.
func CodeOf(err error) Code {
	switch {
	case errors.Is(err, ErrEncoding):
		return CodeEncoding
	case errors.Is(err, ErrTooLarge):
		return CodeTooLarge
	case errors.Is(err, ErrUnknownKind):
		return CodeUnknownKind
	case errors.Is(err, ErrSignature):
		return CodeSignature
	case errors.Is(err, ErrChainID):
		return CodeChainID
	default:
		return CodeInternal
	}
}

func (c Code) String() string {
	switch c {
	case CodeInternal:
		return "internal"
	case CodeEncoding:
		return "bad encoding"
	case CodeTooLarge:
		return "too large"
	case CodeUnknownKind:
		return "unknown kind"
	case CodeSignature:
		return "bad signature"
	case CodeChainID:
		return "wrong chain id"
	case CodeOverloaded:
		return "overloaded"
	default:
		return fmt.Sprintf("code(%d)", uint16(c))
	}
}
