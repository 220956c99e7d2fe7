// Package sample picks the next token from a model's logits (temperature,
// top-k, top-p, min-p and a repetition penalty, in llama.cpp's manner) and
// finds stop strings in streamed text.
//
// A Sampler is deterministic: the same Params (Seed included), the same
// accepted history and the same logits give the same tokens on every run and
// every platform. The random draws come from math/rand/v2's PCG, the
// exponentials from a pure Go routine with no fused multiply-adds, and every
// sum is taken in a fixed order.
package sample

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Params are the sampling settings. DefaultParams has llama.cpp's defaults;
// the zero Params is not valid (TopP and RepetitionPenalty must be set).
type Params struct {
	// Temperature divides the logits before the softmax: below 1 sharpens,
	// above 1 flattens. 0 means greedy: Sample returns the (penalised)
	// argmax, lowest id on ties, and uses no randomness. Default 0.8.
	Temperature float64
	// TopK keeps only the K highest logits (ties broken by lower id);
	// 0 turns it off. Default 40.
	TopK int
	// TopP keeps the smallest set of most probable tokens whose probability
	// adds up to at least TopP (nucleus sampling), in (0, 1]; 1 turns it
	// off. Default 0.95.
	TopP float64
	// MinP drops tokens less probable than MinP times the most probable
	// one, in [0, 1); 0 turns it off. Default 0.05.
	MinP float64
	// RepetitionPenalty (CTRL-style) divides the positive logits and
	// multiplies the negative ones of the tokens among the last RepeatLastN
	// accepted; each distinct token is penalised once. Must be > 0;
	// 1 turns it off (the default), values above 1 discourage repeats.
	RepetitionPenalty float64
	// RepeatLastN is how many of the last accepted tokens the penalty looks
	// at; 0 turns the penalty off. Default 64.
	RepeatLastN int
	// Seed seeds the PRNG. The same seed gives the same tokens; a caller
	// that wants fresh randomness picks a random seed (and may print it so
	// the run can be repeated). Default 0.
	Seed uint64
}

// DefaultParams returns llama.cpp's defaults: temperature 0.8, top-k 40,
// top-p 0.95, min-p 0.05, repetition penalty 1.0 (off), last-n 64, seed 0.
func DefaultParams() Params {
	return Params{
		Temperature:       0.8,
		TopK:              40,
		TopP:              0.95,
		MinP:              0.05,
		RepetitionPenalty: 1.0,
		RepeatLastN:       64,
	}
}

// Greedy reports whether p samples greedily (Temperature == 0).
func (p Params) Greedy() bool { return p.Temperature == 0 }

// Validate reports the first setting out of range, naming it.
func (p Params) Validate() error {
	switch {
	case !(p.Temperature >= 0) || math.IsInf(p.Temperature, 1):
		return fmt.Errorf("sample: temperature %v: want a finite number >= 0 (0 = greedy)", p.Temperature)
	case p.TopK < 0:
		return fmt.Errorf("sample: top-k %d: want >= 0 (0 = off)", p.TopK)
	case !(p.TopP > 0 && p.TopP <= 1):
		return fmt.Errorf("sample: top-p %v: want a number in (0, 1] (1 = off)", p.TopP)
	case !(p.MinP >= 0 && p.MinP < 1):
		return fmt.Errorf("sample: min-p %v: want a number in [0, 1) (0 = off)", p.MinP)
	case !(p.RepetitionPenalty > 0) || math.IsInf(p.RepetitionPenalty, 1):
		return fmt.Errorf("sample: repetition penalty %v: want a finite number > 0 (1 = off)", p.RepetitionPenalty)
	case p.RepeatLastN < 0:
		return fmt.Errorf("sample: repeat last-n %d: want >= 0 (0 = off)", p.RepeatLastN)
	}
	return nil
}

// MaxVocab bounds the vocabulary New accepts (its scratch memory is 16
// bytes per entry).
const MaxVocab = 1 << 24

// pcgStream is the second PCG seed word, fixed so that Seed alone decides
// the stream ("mmsample" in ASCII).
const pcgStream = 0x6d6d73616d706c65

// cand is one candidate token: its (penalised) logit, its id and, once the
// softmax has run, its unnormalised probability w = exp((l-max)/T).
type cand struct {
	w  float64
	l  float32
	id int32
}

// better is the candidates' order: higher logit first, lower id on ties.
func better(a, b cand) bool { return a.l > b.l || (a.l == b.l && a.id < b.id) }

