// Package consensus holds the block protocol's deterministic core: block
// headers and their hashes, the Cutter that decides when a shard leader
// closes a block (max transactions, max bytes, max wait), signed
// attestations of (block hash, state root), and the Finality tracker that
// declares a block final at a quorum of matching attestations and raises an
// alarm on divergence or equivocation. Nothing in it starts goroutines or
// reads clocks: the node's runner feeds it records, votes and the time, and
// does the I/O.
package consensus

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrHeader: bytes that are not an encoded block header.
var ErrHeader = errors.New("consensus: bad block header")

// Header is a block header. A block's body is the range of the shard's
// transaction log [FirstOffset, NextOffset): the log is the source of truth,
// so the header only names the range and commits to the ids found in it.
type Header struct {
	Shard       uint32
	Height      uint64 // first block is 1
	Parent      [32]byte
	FirstOffset int64
	NextOffset  int64
	TxCount     uint32
	TxRoot      [32]byte // SHA-256 over the ids of the block's transactions, in order
	// StateRoot is the shard's Merkle root after the block. The leader
	// proposes a block before anyone has computed it, so it is zero in a
	// proposal and not covered by Hash; it is filled in from the final
	// attestations, which name the block hash and the root together.
	StateRoot [32]byte
	Time      int64 // leader's clock when it cut the block, unix nanoseconds
}

const (
	headerVersion = 1
	headerSize    = 1 + 4 + 8 + 32 + 8 + 8 + 4 + 32 + 32 + 8
)

// Encode returns the canonical encoding of h.
func (h *Header) Encode() []byte {
	b := make([]byte, 0, headerSize)
	b = append(b, headerVersion)
	b = binary.BigEndian.AppendUint32(b, h.Shard)
	b = binary.BigEndian.AppendUint64(b, h.Height)
	b = append(b, h.Parent[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.FirstOffset))
	b = binary.BigEndian.AppendUint64(b, uint64(h.NextOffset))
	b = binary.BigEndian.AppendUint32(b, h.TxCount)
	b = append(b, h.TxRoot[:]...)
	b = append(b, h.StateRoot[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(h.Time))
}

// Hash identifies the block: SHA-256 of the header's encoding with a zero
// StateRoot (see StateRoot).
func (h *Header) Hash() [32]byte {
	p := *h
	p.StateRoot = [32]byte{}
	return sha256.Sum256(p.Encode())
}

// DecodeHeader parses an encoded header.
func DecodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) != headerSize {
		return h, fmt.Errorf("%w: %d bytes, want %d", ErrHeader, len(b), headerSize)
	}
	if b[0] != headerVersion {
		return h, fmt.Errorf("%w: version %d", ErrHeader, b[0])
	}
	h.Shard = binary.BigEndian.Uint32(b[1:])
	h.Height = binary.BigEndian.Uint64(b[5:])
	copy(h.Parent[:], b[13:45])
	h.FirstOffset = int64(binary.BigEndian.Uint64(b[45:]))
	h.NextOffset = int64(binary.BigEndian.Uint64(b[53:]))
	h.TxCount = binary.BigEndian.Uint32(b[61:])
	copy(h.TxRoot[:], b[65:97])
	copy(h.StateRoot[:], b[97:129])
	h.Time = int64(binary.BigEndian.Uint64(b[129:]))
	if h.NextOffset < h.FirstOffset {
		return h, fmt.Errorf("%w: offset range [%d, %d)", ErrHeader, h.FirstOffset, h.NextOffset)
	}
	return h, nil
}

// TxRoot commits to a block's transaction ids in order.
func TxRoot(ids [][32]byte) [32]byte {
	h := sha256.New()
	for _, id := range ids {
		h.Write(id[:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
