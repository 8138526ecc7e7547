//go:build linux

package reports

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// chromium returns the path of a Chromium binary. When there is none, it
// installs Debian's chromium package if the test runs as root with
// RUSTORIUM_INSTALL_CHROMIUM=1 (as `make test` sets), else skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	find := func() string {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
			if p, err := exec.LookPath(name); err == nil {
				return p
			}
		}
		return ""
	}
	if p := find(); p != "" {
		return p
	}
	if os.Getuid() != 0 || os.Getenv("RUSTORIUM_INSTALL_CHROMIUM") != "1" {
		t.Skip("no chromium: install Debian's chromium package, or run as root with RUSTORIUM_INSTALL_CHROMIUM=1 to let the test install it")
	}
	t.Log("installing chromium (apt-get)")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", "apt-get update && apt-get install -y --no-install-recommends chromium")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing chromium: %v\n%s", err, tail(out, 4000))
	}
	p := find()
	if p == "" {
		t.Fatal("chromium installed but not found on PATH")
	}
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// runChromium runs headless Chromium on a page with extra flags and
// returns its standard output. Chromium's whole process group is killed if
// it outlives the timeout.
func runChromium(t *testing.T, bin, page string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute) // a loaded 2-core machine
	defer cancel()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(),
	}
	args = append(append(args, extra...), "file://"+page)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers left behind, if any
	}
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", extra, err, tail(stderr.Bytes(), 4000))
	}
	return stdout.Bytes()
}

// TestHTMLReportInBrowser opens report.html in headless Chromium: the
// rendered DOM holds every plot, and a screenshot shows them drawn (pixels
// in the stage colours).
func TestHTMLReportInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	bin := chromium(t)
	res, snap := stallRun(t)
	dir := t.TempDir()
	if _, err := Write(dir, res, snap, []string{"json", "md", "html"}); err != nil {
		t.Fatal(err)
	}
	page, err := filepath.Abs(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}

	dom := runChromium(t, bin, page, "--dump-dom")
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`<svg id="(plot-[^"]+)"`).FindAllSubmatch(dom, -1) {
		ids[string(m[1])] = true
	}
	for _, id := range expectedPlots() {
		if !ids[id] {
			t.Errorf("rendered DOM lacks <svg id=%q>", id)
		}
	}
	if !bytes.Contains(dom, []byte(`id="verdict"`)) {
		t.Error("rendered DOM lacks the verdict")
	}
	if t.Failed() {
		t.Logf("DOM (%d bytes): %s", len(dom), tail(dom, 2000))
	}

	shot := filepath.Join(t.TempDir(), "shot.png")
	runChromium(t, bin, page, "--screenshot="+shot, "--window-size=1200,5000", "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	if b.Dx() < 1000 || b.Dy() < 4000 {
		t.Fatalf("screenshot is %v", b)
	}
	// Count pixels in the colours of the accepted and committed lines,
	// which only the plots use.
	near := func(r, g, bl uint32, want [3]uint32) bool {
		d := func(a, b uint32) uint32 {
			if a > b {
				return a - b
			}
			return b - a
		}
		return d(r>>8, want[0])+d(g>>8, want[1])+d(bl>>8, want[2]) < 30
	}
	var accepted, committed, nonWhite int
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			switch {
			case near(r, g, bl, [3]uint32{0x1f, 0x77, 0xb4}):
				accepted++
			case near(r, g, bl, [3]uint32{0xd6, 0x27, 0x28}):
				committed++
			}
			if r>>8 < 240 || g>>8 < 240 || bl>>8 < 240 {
				nonWhite++
			}
		}
	}
	t.Logf("screenshot %v: %d accepted-blue, %d committed-red, %d non-white sampled pixels", b, accepted, committed, nonWhite)
	if accepted < 200 || committed < 200 {
		t.Errorf("plots not drawn: %d accepted-blue and %d committed-red sampled pixels", accepted, committed)
	}
}
