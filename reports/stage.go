package reports

import "fmt"

// Stage is a point in a transaction's life at which its latency is recorded.
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

// ParseStage returns the stage named s (as in result.json).
func ParseStage(s string) (Stage, error) {
	for i, n := range stageNames {
		if n == s {
			return Stage(i), nil
		}
	}
	return 0, fmt.Errorf("%w: no stage %q", ErrUnknownMetric, s)
}
