//go:build !unix

package main

import "log/slog"

// raiseFileLimit does nothing where RLIMIT_NOFILE does not exist.
func raiseFileLimit(*slog.Logger, uint64) {}
