// Package health is the vocabulary of a node's readiness: the checks the
// node runs and the HTTP API reports (GET /readyz, /v1/status).
package health

// Check is one readiness check's outcome.
type Check struct {
	// Name names the check: "started", "paused", "broker", "storage", or
	// "shard N".
	Name string `json:"name"`
	// OK is true when the check passed.
	OK bool `json:"ok"`
	// Error says why it failed; empty when OK.
	Error string `json:"error,omitempty"`
}

// Failing returns the checks that failed, nil if every one passed.
func Failing(checks []Check) []Check {
	var out []Check
	for _, c := range checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}
