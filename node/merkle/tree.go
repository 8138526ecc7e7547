package merkle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// MaxLevelsLimit is the largest accepted Options.MaxLevels: a proof's
// sibling bitmap holds 240 bits (go-merkletree-sql's proof format).
const MaxLevelsLimit = MaxProofDepth

// Options configures a Tree. The zero value is usable: EnsureDefaults fills
// in every zero field.
type Options struct {
	// MaxLevels is the number of levels of the tree, as go-merkletree-sql's
	// NewMerkleTree maxLevels: leaves live at depth MaxLevels-1 at most, and
	// a write that would need a deeper leaf fails with ErrReachedMaxLevel.
	// Trees are only identical to go-merkletree-sql trees built with the
	// same value. Default (0): 64. Range 1..MaxLevelsLimit.
	MaxLevels int
	// CacheNodes bounds the private node cache when Cache is nil. Default
	// (0): 1<<18 nodes (roughly 64 MiB).
	CacheNodes int
	// Cache, when non-nil, is used instead of a private cache (for example
	// one cache shared by every shard's tree). Default: nil.
	Cache *NodeCache
	// Parallelism is the number of goroutines that may hash one batch.
	// Default (0): GOMAXPROCS. 1 hashes on the calling goroutine only.
	Parallelism int
	// ParallelCutoff is the number of nodes each goroutine must get for
	// the nodes of one height of a batch (which are independent) to be
	// hashed concurrently, so small batches stay single-threaded.
	// Default (0): 16.
	ParallelCutoff int
}

// EnsureDefaults sets zero fields to their defaults.
func (o *Options) EnsureDefaults() {
	if o.MaxLevels == 0 {
		o.MaxLevels = 64
	}
	if o.CacheNodes == 0 {
		o.CacheNodes = 1 << 18
	}
	if o.Parallelism == 0 {
		o.Parallelism = runtime.GOMAXPROCS(0)
	}
	if o.ParallelCutoff == 0 {
		o.ParallelCutoff = 16
	}
}

// Validate reports whether the (defaulted) options are usable.
func (o *Options) Validate() error {
	switch {
	case o.MaxLevels < 1 || o.MaxLevels > MaxLevelsLimit:
		return fmt.Errorf("%w: MaxLevels %d not in 1..%d", ErrInvalidOptions, o.MaxLevels, MaxLevelsLimit)
	case o.CacheNodes < 1:
		return fmt.Errorf("%w: CacheNodes %d < 1", ErrInvalidOptions, o.CacheNodes)
	case o.Parallelism < 1:
		return fmt.Errorf("%w: Parallelism %d < 1", ErrInvalidOptions, o.Parallelism)
	case o.ParallelCutoff < 1:
		return fmt.Errorf("%w: ParallelCutoff %d < 1", ErrInvalidOptions, o.ParallelCutoff)
	}
	return nil
}

// KV is one write of a batch: set Key to Value, or remove Key when Delete is
// true (Value is then ignored). A value of 0 is an ordinary value (a leaf
// Poseidon(key, 0, 1), as go-merkletree-sql's Add(k, 0)), not a deletion.
type KV struct {
	Key, Value fr.Element
	Delete     bool
}

// NodeWrite is a node created by a batch, to be persisted under Hash.
type NodeWrite struct {
	// Hash is the HashLen-byte little-endian node hash (the NodeReader key).
	Hash []byte
	// Encoded is the EncodedNodeLen-byte node encoding.
	Encoded []byte
}

// Update is the result of Tree.Apply (or ApplyMany): the new root and the
// nodes that must be persisted before Tree.Commit makes it the tree's state.
type Update struct {
	// Root is the tree's root after the batch.
	Root fr.Element
	// Nodes are the nodes the batch created, each listed once. Nodes that
	// already exist in the store may be listed again (content addressed,
	// so rewriting them is harmless).
	Nodes []NodeWrite

	base  fr.Element
	fresh []newNode
	// stale are the committed tree's nodes the batch replaced: Commit
	// drops them from the node cache, which would otherwise fill with the
	// superseded nodes of earlier roots and evict live ones (a miss reads
	// the store). They stay in the store.
	stale []fr.Element

	indexOnce sync.Once
	index     map[fr.Element]node // fresh nodes by hash, built on first proof
}

