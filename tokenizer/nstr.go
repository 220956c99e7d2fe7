package tokenizer

// span is a byte range [start, end) of the original input.
type span struct{ start, end int }

// nstr is a piece of text on its way through normalization and
// pre-tokenization, with the map from its bytes back to the original input
// that token offsets are computed from. align == nil means identity: byte i
// of s is byte base+i of the input (the common, allocation-free case).
type nstr struct {
	s     string
	base  int
	align []span
}

// orig returns the original byte range of s[i:j].
func (n *nstr) orig(i, j int) (int, int) {
	if n.align == nil {
		return n.base + i, n.base + j
	}
	if len(n.align) == 0 {
		return n.base, n.base
	}
	if i >= j {
		if i < len(n.align) {
			return n.align[i].start, n.align[i].start
		}
		e := n.align[len(n.align)-1].end
		return e, e
	}
	return n.align[i].start, n.align[j-1].end
}

// sub returns s[i:j] with its alignment.
func (n *nstr) sub(i, j int) nstr {
	if n.align == nil {
		return nstr{s: n.s[i:j], base: n.base + i}
	}
	return nstr{s: n.s[i:j], base: n.base, align: n.align[i:j]}
}

// materialize returns the explicit alignment of n.
func (n *nstr) materialize() []span {
	if n.align != nil {
		return n.align
	}
	a := make([]span, len(n.s))
	for i := range a {
		a[i] = span{n.base + i, n.base + i + 1}
	}
	return a
}

// firstRuneLen is the byte length of the first rune of s (1 for invalid).
func firstRuneLen(s string) int {
	for i := range s {
		if i > 0 {
			return i
		}
	}
	return len(s)
}

// prepend returns p+n.s with the bytes of p aligned to the first character
// of n (as Hugging Face does for Prepend and add_prefix_space).
func (n *nstr) prepend(p string) nstr {
	if n.s == "" {
		return *n
	}
	a := n.materialize()
	k := firstRuneLen(n.s)
	st, en := n.orig(0, k)
	out := make([]span, 0, len(p)+len(a))
	for range len(p) {
		out = append(out, span{st, en})
	}
	out = append(out, a...)
	return nstr{s: p + n.s, base: n.base, align: out}
}

// builder assembles a transformed nstr piece by piece.
type builder struct {
	b     []byte
	align []span
}

// keep copies src[i:j] unchanged.
func (b *builder) keep(src *nstr, i, j int) {
	b.b = append(b.b, src.s[i:j]...)
	for k := i; k < j; k++ {
		s, e := src.orig(k, k+1)
		b.align = append(b.align, span{s, e})
	}
}

// put appends text that replaces src[i:j]: every byte of it maps to the
// original range of src[i:j].
func (b *builder) put(src *nstr, i, j int, text string) {
	s, e := src.orig(i, j)
	b.b = append(b.b, text...)
	for range len(text) {
		b.align = append(b.align, span{s, e})
	}
}

func (b *builder) done(base int) nstr {
	return nstr{s: string(b.b), base: base, align: b.align}
}
