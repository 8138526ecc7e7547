//go:build !unix

package node

import "os"

// lockDataDir does not lock where flock is missing.
func lockDataDir(string) (*os.File, error) { return nil, nil }
