package ordering_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/node/ordering"
)

// TestWireBytes: records produced count as produce bytes written, records
// consumed as fetch bytes read, each at least the records' size, and the
// other requests elsewhere.
func TestWireBytes(t *testing.T) {
	cfg := testCfg(t, kafkatest.Embedded(t), 1)
	var pw, cw ordering.WireBytes
	pcfg, ccfg := cfg, cfg
	pcfg.Wire, ccfg.Wire = &pw, &cw
	p := openProducer(t, pcfg)
	const n, size = 20, 1000
	for i := range n {
		if _, err := p.Append(ctxT(t, 30*time.Second), 0, []byte{byte(i)}, bytes.Repeat([]byte{byte(i)}, size)); err != nil {
			t.Fatal(err)
		}
	}
	got := pw.Totals()
	if got.ProduceWritten < n*size || got.ProduceRead == 0 || got.OtherWritten == 0 {
		t.Fatalf("producer: %+v, want at least %d produce bytes written, a response read and metadata", got, n*size)
	}
	if got.FetchWritten != 0 || got.FetchRead != 0 {
		t.Fatalf("producer fetched: %+v", got)
	}
	readN(t, openConsumer(t, ccfg, 0, 0), n)
	got = cw.Totals()
	if got.FetchRead < n*size || got.FetchWritten == 0 || got.ProduceWritten != 0 {
		t.Fatalf("consumer: %+v, want at least %d fetch bytes read and no produce", got, n*size)
	}
}
