package reports

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// stallRun is a synthetic 10 s open-loop run at 200 tx/s of two workloads
// in which the node stalls for one second at 4 s: transactions intended
// during the stall go out when it ends, so the corrected latency shows the
// stall and the uncorrected one does not. It has floors, a timeline event
// and resource samples.
func stallRun(t testing.TB) (*Result, *Snapshot) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	rec := NewRecorder(RecorderOptions{Start: t0, Shards: 2})
	stallFrom, stallTo := t0.Add(4*time.Second), t0.Add(5*time.Second)
	for _, name := range []string{"puts", "hot keys"} {
		w := rec.Workload(name)
		for i := range 2000 {
			intended := t0.Add(time.Duration(i) * 5 * time.Millisecond)
			sent := intended.Add(time.Duration(rng.IntN(50)) * time.Microsecond)
			if !intended.Before(stallFrom) && intended.Before(stallTo) {
				sent = stallTo
			}
			w.Sent(intended, sent)
			acc := sent.Add(time.Duration(1500+rng.IntN(1500)) * time.Microsecond)
			w.Record(StageAccepted, intended, sent, acc)
			w.Record(StageCommitted, intended, sent, acc.Add(time.Duration(20+rng.IntN(10))*time.Millisecond))
			if i%50 == 0 {
				w.Record(StageProofVerify, intended, sent, acc.Add(35*time.Millisecond))
			}
			if i%400 == 7 {
				w.Error("timeout", intended, intended.Add(time.Second))
			}
		}
	}
	snap := rec.Snapshot()
	res := NewResult(snap, 10*time.Second)
	res.Scenario, res.Seed, res.Description = "pause", 42, "a 1s pause <at> 4s"
	res.Environment = Environment{Go: "go1.26.8", GOMAXPROCS: 2, CPU: "Test CPU", OS: "linux", Arch: "amd64", NumCPU: 2, Commit: "abc123", Broker: "kfake"}
	res.Floors = Floors{QuicEcho: &Percentiles{P50: 90, P99: 250}, ProduceAck: &Percentiles{P50: 700, P99: 2100}, ProduceCeilingTPS: 40000}
	res.Checker = Checker{Accepted: 4000, Committed: 4000, RootsEqual: true}
	res.Timeline = []TimelineResult{{At: "4s", Event: "pause node-1 1s", Recovery: "1.2s"}}
	res.Resources = &Resources{Source: "process 1", IntervalS: 1}
	for i := range 12 {
		res.Resources.Samples = append(res.Resources.Samples, ResourceSample{
			T: float64(i - 1), CPUPercent: 40 + float64(i%3)*10, RSSBytes: uint64(80+i) << 20, HeapBytes: uint64(30+i) << 20,
			GCPauseS: 0.0002 * float64(i%4), GCPauseMax: 0.0001 * float64(i%4), GCCycles: uint64(i % 4), Goroutines: uint64(50 + i),
		})
	}
	res.Resources.summarize()
	return res, snap
}

// expectedPlots returns the plot ids a stallRun report has.
func expectedPlots() []string {
	var ids []string
	for _, w := range []string{"hot keys", "puts"} {
		for _, k := range []string{PlotLatency, PlotThroughput, PlotSpectrum, PlotStages} {
			ids = append(ids, PlotID(k, w))
		}
	}
	return append(ids, PlotID(PlotResources, ""))
}

// checkSVG parses an SVG document completely and returns its text.
func checkSVG(t *testing.T, data []byte) string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var texts strings.Builder
	root := ""
	inText := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("invalid SVG: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
			}
			inText = e.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts.Write(e)
				texts.WriteByte('\n')
			}
		case xml.EndElement:
			inText = false
		}
	}
	if root != "svg" {
		t.Fatalf("SVG root element is %q", root)
	}
	return texts.String()
}

