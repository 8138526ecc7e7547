package deploy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rustorium/rustorium/internal/freeport"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/tx"
)

// dashboardFile is the Grafana dashboard of the node's metrics.
const dashboardFile = "grafana/rustorium.json"

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// loadDashboard reads and decodes the dashboard, refusing unknown JSON
// nowhere (Grafana's model is large) but requiring valid JSON.
func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// allPanels is every panel, those inside rows included.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// exprs returns every PromQL expression with where it is, "panel title / refId".
func (d *dashboard) exprs() map[string]string {
	out := map[string]string{}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out[p.Title+" / "+tg.RefID] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		var q struct {
			Query string `json:"query"`
		}
		if v.Type == "query" && json.Unmarshal(v.Query, &q) == nil && q.Query != "" {
			// label_values(METRIC, label)
			if m, ok := strings.CutPrefix(q.Query, "label_values("); ok {
				m, _, _ = strings.Cut(m, ",")
				out["variable "+v.Name] = m
			}
		}
	}
	return out
}

// TestDashboard: the dashboard is a Grafana dashboard a person can import:
// a uid and title, a Prometheus data source variable every panel uses,
// unique panel ids, a place on the grid for each, and every panel's
// queries parse (balanced, naming at least one metric).
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 30 {
		t.Fatalf("uid %q, title %q, schemaVersion %d: want all three", d.UID, d.Title, d.SchemaVersion)
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"` {
			hasDS = true
		}
		if v.Datasource != nil && v.Datasource.UID != "${datasource}" {
			t.Errorf("variable %s uses data source %q, not ${datasource}", v.Name, v.Datasource.UID)
		}
	}
	if !hasDS {
		t.Fatal("no data source variable (name datasource, type datasource, query prometheus)")
	}
	ids := map[int]string{}
	queries := 0
	for _, p := range d.allPanels() {
		if p.ID <= 0 {
			t.Errorf("panel %q: id %d", p.Title, p.ID)
		}
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Title == "" || p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %d %q: needs a title and a place on the 24-column grid (%+v)", p.ID, p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source %+v, want prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			queries++
		}
	}
	for where, e := range d.exprs() {
		names, err := metricNames(e)
		if err != nil {
			t.Errorf("%s: %q: %v", where, e, err)
		} else if len(names) == 0 {
			t.Errorf("%s: %q names no metric", where, e)
		}
	}
	if queries < 20 {
		t.Fatalf("%d queries: the dashboard is missing its panels", queries)
	}
}

// TestMetricNames checks the query reader on PromQL it must get right.
func TestMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`rustorium_ready{instance=~"$instance"}`, []string{"rustorium_ready"}},
		{`sum by (instance, le) (rate(a_bucket{x="by(y)", z!~"q{1}"}[$__rate_interval]))`, []string{"a_bucket"}},
		{`histogram_quantile(0.99, sum(rate(b_bucket[5m])) by (le, phase))`, []string{"b_bucket"}},
		{`1e6 * rate(c_total[1m]) / on (instance) group_left sum without (path) (d)`, []string{"c_total", "d"}},
		{`x == 1 and on() y offset 5m or vector(0)`, []string{"x", "y"}},
		{`max(rate(e[1m])) > bool 0.5`, []string{"e"}},
	} {
		got, err := metricNames(c.expr)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("metricNames(%q) = %v, %v; want %v", c.expr, got, err, c.want)
		}
	}
	for _, bad := range []string{`rate(a[1m]`, `a{x="y"`, `sum(a))`, `a{x="y}`, `a[5m`} {
		if _, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%q): no error", bad)
		}
	}
}

