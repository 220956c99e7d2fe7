package engine

import (
	"fmt"

	"github.com/memmamba/memmamba/internal/modeltok"
	"github.com/memmamba/memmamba/tokenizer"
)

// Tokenizer returns the tokenizer the model file carries: its Hugging Face
// tokenizer.json, or the byte-level tokenizer (id = byte value).
func (m *Model) Tokenizer() (tokenizer.Tokenizer, error) {
	m.tokOnce.Do(func() {
		// The same check as mmconvert's at conversion (internal/modeltok).
		m.tok, m.tokErr = modeltok.Load(m.Header.Tokenizer, m.Config.VocabSize)
		if m.tokErr != nil {
			m.tokErr = fmt.Errorf("%s: tokenizer: %w", m.file.Name, m.tokErr)
		}
	})
	return m.tok, m.tokErr
}
