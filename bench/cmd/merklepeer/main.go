// Command merklepeer is the peer side of the whole-process Merkle comparison
// (scripts/merkle-whole.sh): `rustorium merkle root --batch N` done with
// go-merkletree-sql (in-memory storage), and a seeded generator of its input.
//
//	merklepeer gen [-n 30000] [-seed 1]   print n "<key> <value>" lines
//	merklepeer root [-batch 1000]         read such lines on stdin, print the
//	                                      root after each batch (decimal)
//
// root parses the lines as go-merkletree-sql is fed (big.Int, the library's
// input type), writes them one at a time (Add for a new key, Update for a key
// it already holds: a set of the keys written so far says which), and prints
// exactly what `rustorium merkle root --batch N` prints for the same input,
// so the two outputs are compared byte for byte.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	iden3 "github.com/iden3/go-merkletree-sql/v2"
	"github.com/iden3/go-merkletree-sql/v2/db/memory"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: merklepeer gen [-n N] [-seed S] | root [-batch N] [-levels L]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		fs := flag.NewFlagSet("gen", flag.ExitOnError)
		n := fs.Int("n", 30000, "number of writes")
		seed := fs.Uint64("seed", 1, "random seed")
		_ = fs.Parse(os.Args[2:])
		err = gen(os.Stdout, *n, *seed)
	case "root":
		fs := flag.NewFlagSet("root", flag.ExitOnError)
		batch := fs.Int("batch", 1000, "print the root after every N writes (0: once at the end)")
		levels := fs.Int("levels", 64, "go-merkletree-sql maxLevels")
		_ = fs.Parse(os.Args[2:])
		err = root(os.Stdin, os.Stdout, *batch, *levels)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "merklepeer:", err)
		os.Exit(1)
	}
}

// gen prints n writes: about 80% new random keys, 20% updates of a key
// written before (as the in-process benchmark's blocks), random values.
func gen(w io.Writer, n int, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 30))
	out := bufio.NewWriterSize(w, 1<<16)
	var keys []fr.Element
	elem := func() fr.Element {
		var b [32]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		var e fr.Element
		e.SetBytes(b[:]) // reduced mod q
		return e
	}
	for range n {
		var k fr.Element
		if len(keys) > 0 && r.IntN(5) == 0 {
			k = keys[r.IntN(len(keys))]
		} else {
			k = elem()
			keys = append(keys, k)
		}
		v := elem()
		if _, err := fmt.Fprintf(out, "%s %s\n", k.Text(10), v.Text(10)); err != nil {
			return err
		}
	}
	return out.Flush()
}

// root applies the lines of in to a go-merkletree-sql tree and prints the
// root after every batch lines (and after a final partial batch).
func root(in io.Reader, w io.Writer, batch, levels int) error {
	ctx := context.Background()
	mt, err := iden3.NewMerkleTree(ctx, memory.NewMemoryStorage(), levels)
	if err != nil {
		return fmt.Errorf("new tree: %w", err)
	}
	out := bufio.NewWriter(w)
	seen := map[string]bool{}
	sc := bufio.NewScanner(in)
	line, inBatch, total := 0, 0, 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return fmt.Errorf("line %d: want \"<key> <value>\"", line)
		}
		k, ok1 := new(big.Int).SetString(f[0], 10)
		v, ok2 := new(big.Int).SetString(f[1], 10)
		if !ok1 || !ok2 {
			return fmt.Errorf("line %d: not decimal numbers", line)
		}
		ks := string(k.Bytes())
		if seen[ks] {
			_, err = mt.Update(ctx, k, v)
		} else {
			err = mt.Add(ctx, k, v)
			seen[ks] = true
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		inBatch++
		total++
		if batch > 0 && inBatch == batch {
			fmt.Fprintln(out, mt.Root().BigInt().String())
			inBatch = 0
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading input: %w", err)
	}
	if total == 0 || inBatch > 0 {
		fmt.Fprintln(out, mt.Root().BigInt().String())
	}
	if err := out.Flush(); err != nil {
		return errors.Join(errors.New("writing output"), err)
	}
	return nil
}
