package merkle

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

const (
	// MaxProofDepth is the deepest proof this package encodes or accepts:
	// the sibling bitmap of go-merkletree-sql's proof format has 240 bits.
	MaxProofDepth = 8 * notEmptiesLen
	// MaxProofSize is the largest binary proof encoding.
	MaxProofSize = proofHeaderLen + MaxProofDepth*32 + 2*32
	// MaxProofJSONSize is the largest JSON proof UnmarshalJSON accepts.
	MaxProofJSONSize = 64 << 10

	notEmptiesLen  = 30
	proofHeaderLen = 2 + notEmptiesLen
)

// Proof proves that a key holds a value (Existence) or that it is absent
// from a tree with a given root. It is go-merkletree-sql's Proof: the same
// fields, binary encoding (MarshalBinary = its Bytes) and JSON encoding.
type Proof struct {
	// Existence is true for a membership proof.
	Existence bool
	// Depth is the number of levels from the root to the proven leaf (or
	// to the empty node or auxiliary leaf ending a non-membership proof).
	Depth int
	// NotEmpties has bit i set (big-endian bitmap, as go-merkletree-sql)
	// when the sibling at level i is not empty.
	NotEmpties [notEmptiesLen]byte
	// Siblings are the non-empty siblings, from the root down.
	Siblings []fr.Element
	// Aux is, for a non-membership proof that ends at a leaf holding
	// another key, that leaf; nil otherwise.
	Aux *NodeAux
}

// NodeAux is the leaf a non-membership proof ends at.
type NodeAux struct {
	Key, Value fr.Element
}

func setBitBE(bm *[notEmptiesLen]byte, n int) { bm[notEmptiesLen-1-n/8] |= 1 << (uint(n) % 8) }

func testBitBE(bm *[notEmptiesLen]byte, n int) bool {
	return bm[notEmptiesLen-1-n/8]&(1<<(uint(n)%8)) != 0
}

// AllSiblings returns the Depth siblings from the root down, zeros included
// (the form circom verifiers take, before padding).
func (p *Proof) AllSiblings() []fr.Element {
	out := make([]fr.Element, 0, p.Depth)
	j := 0
	for i := 0; i < p.Depth; i++ {
		if testBitBE(&p.NotEmpties, i) && j < len(p.Siblings) {
			out = append(out, p.Siblings[j])
			j++
		} else {
			out = append(out, fr.Element{})
		}
	}
	return out
}

// check validates the proof's structure.
func (p *Proof) check() error {
	if p.Depth < 0 || p.Depth > MaxProofDepth {
		return fmt.Errorf("%w: depth %d not in 0..%d", ErrMalformedProof, p.Depth, MaxProofDepth)
	}
	n := 0
	for i := 0; i < MaxProofDepth; i++ {
		if testBitBE(&p.NotEmpties, i) {
			if i >= p.Depth {
				return fmt.Errorf("%w: sibling bit %d set beyond depth %d", ErrMalformedProof, i, p.Depth)
			}
			n++
		}
	}
	if n != len(p.Siblings) {
		return fmt.Errorf("%w: bitmap marks %d siblings, proof has %d", ErrMalformedProof, n, len(p.Siblings))
	}
	if p.Depth > 0 && !testBitBE(&p.NotEmpties, p.Depth-1) {
		return fmt.Errorf("%w: empty sibling at the last level %d", ErrMalformedProof, p.Depth-1)
	}
	for i := range p.Siblings {
		if p.Siblings[i].IsZero() {
			return fmt.Errorf("%w: sibling %d is zero but marked non-empty", ErrMalformedProof, i)
		}
	}
	if p.Existence && p.Aux != nil {
		return fmt.Errorf("%w: membership proof with an auxiliary node", ErrMalformedProof)
	}
	return nil
}

// VerifyProof checks p against root for key. A membership proof
// (p.Existence) must show that key holds value. A non-membership proof must
// show that key is absent, and value must be 0 (use p.Existence to tell a
// key holding 0 from an absent one). The path is derived from key, never
// from the proof. Errors: ErrMalformedProof, ErrNonMembershipValue,
// ErrAuxKeyIsQueried, ErrAuxPathMismatch, ErrRootMismatch. Inputs outside
// the field are rejected where they are parsed (ParseElement,
// ElementFromBigInt, UnmarshalBinary, UnmarshalJSON).
func VerifyProof(root fr.Element, p *Proof, key, value fr.Element) error {
	if p == nil {
		return fmt.Errorf("%w: nil proof", ErrMalformedProof)
	}
	if err := p.check(); err != nil {
		return err
	}
	path := key.Bits()
	var mid fr.Element
	switch {
	case p.Existence:
		mid = leafHash(&key, &value)
	case !value.IsZero():
		return ErrNonMembershipValue
	case p.Aux != nil:
		if p.Aux.Key.Equal(&key) {
			return ErrAuxKeyIsQueried
		}
		ap := p.Aux.Key.Bits()
		for i := 0; i < p.Depth; i++ {
			if (ap[i>>6]^path[i>>6])>>(uint(i)&63)&1 != 0 {
				return fmt.Errorf("%w: bit %d differs", ErrAuxPathMismatch, i)
			}
		}
		mid = leafHash(&p.Aux.Key, &p.Aux.Value)
	}
	j := len(p.Siblings) - 1
	for lvl := p.Depth - 1; lvl >= 0; lvl-- {
		var sib fr.Element
		if testBitBE(&p.NotEmpties, lvl) {
			sib = p.Siblings[j]
			j--
		}
		if path[lvl>>6]>>(uint(lvl)&63)&1 == 1 {
			mid = hash2(&sib, &mid)
		} else {
			mid = hash2(&mid, &sib)
		}
	}
	if !mid.Equal(&root) {
		return ErrRootMismatch
	}
	return nil
}

