package passkey

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestMatchesPython regenerates every prompt of the Python generator's
// evaluation file and compares keys, depths, lengths, SHA-256s and, where
// the file has them, the prompts themselves.
func TestMatchesPython(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "testdata", "trained", "passkey_eval", "passkey_eval.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		var want struct {
			Length, Trial, Key, N, K int
			Answer, Prompt, SHA256   string
			PromptBytes              int `json:"prompt_bytes"`
		}
		if err := json.Unmarshal(sc.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		got, err := EvalCase(want.Length, want.Trial, EvalSeed)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(got.Prompt))
		if got.Key != want.Key || got.N != want.N || got.K != want.K || got.Answer != want.Answer ||
			len(got.Prompt) != want.PromptBytes || hex.EncodeToString(sum[:]) != want.SHA256 ||
			(want.Prompt != "" && got.Prompt != want.Prompt) {
			t.Fatalf("length %d trial %d: got key %d n %d k %d (%d bytes), Python key %d n %d k %d (%d bytes)",
				want.Length, want.Trial, got.Key, got.N, got.K, len(got.Prompt), want.Key, want.N, want.K, want.PromptBytes)
		}
		if len(got.Prompt) > want.Length {
			t.Fatalf("prompt of %d bytes exceeds its budget %d", len(got.Prompt), want.Length)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no cases in the file")
	}
}

func TestBadLength(t *testing.T) {
	if _, err := EvalCase(10, 0, EvalSeed); err == nil {
		t.Error("a 10-byte passkey prompt was accepted")
	}
}
