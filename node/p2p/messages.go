package p2p

import (
	"encoding/binary"
	"fmt"

	"github.com/rustorium/rustorium/node/tx"
)

// MsgType is a frame's type byte.
type MsgType uint8

// Client protocol messages. A client opens one bidirectional stream per
// transaction and sends MsgSubmit; the node answers MsgAccepted once the log
// has acknowledged it and MsgCommitted when its block commits, or MsgError at
// any point, then closes the stream. MsgEcho is answered with the same
// payload; it measures the raw QUIC round trip through the same server.
const (
	MsgSubmit    MsgType = 1
	MsgAccepted  MsgType = 2
	MsgCommitted MsgType = 3
	MsgError     MsgType = 4
	MsgEcho      MsgType = 5
	// MsgGet asks for the committed value of a state key (payload: the key);
	// the node answers MsgValue, on its own stream.
	MsgGet   MsgType = 6
	MsgValue MsgType = 7
)

func (t MsgType) String() string {
	switch t {
	case MsgSubmit:
		return "submit"
	case MsgAccepted:
		return "accepted"
	case MsgCommitted:
		return "committed"
	case MsgError:
		return "error"
	case MsgEcho:
		return "echo"
	case MsgGet:
		return "get"
	case MsgValue:
		return "value"
	case MsgAttest:
		return "attest"
	case MsgAttestWant:
		return "attest-want"
	default:
		return fmt.Sprintf("msg(%d)", uint8(t))
	}
}

// Accepted tells a client that the log holds its transaction.
type Accepted struct {
	ID     tx.ID
	Shard  uint32
	Offset int64
}

const acceptedSize = 32 + 4 + 8

// AppendTo appends the encoding of a to b.
func (a *Accepted) AppendTo(b []byte) []byte {
	b = append(b, a.ID[:]...)
	b = binary.BigEndian.AppendUint32(b, a.Shard)
	return binary.BigEndian.AppendUint64(b, uint64(a.Offset))
}

// DecodeAccepted parses an accepted message.
func DecodeAccepted(p []byte) (Accepted, error) {
	var a Accepted
	if len(p) != acceptedSize {
		return a, fmt.Errorf("%w: accepted is %d bytes, want %d", ErrMessage, len(p), acceptedSize)
	}
	copy(a.ID[:], p)
	a.Shard = binary.BigEndian.Uint32(p[32:])
	a.Offset = int64(binary.BigEndian.Uint64(p[36:]))
	return a, nil
}

// Status is a committed transaction's execution outcome.
type Status uint8

// Execution outcomes.
const (
	StatusOK     Status = 0
	StatusFailed Status = 1
)

// Committed is a commit receipt: where the transaction landed and a Merkle
// proof of the key it wrote against the shard's state root after its block.
type Committed struct {
	ID     tx.ID
	Shard  uint32
	Height uint64
	Index  uint32   // position in the block
	Root   [32]byte // shard state root after the block, big-endian field element
	Status Status
	// Superseded: a later transaction of the same block wrote the same key,
	// so Proof shows that key's final value in the block, not this one's.
	Superseded bool
	Reason     string // why it failed, if it did
	Proof      []byte // merkle.Proof binary encoding; empty when nothing was written
}

// MaxReason bounds a failure reason or error message, in bytes.
const MaxReason = 1 << 10

const committedFixed = 32 + 4 + 8 + 4 + 32 + 1 + 1

// AppendTo appends the encoding of c to b.
func (c *Committed) AppendTo(b []byte) []byte {
	b = append(b, c.ID[:]...)
	b = binary.BigEndian.AppendUint32(b, c.Shard)
	b = binary.BigEndian.AppendUint64(b, c.Height)
	b = binary.BigEndian.AppendUint32(b, c.Index)
	b = append(b, c.Root[:]...)
	var flags byte
	if c.Superseded {
		flags |= 1
	}
	b = append(b, byte(c.Status), flags)
	b = appendString(b, c.Reason)
	return appendBytes(b, c.Proof)
}

