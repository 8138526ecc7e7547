package node

import "time"

// EmbeddedSyncWrites reports whether n runs an embedded broker that fsyncs
// every produced batch.
func EmbeddedSyncWrites(n *Node) bool { return n.embedded != nil && n.embedded.SyncWrites() }

// WatchEmbeddedEvery sets how often nodes check their embedded broker and
// how many failures in a row fail them, and returns a restore.
func WatchEmbeddedEvery(every time.Duration, fails int) (restore func()) {
	e, f := brokerWatchEvery, brokerWatchFails
	brokerWatchEvery, brokerWatchFails = every, fails
	return func() { brokerWatchEvery, brokerWatchFails = e, f }
}

// CloseEmbedded stops n's embedded broker, as a broker that died would.
func CloseEmbedded(n *Node) { n.embedded.Close() }