func TestHTMLReportFiles(t *testing.T) {
	res, snap := stallRun(t)
	dir := t.TempDir()
	files, err := Write(dir, res, snap, []string{"json", "md", "html", "hgrm", "hlog"})
	if err != nil {
		t.Fatal(err)
	}
	if !Supported(FormatHTML) {
		t.Error("html not supported")
	}
	has := map[string]bool{}
	for _, f := range files {
		has[f] = true
	}
	svgText := checkPlotFiles(t, dir, has)
	for _, f := range []string{HTMLFile, MarkdownFile, ResultFile} {
		if !has[f] {
			t.Errorf("files lack %s", f)
		}
	}

	checkPlotTexts(t, svgText)

	// report.html: self-contained, every plot inlined by id and linked.
	page, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	checkSelfContained(t, page)
	for _, s := range []string{"a 1s pause &lt;at&gt; 4s", "Workload <code>hot keys</code>", "pause node-1 1s", "QUIC echo RTT", "The uncorrected view hides", "RSS max"} {
		if !bytes.Contains(page, []byte(s)) {
			t.Errorf("report.html lacks %q", s)
		}
	}

	// report.md links the PNGs.
	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"![Latency over time: puts](plot-latency-puts.png)", "![Percentile spectrum: hot_keys](plot-spectrum-hot_keys.png)",
		"![Resource use](plot-resources.png)", "[SVG](plot-stages-puts.svg)", "[report.html](report.html)", "| RSS max |",
	} {
		if !bytes.Contains(md, []byte(s)) {
			t.Errorf("report.md lacks %q", s)
		}
	}

	// result.json lists the plots and keeps the resources.
	back, err := ReadJSON(filepath.Join(dir, ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	if back.Resources == nil || len(back.Resources.Samples) != 12 || back.Resources.RSSMaxBytes != 91<<20 {
		t.Errorf("resources did not round-trip: %+v", back.Resources)
	}
	if !strings.Contains(strings.Join(back.Files, " "), "plot-latency-puts.png") {
		t.Errorf("result.json files %v", back.Files)
	}
}

// checkPlotFiles checks that every expected plot was written as a PNG of the
// plot size and a valid SVG, and returns the SVGs' text by plot id.
func checkPlotFiles(t *testing.T, dir string, has map[string]bool) map[string]string {
	t.Helper()
	svgText := map[string]string{}
	for _, id := range expectedPlots() {
		for _, ext := range []string{".png", ".svg"} {
			if !has[id+ext] {
				t.Errorf("files lack %s%s", id, ext)
			}
		}
		data, err := os.ReadFile(filepath.Join(dir, id+".png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s.png: %v", id, err)
		}
		if b := img.Bounds(); b.Dx() != 9*plotDPI || b.Dy() < 3*plotDPI {
			t.Errorf("%s.png is %v", id, b)
		}
		data, err = os.ReadFile(filepath.Join(dir, id+".svg"))
		if err != nil {
			t.Fatal(err)
		}
		svgText[id] = checkSVG(t, data)
	}
	return svgText
}

// checkPlotTexts: the plots show what they are about.
func checkPlotTexts(t *testing.T, svgText map[string]string) {
	t.Helper()
	for id, want := range map[string][]string{
		PlotID(PlotLatency, "puts"):    {"committed p99", "accepted p99 uncorrected", "pause node-1 1s (recovered in 1.2s)", "timeline event", "1s"},
		PlotID(PlotThroughput, "puts"): {"sent", "committed", "errors"},
		PlotID(PlotSpectrum, "puts"):   {"50%", "90%", "99%", "99.9%", "committed corrected", "committed uncorrected", "proof_verify corrected"},
		PlotID(PlotStages, "puts"):     {"accepted", "committed", "proof_verify", "floor: QUIC echo p50", "floor: produce→ack p99"},
		PlotID(PlotResources, ""):      {"CPU %", "MiB", "GC pause ms", "goroutines"},
	} {
		for _, s := range want {
			if !strings.Contains(svgText[id], s) {
				t.Errorf("%s.svg lacks text %q", id, s)
			}
		}
	}
}

// checkSelfContained: report.html loads nothing from elsewhere and inlines
// and links every plot.
func checkSelfContained(t *testing.T, page []byte) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	svgs, links := map[string]bool{}, map[string]bool{}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				switch {
				case n.Data == "svg" && a.Key == "id":
					svgs[a.Val] = true
				case n.Data == "a" && a.Key == "href":
					links[a.Val] = true
				case a.Key == "src" || (n.Data == "link" && a.Key == "href"):
					t.Errorf("report.html loads an external asset: <%s %s=%q>", n.Data, a.Key, a.Val)
				}
			}
			if n.Data == "script" || n.Data == "link" {
				t.Errorf("report.html has a <%s>", n.Data)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, id := range expectedPlots() {
		if !svgs[id] {
			t.Errorf("report.html does not inline <svg id=%q>", id)
		}
		if !links[id+".png"] || !links[id+".svg"] {
			t.Errorf("report.html does not link %s.png and .svg", id)
		}
	}
	if len(svgs) != len(expectedPlots()) {
		t.Errorf("report.html has %d svgs, want %d", len(svgs), len(expectedPlots()))
	}
}

