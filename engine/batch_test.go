package engine

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/quant"
)

// conversation is one sequence of a batch test: the session the batch
// steps, and a twin that runs the same tokens alone.
type conversation struct {
	batched, alone *Session
	tb, ta         *Trace
}

func newConversation(m *Model) *conversation {
	c := &conversation{batched: m.NewSession(), alone: m.NewSession(), tb: &Trace{}, ta: &Trace{}}
	c.batched.SetTrace(c.tb)
	c.alone.SetTrace(c.ta)
	return c
}

// fork clones both sessions (their traces start empty).
func (c *conversation) fork() *conversation {
	n := &conversation{batched: c.batched.Clone(), alone: c.alone.Clone(), tb: &Trace{}, ta: &Trace{}}
	n.batched.SetTrace(n.tb)
	n.alone.SetTrace(n.ta)
	return n
}

// runSchedule drives conversations of m through rounds of batched steps:
// in each round a random subset of them (joining and leaving) takes a
// chunk of a prompt (up to several chunks and more than a pass's rows) or
// one token, and some rounds fork a conversation. Each batched session
// must give, bit for bit, the logits, trace and state of its twin run
// alone with Prefill.
func runSchedule(t *testing.T, m *Model, seed uint64, rounds int) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 3))
	V := m.Config.VocabSize
	convs := []*conversation{newConversation(m), newConversation(m), newConversation(m)}
	b := m.NewBatch()
	var items []BatchItem
	var owners []*conversation
	for round := range rounds {
		if round%5 == 4 && len(convs) < 8 {
			convs = append(convs, convs[r.IntN(len(convs))].fork())
		}
		if round%7 == 3 {
			convs = append(convs, newConversation(m))
		}
		items, owners = items[:0], owners[:0]
		for _, c := range convs {
			if r.IntN(4) == 0 {
				continue // this one sits the round out
			}
			n := 1
			switch r.IntN(6) {
			case 0:
				n = 1 + r.IntN(3*ChunkSize)
			case 1:
				n = 2 + r.IntN(40)
			}
			items = append(items, BatchItem{Session: c.batched, Tokens: longTokens(n, V, r.Uint64()), WantLogits: r.IntN(5) != 0})
			owners = append(owners, c)
		}
		if len(items) == 0 {
			continue
		}
		if err := b.Step(items); err != nil {
			t.Fatal(err)
		}
		for i, it := range items {
			want, err := owners[i].alone.Prefill(it.Tokens)
			if err != nil {
				t.Fatal(err)
			}
			if !it.WantLogits {
				if it.Logits != nil {
					t.Fatalf("round %d item %d: logits that were not asked for", round, i)
				}
				continue
			}
			if !slices.Equal(it.Logits, want) {
				t.Fatalf("round %d item %d (%d tokens at %d of %d items): batched logits differ from the session alone",
					round, i, len(it.Tokens), it.Session.Pos(), len(items))
			}
		}
	}
	for i, c := range convs {
		if !slices.Equal(stateBlob(t, c.batched), stateBlob(t, c.alone)) {
			t.Errorf("conversation %d: batched state differs from the session alone", i)
		}
		if !reflect.DeepEqual(c.tb, c.ta) {
			t.Errorf("conversation %d: batched Note Block trace differs from the session alone", i)
		}
	}
}

// TestBatchExact runs batched schedules on every fixture and trained
// model at every weight type: a batched session's logits, Note Block
// decisions and state equal those of the session alone, bit for bit.
func TestBatchExact(t *testing.T) {
	names, err := fixtures.Names()
	if err != nil {
		t.Fatal(err)
	}
	trained, err := fixtures.TrainedNames()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(names, trained...) {
		for _, typ := range quant.Types {
			t.Run(fmt.Sprintf("%s/%s", strings.TrimPrefix(name, "trained/"), typ), func(t *testing.T) {
				m, _ := openFixture(t, name, typ)
				rounds := 24
				if testing.Short() || raceEnabled {
					rounds = 12
				}
				runSchedule(t, m, uint64(len(name))+uint64(typ), rounds)
			})
		}
	}
}

// TestBatchSplit steps a shape whose products and scans split across the
// pool's threads (at f32 and int8), so that the parallel per-sequence conv
// and scan cut sessions' channels into parts.
func TestBatchSplit(t *testing.T) {
	for _, typ := range []quant.Type{quant.F32, quant.Q8_0} {
		t.Run(typ.String(), func(t *testing.T) {
			m := syntheticModel(t, "test-split", typ)
			runSchedule(t, m, 11, 10)
		})
	}
}

func TestBatchBadInput(t *testing.T) {
	m, _ := openFixture(t, "memmamba-priority", quant.F32)
	other, _ := openFixture(t, "memmamba-fifo", quant.F32)
	s, s2 := m.NewSession(), m.NewSession()
	b := m.NewBatch()
	for _, tc := range []struct {
		name  string
		items []BatchItem
		want  string
	}{
		{"no items", nil, "no sessions"},
		{"no session", []BatchItem{{Tokens: []int{1}}}, "no session"},
		{"other model", []BatchItem{{Session: other.NewSession(), Tokens: []int{1}}}, "another model"},
		{"twice", []BatchItem{{Session: s, Tokens: []int{1}}, {Session: s, Tokens: []int{2}}}, "already in this step"},
		{"empty", []BatchItem{{Session: s, Tokens: []int{1}}, {Session: s2}}, "item 1: no tokens"},
		{"bad token", []BatchItem{{Session: s, Tokens: []int{1}}, {Session: s2, Tokens: []int{m.Config.VocabSize}}}, "outside the vocabulary"},
	} {
		err := b.Step(tc.items)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if s.Pos() != 0 || s2.Pos() != 0 {
		t.Errorf("failed steps moved the sessions to %d and %d", s.Pos(), s2.Pos())
	}
}

// TestBatchDecodeAllocs checks that a batched decode step allocates
// nothing once the batch's and the sessions' buffers have grown.
func TestBatchDecodeAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are measured without -short and -race")
	}
	for _, name := range []string{"memmamba-priority", "memmamba-fifo", "mamba-tiny"} {
		m, _ := openFixture(t, name, quant.Q8_0)
		b := m.NewBatch()
		items := make([]BatchItem, 4)
		for i := range items {
			items[i] = BatchItem{Session: m.NewSession(), Tokens: []int{i + 1}, WantLogits: true}
		}
		for range 50 {
			if err := b.Step(items); err != nil {
				t.Fatal(err)
			}
		}
		if a := testing.AllocsPerRun(50, func() { b.Step(items) }); a != 0 {
			t.Errorf("%s: %v allocations per batched decode step", name, a)
		}
	}
}