// Base returns the root the update was computed from.
func (u *Update) Base() fr.Element { return u.base }

// Permutations is how many Poseidon permutations computing the update took:
// Apply hashes every node it creates once and nothing else, so it is the
// number of Nodes.
func (u *Update) Permutations() int { return len(u.fresh) }

func (u *Update) lookup(h fr.Element) (node, bool) {
	u.indexOnce.Do(func() {
		u.index = make(map[fr.Element]node, len(u.fresh))
		for i := range u.fresh {
			u.index[u.fresh[i].h] = u.fresh[i].n
		}
	})
	n, ok := u.index[h]
	return n, ok
}

type newNode struct {
	h fr.Element
	n node
}

// Tree is one sparse Merkle tree over a NodeReader. All methods are safe for
// concurrent use: Apply only reads the committed tree, and Commit refuses an
// update computed from a root that is no longer current.
type Tree struct {
	opts  Options
	r     NodeReader
	cache *NodeCache

	mu   sync.RWMutex
	root fr.Element
}

// New opens the tree whose root is root (0 for an empty tree) over r. The
// root node, unless empty, must be readable through r.
func New(r NodeReader, root fr.Element, opts Options) (*Tree, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%w: nil NodeReader", ErrInvalidOptions)
	}
	t := &Tree{opts: opts, r: r, cache: opts.Cache, root: root}
	if t.cache == nil {
		t.cache = NewNodeCache(opts.CacheNodes)
	}
	if _, err := t.load(root); err != nil {
		return nil, fmt.Errorf("merkle: opening tree: %w", err)
	}
	return t, nil
}

// Root returns the tree's current (committed) root.
func (t *Tree) Root() fr.Element {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.root
}

// MaxLevels returns the tree's Options.MaxLevels.
func (t *Tree) MaxLevels() int { return t.opts.MaxLevels }

// load returns the node with hash h (an empty node for 0).
func (t *Tree) load(h fr.Element) (node, error) {
	if h.IsZero() {
		return node{typ: typeEmpty}, nil
	}
	if n, ok := t.cache.get(h); ok {
		return n, nil
	}
	k := ElementLE(&h)
	b, err := t.r.ReadNode(k[:])
	if err != nil {
		return node{}, fmt.Errorf("merkle: reading node %s: %w", hex.EncodeToString(k[:]), err)
	}
	n, err := decodeNode(b)
	if err != nil {
		return node{}, fmt.Errorf("merkle: node %s: %w", hex.EncodeToString(k[:]), err)
	}
	t.cache.set(h, n)
	return n, nil
}

// Get returns the value stored under key in the committed tree.
func (t *Tree) Get(key fr.Element) (value fr.Element, found bool, err error) {
	p, v, err := t.proveAt(t.Root(), key, nil)
	if err != nil {
		return fr.Element{}, false, err
	}
	return v, p.Existence, nil
}

// Commit makes u the tree's current state. The caller must have persisted
// u.Nodes where the NodeReader finds them. It fails with ErrStaleUpdate if
// the tree's root changed since u was computed.
func (t *Tree) Commit(u *Update) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.root.Equal(&u.base) {
		return ErrStaleUpdate
	}
	t.cache.deleteMany(u.stale) // before setMany: a node may be both
	t.cache.setMany(u.fresh, t.opts.Parallelism)
	t.root = u.Root
	u.stale = nil // done with; the Update may be kept for its proofs
	return nil
}

// op is one deduplicated write (or an existing leaf being pushed down).
type op struct {
	key, value fr.Element
	path       [4]uint64 // key in regular (non-Montgomery) form: the path bits
	del        bool
	existing   bool       // an existing leaf, whose hash is h
	h          fr.Element // leaf hash when existing
}

