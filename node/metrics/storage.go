package metrics

import "github.com/prometheus/client_golang/prometheus"

// StorageOps are the op label values of rustorium_storage_errors_total
// (storage.Options.OnError's ops): "commit" (a block's Pebble batch),
// "probe" (the readiness probe's write), "reopen" (reopening the failed
// store), "wal" (a WAL write, sync or creation that keeps failing without
// sync, retried until it succeeds: counted at its first failure and at
// most once a second after), "corruption" (a corrupted table Pebble found)
// and "pebble" (Pebble's own error messages: background flushes and
// compactions).
var StorageOps = []string{"commit", "probe", "reopen", "wal", "corruption", "pebble"}

// NewStorageErrors creates rustorium_storage_errors_total{op}, with every
// op of StorageOps at zero, and registers it on reg (nil: not registered).
// It is a collector of its own, beside Node's, so a node counts storage
// errors from the moment its store opens.
func NewStorageErrors(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rustorium_storage_errors_total",
		Help: "Failed writes to the node's store (disk full, I/O errors), failed attempts to reopen it, stalled WAL writes without sync (at most one a second), corrupted tables found, and Pebble's own error messages, by op (commit, probe, reopen, wal, corruption, pebble).",
	}, []string{"op"})
	for _, op := range StorageOps {
		c.WithLabelValues(op)
	}
	if reg != nil {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}
