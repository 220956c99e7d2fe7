package engine

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/memmamba/memmamba/ops"
)

// StateVersion is the version of the saved-state blob that Save writes and
// Load reads. Version 1 (a msgpack map) is no longer read: it was decoded
// without bounds, so Load refuses it with a sentence asking for the state
// to be saved again.
const StateVersion = 2

// MaxStatePos is the largest position (tokens consumed) that a saved state
// may record: 2^40 tokens, far beyond any conversation, and small enough
// that positions and their differences never overflow.
const MaxStatePos = 1 << 40

// stateMagic opens every saved state.
const stateMagic = "memmamba-state"

// stateV1Prefix is how a version 1 blob (a msgpack map whose first key is
// "magic") begins; Load recognises it only to say why it is refused.
var stateV1Prefix = []byte("\x85\xa5magic\xae" + stateMagic)

// maxModelIDLen bounds the model id a blob may carry (runtime ids are 32
// hex digits).
const maxModelIDLen = 255

// Layout of a version 2 blob, all integers little-endian, floats IEEE 754
// binary32 bit patterns (so a round trip is bit-identical):
//
//	header   magic "memmamba-state" | version uint16 | id length uint8 | model id
//	sizes    pos int64 | layers, conv, ssm, prev_m, pool, summary uint32
//	layers   per layer: conv, ssm, prev_m floats | notes uint32 |
//	         per note: pos int64 | score float32 | summary floats
//	trailer  CRC-32C (Castagnoli) of every byte before it, uint32
//
// The header comes first so that the magic, the version and the model id
// are checked before anything else is read; the sizes (the model's)
// are compared with the model before any layer is read; nothing is
// allocated from a size in the blob.
const (
	stateHeaderFixed = len(stateMagic) + 2 + 1 // magic, version, id length
	stateShapeLen    = 8 + 6*4
	stateSumLen      = 4
	noteFixedLen     = 8 + 4 // a note's position and score
)

// stateShape is the model's sizes as a blob records them.
type stateShape struct {
	layers, conv, ssm, prevM, pool, summary int
}

// stateShape returns the sizes of the model's state.
func (m *Model) stateShape() stateShape {
	c := m.Config
	sh := stateShape{
		layers: c.NumLayers,
		conv:   c.Intermediate * (c.ConvKernel - 1),
		ssm:    c.Intermediate * c.StateSize,
		prevM:  c.HiddenSize,
	}
	if c.IsMemMamba() {
		sh.pool, sh.summary = c.Memory.PoolSize, c.Memory.SummaryDim
	}
	return sh
}

// layerFixedLen is the bytes of one layer without its notes.
func (sh stateShape) layerFixedLen() int { return 4*(sh.conv+sh.ssm+sh.prevM) + 4 }

// noteLen is the bytes of one note.
func (sh stateShape) noteLen() int { return noteFixedLen + 4*sh.summary }

// MaxStateBlobSize is the largest blob that Save can write for m (every pool
// full). Load refuses a longer blob before checksumming it; a reader of
// state blobs (a file, a request body) should read at most this many bytes
// plus one, to refuse a longer one without holding it.
func (m *Model) MaxStateBlobSize() int {
	sh := m.stateShape()
	return stateHeaderFixed + len(m.ID) + stateShapeLen +
		sh.layers*(sh.layerFixedLen()+sh.pool*sh.noteLen()) + stateSumLen
}

