package engine

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/format"
)

// MemoryNeed is what a model needs in memory, computed from its
// configuration before anything is allocated (an estimate from above:
// every buffer at its largest).
type MemoryNeed struct {
	// Weights are the tensor bytes of the model file, mapped; a decode
	// step reads them all, so they must fit in memory to run at speed.
	Weights int64
	// Decoded are the copies made at load: A = -exp(A_log) in f32 and the
	// fused gates of the Note Block's attentions.
	Decoded int64
	// State is one session's recurrent state: per layer the conv window,
	// the SSM state, the previous mixer output and the Note Block's pool.
	State int64
	// Scratch is one pass's work memory for a chunk of ChunkSize tokens,
	// logits of every row included, and a session's pool histories.
	Scratch int64
}

// Total is the memory a model with one session needs.
func (n MemoryNeed) Total() int64 { return n.Weights + n.Decoded + n.State + n.Scratch }

// PerSession is what each further session (and its first pass) adds.
func (n MemoryNeed) PerSession() int64 { return n.State + n.Scratch }

// String says the need's parts in words, for errors and reports.
func (n MemoryNeed) String() string {
	return fmt.Sprintf("weights %s mapped, %s decoded at load, %s of state and %s of scratch per session",
		bytesText(n.Weights), bytesText(n.Decoded), bytesText(n.State), bytesText(n.Scratch))
}

// MemoryNeeded computes what a model of configuration c with weightBytes of
// tensor data needs. c must be valid (arch.Config.Validate): its bounds keep
// every product below 2^50, so nothing overflows.
func MemoryNeeded(c *arch.Config, weightBytes int64) MemoryNeed {
	const f = 4 // bytes of a float32
	L, d, E := int64(c.NumLayers), int64(c.HiddenSize), int64(c.Intermediate)
	N, K, R, V := int64(c.StateSize), int64(c.ConvKernel), int64(c.TimeStepRank), int64(c.VocabSize)
	T := int64(ChunkSize)
	need := MemoryNeed{Weights: weightBytes}
	need.Decoded = L * E * N * f
	perLayer := (E*(K-1) + E*N + d) * f
	rowFloats := 2*d + 7*E + R + 4*N // x, mix, xz, a, z, c, dt, y, B, C, dbc
	if m := c.Memory; m != nil {
		P, S, A := int64(m.PoolSize), int64(m.SummaryDim), int64(m.AttnDim)
		// Both attentions' fused gates: W_gate's left half and
		// W_gate[:, d:] W_o, and fuseGates' three d x A work matrices.
		need.Decoded += 2*L*(d*d+d*A)*f + 3*d*A*f
		// A pool: positions (8 bytes), scores, summaries and the keys
		// and values of both attentions.
		pool := P*8 + P*f + P*(S+4*A)*f
		perLayer += pool
		// Pool histories of a chunk: a copy of the pool and each token's
		// new note, per layer.
		need.Scratch += L * (pool + T*(S+4*A)*f)
		rowFloats += 2*d + S + 6*A + 3*P + d/4 + int64(m.ScoreDim)
	}
	need.State = L * perLayer
	need.Scratch += T * (rowFloats + V) * f
	return need
}

// checkLoad runs the checks of what a model file's configuration asks for,
// before newModel builds anything from it: the file must hold every layer
// the configuration counts, with the shapes it gives (format checks this
// too, but only for files whose tensors are named as a model's), and the
// memory MemoryNeeded computes must fit in opts.MaxMemory, or else in the
// machine's memory.
func checkLoad(f *format.File, opts Options) error {
	c := &f.Header.Config
	if c.ModelType == "" {
		return nil // newModel says so
	}
	if err := c.CheckHeld(heldShapes(f)); err != nil {
		return err
	}
	var weights int64
	for _, t := range f.Header.Tensors {
		weights += int64(t.Size)
	}
	need := MemoryNeeded(c, weights)
	limit, what := opts.MaxMemory, "the limit of"
	if limit <= 0 {
		limit, what = MachineMemory(), "the machine's"
	}
	if limit > 0 && need.Total() > limit {
		return fmt.Errorf("the model needs about %s of memory, more than %s %s (%s; num_hidden_layers=%d %s)",
			bytesText(need.Total()), what, bytesText(limit), need, c.NumLayers, poolKeys(c))
	}
	return nil
}

// heldShapes maps the file's tensor names to their shapes.
func heldShapes(f *format.File) map[string][]int {
	held := make(map[string][]int, len(f.Header.Tensors))
	for _, t := range f.Header.Tensors {
		held[t.Name] = t.Shape
	}
	return held
}

// poolKeys names the configuration's keys that size a session beyond the
// weights, for the error of checkLoad.
func poolKeys(c *arch.Config) string {
	s := fmt.Sprintf("intermediate_size=%d state_size=%d vocab_size=%d", c.Intermediate, c.StateSize, c.VocabSize)
	if m := c.Memory; m != nil {
		s += fmt.Sprintf(" memory.pool_size=%d memory.summary_dim=%d memory.attn_dim=%d", m.PoolSize, m.SummaryDim, m.AttnDim)
	}
	return s
}

// MachineMemory returns the machine's memory in bytes: MemTotal of
// /proc/meminfo, less nothing (other processes' use changes from moment to
// moment; the check is against what could ever fit). It returns 0 where
// unknown, and then no memory check is made.
func MachineMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	return memTotal(bufio.NewScanner(f))
}

// memTotal reads the MemTotal line of a /proc/meminfo listing ("MemTotal:
// 16318412 kB") and returns bytes, or 0.
func memTotal(sc *bufio.Scanner) int64 {
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb <= 0 || kb > 1<<42 {
			return 0
		}
		return kb << 10
	}
	return 0
}

// bytesText writes n bytes in binary units, "1.5 GiB".
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}
