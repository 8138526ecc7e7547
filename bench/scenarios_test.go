package bench

import (
	"path/filepath"
	"testing"

	"github.com/rustorium/rustorium/scenarios"
)

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
		if err := Check(sc, (&InProcess{}).Caps()); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
