package storage

import "time"

// SetBackgroundWindow sets how long Probe fails after Pebble's last error
// message.
func SetBackgroundWindow(d *DB, w time.Duration) {
	d.fmu.Lock()
	defer d.fmu.Unlock()
	d.bgWindow = w
}

// CommitGroups returns how many Pebble commits the group commit made and
// how many blocks' batches they held.
func CommitGroups(d *DB) (groups, batches uint64) {
	return d.sync.groups.Load(), d.sync.batches.Load()
}

// FlushPebble flushes the store's memtables to tables (so its WAL holds
// only what comes after).
func FlushPebble(d *DB) error { return d.pdb.Flush() }