func (o *op) bit(d int) uint64 { return o.path[d>>6] >> (uint(d) & 63) & 1 }

// cmpPath orders paths by their bits from the least significant up, so that
// every subtree's writes are contiguous.
func cmpPath(a, b *[4]uint64) int {
	for i := 0; i < 4; i++ {
		if x := a[i] ^ b[i]; x != 0 {
			if a[i]>>uint(bits.TrailingZeros64(x))&1 == 0 {
				return -1
			}
			return 1
		}
	}
	return 0
}

// prepare turns kvs into ops sorted by path, a later write of a key winning.
func prepare(kvs []KV) []op {
	ops := make([]op, len(kvs))
	for i := range kvs {
		ops[i] = op{key: kvs[i].Key, value: kvs[i].Value, path: kvs[i].Key.Bits(), del: kvs[i].Delete}
	}
	slices.SortStableFunc(ops, func(a, b op) int { return cmpPath(&a.path, &b.path) })
	// keep the last of each run of equal keys
	out := ops[:0]
	for i := range ops {
		if i+1 < len(ops) && ops[i+1].path == ops[i].path {
			continue
		}
		out = append(out, ops[i])
	}
	return out
}

// Result types of a subtree computation.
const (
	resEmpty   byte = typeEmpty
	resLeaf    byte = typeLeaf
	resMiddle  byte = typeMiddle
	resUnknown byte = 0xff // untouched non-empty child whose type was not loaded
)

// res is a subtree computed by Apply: its hash h, or, when ref > 0, the
// node emitter.nodes[ref-1] whose hash is not computed yet.
type res struct {
	h   fr.Element
	ref int32
	typ byte
}

// pending is a node created by a batch, hashed after the walk. For a leaf, a
// and b are its key and value; for a middle node its children's hashes, or
// ra, rb > 0 name children pending themselves (emitter.nodes[ra-1]).
type pending struct {
	a, b   fr.Element
	ra, rb int32
	height int32 // 0 for a leaf or a middle node of known children, else 1 + its children's
	leaf   bool
}

// emitter collects the nodes a batch creates. Apply first walks the tree
// and records them without hashing; hashAll then hashes them by height, all
// the nodes of one height being independent, in batches (poseidon.HashMany2,
// HashMany3: eight at a time where the CPU allows) and over goroutines.
type emitter struct {
	nodes []pending
	stale []fr.Element // loaded nodes the walk replaced (Update.stale)
}

func (e *emitter) height(r *res) int32 {
	if r.ref == 0 {
		return -1
	}
	return e.nodes[r.ref-1].height
}

func (e *emitter) middle(l, r *res) res {
	e.nodes = append(e.nodes, pending{a: l.h, b: r.h, ra: l.ref, rb: r.ref, height: 1 + max(e.height(l), e.height(r))})
	return res{ref: int32(len(e.nodes)), typ: resMiddle}
}

func (e *emitter) leaf(k, v *fr.Element) res {
	e.nodes = append(e.nodes, pending{a: *k, b: *v, leaf: true})
	return res{ref: int32(len(e.nodes)), typ: resLeaf}
}

type applier struct {
	t   *Tree
	sem chan struct{} // worker slots for walking subtrees concurrently
}

// walkCutoff is the fewest writes on each side of a node for its two
// subtrees to be walked concurrently.
const walkCutoff = 256

// merge appends o's nodes to e's and returns r (a result of o) renamed.
func (e *emitter) merge(o *emitter, r res) res {
	off := int32(len(e.nodes))
	for _, p := range o.nodes {
		if p.ra != 0 {
			p.ra += off
		}
		if p.rb != 0 {
			p.rb += off
		}
		e.nodes = append(e.nodes, p)
	}
	e.stale = append(e.stale, o.stale...)
	if r.ref != 0 {
		r.ref += off
	}
	return r
}

