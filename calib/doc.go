// Package calib measures this machine's cost of each operation the
// reference node does (Poseidon hashes, Merkle block updates, state
// commits, ed25519 signing and verification, Pebble batch commits, broker
// and QUIC round trips, attestation handling) with the node's own code, and
// reads and writes the calibration file (Calibration, format version 1)
// that the simulator (package sim) prices every operation with. It also
// holds the measurement primitives the harness's floors use.
package calib
