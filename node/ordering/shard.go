package ordering

// FNV-1a 64-bit parameters (http://www.isthe.com/chongo/tech/comp/fnv/).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// ShardOf returns the shard that owns routingKey among shards shards:
// FNV-1a 64 of the key's bytes, modulo shards. The routing key is the tx's
// key for puts and the sender for transfers.
//
// This function is part of the data layout: every node and client must
// agree on it, and changing it (or the shard count) moves keys between
// shards. FNV-1a was chosen because it is fully specified, has no seed, is
// in every language's standard library, and spreads short keys well.
// shards < 1 returns 0.
func ShardOf(routingKey []byte, shards int) uint32 {
	if shards <= 1 {
		return 0
	}
	h := uint64(fnvOffset64)
	for _, b := range routingKey {
		h ^= uint64(b)
		h *= fnvPrime64
	}
	return uint32(h % uint64(shards))
}
