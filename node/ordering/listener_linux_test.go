package ordering_test

import (
	"context"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/node/ordering"
)

// TestEmbeddedBrokerSurvivesEMFILE runs the process out of file
// descriptors while clients connect to the embedded broker, so that its
// accept fails with EMFILE (failure 1 of issue #11: kfake's accept loop
// returned on that error and the broker never took a connection again).
// Once descriptors are free again, a new client must be served.
func TestEmbeddedBrokerSurvivesEMFILE(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := ordering.StartEmbedded(ctx, ordering.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	addr := e.Addrs()[0]

	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	restore := func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
	}
	var conns []net.Conn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	defer closeAll()

	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("/proc/self/fd: %v", err)
	}
	low := orig
	low.Cur = uint64(len(fds) + 8)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	// Dial until the broker's accept has failed with EMFILE: each loopback
	// connection takes a descriptor on each side, both in this process.
	err = retry.Poll(ctx, time.Millisecond, 10*time.Second, func() (bool, error) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conns = append(conns, c)
		}
		return e.AcceptRetries() > 0, nil
	})
	restore()
	closeAll()
	if err != nil {
		t.Fatalf("the broker's accept never failed with %d descriptors allowed (%d dialed): %v", low.Cur, len(conns), err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
	defer pcancel()
	if err := cl.Ping(pctx); err != nil {
		t.Fatalf("after EMFILE (%d accept retries) the embedded broker serves no new client: %v", e.AcceptRetries(), err)
	}
}
