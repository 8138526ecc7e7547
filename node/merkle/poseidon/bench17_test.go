package poseidon

import (
	"fmt"
	"math/big"
	"os"
	"runtime"
	"sort"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	iden3 "github.com/iden3/go-iden3-crypto/poseidon"
)

func threadCPU() time.Duration {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3 /* CLOCK_THREAD_CPUTIME_ID */, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// cpuTime returns median per-call thread CPU time over rounds of n calls.
func cpuTimes(fs map[string]func(), n, rounds int) map[string]time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	res := map[string][]time.Duration{}
	names := []string{}
	for k := range fs {
		names = append(names, k)
	}
	sort.Strings(names)
	for r := 0; r < rounds; r++ {
		for _, k := range names {
			f := fs[k]
			t0 := threadCPU()
			for i := 0; i < n; i++ {
				f()
			}
			res[k] = append(res[k], (threadCPU()-t0)/time.Duration(n))
		}
	}
	out := map[string]time.Duration{}
	for k, v := range res {
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		out[k] = v[len(v)/2]
	}
	return out
}

func TestTiming(t *testing.T) {
	if os.Getenv("TIMING") == "" {
		t.Skip()
	}
	var st [17]fr.Element
	p := table(17)
	in32 := make([]byte, 32)
	for i := range in32 {
		in32[i] = byte(i * 7)
	}
	fs := map[string]func(){
		"asm17":   func() { permute17asm(&st, &p.sched[0], nil, 0) },
		"hb32":    func() { HashBytes(in32) },
		"iden3hb": func() { iden3.HashBytes(in32) },
		"iden3h2": func() { iden3.Hash([]*big.Int{big.NewInt(1), big.NewInt(2)}) },
		"hash2":   func() { a, b := fr.NewElement(1), fr.NewElement(2); Hash2(&a, &b) },
	}
	in64 := make([]byte, 64)
	fs["hb64"] = func() { HashBytes(in64) }
	fs["iden3hb64"] = func() { iden3.HashBytes(in64) }
	for k, v := range extraTiming {
		fs[k] = v
	}
	res := cpuTimes(fs, 200, 15)
	for k, v := range res {
		fmt.Printf("%-10s %10.1f us\n", k, float64(v.Nanoseconds())/1000)
	}
	fmt.Printf("ratio iden3hb/hb32 = %.2f\n", float64(res["iden3hb"])/float64(res["hb32"]))
}

var extraTiming = map[string]func(){}
