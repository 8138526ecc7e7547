package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// SweepPoint is one run of a sweep.
type SweepPoint struct {
	Value          float64             `json:"value"` // the parameter (an RTT in ms)
	Dir            string              `json:"dir"`   // the point's report folder, relative
	OfferedTPS     float64             `json:"offered_tps"`
	CommittedTPS   float64             `json:"committed_tps"`
	CommittedP50Us int64               `json:"committed_p50_us"`
	CommittedP99Us int64               `json:"committed_p99_us"`
	Errors         int64               `json:"errors"`
	Bottleneck     *reports.Bottleneck `json:"bottleneck,omitempty"`
}

// USL is a Universal Scalability Law fit of throughput against the swept
// parameter N: X(N) = λN / (1 + σ(N−1) + κN(N−1)).
type USL struct {
	Lambda float64 `json:"lambda"` // throughput of one unit
	Sigma  float64 `json:"sigma"`  // contention
	Kappa  float64 `json:"kappa"`  // coherency (crosstalk)
	// Peak is the N of the highest modelled throughput, √((1−σ)/κ) (0
	// when κ is 0).
	Peak float64 `json:"peak"`
	R2   float64 `json:"r2"`
}

// SweepResult is a sweep's summary (sweep.json).
type SweepResult struct {
	Scenario  string       `json:"scenario"`
	Simulated bool         `json:"simulated"`
	Param     string       `json:"param"`
	Points    []SweepPoint `json:"points"`
	USL       *USL         `json:"usl,omitempty"` // not for rtt
}

// RunSweep simulates the scenario once per value of its sweep, writing
// each point's report folder under out (PARAM-VALUE/) in formats, then
// sweep.json, sweep.md and the plots of committed throughput and p99
// against the parameter, with the USL fit.
func RunSweep(ctx context.Context, sc *scenarios.Scenario, opts Options, out string, formats []string, progress io.Writer) (*SweepResult, error) {
	param, values := sc.Sweep.Param()
	res := &SweepResult{Scenario: sc.Name, Simulated: true, Param: param}
	for i, v := range values {
		p := sc.Clone()
		p.Sweep = nil
		switch param {
		case "nodes":
			p.Cluster.Nodes = sc.Sweep.Nodes[i]
			p.Cluster.Quorum = 0 // the default for that many
		case "shards":
			p.Cluster.Shards = sc.Sweep.Shards[i]
		case "cores":
			p.Cluster.CoresPerNode = sc.Sweep.Cores[i]
		case "rtt":
			d := sc.Sweep.RTT[i] / 2
			def := p.Network.Path("", "")
			def.Delay = d
			p.Network.Default = &def
		}
		if p.Cluster.Quorum == 0 {
			p.Cluster.Quorum = defaultQuorum(p.Cluster.Nodes)
		}
		o, err := Run(ctx, p, opts)
		if err != nil {
			return nil, fmt.Errorf("sweep %s=%v: %w", param, v, err)
		}
		dir := param + "-" + strconv.FormatFloat(v, 'f', -1, 64)
		if _, err := reports.Write(filepath.Join(out, dir), o.Result, o.Snapshot, formats); err != nil {
			return nil, err
		}
		pt := SweepPoint{Value: v, Dir: dir}
		for _, w := range p.Workload {
			pt.OfferedTPS += w.Rate.PerSecond()
		}
		for _, w := range o.Result.Workloads {
			pt.Errors += w.Errors
			if c := w.Stages["committed"]; c != nil {
				pt.CommittedTPS += c.ThroughputTPS
				pt.CommittedP50Us = max(pt.CommittedP50Us, c.Corrected.P50)
				pt.CommittedP99Us = max(pt.CommittedP99Us, c.Corrected.P99)
			}
		}
		if s := o.Result.Simulation; s != nil {
			pt.Bottleneck = s.Bottleneck
		}
		res.Points = append(res.Points, pt)
		if progress != nil {
			fmt.Fprintf(progress, "sweep %s=%v: committed %.0f tx/s, p99 %.1f ms\n", param, v, pt.CommittedTPS, float64(pt.CommittedP99Us)/1000)
		}
	}
	if param != "rtt" {
		res.USL = FitUSL(res.Points)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, "sweep.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, "sweep.md"), []byte(res.Markdown()), 0o644); err != nil {
		return nil, err
	}
	return res, res.plots(out)
}

func defaultQuorum(n int) int { return 2*n/3 + 1 }

