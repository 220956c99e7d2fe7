package main

import (
	"fmt"
	"math"
)

// checkLogits returns an error when the logits after the token at
// position pos (0-based, in the session) hold a NaN or an infinity. Such
// logits are not a distribution: sampling them yields token 0 every time
// and prints NUL bytes, and a score from them is NaN, so every command
// refuses them with a sentence instead (exit 1). They come from a
// non-finite weight (one NaN in norm_f is enough) or from overflow in the
// model's arithmetic. Checking costs one pass over the vocabulary, next to
// the vocabulary-by-hidden product that made the logits.
func checkLogits(logits []float32, pos int) error {
	for v, x := range logits {
		if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("the logits after position %d are not finite (entry %d of %d is %v): the model's weights or its state hold a NaN or an infinity", pos, v, len(logits), x)
		}
	}
	return nil
}