// Save serialises the session's state (a versioned, checksummed binary
// blob, see StateVersion and Load) so that a conversation can be stopped,
// moved to another process and continued with bit-identical results.
func (s *Session) Save() ([]byte, error) {
	if len(s.m.ID) > maxModelIDLen {
		return nil, fmt.Errorf("state: model id of %d bytes, a state records at most %d", len(s.m.ID), maxModelIDLen)
	}
	if s.pos > MaxStatePos {
		return nil, fmt.Errorf("state: position %d is beyond the %d a state records", s.pos, int64(MaxStatePos))
	}
	sh := s.m.stateShape()
	sizes := []int{sh.layers, sh.conv, sh.ssm, sh.prevM, sh.pool, sh.summary}
	for _, v := range sizes {
		if v < 0 || int64(v) > math.MaxUint32 {
			return nil, fmt.Errorf("state: a size of %d does not fit a state's 32 bits", v)
		}
	}
	b := make([]byte, 0, s.m.MaxStateBlobSize())
	b = append(b, stateMagic...)
	b = binary.LittleEndian.AppendUint16(b, StateVersion)
	b = append(b, byte(len(s.m.ID)))
	b = append(b, s.m.ID...)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.pos))
	for _, v := range sizes {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	for _, ls := range s.layers {
		b = appendFloats(b, ls.conv)
		b = appendFloats(b, ls.ssm)
		b = appendFloats(b, ls.prevM)
		p := ls.pool
		if p == nil {
			b = binary.LittleEndian.AppendUint32(b, 0)
			continue
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(p.n))
		for i := range p.n {
			b = binary.LittleEndian.AppendUint64(b, uint64(p.pos[i]))
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(p.score[i]))
			b = appendFloats(b, p.summ[i*p.S:(i+1)*p.S])
		}
	}
	return binary.LittleEndian.AppendUint32(b, stateChecksum(b)), nil
}

