package engine

import "testing"

// TestNoteActionString pins the words a trace records for each action (the
// golden traces' form).
func TestNoteActionString(t *testing.T) {
	for a, want := range map[NoteAction]string{NoteSkip: "skip", NoteAppend: "note", NoteEvict: "evict", NoteDrop: "drop", 9: "NoteAction(9)"} {
		if got := a.String(); got != want {
			t.Errorf("NoteAction(%d).String() = %q, want %q", a, got, want)
		}
	}
}
