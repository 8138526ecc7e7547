package node

// EmbeddedSyncWrites reports whether n runs an embedded broker that fsyncs
// every produced batch.
func EmbeddedSyncWrites(n *Node) bool { return n.embedded != nil && n.embedded.SyncWrites() }