// DecodeCommitted parses a committed message.
func DecodeCommitted(p []byte) (Committed, error) {
	var c Committed
	if len(p) < committedFixed {
		return c, fmt.Errorf("%w: committed is %d bytes, want at least %d", ErrMessage, len(p), committedFixed)
	}
	copy(c.ID[:], p)
	c.Shard = binary.BigEndian.Uint32(p[32:])
	c.Height = binary.BigEndian.Uint64(p[36:])
	c.Index = binary.BigEndian.Uint32(p[44:])
	copy(c.Root[:], p[48:80])
	c.Status = Status(p[80])
	if c.Status > StatusFailed {
		return c, fmt.Errorf("%w: committed status %d", ErrMessage, c.Status)
	}
	if p[81]&^1 != 0 {
		return c, fmt.Errorf("%w: committed flags %#x", ErrMessage, p[81])
	}
	c.Superseded = p[81]&1 != 0
	rest := p[committedFixed:]
	var (
		reason []byte
		err    error
	)
	if reason, rest, err = readBytes(rest, MaxReason, "reason"); err != nil {
		return c, err
	}
	c.Reason = string(reason)
	if c.Proof, rest, err = readBytes(rest, DefaultMaxFrame, "proof"); err != nil {
		return c, err
	}
	if len(rest) != 0 {
		return c, fmt.Errorf("%w: %d trailing bytes after committed", ErrMessage, len(rest))
	}
	return c, nil
}

// RejectError is a node's refusal of a request, carried in MsgError.
type RejectError struct {
	Code tx.Code
	Msg  string
}

func (e *RejectError) Error() string { return fmt.Sprintf("rejected (%s): %s", e.Code, e.Msg) }

// AppendTo appends the encoding of e to b.
func (e *RejectError) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(e.Code))
	msg := e.Msg
	if len(msg) > MaxReason {
		msg = msg[:MaxReason]
	}
	return append(b, msg...)
}

// DecodeError parses an error message.
func DecodeError(p []byte) (*RejectError, error) {
	if len(p) < 2 {
		return nil, fmt.Errorf("%w: error is %d bytes", ErrMessage, len(p))
	}
	if len(p)-2 > MaxReason {
		return nil, fmt.Errorf("%w: error message is %d bytes > %d", ErrMessage, len(p)-2, MaxReason)
	}
	return &RejectError{Code: tx.Code(binary.BigEndian.Uint16(p)), Msg: string(p[2:])}, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func readBytes(b []byte, limit int, field string) (v, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || k != len(binary.AppendUvarint(nil, n)) {
		return nil, nil, fmt.Errorf("%w: %s length is not a minimal uvarint", ErrMessage, field)
	}
	if n > uint64(limit) || n > uint64(len(b)-k) {
		return nil, nil, fmt.Errorf("%w: %s length %d (limit %d, %d bytes left)", ErrMessage, field, n, limit, len(b)-k)
	}
	return append([]byte(nil), b[k:k+int(n)]...), b[k+int(n):], nil
}

// MaxStateKey bounds a MsgGet key: a one-byte prefix and a put key.
const MaxStateKey = 1 + tx.MaxKeySize

// Value answers MsgGet: a state key's committed value (if Found) and the
// Merkle proof of it, or of its absence, against Root.
type Value struct {
	Found bool
	Root  [32]byte // the shard's state root the proof is against
	Value []byte
	Proof []byte // merkle.Proof binary encoding
}

// AppendTo appends the encoding of v to b.
func (v *Value) AppendTo(b []byte) []byte {
	var found byte
	if v.Found {
		found = 1
	}
	b = append(b, found)
	b = append(b, v.Root[:]...)
	b = appendBytes(b, v.Value)
	return appendBytes(b, v.Proof)
}

// DecodeValue parses a value message.
func DecodeValue(p []byte) (Value, error) {
	var v Value
	if len(p) < 33 || p[0] > 1 {
		return v, fmt.Errorf("%w: value message of %d bytes", ErrMessage, len(p))
	}
	v.Found = p[0] == 1
	copy(v.Root[:], p[1:33])
	rest := p[33:]
	var err error
	if v.Value, rest, err = readBytes(rest, tx.MaxValueSize, "value"); err != nil {
		return v, err
	}
	if v.Proof, rest, err = readBytes(rest, DefaultMaxFrame, "proof"); err != nil {
		return v, err
	}
	if len(rest) != 0 {
		return v, fmt.Errorf("%w: %d trailing bytes after value", ErrMessage, len(rest))
	}
	return v, nil
}
