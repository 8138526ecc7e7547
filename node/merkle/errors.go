package merkle

import "errors"

// Errors returned by this package. They are sentinels; callers match them with
// errors.Is, since most are wrapped with context.
var (
	// ErrNodeNotFound is returned by a NodeReader when it does not hold the
	// requested node; the tree wraps it when a node it needs is missing.
	ErrNodeNotFound = errors.New("merkle: node not found")
	// ErrInvalidNode is returned when a stored node cannot be decoded.
	ErrInvalidNode = errors.New("merkle: invalid node encoding")
	// ErrReachedMaxLevel is returned when two keys share so many low bits
	// that they cannot both fit in a tree of Options.MaxLevels levels (the
	// same condition as go-merkletree-sql's ErrReachedMaxLevel).
	ErrReachedMaxLevel = errors.New("merkle: reached maximum level of the tree")
	// ErrOutOfField is returned when a number is not a canonical element of
	// the BN254 scalar field (negative, or not below the modulus).
	ErrOutOfField = errors.New("merkle: value not inside the BN254 scalar field")
	// ErrBadNumber is returned when a decimal field element cannot be parsed.
	ErrBadNumber = errors.New("merkle: malformed decimal number")
	// ErrInvalidOptions is returned by Options.Validate.
	ErrInvalidOptions = errors.New("merkle: invalid options")
	// ErrDuplicateTree is returned by ApplyMany for a tree it is given
	// more than once (at every occurrence).
	ErrDuplicateTree = errors.New("merkle: tree given more than once")
	// ErrStaleUpdate is returned by Tree.Commit when the update was computed
	// from a root that is no longer the tree's root.
	ErrStaleUpdate = errors.New("merkle: update was computed against another root")

	// ErrMalformedProof is returned when a proof is structurally invalid:
	// bad encoding, size limits exceeded, sibling bitmap and list disagree,
	// a zero sibling marked non-empty, an auxiliary node on a membership
	// proof, and the like.
	ErrMalformedProof = errors.New("merkle: malformed proof")
	// ErrRootMismatch is returned when a well-formed proof does not lead to
	// the expected root.
	ErrRootMismatch = errors.New("merkle: proof does not match root")
	// ErrAuxKeyIsQueried is returned when a non-membership proof's auxiliary
	// leaf holds the very key whose absence it claims to prove.
	ErrAuxKeyIsQueried = errors.New("merkle: non-membership proof's auxiliary leaf has the queried key")
	// ErrAuxPathMismatch is returned when a non-membership proof's auxiliary
	// leaf does not lie on the queried key's path.
	ErrAuxPathMismatch = errors.New("merkle: non-membership proof's auxiliary leaf is off the key's path")
	// ErrNonMembershipValue is returned when a non-membership proof is
	// checked against a non-zero value: absence proves no value.
	ErrNonMembershipValue = errors.New("merkle: non-membership proof checked against a non-zero value")
)
