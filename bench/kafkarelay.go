package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaRelay puts one node process's broker connections on the emulated
// network: it listens for every broker of the cluster and relays each
// connection through dial (the emulated node→broker link), and rewrites
// the broker addresses in the answers a Kafka client follows (Metadata,
// FindCoordinator, DescribeCluster) to its own listeners, so the client
// never leaves the relay for the broker's advertised address. It matches
// responses to requests by correlation id, in order; a connection with more
// than 1024 requests awaiting their responses waits (the nodes produce
// with acks=all, so every request is answered).
type kafkaRelay struct {
	ctx  context.Context
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu        sync.Mutex
	listeners map[string]net.Listener // broker host:port → the relay's listener for it
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// maxKafkaFrame bounds one request or response the relay reads.
const maxKafkaFrame = 256 << 20

func newKafkaRelay(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *kafkaRelay {
	return &kafkaRelay{ctx: ctx, dial: dial, listeners: map[string]net.Listener{}, conns: map[net.Conn]struct{}{}}
}

// front returns the relay's address for the broker at addr, listening for
// it on first use.
func (k *kafkaRelay) front(addr string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if ln := k.listeners[addr]; ln != nil {
		return ln.Addr().String(), nil
	}
	if k.closed {
		return "", net.ErrClosed
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	k.listeners[addr] = ln
	k.wg.Go(func() { k.accept(ln, addr) })
	return ln.Addr().String(), nil
}

func (k *kafkaRelay) accept(ln net.Listener, broker string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !k.track(c) {
			c.Close()
			return
		}
		k.wg.Go(func() { k.relay(c, broker) })
	}
}

// track records a connection for Close; false once closed.
func (k *kafkaRelay) track(c net.Conn) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return false
	}
	k.conns[c] = struct{}{}
	return true
}

// relay carries one client connection to broker and back, until either
// side ends.
func (k *kafkaRelay) relay(client net.Conn, broker string) {
	server, err := k.dial(k.ctx, "tcp", broker)
	if err != nil || !k.track(server) {
		client.Close()
		if server != nil {
			server.Close()
		}
		return
	}
	pending := make(chan [3]int32, 1024) // correlation id, api key, version of each request
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = k.requests(client, server, pending)
		server.Close()
	}()
	_ = k.responses(server, client, pending)
	client.Close()
	<-done
	k.mu.Lock()
	delete(k.conns, client)
	delete(k.conns, server)
	k.mu.Unlock()
}

// readFrame reads one size-prefixed Kafka frame.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > maxKafkaFrame {
		return nil, fmt.Errorf("kafka relay: a frame of %d bytes", n)
	}
	buf := make([]byte, 4+n)
	copy(buf, size[:])
	_, err := io.ReadFull(r, buf[4:])
	return buf, err
}

// requests forwards the client's requests, noting each one's key and
// version for its response.
func (k *kafkaRelay) requests(client, server net.Conn, pending chan<- [3]int32) error {
	defer close(pending)
	for {
		frame, err := readFrame(client)
		if err != nil {
			return err
		}
		if len(frame) >= 12 {
			key := int16(binary.BigEndian.Uint16(frame[4:]))
			version := int16(binary.BigEndian.Uint16(frame[6:]))
			corr := int32(binary.BigEndian.Uint32(frame[8:]))
			pending <- [3]int32{corr, int32(key), int32(version)}
		}
		if _, err := server.Write(frame); err != nil {
			return err
		}
	}
}

// responses forwards the broker's responses, rewriting broker addresses.
func (k *kafkaRelay) responses(server, client net.Conn, pending <-chan [3]int32) error {
	for {
		frame, err := readFrame(server)
		if err != nil {
			return err
		}
		if len(frame) >= 8 {
			corr := int32(binary.BigEndian.Uint32(frame[4:]))
			for req := range pending { // responses come in request order; acks=0 produces have none
				if req[0] == corr {
					frame = k.rewrite(frame, int16(req[1]), int16(req[2]))
					break
				}
			}
		}
		if _, err := client.Write(frame); err != nil {
			return err
		}
	}
}

// rewrite returns the response frame with the broker addresses it names
// replaced by the relay's, or the frame unchanged when it names none (or
// does not parse).
func (k *kafkaRelay) rewrite(frame []byte, key, version int16) []byte {
	switch key {
	case 3, 10, 60: // Metadata, FindCoordinator, DescribeCluster
	default:
		return frame
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	header := 8 // size and correlation id
	if req.IsFlexible() {
		n, ok := skipTags(frame[header:])
		if !ok {
			return frame
		}
		header += n
	}
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if err := resp.ReadFrom(frame[header:]); err != nil {
		return frame
	}
	if err := k.readdress(resp); err != nil {
		return frame
	}
	out := append([]byte(nil), frame[:header]...)
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// readdress points the brokers a response names at the relay.
func (k *kafkaRelay) readdress(resp kmsg.Response) error {
	var errs []error
	fix := func(host *string, port *int32) {
		if *host == "" {
			return
		}
		addr, err := k.front(net.JoinHostPort(*host, strconv.Itoa(int(*port))))
		if err != nil {
			errs = append(errs, err)
			return
		}
		h, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		*host, *port = h, int32(n)
	}
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		for i := range r.Brokers {
			fix(&r.Brokers[i].Host, &r.Brokers[i].Port)
		}
	case *kmsg.FindCoordinatorResponse:
		fix(&r.Host, &r.Port)
		for i := range r.Coordinators {
			fix(&r.Coordinators[i].Host, &r.Coordinators[i].Port)
		}
	case *kmsg.DescribeClusterResponse:
		for i := range r.Brokers {
			fix(&r.Brokers[i].Host, &r.Brokers[i].Port)
		}
	}
	return errors.Join(errs...)
}

// skipTags returns the length of a tagged-fields section at the start of b.
func skipTags(b []byte) (int, bool) {
	n, off := binary.Uvarint(b)
	if off <= 0 {
		return 0, false
	}
	for range n {
		_, m := binary.Uvarint(b[off:])
		if m <= 0 {
			return 0, false
		}
		off += m
		size, m := binary.Uvarint(b[off:])
		if m <= 0 || uint64(len(b)-off-m) < size {
			return 0, false
		}
		off += m + int(size)
	}
	return off, true
}

// Close stops the listeners and every relayed connection, and waits for
// them. It is safe to call twice.
func (k *kafkaRelay) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	for _, ln := range k.listeners {
		ln.Close()
	}
	for c := range k.conns {
		c.Close()
	}
	k.mu.Unlock()
	k.wg.Wait()
	return nil
}
