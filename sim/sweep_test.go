package sim

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestFitUSLRecoversTheLaw(t *testing.T) {
	want := &USL{Lambda: 1000, Sigma: 0.05, Kappa: 0.002}
	var pts []SweepPoint
	for _, n := range []float64{1, 2, 4, 8, 16, 32} {
		pts = append(pts, SweepPoint{Value: n, OfferedTPS: 1e9, CommittedTPS: want.At(n)})
	}
	got := FitUSL(pts)
	if got == nil || math.Abs(got.Sigma-want.Sigma) > 1e-3 || math.Abs(got.Kappa-want.Kappa) > 1e-4 || got.R2 < 0.999 {
		t.Fatalf("fit %+v, want σ %v κ %v", got, want.Sigma, want.Kappa)
	}
	if got.Peak < 20 || got.Peak > 23 { // √(0.95/0.002) ≈ 21.8
		t.Fatalf("peak %v", got.Peak)
	}
	if FitUSL(pts[:2]) != nil {
		t.Fatal("a fit from two points")
	}
}

func TestSweepWritesEveryPoint(t *testing.T) {
	sc := load(t, small+`sweep: {cores: [1, 2, 4]}
report: {formats: [json]}
`)
	out := t.TempDir()
	r, err := RunSweep(context.Background(), sc, Options{Calib: reference(t)}, out, []string{"json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Param != "cores" || len(r.Points) != 3 {
		t.Fatalf("%+v", r)
	}
	for _, f := range []string{"sweep.json", "sweep.md", "plot-sweep-throughput.png", "plot-sweep-p99.png", "cores-2/result.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}
