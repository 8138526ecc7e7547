package bench

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for the progress printer's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunStreamsSigning runs puts and transfers with a presign budget of
// nothing, so both are signed while the run takes them: every send still
// commits once, its ingress is stamped (the index learns streamed ids),
// the sampled proofs verify and read back, and balances are conserved.
func TestRunStreamsSigning(t *testing.T) {
	old := presignBudget
	presignBudget = 0
	defer func() { presignBudget = old }()

	res, progress := runText(t, "stream.yaml", `
name: stream
seed: 5
warmup: 500ms
duration: 2s
drain: 15s
cluster: {nodes: 1, shards: 2, block: {max_txs: 100, max_wait: 10ms}, storage: {sync: false}}
workload:
  - {name: puts, kind: put, accounts: 1000, rate: 200/s, verify_proofs: 20%}
  - {name: transfers, kind: transfer, accounts: 50, rate: 100/s}
report: {formats: [json]}
`)
	if n := strings.Count(progress, "signed while the run takes them"); n != 2 {
		t.Fatalf("%d workloads streamed, want 2; progress:\n%s", n, progress)
	}
	c := res.Checker
	// (200 + 100)/s over 2.5 s, warmup included.
	if c.Accepted != 750 || c.Committed != 750 || c.Lost != 0 || c.Duplicated != 0 || c.BalancesConserved == nil || !*c.BalancesConserved {
		t.Fatalf("checker %+v", c)
	}
	if c.ProofsChecked == 0 || c.ProofsFailed != 0 {
		t.Fatalf("proofs %d checked, %d failed", c.ProofsChecked, c.ProofsFailed)
	}
	w := res.Workloads["puts"]
	if s := w.Stages["ingress"]; s == nil || s.Count != w.Sent {
		t.Fatalf("ingress stage %+v, want one stamp for each of %d sends", s, w.Sent)
	}
	if s := w.Stages["visible"]; s == nil || s.Count == 0 {
		t.Fatalf("visible stage %+v", s)
	}
	// Streamed sends are traced as presigned ones are: marked as they are
	// signed (the default 1% of 600 measured sends).
	if tr := res.Traces; tr == nil || tr.Count == 0 || tr.Complete == 0 {
		t.Fatalf("traces %+v", tr)
	}
}
