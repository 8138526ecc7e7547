package bench

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/scenarios"
)

// needsCluster are the shipped scenarios that wait for the multi-node
// cluster; every other one must be runnable as it is.
var needsCluster = map[string]bool{"failover.yaml": true, "wan-cluster.yaml": true}

func TestShippedScenariosRunnable(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.yaml")
	if err != nil || len(files) < 6 {
		t.Fatalf("shipped scenarios: %v %v", files, err)
	}
	ci, _ := filepath.Glob("ci/*.yaml")
	for _, f := range append(files, ci...) {
		sc, err := scenarios.Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		err = supported(sc)
		switch {
		case needsCluster[filepath.Base(f)]:
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "cluster") {
				t.Errorf("%s: want a clear 'needs a cluster' refusal, got %v", f, err)
			}
		case err != nil:
			t.Errorf("%s: %v", f, err)
		}
	}
}