// splits reports whether subtrees with nl and nr writes are worth walking
// concurrently (pair); the callers walk them in turn otherwise, without
// building pair's closures.
func (a *applier) splits(nl, nr int) bool {
	return a.sem != nil && nl >= walkCutoff && nr >= walkCutoff
}

// pair runs fl and fr, concurrently (fl on a new goroutine, into its own
// emitter, merged after) when a worker slot is free.
func (a *applier) pair(fl, fr func(*emitter) (res, error), em *emitter) (l, r res, err error) {
	select {
	case a.sem <- struct{}{}:
	default:
		if l, err = fl(em); err != nil {
			return l, r, err
		}
		r, err = fr(em)
		return l, r, err
	}
	var (
		wg   sync.WaitGroup
		lem  emitter
		lerr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { <-a.sem }()
		l, lerr = fl(&lem)
	}()
	r, err = fr(em)
	wg.Wait()
	if err == nil {
		err = lerr
	}
	return em.merge(&lem, l), r, err
}

// Apply computes the tree that results from applying kvs (in order; a later
// write of a key wins) to the committed tree, without changing the tree.
// Every created node is hashed once, independent nodes several at a time and
// concurrently (Options.Parallelism).
func (t *Tree) Apply(kvs []KV) (*Update, error) {
	var (
		us   [1]*Update
		errs [1]error
	)
	applyMany(t.opts, []*Tree{t}, [][]KV{kvs}, us[:], errs[:])
	return us[0], errs[0]
}

// ApplyMany is Apply of kvss[i] to trees[i] for every i, computed together:
// every tree is walked in turn, and the nodes of all the batches are hashed
// by height as one batch, so that the nodes of equal height of different
// trees share kernel calls (poseidon.HashMany2, HashMany3), as small batches
// of one tree (a few nodes per height) alone cannot. updates[i] is what
// trees[i].Apply(kvss[i]) returns (the same Root, Nodes in the same order,
// Permutations and Base); errs[i] is its error, updates[i] then being nil:
// a tree whose batch fails leaves the others unaffected. The trees may
// differ in every option; the first (non-nil) tree's Parallelism and
// ParallelCutoff apply to all. A tree given more than once fails at every
// occurrence with ErrDuplicateTree; a nil tree fails. kvss must have
// len(trees) entries.
func ApplyMany(trees []*Tree, kvss [][]KV) (updates []*Update, errs []error) {
	if len(kvss) != len(trees) {
		panic(fmt.Sprintf("merkle: ApplyMany of %d trees with %d batches", len(trees), len(kvss)))
	}
	updates, errs = make([]*Update, len(trees)), make([]error, len(trees))
	if len(trees) == 0 {
		return updates, errs
	}
	var first *Tree
	seen := make(map[*Tree]int, len(trees))
	for i, t := range trees {
		if t == nil {
			errs[i] = fmt.Errorf("merkle: ApplyMany: tree %d is nil", i)
			continue
		}
		if j, ok := seen[t]; ok {
			err := fmt.Errorf("%w: trees %d and %d are the same tree", ErrDuplicateTree, j, i)
			errs[i] = err
			if !errors.Is(errs[j], ErrDuplicateTree) {
				errs[j] = err
			}
			continue
		}
		seen[t] = i
		if first == nil {
			first = t
		}
	}
	if first != nil {
		applyMany(first.opts, trees, kvss, updates, errs)
	}
	return updates, errs
}

