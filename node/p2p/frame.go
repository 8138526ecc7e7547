// Package p2p is Rustorium's QUIC layer (quic-go, TLS 1.3): node and client
// identities with self-signed ed25519 certificates, length-prefixed typed
// frames with a hard size limit, the client protocol (submit a transaction,
// get accepted and committed receipts on the same stream) and its server,
// and the peer protocol (pinned mutual TLS on its own ALPN) over which nodes
// exchange attestations.
// Every listener and dialer takes an injected net.PacketConn, which is how
// the netem package impairs the path.
package p2p

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A frame is a 4-byte big-endian length n, then n bytes: one type byte and
// n-1 bytes of payload. n is at least 1 and at most the reader's limit.
const frameHeader = 4

// DefaultMaxFrame is the frame size limit when a Config leaves it zero. It
// holds the largest transaction and the largest receipt with room to spare.
const DefaultMaxFrame = 64 << 10

// Errors of the frame layer.
var (
	// ErrFrameTooLarge: a frame's declared length exceeds the limit. The
	// stream is unusable afterwards (the rest of the frame was not read).
	ErrFrameTooLarge = errors.New("p2p: frame too large")
	// ErrFrameEmpty: a frame declared length 0 (it has no type byte).
	ErrFrameEmpty = errors.New("p2p: empty frame")
	// ErrFrameTruncated: the stream ended inside a frame.
	ErrFrameTruncated = errors.New("p2p: truncated frame")
	// ErrMessage: a frame's payload does not decode as its type's message.
	ErrMessage = errors.New("p2p: malformed message")
	// ErrUnexpected: a frame of a type that is not valid at this point.
	ErrUnexpected = errors.New("p2p: unexpected message type")
)

// AppendFrame appends a frame of type typ with the given payload to b.
func AppendFrame(b []byte, typ MsgType, payload []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(1+len(payload)))
	b = append(b, byte(typ))
	return append(b, payload...)
}

// WriteFrame writes one frame in a single Write call.
func WriteFrame(w io.Writer, typ MsgType, payload []byte) error {
	_, err := w.Write(AppendFrame(make([]byte, 0, frameHeader+1+len(payload)), typ, payload))
	return err
}

// ReadFrame reads one frame of at most max bytes (type byte included). It
// returns io.EOF only when the stream ends cleanly before a frame starts.
func ReadFrame(r io.Reader, max int) (MsgType, []byte, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return 0, nil, fmt.Errorf("%w: in the length prefix", ErrFrameTruncated)
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	switch {
	case n == 0:
		return 0, nil, ErrFrameEmpty
	case uint64(n) > uint64(max):
		return 0, nil, fmt.Errorf("%w: %d bytes > %d", ErrFrameTooLarge, n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, nil, fmt.Errorf("%w: want %d bytes", ErrFrameTruncated, n)
		}
		return 0, nil, err
	}
	return MsgType(buf[0]), buf[1:], nil
}