// TestDashboardMetricsExported runs `rustorium node` built from this tree
// with --metrics and --api, gives it transactions over QUIC (one of them
// refused) and an API request so that every labelled series exists, scrapes
// its /metrics, and fails naming every metric a dashboard query uses that
// the node does not export — and every rustorium_ metric the node exports
// that no panel shows.
func TestDashboardMetricsExported(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a node")
	}
	d := loadDashboard(t)
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	metricsAddr, quicAddr := startNode(t, ctx, client, bin)

	c, err := p2p.Dial(ctx, quicAddr, p2p.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	for i := range 8 {
		x := &tx.Tx{Kind: tx.KindPut, ChainID: 1, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}
		x.Sign(key)
		call, err := c.Submit(ctx, x.Encode())
		if err == nil {
			if _, err = call.Accepted(); err == nil {
				_, err = call.Committed()
			}
		}
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	bad := &tx.Tx{Kind: tx.KindPut, ChainID: 2, Key: []byte("other chain"), Value: []byte("v")}
	bad.Sign(key)
	if call, err := c.Submit(ctx, bad.Encode()); err == nil {
		if _, err := call.Accepted(); err == nil {
			t.Fatal("a transaction for another chain was accepted")
		}
	}

	fams := scrape(t, ctx, client, "http://"+metricsAddr+"/metrics")
	exported := map[string]bool{}
	for name, f := range fams {
		for _, n := range seriesNames(name, f.GetType()) {
			exported[n] = true
		}
	}
	used := map[string]bool{}
	for _, where := range slices.Sorted(maps.Keys(d.exprs())) {
		names, err := metricNames(d.exprs()[where])
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		for _, n := range names {
			used[n] = true
			if !exported[n] {
				t.Errorf("%s: the node exports no metric %s", where, n)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(fams)) {
		if !strings.HasPrefix(name, "rustorium_") {
			continue
		}
		shown := false
		for _, n := range seriesNames(name, fams[name].GetType()) {
			shown = shown || used[n]
		}
		if !shown {
			t.Errorf("the node exports %s, which no panel of %s shows", name, dashboardFile)
		}
	}
}

// seriesNames are the series names a family of typ exports.
func seriesNames(name string, typ dto.MetricType) []string {
	switch typ {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return []string{name + "_bucket", name + "_sum", name + "_count"}
	case dto.MetricType_SUMMARY:
		return []string{name, name + "_sum", name + "_count"}
	}
	return []string{name}
}

// startNode starts `rustorium node` (bin) on free ports until ctx ends or
// the test does, and waits until its API says it is ready; it returns its
// metrics and QUIC addresses. The ports lie outside the kernel's ephemeral
// range (freeport); should another program bind one all the same before
// the node does, the node is started again on new ones (three tries).
func startNode(t *testing.T, ctx context.Context, client *http.Client, bin string) (metricsAddr, quicAddr string) {
	t.Helper()
	for try := 1; ; try++ {
		metricsAddr, quicAddr = freeport.Loopback(t), freeport.Loopback(t)
		apiAddr := freeport.Loopback(t)
		logs := &bytes.Buffer{} // read only once the process exited
		nctx, stop := context.WithCancel(ctx)
		cmd := exec.CommandContext(nctx, bin, "node", "--data", filepath.Join(t.TempDir(), "data"), "--listen", quicAddr,
			"--metrics", metricsAddr, "--api", apiAddr, "--no-sync", "--shards", "2")
		cmd.Stdout, cmd.Stderr = logs, logs
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			stop()
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			stop()
			<-exited
			if t.Failed() {
				t.Logf("node's output (try %d):\n%s", try, logs.String())
			}
		})
		if waitReady(ctx, client, "http://"+apiAddr+"/readyz", exited) {
			return metricsAddr, quicAddr
		}
		stop()
		<-exited
		if ctx.Err() != nil || try == 3 || !strings.Contains(logs.String(), "address already in use") {
			t.Fatalf("the node never became ready (try %d); its output:\n%s", try, logs.String())
		}
		t.Logf("the node lost a port to another program (try %d): starting it again", try)
	}
}

// waitReady polls url until it answers 200 (true), or until ctx ends or
// the process exits (false).
func waitReady(ctx context.Context, client *http.Client, url string, exited <-chan struct{}) bool {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-exited:
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// scrape reads url's Prometheus text exposition.
func scrape(t *testing.T, ctx context.Context, client *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return fams
}

// promqlNotMetrics are PromQL words that are not metric names: aggregation
// operators, binary operators and modifiers.
var promqlNotMetrics = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true,
}

// promqlLabelLists are the words followed by a parenthesised list of label
// names.
var promqlLabelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// metricNames returns the metric names a PromQL expression selects, in
// order of first use. It reads what a dashboard's queries use — selectors,
// functions, aggregations with by/without, vector matching, numbers and
// durations, Grafana's $variables inside matchers and ranges — and fails on
// unbalanced brackets and unterminated strings; it does not check PromQL's
// grammar beyond that (Grafana's query editor and Prometheus do).
func metricNames(expr string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	depth := 0
	i := 0
	next := func(j int) byte { // the next non-space byte from j, 0 at the end
		for ; j < len(expr); j++ {
			if c := expr[j]; c != ' ' && c != '\t' && c != '\n' {
				return c
			}
		}
		return 0
	}
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(expr, i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{' || c == '[':
			j, err := skipGroup(expr, i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '}' || c == ']':
			return nil, fmt.Errorf("unbalanced %q at %d", c, i)
		case c == '(':
			depth++
			i++
		case c == ')':
			if depth--; depth < 0 {
				return nil, fmt.Errorf("unbalanced ')' at %d", i)
			}
			i++
		case c >= '0' && c <= '9' || c == '.':
			for i++; i < len(expr); i++ {
				d := expr[i]
				if !(d >= '0' && d <= '9' || d >= 'a' && d <= 'z' || d >= 'A' && d <= 'Z' || d == '.' || d == '_' ||
					(d == '+' || d == '-') && (expr[i-1] == 'e' || expr[i-1] == 'E')) {
					break
				}
			}
		case isIdentStart(c):
			j := i + 1
			for j < len(expr) && (isIdentStart(expr[j]) || expr[j] >= '0' && expr[j] <= '9') {
				j++
			}
			word := expr[i:j]
			i = j
			switch {
			case promqlLabelLists[word]:
				if next(i) == '(' { // skip the label list
					for expr[i] != '(' {
						i++
					}
					k := strings.IndexByte(expr[i:], ')')
					if k < 0 {
						return nil, fmt.Errorf("unterminated label list after %s", word)
					}
					i += k + 1
				}
			case promqlNotMetrics[word], next(i) == '(':
				// an operator, a modifier, or a function
			default:
				if !seen[word] {
					seen[word] = true
					out = append(out, word)
				}
			}
		default:
			i++
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("%d unclosed '('", depth)
	}
	return out, nil
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':'
}

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at %d", i)
}

// skipGroup returns the index after the {…} matchers or […] range starting
// at i; strings inside may hold the closing bracket.
func skipGroup(s string, i int) (int, error) {
	closer := map[byte]byte{'{': '}', '[': ']'}[s[i]]
	for j := i + 1; j < len(s); {
		switch c := s[j]; {
		case c == '"' || c == '\'' || c == '`':
			k, err := skipString(s, j)
			if err != nil {
				return 0, err
			}
			j = k
		case c == closer:
			return j + 1, nil
		case c == '{' || c == '[' || c == '(' || c == ')':
			return 0, fmt.Errorf("%q inside %q at %d", c, s[i], j)
		default:
			j++
		}
	}
	return 0, fmt.Errorf("unclosed %q at %d", s[i], i)
}
