package runtime

import (
	"fmt"

	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/tokenizer"
)

// Tokenizer returns the tokenizer the model file carries: its Hugging Face
// tokenizer.json, or the byte-level tokenizer (id = byte value).
func (m *Model) Tokenizer() (tokenizer.Tokenizer, error) {
	m.tokOnce.Do(func() {
		switch h := m.Header.Tokenizer; h.Kind {
		case format.TokenizerHFBPE:
			m.tok, m.tokErr = tokenizer.FromJSON(h.JSON)
		case format.TokenizerBytes, "":
			m.tok, m.tokErr = tokenizer.Bytes(m.Config.VocabSize)
		default:
			m.tokErr = fmt.Errorf("unknown tokenizer kind %q", h.Kind)
		}
		if m.tokErr == nil && m.tok.VocabSize() > m.Config.VocabSize {
			m.tokErr = fmt.Errorf("the tokenizer has %d tokens, the model's vocabulary %d", m.tok.VocabSize(), m.Config.VocabSize)
		}
		if m.tokErr != nil {
			m.tokErr = fmt.Errorf("%s: tokenizer: %w", m.file.Name, m.tokErr)
		}
	})
	return m.tok, m.tokErr
}
