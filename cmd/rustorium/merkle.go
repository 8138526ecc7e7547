package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/spf13/cobra"

	"github.com/rustorium/rustorium/node/merkle"
)

const (
	maxKVLine        = 1 << 10 // bytes in one `<key> <value>` line
	maxProofDocument = 1 << 20 // bytes of proof JSON accepted by verify
)

func newMerkleCmd() *cobra.Command {
	var levels int
	cmd := &cobra.Command{
		Use:   "merkle",
		Short: "Compute roots and proofs of the iden3-compatible Poseidon sparse Merkle tree",
		Long: `merkle computes roots and proofs of the node's Poseidon sparse Merkle tree,
bit-identical to iden3's go-merkletree-sql. Input lines are "<key> <value>",
decimal BN254 field elements; a later line for a key updates it.`,
	}
	cmd.PersistentFlags().IntVar(&levels, "levels", 64, "maximum tree levels (go-merkletree-sql maxLevels)")
	cmd.AddCommand(newMerkleRootCmd(&levels), newMerkleProveCmd(&levels), newMerkleVerifyCmd())
	return cmd
}

func newMerkleRootCmd(levels *int) *cobra.Command {
	var batch int
	cmd := &cobra.Command{
		Use:   "root",
		Short: "Print the root of the tree holding the <key> <value> lines read from stdin",
		Long: `root reads "<key> <value>" lines (decimal field elements; blank lines are
ignored) from stdin and prints the tree's root as a decimal integer. With
--batch N it applies the lines in blocks of N and prints the root after each
block, the last one possibly partial. An empty input prints 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if batch < 0 {
				return fmt.Errorf("--batch %d: must be >= 0", batch)
			}
			kvs, err := readKVs(cmd.InOrStdin())
			if err != nil {
				return err
			}
			tr, store, err := newCLITree(*levels, len(kvs))
			if err != nil {
				return err
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			if len(kvs) == 0 {
				fmt.Fprintln(out, "0")
				return out.Flush()
			}
			size := batch
			if size == 0 {
				size = len(kvs)
			}
			for lo := 0; lo < len(kvs); lo += size {
				root, err := applyCLI(tr, store, kvs[lo:min(len(kvs), lo+size)])
				if err != nil {
					return err
				}
				fmt.Fprintln(out, merkle.FormatElement(&root))
			}
			return out.Flush()
		},
	}
	cmd.Flags().IntVar(&batch, "batch", 0, "apply the lines in batches of N, printing the root after each (0: one batch)")
	return cmd
}

// proofDocument is what prove prints and verify reads. Proof is
// go-merkletree-sql's JSON proof.
type proofDocument struct {
	Root  string          `json:"root"`
	Key   string          `json:"key"`
	Value string          `json:"value"`
	Proof json.RawMessage `json:"proof"`
}

func newMerkleProveCmd(levels *int) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "prove --key K",
		Short: "Print a JSON proof for key K in the tree of the <key> <value> lines on stdin",
		Long: `prove builds the tree from the "<key> <value>" lines on stdin (as root does)
and prints a JSON document {"root", "key", "value", "proof"} where proof is
go-merkletree-sql's JSON proof: a membership proof when K is present (value
is its value) or a non-membership proof (value 0).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := merkle.ParseElement(key)
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			kvs, err := readKVs(cmd.InOrStdin())
			if err != nil {
				return err
			}
			tr, store, err := newCLITree(*levels, len(kvs))
			if err != nil {
				return err
			}
			root, err := applyCLI(tr, store, kvs)
			if err != nil {
				return err
			}
			p, v, err := tr.Prove(k)
			if err != nil {
				return err
			}
			pj, err := json.Marshal(p)
			if err != nil {
				return err
			}
			doc := proofDocument{Root: merkle.FormatElement(&root), Key: merkle.FormatElement(&k), Value: merkle.FormatElement(&v), Proof: pj}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(doc)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the key to prove (decimal field element)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func newMerkleVerifyCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "verify [--file PROOF.json]",
		Short: "Check a JSON proof (as printed by prove) read from stdin or --file",
		Long: `verify reads a proof document {"root", "key", "value", "proof"} (as printed by
prove) and checks it: a membership proof must show that key holds value under
root, a non-membership proof that key is absent (value must be 0). It exits
non-zero with the reason when the proof does not hold.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := cmd.InOrStdin()
			if file != "" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			data, err := io.ReadAll(io.LimitReader(in, maxProofDocument+1))
			if err != nil {
				return err
			}
			if len(data) > maxProofDocument {
				return fmt.Errorf("proof document larger than %d bytes", maxProofDocument)
			}
			msg, err := verifyDocument(data)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("invalid proof: %w", err)}
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "read the proof from this file instead of stdin")
	return cmd
}

// verifyDocument checks a proof document and describes what it proved.
func verifyDocument(data []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc proofDocument
	if err := dec.Decode(&doc); err != nil {
		return "", fmt.Errorf("decoding proof document: %w", err)
	}
	if dec.More() {
		return "", errors.New("trailing data after the proof document")
	}
	if len(doc.Proof) == 0 {
		return "", errors.New(`missing "proof"`)
	}
	var fields [3]fr.Element
	for i, s := range []struct{ name, v string }{{"root", doc.Root}, {"key", doc.Key}, {"value", doc.Value}} {
		e, err := merkle.ParseElement(s.v)
		if err != nil {
			return "", fmt.Errorf("%q: %w", s.name, err)
		}
		fields[i] = e
	}
	var p merkle.Proof
	if err := json.Unmarshal(doc.Proof, &p); err != nil {
		return "", fmt.Errorf(`"proof": %w`, err)
	}
	if err := merkle.VerifyProof(fields[0], &p, fields[1], fields[2]); err != nil {
		return "", err
	}
	if p.Existence {
		return fmt.Sprintf("valid: key %s holds value %s under root %s", doc.Key, doc.Value, doc.Root), nil
	}
	return fmt.Sprintf("valid: key %s is absent under root %s", doc.Key, doc.Root), nil
}

// readKVs parses "<key> <value>" lines; blank lines are skipped. Lines are
// split on white space as strings.Fields does, and each number parsed in
// place (merkle.ParseElementBytes): no allocation per line.
func readKVs(r io.Reader) ([]merkle.KV, error) {
	sc := bufio.NewScanner(bufio.NewReaderSize(r, 1<<16))
	sc.Buffer(make([]byte, 0, 4096), maxKVLine)
	var kvs []merkle.KV
	line := 0
	var f [2][]byte
	for sc.Scan() {
		line++
		n := fields(sc.Bytes(), &f)
		if n == 0 {
			continue
		}
		if n != 2 {
			return nil, fmt.Errorf("line %d: want \"<key> <value>\", got %d fields", line, n)
		}
		k, err := merkle.ParseElementBytes(f[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: key: %w", line, err)
		}
		v, err := merkle.ParseElementBytes(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: value: %w", line, err)
		}
		kvs = append(kvs, merkle.KV{Key: k, Value: v})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than %d bytes", line+1, maxKVLine)
		}
		return nil, fmt.Errorf("reading input: %w", err)
	}
	return kvs, nil
}

// fields splits b as strings.Fields does, returns the number of fields and
// stores the first two in f (sub-slices of b). A line with bytes outside
// ASCII goes through strings.Fields itself (Unicode white space).
func fields(b []byte, f *[2][]byte) int {
	n := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c >= utf8.RuneSelf {
			ss := strings.Fields(string(b))
			for j := 0; j < len(ss) && j < 2; j++ {
				f[j] = []byte(ss[j])
			}
			return len(ss)
		}
		if asciiSpace[c] {
			i++
			continue
		}
		j := i
		for j < len(b) && b[j] < utf8.RuneSelf && !asciiSpace[b[j]] {
			j++
		}
		if j < len(b) && b[j] >= utf8.RuneSelf {
			i = j // let the loop take the Unicode path
			continue
		}
		if n < 2 {
			f[n] = b[i:j]
		}
		n++
		i = j
	}
	return n
}

// asciiSpace are the ASCII bytes unicode.IsSpace accepts.
var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// newCLITree returns an empty tree over an in-memory store sized for about
// writes writes (a write creates a leaf and a few middle nodes per batch).
func newCLITree(levels, writes int) (*merkle.Tree, merkle.MapReader, error) {
	store := make(merkle.MapReader, 8*writes)
	tr, err := merkle.New(store, fr.Element{}, merkle.Options{MaxLevels: levels})
	if err != nil {
		return nil, nil, fmt.Errorf("--levels: %w", err)
	}
	return tr, store, nil
}

func applyCLI(tr *merkle.Tree, store merkle.MapReader, kvs []merkle.KV) (fr.Element, error) {
	u, err := tr.Apply(kvs)
	if err != nil {
		return fr.Element{}, err
	}
	store.Put(u)
	if err := tr.Commit(u); err != nil {
		return fr.Element{}, err
	}
	return u.Root, nil
}