// The latency plot shows the stall: its corrected p99 rises to about a
// second in the interval of the pause while the uncorrected one stays low.
func TestLatencySeriesShowsStall(t *testing.T) {
	res, _ := stallRun(t)
	s := res.Workloads["puts"].Series
	if len(s) < 10 {
		t.Fatalf("%d intervals", len(s))
	}
	var worst, worstUnc int64
	for _, iv := range s {
		worst = max(worst, iv.Stages["accepted"].P99)
		worstUnc = max(worstUnc, iv.Stages["accepted"].P99Uncorrected)
	}
	if worst < 900_000 || worstUnc > 10_000 {
		t.Errorf("corrected p99 peak %dµs, uncorrected %dµs", worst, worstUnc)
	}
}

func TestHTMLWithoutSnapshotOrSeries(t *testing.T) {
	res, _ := stallRun(t)
	res.Timeline = append(res.Timeline, TimelineResult{At: "soon", Event: "heal"})
	res.Resources = nil
	for _, w := range res.Workloads {
		w.Series = nil
	}
	dir := t.TempDir()
	files, err := WriteHTML(dir, res, nil)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(files, " ")
	for _, want := range []string{PlotID(PlotSpectrum, "puts") + ".svg", PlotID(PlotStages, "puts") + ".png", HTMLFile} {
		if !strings.Contains(joined, want) {
			t.Errorf("files %v lack %s", files, want)
		}
	}
	for _, absent := range []string{PlotID(PlotLatency, "puts"), PlotID(PlotResources, "")} {
		if strings.Contains(joined, absent) {
			t.Errorf("files %v have %s without data", files, absent)
		}
	}
	page, _ := os.ReadFile(filepath.Join(dir, HTMLFile))
	for _, s := range []string{"from the summary percentiles only", `timeline event &#34;heal&#34; at &#34;soon&#34; is not a duration`, "Not sampled in this run."} {
		if !bytes.Contains(page, []byte(s)) {
			t.Errorf("report.html lacks %q", s)
		}
	}
}

