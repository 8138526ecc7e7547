package bench

import "time"

// SetTrimInterval sets how often runs trim the embedded broker's log until
// the returned function restores it.
func SetTrimInterval(d time.Duration) (restore func()) {
	old := trimInterval
	trimInterval = d
	return func() { trimInterval = old }
}

// TrimmedBelow returns, by shard, the offset below which the run of c
// deleted its embedded broker's transactions (read after the run).
func TrimmedBelow(c *InProcess) map[uint32]int64 {
	if c.trimmer == nil {
		return nil
	}
	return c.trimmer.deleted
}

// SetBeforeExec has p call f as each node process is about to start, after
// its ports were released: a test takes one to see the start retried.
func SetBeforeExec(p *Processes, f func(node, api string)) { p.beforeExec = f }