// Prove returns a proof for key against the committed root, and key's value
// (0 when absent; see p.Existence).
func (t *Tree) Prove(key fr.Element) (*Proof, fr.Element, error) {
	return t.proveAt(t.Root(), key, nil)
}

// ProveUpdate returns a proof for key against u.Root before u is committed
// (for example to put proofs in receipts stored in the same batch as the
// update). u must have been computed by t.
func (t *Tree) ProveUpdate(u *Update, key fr.Element) (*Proof, fr.Element, error) {
	return t.proveAt(u.Root, key, u)
}

// ProveMany returns proofs and values for keys, all against the same
// committed root (also returned), computed concurrently for large inputs.
func (t *Tree) ProveMany(keys []fr.Element) ([]*Proof, []fr.Element, fr.Element, error) {
	return t.proveMany(t.Root(), keys, nil)
}

// ProveManyUpdate is ProveMany against u.Root before u is committed.
func (t *Tree) ProveManyUpdate(u *Update, keys []fr.Element) ([]*Proof, []fr.Element, error) {
	p, v, _, err := t.proveMany(u.Root, keys, u)
	return p, v, err
}

func (t *Tree) proveMany(root fr.Element, keys []fr.Element, u *Update) ([]*Proof, []fr.Element, fr.Element, error) {
	proofs := make([]*Proof, len(keys))
	values := make([]fr.Element, len(keys))
	workers := t.opts.Parallelism
	if per := 256; len(keys)/per < workers {
		workers = max(1, len(keys)/per)
	}
	var (
		wg   sync.WaitGroup
		errs = make([]error, workers)
	)
	chunk := (len(keys) + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min(len(keys), (w+1)*chunk)
		run := func() {
			for i := lo; i < hi; i++ {
				p, v, err := t.proveAt(root, keys[i], u)
				if err != nil {
					errs[w] = err
					return
				}
				proofs[i], values[i] = p, v
			}
		}
		if w == workers-1 {
			run()
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, nil, root, err
		}
	}
	return proofs, values, root, nil
}

func (t *Tree) proveAt(root, key fr.Element, u *Update) (*Proof, fr.Element, error) {
	p := &Proof{}
	path := key.Bits()
	h := root
	for d := 0; d < t.opts.MaxLevels; d++ {
		var (
			n   node
			ok  bool
			err error
		)
		if u != nil && !h.IsZero() {
			n, ok = u.lookup(h)
		}
		if !ok {
			if n, err = t.load(h); err != nil {
				return nil, fr.Element{}, err
			}
		}
		switch n.typ {
		case typeEmpty:
			p.Depth = d
			return p, fr.Element{}, nil
		case typeLeaf:
			p.Depth = d
			if n.a.Equal(&key) {
				p.Existence = true
				return p, n.b, nil
			}
			p.Aux = &NodeAux{Key: n.a, Value: n.b}
			return p, fr.Element{}, nil
		}
		var sib fr.Element
		if path[d>>6]>>(uint(d)&63)&1 == 1 {
			h, sib = n.b, n.a
		} else {
			h, sib = n.a, n.b
		}
		if !sib.IsZero() {
			setBitBE(&p.NotEmpties, d)
			p.Siblings = append(p.Siblings, sib)
		}
	}
	return nil, fr.Element{}, fmt.Errorf("%w: no leaf within %d levels", ErrReachedMaxLevel, t.opts.MaxLevels)
}

// MarshalBinary encodes p exactly as go-merkletree-sql's Proof.Bytes: a
// flags byte (bit 0: non-membership, bit 1: auxiliary node present), the
// depth byte, the 30-byte sibling bitmap, the non-empty siblings and the
// auxiliary key and value, each 32 bytes little-endian.
func (p *Proof) MarshalBinary() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	n := proofHeaderLen + 32*len(p.Siblings)
	if p.Aux != nil {
		n += 64
	}
	b := make([]byte, n)
	if !p.Existence {
		b[0] |= 0x01
	}
	b[1] = byte(p.Depth)
	copy(b[2:proofHeaderLen], p.NotEmpties[:])
	off := proofHeaderLen
	for i := range p.Siblings {
		s := ElementLE(&p.Siblings[i])
		copy(b[off:], s[:])
		off += 32
	}
	if p.Aux != nil {
		b[0] |= 0x02
		k, v := ElementLE(&p.Aux.Key), ElementLE(&p.Aux.Value)
		copy(b[off:], k[:])
		copy(b[off+32:], v[:])
	}
	return b, nil
}