// cmpCand is better as a cmp function for slices.SortFunc.
func cmpCand(a, b cand) int {
	if c := cmp.Compare(b.l, a.l); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// Sampler draws tokens under fixed Params. It owns its scratch memory, so
// Sample does not allocate; it is not safe for concurrent use.
type Sampler struct {
	p     Params
	vocab int
	rng   rand.PCG

	cands []cand // vocab entries of scratch

	// The repetition history: the last RepeatLastN accepted tokens as a
	// ring (hist grows to RepeatLastN, then head is the oldest entry).
	hist []int32
	head int
	// stamp[id] == epoch marks a token already penalised in this Sample.
	stamp []uint32
	epoch uint32
}

// New returns a Sampler for logits of length vocab, or an error naming the
// first invalid setting.
func New(p Params, vocab int) (*Sampler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if vocab <= 0 || vocab > MaxVocab {
		return nil, fmt.Errorf("sample: vocabulary size %d: want 1 to %d", vocab, MaxVocab)
	}
	s := &Sampler{p: p, vocab: vocab, cands: make([]cand, vocab)}
	s.rng.Seed(p.Seed, pcgStream)
	if s.penalising() {
		s.stamp = make([]uint32, vocab)
		s.hist = make([]int32, 0, min(p.RepeatLastN, 4096))
	}
	return s, nil
}

// Params returns the sampler's settings.
func (s *Sampler) Params() Params { return s.p }

// Vocab returns the logits length Sample expects.
func (s *Sampler) Vocab() int { return s.vocab }

// penalising reports whether the repetition penalty is on.
func (s *Sampler) penalising() bool {
	return s.p.RepetitionPenalty != 1 && s.p.RepeatLastN > 0
}

// Reset returns the sampler to its state after New: no history, the PRNG
// reseeded from Params.Seed.
func (s *Sampler) Reset() {
	s.hist = s.hist[:0]
	s.head = 0
	s.rng.Seed(s.p.Seed, pcgStream)
}

// Accept records token as generated (or as part of the prompt: llama.cpp
// accepts the prompt too, so repeating the prompt is penalised) for the
// repetition penalty. Tokens outside [0, vocab) are ignored; with the
// penalty off Accept does nothing.
func (s *Sampler) Accept(token int) {
	if !s.penalising() || token < 0 || token >= s.vocab {
		return
	}
	if len(s.hist) < s.p.RepeatLastN {
		s.hist = append(s.hist, int32(token))
		return
	}
	s.hist[s.head] = int32(token)
	s.head++
	if s.head == len(s.hist) {
		s.head = 0
	}
}

// Sample returns the next token for logits, which must have length Vocab()
// (a different length is a programming error and panics). logits is not
// modified. The chain is: repetition penalty, top-k, softmax with
// temperature, top-p, min-p, then one draw from the PRNG (greedy: argmax
// after the penalty, no draw). NaN logits count as -Inf and +Inf as the
// largest float32; if every logit is -Inf, Sample returns 0. Sample does not
// record the token: call Accept for that.
func (s *Sampler) Sample(logits []float32) int {
	if len(logits) != s.vocab {
		panic(fmt.Sprintf("sample: %d logits for a sampler of vocabulary %d", len(logits), s.vocab))
	}
	s.load(logits)
	if s.p.Greedy() {
		best := 0
		for i := 1; i < len(s.cands); i++ {
			if s.cands[i].l > s.cands[best].l {
				best = i
			}
		}
		return best
	}
	kept := s.filter()
	return s.draw(kept)
}

// load copies logits into the candidates (index = id), sanitising NaN and
// +Inf, and applies the repetition penalty.
func (s *Sampler) load(logits []float32) {
	c := s.cands
	for i, l := range logits {
		switch {
		case l != l:
			l = float32(math.Inf(-1))
		case l > math.MaxFloat32:
			l = math.MaxFloat32
		}
		c[i] = cand{l: l, id: int32(i)}
	}
	if !s.penalising() || len(s.hist) == 0 {
		return
	}
	s.epoch++
	if s.epoch == 0 { // wrapped: old stamps could collide
		clear(s.stamp)
		s.epoch = 1
	}
	pen := s.p.RepetitionPenalty
	for _, t := range s.hist {
		if s.stamp[t] == s.epoch {
			continue
		}
		s.stamp[t] = s.epoch
		l := float64(c[t].l)
		switch {
		case l > 0:
			// A penalty below 1 can push a huge logit past float32's
			// range: keep it the largest float32, as load does for +Inf.
			c[t].l = float32(min(l/pen, math.MaxFloat32))
		case l < 0:
			c[t].l = float32(l * pen)
		}
	}
}

// filter runs top-k, the softmax with temperature, top-p and min-p over the
// loaded candidates and returns the survivors with their weights w (not
// normalised). The survivors are sorted best first whenever top-k or top-p
// is on, else in id order.
func (s *Sampler) filter() []cand {
	c := s.cands
	sorted := false
	if k := s.p.TopK; k > 0 && k < len(c) {
		c = topK(c, k)
		sorted = true
	}

	// Softmax with temperature, unnormalised: w = exp((l - max) / T), so
	// the best candidate has w = 1 and Z is the sum over all of c.
	m := c[0].l
	if !sorted {
		for _, x := range c[1:] {
			m = max(m, x.l)
		}
	}
	if math.IsInf(float64(m), -1) { // every logit is -Inf
		c[0].w = 1
		return c[:1]
	}
	mf, T := float64(m), s.p.Temperature
	var z float64
	for i := range c {
		w := expNeg((float64(c[i].l) - mf) / T)
		c[i].w = w
		z += w
	}

	// Min-p keeps w >= MinP (the best has w = 1). It is applied before
	// top-p here, which gives the same result as the other way round and
	// means top-p sorts only min-p's survivors: both keep a best-first
	// prefix of the sorted candidates (w does not decrease with the
	// logit), so together they keep the shorter prefix, and top-p's
	// cumulative sums over that prefix do not depend on what comes after.
	if mp := s.p.MinP; mp > 0 {
		n := 0
		for _, x := range c {
			if x.w >= mp {
				c[n] = x
				n++
			}
		}
		c = c[:n]
	}

	// Top-p keeps the best candidates up to and including the first whose
	// cumulative weight reaches TopP of the total.
	if tp := s.p.TopP; tp < 1 {
		if sorted {
			c = c[:prefixReaching(c, tp*z)]
		} else {
			c = c[:nucleus(c, tp*z)]
			slices.SortFunc(c, cmpCand)
		}
	}
	return c
}

// prefixReaching returns the length of the shortest prefix of c whose
// weights add up to at least limit (all of c if none does). This is top-p
// on sorted candidates, and the oracle for nucleus.
func prefixReaching(c []cand, limit float64) int {
	var cum float64
	for i, x := range c {
		cum += x.w
		if cum >= limit {
			return i + 1
		}
	}
	return len(c)
}

// nucleus is prefixReaching for candidates in any order without sorting
// them all: it reorders c so that c[:m] are the m best (in no particular
// order) and returns m, where m is what prefixReaching would return on c
// sorted best first. It partitions around a pivot like quickselect and
// descends into the side that holds the cut, so it takes O(n) expected
// time where a sort takes O(n log n); only the survivors get sorted after.
// (The partial sums are added in a different order than a sorted walk,
// which can move the cut only when a sum lands within rounding of limit.)
func nucleus(c []cand, limit float64) int {
	lo, hi := 0, len(c)
	var acc float64 // weight of c[:lo], all better than c[lo:]
	for hi-lo > 16 {
		p := partition(c, lo, hi)
		var better float64
		for _, x := range c[lo:p] {
			better += x.w
		}
		switch {
		case acc+better >= limit:
			hi = p
		case acc+better+c[p].w >= limit:
			return p + 1
		default:
			acc += better + c[p].w
			lo = p + 1
		}
	}
	slices.SortFunc(c[lo:hi], cmpCand)
	for i := lo; i < hi; i++ {
		acc += c[i].w
		if acc >= limit {
			return i + 1
		}
	}
	return hi
}

// partition rearranges c[lo:hi] (at least 3 long) around a median-of-three
// pivot so that better candidates come first, and returns the pivot's
// index.
func partition(c []cand, lo, hi int) int {
	mid := lo + (hi-lo)/2
	a, b, e := lo, mid, hi-1
	// Order the three so that c[b] is their median.
	if better(c[b], c[a]) {
		a, b = b, a
	}
	if better(c[e], c[b]) {
		b = e
		if better(c[b], c[a]) {
			b = a
		}
	}
	c[b], c[hi-1] = c[hi-1], c[b]
	pivot := c[hi-1]
	p := lo
	for i := lo; i < hi-1; i++ {
		if better(c[i], pivot) {
			c[i], c[p] = c[p], c[i]
			p++
		}
	}
	c[p], c[hi-1] = c[hi-1], c[p]
	return p
}

// draw picks one of kept with probability proportional to w, using one
// 53-bit uniform number from the PRNG, and walks kept in order.
func (s *Sampler) draw(kept []cand) int {
	if len(kept) == 0 {
		return 0 // unreachable: filter keeps at least the best candidate
	}
	var total float64
	for _, x := range kept {
		total += x.w
	}
	u := float64(s.rng.Uint64()>>11) * 0x1p-53 * total
	var cum float64
	last := kept[0].id
	for _, x := range kept {
		if x.w == 0 {
			continue
		}
		cum += x.w
		last = x.id
		if u < cum {
			return int(x.id)
		}
	}
	return int(last) // u rounded up to total
}

// topK moves the k best candidates of c (k < len(c)) to c[:k], sorted best
// first, and returns c[:k]. It keeps a heap of the best k seen with the
// worst at the root, so most candidates cost one comparison: O(n log k).
func topK(c []cand, k int) []cand {
	h := c[:k]
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	for _, x := range c[k:] {
		if better(x, h[0]) {
			h[0] = x
			siftDown(h, 0)
		}
	}
	// Heap sort: move the worst to the end until the heap is empty, which
	// leaves h best first.
	for end := k - 1; end > 0; end-- {
		h[0], h[end] = h[end], h[0]
		siftDown(h[:end], 0)
	}
	return h
}

// siftDown restores the heap property (every parent is worse than its
// children) below h[i].
func siftDown(h []cand, i int) {
	n := len(h)
	for {
		w := i
		l, r := 2*i+1, 2*i+2
		if l < n && better(h[w], h[l]) {
			w = l
		}
		if r < n && better(h[w], h[r]) {
			w = r
		}
		if w == i {
			return
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}
