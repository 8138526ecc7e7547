package ordering

import (
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WireBytes counts the bytes every client of a Config wrote to and read
// from the brokers, by request kind: produce requests and their responses,
// fetch requests and their responses, and everything else (metadata,
// group, transaction and offset requests). Bytes are Kafka protocol bytes,
// TLS and TCP/IP overhead not included. Set Config.Wire to one to count;
// it is safe for concurrent use and costs two atomic adds per request.
type WireBytes struct {
	written, read [3]atomic.Uint64 // by wireKind
}

// WireTotals is a WireBytes' reading.
type WireTotals struct {
	ProduceWritten, ProduceRead uint64
	FetchWritten, FetchRead     uint64
	OtherWritten, OtherRead     uint64
}

const (
	wireProduce = iota
	wireFetch
	wireOther
)

func wireKind(key int16) int {
	switch key {
	case kmsg.Produce.Int16():
		return wireProduce
	case kmsg.Fetch.Int16():
		return wireFetch
	}
	return wireOther
}

// OnBrokerWrite implements kgo.HookBrokerWrite.
func (w *WireBytes) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, _ error) {
	w.written[wireKind(key)].Add(uint64(n))
}

// OnBrokerRead implements kgo.HookBrokerRead.
func (w *WireBytes) OnBrokerRead(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, _ error) {
	w.read[wireKind(key)].Add(uint64(n))
}

// Totals returns the bytes counted so far.
func (w *WireBytes) Totals() WireTotals {
	return WireTotals{
		ProduceWritten: w.written[wireProduce].Load(), ProduceRead: w.read[wireProduce].Load(),
		FetchWritten: w.written[wireFetch].Load(), FetchRead: w.read[wireFetch].Load(),
		OtherWritten: w.written[wireOther].Load(), OtherRead: w.read[wireOther].Load(),
	}
}
