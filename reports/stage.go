package reports

import (
	"fmt"
	"strings"
)

// Stage is a point in a transaction's life at which its latency is recorded.
// Its text form (MarshalText, UnmarshalText, String) is the stage's name as
// result.json, SLO metric names and scenario files write it.
type Stage uint8

// Stages, in pipeline order.
const (
	StageIngress     Stage = iota // received by the node
	StageAccepted                 // acked by the broker, accepted{shard, offset} back at the client
	StageCommitted                // committed receipt back at the client
	StageVisible                  // read-your-write through the API
	StageProofVerify              // the client verified the receipt's Merkle proof
	StageRead                     // a get workload's read answered and its proof verified (not a transaction)

	NumStages = 6
)

var stageNames = [NumStages]string{"ingress", "accepted", "committed", "visible", "proof_verify", "read"}

// String returns the stage's name, or "stage(N)" for one out of range.
func (s Stage) String() string {
	if int(s) < NumStages {
		return stageNames[s]
	}
	return fmt.Sprintf("stage(%d)", s)
}

// Stages returns all stages in pipeline order.
func Stages() []Stage {
	return []Stage{StageIngress, StageAccepted, StageCommitted, StageVisible, StageProofVerify, StageRead}
}

// StageNames returns the names of all stages in pipeline order.
func StageNames() []string { return append([]string(nil), stageNames[:]...) }

func isStage(s string) bool {
	_, ok := stageIndex(s)
	return ok
}

func stageIndex(s string) (Stage, bool) {
	for i, n := range stageNames {
		if n == s {
			return Stage(i), true
		}
	}
	return 0, false
}

// ParseStage returns the stage named s (as in result.json).
func ParseStage(s string) (Stage, error) {
	if st, ok := stageIndex(s); ok {
		return st, nil
	}
	return 0, fmt.Errorf("%w: no stage %q", ErrUnknownMetric, s)
}

// MarshalText returns the stage's name; a stage out of range is an error.
func (s Stage) MarshalText() ([]byte, error) {
	if int(s) >= NumStages {
		return nil, fmt.Errorf("%w: no stage %d", ErrUnknownMetric, s)
	}
	return []byte(stageNames[s]), nil
}

// UnmarshalText accepts a stage's name (surrounding space ignored); the
// error for any other text lists the stages.
func (s *Stage) UnmarshalText(b []byte) error {
	v := strings.TrimSpace(string(b))
	st, ok := stageIndex(v)
	if !ok {
		names := stageNames[:]
		return fmt.Errorf("%q is not a stage (want %s or %s)", v, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
	}
	*s = st
	return nil
}
