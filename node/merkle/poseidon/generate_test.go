package poseidon

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedAssemblyUpToDate runs each assembly generator (go:generate)
// in a scratch folder and checks that the committed file is exactly what
// it writes: the 8-lane kernels are 20k lines nobody edits by hand, and a
// generator changed without a regenerate would otherwise go unnoticed on
// machines whose CPU does not run them.
func TestGeneratedAssemblyUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generators (go run)")
	}
	for gen, out := range map[string]string{"gen_asm.go": "permute_amd64.s", "gen_ifma.go": "permute_ifma_amd64.s"} {
		t.Run(gen, func(t *testing.T) {
			dir := t.TempDir()
			src, err := os.ReadFile(gen)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, gen), src, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("go", "run", gen)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GO111MODULE=off") // a lone file of the standard library
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go run %s: %v\n%s", gen, err, b)
			}
			got, err := os.ReadFile(filepath.Join(dir, out))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from what %s writes: run go generate in node/merkle/poseidon", out, gen)
			}
		})
	}
}
