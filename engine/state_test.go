package engine

import (
	"bytes"
	"encoding/binary"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memmamba/memmamba/quant"
)

// stateFixtures are the models the state tests run on: plain Mamba and
// MemMamba with both evictions (priority has cross-layer attention).
var stateFixtures = []string{"mamba-tiny", "memmamba-priority", "memmamba-fifo"}

// busySession returns a session of m that has run n tokens (its pools,
// for MemMamba, hold notes).
func busySession(t testing.TB, m *Model, n int) *Session {
	t.Helper()
	s := m.NewSession()
	if _, err := s.Prefill(longTokens(n, m.Config.VocabSize, 11)); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStateRoundTrip saves a busy session, loads it into a fresh one and
// saves that again: the blobs must be identical, and both sessions must go
// on with identical logits.
func TestStateRoundTrip(t *testing.T) {
	for _, name := range stateFixtures {
		t.Run(name, func(t *testing.T) {
			m, _ := openFixture(t, name, quant.F32)
			a := busySession(t, m, 150)
			if m.Config.IsMemMamba() && a.layers[0].pool.n == 0 {
				t.Fatal("the fixture's first pool is empty after 150 tokens; the test would not cover notes")
			}
			blob := stateBlob(t, a)
			b := m.NewSession()
			if err := b.Load(blob); err != nil {
				t.Fatal(err)
			}
			if again := stateBlob(t, b); !bytes.Equal(blob, again) {
				t.Fatal("Save after Load differs from the blob loaded")
			}
			for _, tok := range longTokens(20, m.Config.VocabSize, 5) {
				la, _ := a.Step(tok)
				lb, _ := b.Step(tok)
				if !slices.Equal(la, lb) {
					t.Fatalf("at position %d the saved and the loaded sessions disagree", a.Pos())
				}
			}
		})
	}
}

// blobLayout holds the byte offsets of a valid blob's fields, for tests
// that change one of them.
type blobLayout struct {
	pos, shape int // the position; the six sizes
	layers     []layerLayout
	end        int // where the checksum starts
}

type layerLayout struct {
	conv, ssm, prevM, count int
	notes                   []int // each note's position field
}

// layoutOf walks a blob that Save wrote for m.
func layoutOf(t testing.TB, m *Model, blob []byte) blobLayout {
	t.Helper()
	sh := m.stateShape()
	off := stateHeaderFixed + len(m.ID)
	lay := blobLayout{pos: off, shape: off + 8}
	off += stateShapeLen
	for range sh.layers {
		var ll layerLayout
		ll.conv = off
		ll.ssm = ll.conv + 4*sh.conv
		ll.prevM = ll.ssm + 4*sh.ssm
		ll.count = ll.prevM + 4*sh.prevM
		off = ll.count + 4
		for range int(binary.LittleEndian.Uint32(blob[ll.count:])) {
			ll.notes = append(ll.notes, off)
			off += sh.noteLen()
		}
		lay.layers = append(lay.layers, ll)
	}
	if off+stateSumLen != len(blob) {
		t.Fatalf("layoutOf: the layers end at %d, the blob is %d bytes", off, len(blob))
	}
	lay.end = off
	return lay
}

// resign replaces the blob's checksum with the right one, as an attacker
// who edits a blob would.
func resign(b []byte) []byte {
	end := len(b) - stateSumLen
	binary.LittleEndian.PutUint32(b[end:], stateChecksum(b[:end]))
	return b
}

// edit returns a re-signed copy of blob with fn applied to it.
func edit(blob []byte, fn func(b []byte) []byte) []byte {
	return resign(fn(bytes.Clone(blob)))
}

func putF32(b []byte, off int, v float32) {
	binary.LittleEndian.PutUint32(b[off:], math.Float32bits(v))
}

// withinBudget runs fn and fails if it took 2 s or more, or allocated 100
// MB or more: the bounds that every hostile input must be refused within.
func withinBudget(t *testing.T, what string, fn func() error) error {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	err := fn()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if took >= 2*time.Second {
		t.Errorf("%s: took %v", what, took)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc >= 100<<20 {
		t.Errorf("%s: allocated %d MB", what, alloc>>20)
	}
	return err
}

// TestLoadHostile feeds Load the hostile blobs of issue #19 and others:
// each must be refused with its sentence, quickly and in little memory,
// and leave the session as it was.
func TestLoadHostile(t *testing.T) {
	m, _ := openFixture(t, "memmamba-priority", quant.F32)
	other, _ := openFixture(t, "memmamba-fifo", quant.F32)
	plain, _ := openFixture(t, "mamba-tiny", quant.F32)
	s := busySession(t, m, 150)
	valid := stateBlob(t, s)
	lay := layoutOf(t, m, valid)
	if len(lay.layers[0].notes) < 2 {
		t.Fatalf("layer 0 holds %d notes, the test needs 2", len(lay.layers[0].notes))
	}
	note0, note1 := lay.layers[0].notes[0], lay.layers[0].notes[1]
	// The busy session's pools are full; the empty state has room.
	empty := stateBlob(t, m.NewSession())
	emptyLay := layoutOf(t, m, empty)
	plainBlob := stateBlob(t, plain.NewSession())
	plainLay := layoutOf(t, plain, plainBlob)
	// A blob of the plain model re-labelled with this model's id would
	// fail on sizes; this one keeps its own id and claims a note.
	plainNote := edit(plainBlob, func(b []byte) []byte {
		binary.LittleEndian.PutUint32(b[plainLay.layers[0].count:], 1)
		return b
	})

	msgpack13 := []byte("\x81\xa6layers\xdd\xff\xff\xff\xff")                 // {"layers": array of 2^32-1}
	msgpack20 := []byte("\x81\xa6layers\x91\x81\xa4conv\xdd\x10\x00\x00\x00") // 2^28 floats: 1 GiB
	if len(msgpack13) != 13 || len(msgpack20) != 20 {
		t.Fatalf("hostile blobs of %d and %d bytes", len(msgpack13), len(msgpack20))
	}
	v1 := append(slices.Clone(stateV1Prefix), "\xa7version\x01\xa8model_id\xa0\xa3pos\x00\xa6layers\xdd\xff\xff\xff\xff"...)

	for _, tc := range []struct {
		name string
		blob []byte
		want string
	}{
		{"13-byte msgpack, 2^32-1 layers", msgpack13, "not a saved session state (13 bytes"},
		{"20-byte msgpack, 1 GiB of conv", msgpack20, "not a saved session state (20 bytes"},
		{"10 MB of nested arrays", bytes.Repeat([]byte{0x91}, 10<<20), "not a saved session state (10485760 bytes"},
		{"garbage", []byte("nonsense"), "not a saved session state"},
		{"empty", nil, "not a saved session state (0 bytes"},
		{"version 1 blob", v1, "a version 1 blob (msgpack, from an older build), this build reads version 2 only"},
		{"version 3", edit(valid, func(b []byte) []byte { b[len(stateMagic)] = 3; return b }), "version 3, this build reads version 2"},
		{"another model's blob", stateBlob(t, other.NewSession()), "saved from another model (id \"" + other.ID + "\", this model is " + m.ID},
		{"cut inside the model id", valid[:stateHeaderFixed+4], "ends inside its model id"},
		{"edited byte", func() []byte { b := bytes.Clone(valid); b[lay.layers[1].ssm+2] ^= 1; return b }(), "checksum mismatch"},
		{"cut short", valid[:len(valid)-100], "checksum mismatch"},
		{"1 MB appended", append(bytes.Clone(valid), make([]byte, 1<<20)...), "more than the"},
		{"header only", resign(append(bytes.Clone(valid[:lay.pos]), make([]byte, stateSumLen)...)), "fewer than the"},
		{"pos = MaxInt64", edit(valid, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[lay.pos:], math.MaxInt64)
			return b
		}), "position 9223372036854775807 is outside 0..1099511627776"},
		{"pos = -1", edit(valid, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[lay.pos:], math.MaxUint64)
			return b
		}), "position -1 is outside"},
		{"2^32-1 layers", edit(valid, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[lay.shape:], math.MaxUint32)
			return b
		}), "the blob records 4294967295 layers, this model has 4"},
		{"wrong ssm size", edit(valid, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[lay.shape+8:], 7)
			return b
		}), "the blob records 7 ssm values per layer, this model has 1024"},
		{"NaN in SSM state", edit(valid, func(b []byte) []byte { putF32(b, lay.layers[1].ssm+4*5, float32(math.NaN())); return b }), "layer 1 ssm value 5 is NaN, and every value must be finite"},
		{"+Inf in conv state", edit(valid, func(b []byte) []byte { putF32(b, lay.layers[2].conv, float32(math.Inf(1))); return b }), "layer 2 conv value 0 is +Inf"},
		{"-Inf in prev_m", edit(valid, func(b []byte) []byte { putF32(b, lay.layers[3].prevM+4*63, float32(math.Inf(-1))); return b }), "layer 3 prev_m value 63 is -Inf"},
		{"NaN in a pool summary", edit(valid, func(b []byte) []byte { putF32(b, note1+noteFixedLen+4*31, float32(math.NaN())); return b }), "layer 0 note 1 summary value 31 is NaN"},
		{"NaN pool score", edit(valid, func(b []byte) []byte { putF32(b, note0+8, float32(math.NaN())); return b }), "layer 0 note 0 score is NaN"},
		{"+Inf pool score", edit(valid, func(b []byte) []byte { putF32(b, note0+8, float32(math.Inf(1))); return b }), "layer 0 note 0 score is +Inf"},
		{"note after the position", edit(valid, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[note0:], 150)
			return b
		}), "layer 0 note 0 is at position 150, outside 0..149"},
		{"note at a negative position", edit(valid, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[note1:], math.MaxUint64)
			return b
		}), "layer 0 note 1 is at position -1"},
		{"two notes at one position", edit(valid, func(b []byte) []byte {
			copy(b[note1:note1+8], b[note0:note0+8])
			return b
		}), "layer 0 notes 0 and 1 are both at position"},
		{"2^32-1 notes", edit(valid, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[lay.layers[0].count:], math.MaxUint32)
			return b
		}), "layer 0 holds 4294967295 notes, this model's pools hold 4"},
		{"a note beyond the blob", edit(empty, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[emptyLay.layers[3].count:], 1)
			return b
		}), "layer 3 note 0 position needs 8 bytes at offset"},
		{"bytes after the last layer", edit(empty, func(b []byte) []byte {
			return append(b[:emptyLay.end], make([]byte, 12+stateSumLen)...)
		}), "12 bytes after the last layer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := withinBudget(t, tc.name, func() error { return s.Load(tc.blob) })
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "state: ") {
				t.Errorf("got %v, want an error starting \"state: \" containing %q", err, tc.want)
			}
			if !bytes.Equal(stateBlob(t, s), valid) {
				t.Error("the refused blob changed the session")
			}
		})
	}
	t.Run("plain Mamba blob with a note", func(t *testing.T) {
		err := plain.NewSession().Load(plainNote)
		if want := "layer 0 holds 1 notes, and this model has no Note Block pools"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	})
}
