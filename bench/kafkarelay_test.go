package bench

import (
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestKafkaRelayRewritesBrokers: Metadata and FindCoordinator answers, in
// flexible and older versions, come back naming the relay's listeners
// instead of the brokers, each broker its own; other answers pass as they
// are.
func TestKafkaRelayRewritesBrokers(t *testing.T) {
	k := newKafkaRelay(context.Background(), (&net.Dialer{}).DialContext)
	defer k.Close()
	frame := func(resp kmsg.Response, flexible bool) []byte {
		b := []byte{0, 0, 0, 0, 0, 0, 0, 7} // size, correlation id 7
		if flexible {
			b = append(b, 0) // no header tags
		}
		b = resp.AppendTo(b)
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		return b
	}
	for _, version := range []int16{1, 9, 12} {
		md := kmsg.NewPtrMetadataResponse()
		md.SetVersion(version)
		md.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: "10.0.0.1", Port: 9092}, {NodeID: 2, Host: "10.0.0.2", Port: 9092}}
		out := k.rewrite(frame(md, version >= 9), 3, version)
		header := 8
		if version >= 9 {
			header++
		}
		back := kmsg.NewPtrMetadataResponse()
		back.SetVersion(version)
		if err := back.ReadFrom(out[header:]); err != nil {
			t.Fatalf("v%d: %v", version, err)
		}
		if int(binary.BigEndian.Uint32(out)) != len(out)-4 {
			t.Fatalf("v%d: frame size %d for %d bytes", version, binary.BigEndian.Uint32(out), len(out)-4)
		}
		seen := map[string]bool{}
		for i, b := range back.Brokers {
			want, _ := k.front(net.JoinHostPort(md.Brokers[i].Host, strconv.Itoa(int(md.Brokers[i].Port))))
			if got := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))); got != want || seen[got] {
				t.Fatalf("v%d broker %d: %s, want the relay's %s", version, b.NodeID, got, want)
			}
			seen[net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))] = true
		}
	}
	fc := kmsg.NewPtrFindCoordinatorResponse()
	fc.SetVersion(4)
	fc.Coordinators = []kmsg.FindCoordinatorResponseCoordinator{{Key: "g", NodeID: 1, Host: "10.0.0.1", Port: 9092}}
	out := k.rewrite(frame(fc, true), 10, 4)
	back := kmsg.NewPtrFindCoordinatorResponse()
	back.SetVersion(4)
	if err := back.ReadFrom(out[9:]); err != nil || back.Coordinators[0].Host != "127.0.0.1" {
		t.Fatalf("find coordinator: %+v %v", back.Coordinators, err)
	}
	produce := []byte{0, 0, 0, 5, 0, 0, 0, 7, 1}
	if got := k.rewrite(produce, 0, 9); string(got) != string(produce) {
		t.Fatal("a produce answer was changed")
	}
}
