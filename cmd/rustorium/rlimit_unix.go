//go:build unix

package main

import (
	"log/slog"

	"golang.org/x/sys/unix"
)

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit (the Go
// runtime's os package already does at start since Go 1.19; this makes it
// explicit and survives a runtime that stops doing it) and logs the
// limit. It warns when need (the API connections the node may hold, with a
// reserve for its store and broker) exceeds it.
func raiseFileLimit(log *slog.Logger, need uint64) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		log.Warn("reading the file descriptor limit", "err", err)
		return
	}
	if r.Cur < r.Max {
		raised := r
		raised.Cur = r.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &raised); err != nil {
			log.Warn("raising the file descriptor limit", "soft", r.Cur, "hard", r.Max, "err", err)
		} else {
			r = raised
		}
	}
	log.Info("file descriptor limit", "soft", r.Cur, "hard", r.Max)
	if r.Cur < need {
		log.Warn("the file descriptor limit is below the node's connection caps and their reserve: raise it (ulimit -n) or lower --api-max-conns/--quic-max-conns",
			"limit", r.Cur, "need", need)
	}
}