// FitUSL fits the Universal Scalability Law to the points' committed
// throughput (at least three points with positive throughput; only the
// saturated ones — committed below 97% of offered — when there are three
// of them), by linear
// least squares on N·λ/X(N) − 1 = σ(N−1) + κN(N−1), λ taken from the
// smallest N (X(N₀)/N₀ when N₀ > 1: the fit is relative to it).
func FitUSL(points []SweepPoint) *USL {
	// The law describes capacity: a point that committed about all it was
	// offered did not saturate and is left out when enough others did.
	var pts, saturated []SweepPoint
	for _, p := range points {
		if p.CommittedTPS > 0 && p.Value > 0 {
			pts = append(pts, p)
			if p.OfferedTPS == 0 || p.CommittedTPS < 0.97*p.OfferedTPS {
				saturated = append(saturated, p)
			}
		}
	}
	if len(saturated) >= 3 {
		pts = saturated
	}
	if len(pts) < 3 {
		return nil
	}
	n0 := pts[0]
	for _, p := range pts {
		if p.Value < n0.Value {
			n0 = p
		}
	}
	lambda := n0.CommittedTPS / n0.Value
	var sxx, sxy, syy, sxz, syz float64
	for _, p := range pts {
		n := p.Value
		x, y := n-1, n*(n-1)
		z := n*lambda/p.CommittedTPS - 1
		sxx, sxy, syy, sxz, syz = sxx+x*x, sxy+x*y, syy+y*y, sxz+x*z, syz+y*z
	}
	det := sxx*syy - sxy*sxy
	if det == 0 {
		return nil
	}
	sigma := (sxz*syy - syz*sxy) / det
	kappa := (syz*sxx - sxz*sxy) / det
	kappa = max(kappa, 0) // σ < 0 is superlinear growth (Gunther), kept
	u := &USL{Lambda: round3(lambda), Sigma: round6(sigma), Kappa: round6(kappa)}
	if kappa > 0 && sigma < 1 {
		u.Peak = math.Round(math.Sqrt((1-sigma)/kappa)*10) / 10
	}
	var ssr, sst, mean float64
	for _, p := range pts {
		mean += p.CommittedTPS
	}
	mean /= float64(len(pts))
	for _, p := range pts {
		d := p.CommittedTPS - u.At(p.Value)
		ssr += d * d
		sst += (p.CommittedTPS - mean) * (p.CommittedTPS - mean)
	}
	if sst > 0 {
		u.R2 = round3(1 - ssr/sst)
	}
	return u
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// At is the fitted throughput at n.
func (u *USL) At(n float64) float64 {
	return u.Lambda * n / (1 + u.Sigma*(n-1) + u.Kappa*n*(n-1))
}

// Markdown is sweep.md: the points' table and the fit.
func (r *SweepResult) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Sweep: %s over %s (simulated)\n\n", r.Scenario, r.Param)
	fmt.Fprintf(&b, "| %s | offered tx/s | committed tx/s | committed p50 | committed p99 | errors | bottleneck |\n|---:|---:|---:|---:|---:|---:|---|\n", r.Param)
	for _, p := range r.Points {
		bn := "-"
		if p.Bottleneck != nil {
			bn = fmt.Sprintf("%s %.0f%% (%s)", p.Bottleneck.Resource, p.Bottleneck.Utilisation*100, p.Bottleneck.Operation)
		}
		fmt.Fprintf(&b, "| %v | %.0f | %.0f | %.1f ms | %.1f ms | %d | %s |\n", p.Value, p.OfferedTPS, p.CommittedTPS, float64(p.CommittedP50Us)/1000, float64(p.CommittedP99Us)/1000, p.Errors, bn)
	}
	if u := r.USL; u != nil {
		fmt.Fprintf(&b, "\nUniversal Scalability Law fit: λ = %.1f tx/s per unit, σ = %.4f, κ = %.6f, R² = %.3f", u.Lambda, u.Sigma, u.Kappa, u.R2)
		if u.Peak > 0 {
			fmt.Fprintf(&b, "; throughput peaks at %s ≈ %.1f", r.Param, u.Peak)
		}
		b.WriteString(".\n")
	}
	b.WriteString("\n![committed throughput](plot-sweep-throughput.png)\n\n![committed p99](plot-sweep-p99.png)\n")
	return b.String()
}

// plots writes plot-sweep-throughput.png (with the USL curve) and
// plot-sweep-p99.png.
func (r *SweepResult) plots(out string) error {
	mk := func(title, ylabel, file string, y func(SweepPoint) float64, fit bool) error {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = r.Param
		p.Y.Label.Text = ylabel
		xys := make(plotter.XYs, len(r.Points))
		for i, pt := range r.Points {
			xys[i].X, xys[i].Y = pt.Value, y(pt)
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		p.Add(line, points)
		if fit && r.USL != nil && len(r.Points) > 0 {
			lo, hi := r.Points[0].Value, r.Points[len(r.Points)-1].Value
			f := plotter.NewFunction(r.USL.At)
			f.XMin, f.XMax = min(lo, hi), max(lo, hi)
			f.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
			p.Add(f)
			p.Legend.Add(fmt.Sprintf("USL σ=%.3f κ=%.5f", r.USL.Sigma, r.USL.Kappa), f)
		}
		return p.Save(6*vg.Inch, 4*vg.Inch, filepath.Join(out, file))
	}
	if err := mk("committed throughput (simulated)", "tx/s", "plot-sweep-throughput.png", func(p SweepPoint) float64 { return p.CommittedTPS }, true); err != nil {
		return err
	}
	return mk("committed p99 (simulated)", "ms", "plot-sweep-p99.png", func(p SweepPoint) float64 { return float64(p.CommittedP99Us) / 1000 }, false)
}