// Hostile values from a result.json are drawn or left out, never a panic.
func TestPlotsSurviveOddValues(t *testing.T) {
	res := &Result{
		Scenario:  "odd",
		IntervalS: -1,
		Workloads: map[string]*WorkloadResult{
			"w": {
				Stages: map[string]*StageResult{
					"accepted": {Count: 1, Corrected: Percentiles{P50: -5, P99: 0, Max: 1 << 62}},
					"zz":       {Count: 3},
				},
				Series: []IntervalResult{{T: 0, Stages: map[string]IntervalStageResult{"accepted": {Count: 1, P50: -1, P99: 1 << 62}}}, {T: 1e300}},
			},
			"<svg onload=alert(1)>": {Stages: map[string]*StageResult{}},
		},
		Floors:    Floors{QuicEcho: &Percentiles{P50: -1}},
		Timeline:  []TimelineResult{{At: "-3s"}, {At: "2562047h"}, {At: "1s", Event: "</text><script>"}},
		Resources: &Resources{Samples: []ResourceSample{{T: -1e18, CPUPercent: -4}, {T: 1}}},
	}
	dir := t.TempDir()
	if _, err := WriteHTML(dir, res, nil); err != nil && !errors.Is(err, ErrPlot) {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(page, []byte("<script>")) || bytes.Contains(page, []byte("<svg onload")) {
		t.Error("user text reached the page unescaped")
	}
}

func TestLatencyTicks(t *testing.T) {
	got := func(lo, hi float64) string {
		var labels []string
		for _, tk := range (latencyTicks{}).Ticks(lo, hi) {
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
		}
		return strings.Join(labels, " ")
	}
	if s := got(1, 1e7); s != "1µs 10µs 100µs 1ms 10ms 100ms 1s 10s" {
		t.Errorf("ticks %q", s)
	}
	if s := got(1000, 100000); s != "1ms 2ms 5ms 10ms 20ms 50ms 100ms" {
		t.Errorf("ticks %q", s)
	}
	if n := len((latencyTicks{}).Ticks(0, 10)); n != 0 {
		t.Errorf("%d ticks for a zero minimum", n)
	}
	var labels []string
	for _, tk := range (spectrumTicks{}).Ticks(1, 1e4) {
		labels = append(labels, tk.Label)
	}
	if s := strings.Join(labels, " "); s != "0% 50% 90% 99% 99.9% 99.99%" {
		t.Errorf("spectrum ticks %q", s)
	}
}

// The spectrum follows the histogram: at x = 1/(1−q) it shows the value at
// quantile q.
func TestSpectrumPoints(t *testing.T) {
	h := NewHistogram()
	for i := int64(1); i <= 10000; i++ {
		_ = h.RecordValue(i)
	}
	pts := spectrumFromCDF(h.CumulativeDistributionWithTicks(hgrmTicks), h.TotalCount())
	if len(pts) < 20 {
		t.Fatalf("%d points", len(pts))
	}
	for i, p := range pts {
		if i > 0 && (p.X < pts[i-1].X || p.Y < pts[i-1].Y) {
			t.Fatalf("not monotonic at %d: %v after %v", i, p, pts[i-1])
		}
		if q := 1 - 1/p.X; p.X < 1000 && !within(int64(p.Y), h.ValueAtQuantile(q*100)) {
			t.Errorf("x %v (q %v): %v, histogram says %d", p.X, q, p.Y, h.ValueAtQuantile(q*100))
		}
	}
	if last := pts[len(pts)-1]; last.X < 10000 || !within(int64(last.Y), 10000) {
		t.Errorf("last point %v", last)
	}
}

func TestMarkdownPlotsIgnoresOtherFiles(t *testing.T) {
	got := markdownPlots([]string{"a.png", "plot-x.hgrm", "plot-latency-w.png", "plot-latency-w.svg", "../plot-evil.png", "plot-resources.png"})
	var s []string
	for _, p := range got {
		s = append(s, fmt.Sprintf("%s|%s|%s", p.Title, p.PNG, p.SVG))
	}
	want := "Latency over time: w|plot-latency-w.png|plot-latency-w.svg Resource use|plot-resources.png|"
	if strings.Join(s, " ") != want {
		t.Errorf("got %q", strings.Join(s, " "))
	}
}

func TestInlineSVG(t *testing.T) {
	in := []byte("<?xml version=\"1.0\"?>\n<!-- c -->\n<svg width=\"576pt\" height=\"288pt\" viewBox=\"0 0 576 288\"\n\txmlns=\"http://www.w3.org/2000/svg\"><g/></svg>\n")
	got := string(inlineSVG(in, "plot-x", `a "title"`))
	want := `<svg id="plot-x" class="plot-svg" role="img" aria-label="a &#34;title&#34;" width="100%" viewBox="0 0 576 288"`
	if !strings.HasPrefix(got, want) {
		t.Errorf("got %q", got)
	}
	if regexp.MustCompile(`<\?xml|pt"`).MatchString(got) {
		t.Errorf("prologue or fixed size left: %q", got)
	}
}

func BenchmarkWriteHTML(b *testing.B) {
	res, snap := stallRun(b)
	dir := b.TempDir()
	for b.Loop() {
		if _, err := WriteHTML(dir, res, snap); err != nil {
			b.Fatal(err)
		}
	}
}
