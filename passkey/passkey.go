// Package passkey is the passkey-retrieval task the project's trained
// models are measured on: filler text, "The pass key is NNNNN. Remember it.
// NNNNN is the pass key." at a random depth, more filler, then "What is the
// pass key? The pass key is"; the answer is " NNNNN". The prompts are those
// of testdata/reference/data.py (its module doc is the definition), drawn
// with SplitMix64 so that Go and Python produce the same bytes.
package passkey

import (
	"fmt"
	"strings"
)

// Filler is the five filler sentences, repeated in order.
var Filler = []string{"The grass is green. ", "The sky is blue. ", "The sun is yellow. ", "Here we go. ",
	"There and back again. "}

// Question ends every prompt.
const Question = "What is the pass key? The pass key is"

// EvalSeed is the seed of the evaluation prompts.
const EvalSeed = 7

// KeyLine is the sentence that hides the key.
func KeyLine(key int) string {
	return fmt.Sprintf("The pass key is %d. Remember it. %d is the pass key. ", key, key)
}

// Answer is the expected continuation: a space and the five digits.
func Answer(key int) string { return fmt.Sprintf(" %d", key) }

// FillerCount is n, the most filler sentences for which a prompt fits in
// length bytes.
func FillerCount(length int) (int, error) {
	fixed := len(KeyLine(10000)) + len(Question)
	if length < fixed {
		return 0, fmt.Errorf("passkey length %d is below the minimum of %d bytes", length, fixed)
	}
	n, size := 0, fixed
	for size+len(Filler[n%len(Filler)]) <= length {
		size += len(Filler[n%len(Filler)])
		n++
	}
	return n, nil
}

// Prompt builds the prompt of length budget length with the key after k
// filler sentences.
func Prompt(length, key, k int) (string, error) {
	n, err := FillerCount(length)
	if err != nil {
		return "", err
	}
	if k < 0 || k > n || key < 10000 || key > 99999 {
		return "", fmt.Errorf("passkey: key %d at %d of %d sentences is out of range", key, k, n)
	}
	var b strings.Builder
	b.Grow(length)
	for i := range n {
		if i == k {
			b.WriteString(KeyLine(key))
		}
		b.WriteString(Filler[i%len(Filler)])
	}
	if k == n {
		b.WriteString(KeyLine(key))
	}
	b.WriteString(Question)
	return b.String(), nil
}

// Case is one evaluation prompt.
type Case struct {
	Length, Trial, Key, N, K int
	Prompt, Answer           string
}

// splitMix64 is SplitMix64, as data.py draws it.
type splitMix64 uint64

func (s *splitMix64) next() uint64 {
	*s += 0x9E3779B97F4A7C15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// EvalCase returns the evaluation prompt (length, trial) for seed:
// state = (seed*0x100000001B3 + length)*0x100000001B3 + trial, key = 10000 +
// next() % 90000, k = next() % (n+1).
func EvalCase(length, trial int, seed uint64) (Case, error) {
	n, err := FillerCount(length)
	if err != nil {
		return Case{}, err
	}
	rng := splitMix64((seed*0x100000001B3+uint64(length))*0x100000001B3 + uint64(trial))
	key := 10000 + int(rng.next()%90000)
	k := int(rng.next() % uint64(n+1))
	p, err := Prompt(length, key, k)
	if err != nil {
		return Case{}, err
	}
	return Case{Length: length, Trial: trial, Key: key, N: n, K: k, Prompt: p, Answer: Answer(key)}, nil
}