// UnmarshalBinary decodes MarshalBinary's (and go-merkletree-sql's Bytes)
// encoding. It accepts only canonical encodings: exact length, known flags,
// field elements below the modulus, and a structurally valid proof.
func (p *Proof) UnmarshalBinary(b []byte) error {
	if len(b) < proofHeaderLen || len(b) > MaxProofSize {
		return fmt.Errorf("%w: %d bytes not in %d..%d", ErrMalformedProof, len(b), proofHeaderLen, MaxProofSize)
	}
	flags := b[0]
	if flags&^0x03 != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrMalformedProof, flags)
	}
	var q Proof
	q.Existence = flags&0x01 == 0
	hasAux := flags&0x02 != 0
	if q.Existence && hasAux {
		return fmt.Errorf("%w: membership proof with an auxiliary node", ErrMalformedProof)
	}
	q.Depth = int(b[1])
	copy(q.NotEmpties[:], b[2:proofHeaderLen])
	n := 0
	for _, x := range q.NotEmpties {
		n += bits.OnesCount8(x)
	}
	want := proofHeaderLen + 32*n
	if hasAux {
		want += 64
	}
	if len(b) != want {
		return fmt.Errorf("%w: %d bytes, want %d for %d siblings", ErrMalformedProof, len(b), want, n)
	}
	off := proofHeaderLen
	q.Siblings = make([]fr.Element, n)
	for i := range q.Siblings {
		e, err := ElementFromLE(b[off : off+32])
		if err != nil {
			return fmt.Errorf("%w: sibling %d: %w", ErrMalformedProof, i, err)
		}
		q.Siblings[i] = e
		off += 32
	}
	if hasAux {
		k, err := ElementFromLE(b[off : off+32])
		if err != nil {
			return fmt.Errorf("%w: auxiliary key: %w", ErrMalformedProof, err)
		}
		v, err := ElementFromLE(b[off+32 : off+64])
		if err != nil {
			return fmt.Errorf("%w: auxiliary value: %w", ErrMalformedProof, err)
		}
		q.Aux = &NodeAux{Key: k, Value: v}
	}
	if err := q.check(); err != nil {
		return err
	}
	*p = q
	return nil
}

// proofJSON is go-merkletree-sql's JSON proof shape.
type proofJSON struct {
	Existence bool        `json:"existence"`
	Siblings  []string    `json:"siblings"`
	NodeAux   *nodeAuxObj `json:"node_aux,omitempty"`
}

type nodeAuxObj struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// MarshalJSON encodes p as go-merkletree-sql does: {"existence": bool,
// "siblings": [all Depth siblings as decimal strings, zeros included],
// "node_aux": {"key": "...", "value": "..."} (omitted when absent)}.
func (p Proof) MarshalJSON() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	all := p.AllSiblings()
	o := proofJSON{Existence: p.Existence, Siblings: make([]string, len(all))}
	for i := range all {
		o.Siblings[i] = FormatElement(&all[i])
	}
	if p.Aux != nil {
		o.NodeAux = &nodeAuxObj{Key: FormatElement(&p.Aux.Key), Value: FormatElement(&p.Aux.Value)}
	}
	return json.Marshal(o)
}

// UnmarshalJSON decodes MarshalJSON's (and go-merkletree-sql's) encoding.
// As go-merkletree-sql, the depth is the position of the last non-zero
// sibling plus one.
func (p *Proof) UnmarshalJSON(data []byte) error {
	if len(data) > MaxProofJSONSize {
		return fmt.Errorf("%w: %d bytes of JSON (max %d)", ErrMalformedProof, len(data), MaxProofJSONSize)
	}
	var o proofJSON
	if err := json.Unmarshal(data, &o); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformedProof, err)
	}
	if len(o.Siblings) > MaxProofDepth {
		return fmt.Errorf("%w: %d siblings (max %d)", ErrMalformedProof, len(o.Siblings), MaxProofDepth)
	}
	q := Proof{Existence: o.Existence}
	for i, s := range o.Siblings {
		e, err := ParseElement(s)
		if err != nil {
			return fmt.Errorf("%w: sibling %d: %w", ErrMalformedProof, i, err)
		}
		if !e.IsZero() {
			setBitBE(&q.NotEmpties, i)
			q.Siblings = append(q.Siblings, e)
			q.Depth = i + 1
		}
	}
	if o.NodeAux != nil {
		k, err := ParseElement(o.NodeAux.Key)
		if err != nil {
			return fmt.Errorf("%w: node_aux.key: %w", ErrMalformedProof, err)
		}
		v, err := ParseElement(o.NodeAux.Value)
		if err != nil {
			return fmt.Errorf("%w: node_aux.value: %w", ErrMalformedProof, err)
		}
		q.Aux = &NodeAux{Key: k, Value: v}
	}
	if err := q.check(); err != nil {
		return err
	}
	*p = q
	return nil
}