// castagnoli is the CRC-32C table, the checksum the model file uses too:
// it catches an edited or truncated blob (every burst of up to 32 flipped
// bits, and other edits but for 1 in 2^32) at memory speed. It is no
// defence against a forger, who can recompute any checksum; Load's bounds
// and value checks are.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// stateChecksum is the checksum a blob records for its bytes b.
func stateChecksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// appendFloats appends the bit patterns of v.
func appendFloats(b []byte, v []float32) []byte {
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// Load replaces the session's state with a blob from Save. It reads
// version 2 blobs only (version 1 is refused, see StateVersion). The blob
// is untrusted input (a file, or a client of a server), so before it
// changes anything Load checks, in this order: the magic, the version and
// the model id (the blob must come from the same weights); its length
// against the most a state of this model can take; the CRC-32C trailer
// (an edited or cut blob is refused); the sizes it records against the
// model's; then every layer: each value finite, each pool within the
// model's capacity, its notes' positions distinct and before the state's
// position, which is at most MaxStatePos. Nothing is allocated from a size
// in the blob. Errors are one sentence starting "state:"; on error the
// session is unchanged.
func (s *Session) Load(blob []byte) error {
	body, err := s.m.checkStateHeader(blob)
	if err != nil {
		return err
	}
	// Validate everything first, then apply: the two passes run the same
	// code, so the second cannot fail, and a refused blob changes nothing.
	if _, err := s.readState(body, false); err != nil {
		return err
	}
	pos, err := s.readState(body, true)
	if err != nil {
		return err // unreachable: the first pass accepted the same bytes
	}
	s.pos = pos
	return nil
}

// checkStateHeader checks the blob's magic, version, model id, length and
// checksum, and returns the bytes between the header and the checksum.
func (m *Model) checkStateHeader(blob []byte) ([]byte, error) {
	if bytes.HasPrefix(blob, stateV1Prefix) {
		return nil, fmt.Errorf("state: a version 1 blob (msgpack, from an older build), this build reads version %d only: save the state again", StateVersion)
	}
	if len(blob) < stateHeaderFixed || string(blob[:len(stateMagic)]) != stateMagic {
		return nil, fmt.Errorf("state: not a saved session state (%d bytes that do not start with %q)", len(blob), stateMagic)
	}
	if v := binary.LittleEndian.Uint16(blob[len(stateMagic):]); v != StateVersion {
		return nil, fmt.Errorf("state: version %d, this build reads version %d", v, StateVersion)
	}
	idLen := int(blob[stateHeaderFixed-1])
	if len(blob) < stateHeaderFixed+idLen {
		return nil, fmt.Errorf("state: the blob ends inside its model id (%d bytes, the id needs %d)", len(blob), stateHeaderFixed+idLen)
	}
	if id := string(blob[stateHeaderFixed : stateHeaderFixed+idLen]); id != m.ID {
		return nil, fmt.Errorf("state: saved from another model (id %q, this model is %s)", id, m.ID)
	}
	if max := m.MaxStateBlobSize(); len(blob) > max {
		return nil, fmt.Errorf("state: %d bytes, more than the %d that a state of this model can take", len(blob), max)
	}
	head := stateHeaderFixed + idLen
	if len(blob) < head+stateShapeLen+stateSumLen {
		return nil, fmt.Errorf("state: %d bytes, fewer than the %d of a header, sizes and checksum", len(blob), head+stateShapeLen+stateSumLen)
	}
	end := len(blob) - stateSumLen
	if got, want := stateChecksum(blob[:end]), binary.LittleEndian.Uint32(blob[end:]); got != want {
		return nil, fmt.Errorf("state: checksum mismatch: the CRC-32C of the blob's %d bytes is %08x, it records %08x, so it was edited or cut after it was saved", end, got, want)
	}
	return blob[head:end], nil
}

// stateReader reads a blob's body with bounds checks; the first failure
// sticks in err and later reads return zeros.
type stateReader struct {
	b   []byte
	off int
	err error
}

// field names a value of the body in errors: the position (layer -1), a
// layer's field (note -1) or a note's. Names are built only for an error,
// so reading costs no formatting.
type field struct {
	layer, note int
	name        string
}

// String is the field's name in an error, "layer 2 note 1 summary".
func (f field) String() string {
	switch {
	case f.layer < 0:
		return f.name
	case f.note < 0:
		return fmt.Sprintf("layer %d %s", f.layer, f.name)
	}
	return fmt.Sprintf("layer %d note %d %s", f.layer, f.note, f.name)
}

// take returns the next n bytes, or nil (setting err, naming what) when
// the body has fewer.
func (r *stateReader) take(n int, what field) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("state: %s needs %d bytes at offset %d, past the end of the %d-byte body", what, n, r.off, len(r.b))
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

// u32 reads a little-endian uint32 (0 after a failure).
func (r *stateReader) u32(what field) uint32 {
	if p := r.take(4, what); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

// i64 reads a little-endian int64 (0 after a failure).
func (r *stateReader) i64(what field) int64 {
	if p := r.take(8, what); p != nil {
		return int64(binary.LittleEndian.Uint64(p))
	}
	return 0
}

// floats reads n floats into dst (dst nil: only checks them), refusing a
// non-finite one by name and index.
func (r *stateReader) floats(dst []float32, n int, what field) {
	p := r.take(4*n, what)
	if p == nil {
		return
	}
	for i := range n {
		bits := binary.LittleEndian.Uint32(p[4*i:])
		if bits&0x7f800000 == 0x7f800000 {
			if n == 1 {
				r.err = fmt.Errorf("state: %s is %v, and every value must be finite", what, math.Float32frombits(bits))
			} else {
				r.err = fmt.Errorf("state: %s value %d is %v, and every value must be finite", what, i, math.Float32frombits(bits))
			}
			return
		}
		if dst != nil {
			dst[i] = math.Float32frombits(bits)
		}
	}
}

// readState reads the body (the sizes and the layers) of a blob whose
// header checkStateHeader accepted, and returns its position. With apply
// false it only checks; with apply true it also writes the session's
// layers (and recomputes the pools' attention keys and values).
func (s *Session) readState(body []byte, apply bool) (int, error) {
	r := &stateReader{b: body}
	want := s.m.stateShape()
	pos := r.i64(field{-1, -1, "the position"})
	if pos < 0 || pos > MaxStatePos {
		return 0, fmt.Errorf("state: position %d is outside 0..%d", pos, int64(MaxStatePos))
	}
	names := []string{"layers", "conv values per layer", "ssm values per layer", "prev_m values per layer", "notes per pool", "values per summary"}
	wants := []int{want.layers, want.conv, want.ssm, want.prevM, want.pool, want.summary}
	for i, name := range names {
		if got := r.u32(field{-1, -1, name}); r.err == nil && int64(got) != int64(wants[i]) {
			return 0, fmt.Errorf("state: the blob records %d %s, this model has %d", got, name, wants[i])
		}
	}
	if r.err != nil {
		return 0, r.err
	}
	for l := range want.layers {
		if err := s.readLayer(r, l, int(pos), apply); err != nil {
			return 0, err
		}
	}
	if r.off != len(body) {
		return 0, fmt.Errorf("state: %d bytes after the last layer", len(body)-r.off)
	}
	return int(pos), nil
}

// readLayer reads layer l's recurrent state and pool.
func (s *Session) readLayer(r *stateReader, l, pos int, apply bool) error {
	ls := &s.layers[l]
	var conv, ssm, prevM []float32
	if apply {
		conv, ssm, prevM = ls.conv, ls.ssm, ls.prevM
	}
	r.floats(conv, len(ls.conv), field{l, -1, "conv"})
	r.floats(ssm, len(ls.ssm), field{l, -1, "ssm"})
	r.floats(prevM, len(ls.prevM), field{l, -1, "prev_m"})
	n := r.u32(field{l, -1, "note count"})
	if r.err != nil {
		return r.err
	}
	p := ls.pool
	if p == nil {
		if n != 0 {
			return fmt.Errorf("state: layer %d holds %d notes, and this model has no Note Block pools", l, n)
		}
		return nil
	}
	if int64(n) > int64(p.cap) {
		return fmt.Errorf("state: layer %d holds %d notes, this model's pools hold %d", l, n, p.cap)
	}
	seen := make([]notePos, 0, n) // n <= the pool's capacity
	for i := range int(n) {
		if err := s.readNote(r, l, i, pos, apply, &seen); err != nil {
			return err
		}
	}
	if err := distinctNotes(l, seen); err != nil {
		return err
	}
	if apply {
		p.n = int(n)
	}
	return nil
}

// readNote reads note i of layer l's pool: its position (before pos; it
// joins seen, for readLayer's check that positions are distinct), score
// and summary; with apply it stores them in slot i and computes the note's
// attention keys and values.
func (s *Session) readNote(r *stateReader, l, i, pos int, apply bool, seen *[]notePos) error {
	p := s.layers[l].pool
	np := r.i64(field{l, i, "position"})
	var score [1]float32
	r.floats(score[:], 1, field{l, i, "score"})
	var summ []float32
	if apply {
		summ = p.summ[i*p.S : (i+1)*p.S]
	}
	r.floats(summ, p.S, field{l, i, "summary"})
	if r.err != nil {
		return r.err
	}
	if np < 0 || np >= int64(pos) {
		return fmt.Errorf("state: layer %d note %d is at position %d, outside 0..%d (before the state's position %d)", l, i, np, pos-1, pos)
	}
	*seen = append(*seen, notePos{np, i})
	if !apply {
		return nil
	}
	p.pos[i], p.score[i] = int(np), score[0]
	nw := s.m.layers[l].note
	ops.MatVec(p.tokK[i*p.A:(i+1)*p.A], nw.tok.k, summ)
	ops.MatVec(p.tokV[i*p.A:(i+1)*p.A], nw.tok.v, summ)
	if reader := s.m.reader[l]; reader >= 0 {
		lay := s.m.layers[reader].note.lay
		ops.MatVec(p.layK[i*p.A:(i+1)*p.A], lay.k, summ)
		ops.MatVec(p.layV[i*p.A:(i+1)*p.A], lay.v, summ)
	}
	return nil
}

// notePos is a note's position and its index in the blob's pool.
type notePos struct {
	pos int64
	i   int
}

// distinctNotes refuses two notes of layer l at one position (a token
// enters a pool once). It sorts seen.
func distinctNotes(l int, seen []notePos) error {
	slices.SortFunc(seen, func(a, b notePos) int { return cmp.Or(cmp.Compare(a.pos, b.pos), cmp.Compare(a.i, b.i)) })
	for k := 1; k < len(seen); k++ {
		if a, b := seen[k-1], seen[k]; a.pos == b.pos {
			return fmt.Errorf("state: layer %d notes %d and %d are both at position %d", l, a.i, b.i, a.pos)
		}
	}
	return nil
}