// applyMany sets updates[i] (or errs[i]) to trees[i].Apply(kvss[i]) for
// every i whose errs[i] is nil, walking each tree into one emitter (tree i's
// nodes are its range [lo, hi)) that one hashAll hashes, with opts'
// Parallelism and ParallelCutoff.
func applyMany(opts Options, trees []*Tree, kvss [][]KV, updates []*Update, errs []error) {
	type walked struct {
		lo, hi int32 // the tree's nodes in em
		r      res
		done   bool
	}
	ws := make([]walked, len(trees))
	var sem chan struct{}
	if opts.Parallelism > 1 {
		sem = make(chan struct{}, opts.Parallelism-1)
	}
	nOps := 0
	for i := range trees {
		if errs[i] == nil {
			nOps += len(kvss[i])
		}
	}
	var em emitter
	em.nodes = make([]pending, 0, 2*nOps)
	for i, t := range trees {
		if errs[i] != nil {
			continue
		}
		base := t.Root()
		updates[i] = &Update{base: base, Root: base}
		if len(kvss[i]) == 0 {
			continue
		}
		lo, slo := len(em.nodes), len(em.stale)
		a := &applier{t: t, sem: sem}
		r, err := a.update(base, 0, prepare(kvss[i]), &em)
		if err != nil {
			em.nodes, em.stale = em.nodes[:lo], em.stale[:slo] // drop what the failed walk emitted
			updates[i], errs[i] = nil, err
			continue
		}
		// Later walks only append past it (or truncate to after it).
		updates[i].stale = em.stale[slo:len(em.stale):len(em.stale)]
		ws[i] = walked{lo: int32(lo), hi: int32(len(em.nodes)), r: r, done: true}
	}
	var hs []fr.Element
	if len(em.nodes) > 0 {
		hs = em.hashAll(opts.Parallelism, opts.ParallelCutoff)
	}
	for i, w := range ws {
		if w.done {
			updates[i].finish(&em, hs, int(w.lo), int(w.hi), w.r, opts.Parallelism)
		}
	}
}

// finish sets u's Root to r's and its nodes to em.nodes[lo:hi], whose
// hashes (and those of the nodes they refer to) are in hs.
func (u *Update) finish(em *emitter, hs []fr.Element, lo, hi int, r res, workers int) {
	u.Root = r.h
	if r.ref != 0 {
		u.Root = hs[r.ref-1]
	}
	n := hi - lo
	u.fresh = make([]newNode, n)
	u.Nodes = make([]NodeWrite, n)
	const size = HashLen + EncodedNodeLen
	buf := make([]byte, n*size)
	inParallel(n, workers, 1024, func(clo, chi int) {
		for i := clo; i < chi; i++ {
			p := &em.nodes[lo+i]
			nd := node{typ: typeMiddle, a: p.a, b: p.b}
			if p.leaf {
				nd.typ = typeLeaf
			} else {
				if p.ra != 0 {
					nd.a = hs[p.ra-1]
				}
				if p.rb != 0 {
					nd.b = hs[p.rb-1]
				}
			}
			u.fresh[i] = newNode{h: hs[lo+i], n: nd}
			u.Nodes[i] = encodeNode(&u.fresh[i], buf[i*size:(i+1)*size])
		}
	})
}

// inParallel runs f over [0, n) in up to workers contiguous chunks of at
// least minChunk, concurrently, the caller running the last one, and
// returns when all are done.
func inParallel(n, workers, minChunk int, f func(lo, hi int)) {
	w := min(workers, n/max(1, minChunk))
	if w <= 1 {
		f(0, n)
		return
	}
	per := (n + w - 1) / w
	var wg sync.WaitGroup
	lo := 0
	for ; lo+per < n; lo += per {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(lo, lo+per)
	}
	f(lo, n)
	wg.Wait()
}

