package storage

import "time"

// SetBackgroundWindow sets how long Probe fails after Pebble's last error
// message.
func SetBackgroundWindow(d *DB, w time.Duration) {
	d.fmu.Lock()
	defer d.fmu.Unlock()
	d.bgWindow = w
}