// hashAll returns the hashes of e.nodes, height by height: the nodes of one
// height depend only on lower ones. A height's leaves and middle nodes are
// each hashed as one batch, split over up to workers goroutines when each
// gets at least cutoff nodes.
//
// Between batches it yields its P (runtime.Gosched). A block's hashing
// blocks nowhere — a one-put block's path is about 17 scalar Hash2 calls
// of 12–15 µs, a big block's milliseconds — and while it runs, the
// runtime runs neither the timers that P holds nor the goroutines queued
// behind it (the other P steals them only when idle). On two busy cores
// at 1000 puts/s that was the load generator's pacer firing late and QUIC
// ingress waiting; yielding between heights halved the pacer's median
// lateness and took a sixth off the node's ingress p50, at no measurable
// CPU (session 42, docs/DESIGN.md).
func (e *emitter) hashAll(workers, cutoff int) []fr.Element {
	ns := e.nodes
	hs := make([]fr.Element, len(ns))
	var maxH int32
	for i := range ns {
		maxH = max(maxH, ns[i].height)
	}
	// order the nodes by height, leaves before middle nodes (counting sort)
	start := make([]int, 2*(maxH+1)+1)
	slot := func(p *pending) int32 {
		if p.leaf {
			return 0
		}
		return 2*p.height + 1
	}
	for i := range ns {
		start[slot(&ns[i])+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	order := make([]int32, len(ns))
	next := slices.Clone(start)
	for i := range ns {
		k := slot(&ns[i])
		order[next[k]] = int32(i)
		next[k]++
	}
	a, b := make([]fr.Element, len(ns)), make([]fr.Element, len(ns))
	ones := make([]fr.Element, len(ns))
	out := make([]fr.Element, len(ns))
	for k := 0; k+1 < len(start); k++ {
		idx := order[start[k]:start[k+1]]
		if len(idx) == 0 {
			continue
		}
		leaves := k == 0
		a, b, out := a[:len(idx)], b[:len(idx)], out[:len(idx)]
		for j, i := range idx {
			p := &ns[i]
			a[j], b[j] = p.a, p.b
			if !leaves {
				if p.ra != 0 {
					a[j] = hs[p.ra-1]
				}
				if p.rb != 0 {
					b[j] = hs[p.rb-1]
				}
			}
		}
		hashRange := func(lo, hi int) {
			if leaves {
				for j := lo; j < hi; j++ {
					ones[j] = one
				}
				hashMany3(out[lo:hi], a[lo:hi], b[lo:hi], ones[lo:hi])
			} else {
				hashMany2(out[lo:hi], a[lo:hi], b[lo:hi])
			}
		}
		// chunks of whole groups of eight (the kernels' lanes)
		inParallel(len(idx)/8, workers, max(1, cutoff/8), func(lo, hi int) {
			if hi == len(idx)/8 {
				hashRange(8*lo, len(idx))
			} else {
				hashRange(8*lo, 8*hi)
			}
		})
		for j, i := range idx {
			hs[i] = out[j]
		}
		runtime.Gosched() // see above
	}
	return hs
}

// encodeNode encodes n into b (HashLen+EncodedNodeLen bytes).
func encodeNode(n *newNode, b []byte) NodeWrite {
	k := ElementLE(&n.h)
	copy(b, k[:])
	n.n.encode(b[HashLen:])
	return NodeWrite{Hash: b[:HashLen:HashLen], Encoded: b[HashLen:]}
}

// split returns the index of the first op whose bit d is 1; all ops share
// the bits below d, so they are ordered by bit d.
func split(ops []op, d int) int {
	return sort.Search(len(ops), func(i int) bool { return ops[i].bit(d) == 1 })
}

// update applies ops to the subtree rooted at h (at depth d). A subtree
// left as it was (every write a no-op) keeps its hash, known without
// hashing: a write of a leaf's own value leaves the leaf, and a deletion of
// an absent key changes nothing.
func (a *applier) update(h fr.Element, d int, ops []op, em *emitter) (res, error) {
	n, err := a.t.load(h)
	if err != nil {
		return res{}, err
	}
	switch n.typ {
	case typeEmpty:
		return a.build(d, ops, nil, em)
	case typeLeaf:
		path := n.a.Bits()
		i, found := slices.BinarySearchFunc(ops, &path, func(o op, p *[4]uint64) int { return cmpPath(&o.path, p) })
		existing := &op{key: n.a, value: n.b, path: path, existing: true, h: h}
		if found {
			if ops[i].del || !ops[i].value.Equal(&n.b) {
				em.stale = append(em.stale, h)
				return a.build(d, ops, nil, em)
			}
			// the leaf's own value written again: the leaf stays
			rest := make([]op, 0, len(ops)-1)
			rest = append(append(rest, ops[:i]...), ops[i+1:]...)
			return a.build(d, rest, existing, em)
		}
		return a.build(d, ops, existing, em)
	}
	// middle
	if d > a.t.opts.MaxLevels-2 {
		return res{}, fmt.Errorf("%w: middle node at depth %d", ErrReachedMaxLevel, d)
	}
	s := split(ops, d)
	lo, hi := ops[:s], ops[s:]
	l, r := childRes(&n.a), childRes(&n.b)
	if a.splits(len(lo), len(hi)) {
		l, r, err = a.pair(
			func(em *emitter) (res, error) { return a.update(n.a, d+1, lo, em) },
			func(em *emitter) (res, error) { return a.update(n.b, d+1, hi, em) }, em)
	} else {
		if len(lo) > 0 {
			l, err = a.update(n.a, d+1, lo, em)
		}
		if len(hi) > 0 && err == nil {
			r, err = a.update(n.b, d+1, hi, em)
		}
	}
	if err != nil {
		return res{}, err
	}
	if l.ref == 0 && r.ref == 0 && l.h.Equal(&n.a) && r.h.Equal(&n.b) {
		return res{h: h, typ: resMiddle}, nil
	}
	em.stale = append(em.stale, h) // replaced by what follows
	// compress: a middle node with one empty side and a leaf on the other
	// is that leaf.
	if l.typ == resEmpty && r.typ == resEmpty {
		return res{typ: resEmpty}, nil
	}
	if l.typ == resEmpty || r.typ == resEmpty {
		o := &r
		if r.typ == resEmpty {
			o = &l
		}
		if o.typ == resUnknown {
			on, err := a.t.load(o.h)
			if err != nil {
				return res{}, err
			}
			o.typ = on.typ
		}
		if o.typ == resLeaf {
			return *o, nil
		}
	}
	return em.middle(&l, &r), nil
}

func childRes(h *fr.Element) res {
	if h.IsZero() {
		return res{typ: resEmpty}
	}
	return res{h: *h, typ: resUnknown}
}

// build builds the subtree at depth d holding the live ops plus extra.
func (a *applier) build(d int, ops []op, extra *op, em *emitter) (res, error) {
	var single *op
	cnt := 0
	if extra != nil {
		cnt, single = 1, extra
	}
	for i := range ops {
		if !ops[i].del {
			cnt++
			single = &ops[i]
			if cnt > 1 {
				break
			}
		}
	}
	switch cnt {
	case 0:
		return res{typ: resEmpty}, nil
	case 1:
		if single.existing {
			return res{h: single.h, typ: resLeaf}, nil
		}
		return em.leaf(&single.key, &single.value), nil
	}
	if d > a.t.opts.MaxLevels-2 {
		return res{}, fmt.Errorf("%w: keys share their lowest %d bits (MaxLevels %d)", ErrReachedMaxLevel, d+1, a.t.opts.MaxLevels)
	}
	s := split(ops, d)
	lo, hi := ops[:s], ops[s:]
	var el, er *op
	if extra != nil {
		if extra.bit(d) == 0 {
			el = extra
		} else {
			er = extra
		}
	}
	var l, r res
	var err error
	if a.splits(len(lo), len(hi)) {
		l, r, err = a.pair(
			func(em *emitter) (res, error) { return a.build(d+1, lo, el, em) },
			func(em *emitter) (res, error) { return a.build(d+1, hi, er, em) }, em)
	} else if l, err = a.build(d+1, lo, el, em); err == nil {
		r, err = a.build(d+1, hi, er, em)
	}
	if err != nil {
		return res{}, err
	}
	return em.middle(&l, &r), nil
}
