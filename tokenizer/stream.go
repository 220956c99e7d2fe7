package tokenizer

import "strings"

// StreamDecoder decodes ids produced one at a time (generation) into text
// that can be printed at once: Next returns only complete UTF-8 text, and a
// character split across tokens comes out whole once its last byte arrives,
// never as U+FFFD. It follows the DecodeStream algorithm of the Rust
// tokenizers: the new text of an id is the difference between decoding a
// short window of ids with and without it, so decoders that look at
// context (Strip, add_prefix_space) behave as in a one-shot Decode.
// A StreamDecoder is not safe for concurrent use.
type StreamDecoder struct {
	raw         func([]int) (string, error)
	ids         []int
	prefix      string
	prefixIndex int
}

// Next adds id and returns the text it completes (possibly "").
// An id outside the vocabulary is ignored.
func (d *StreamDecoder) Next(id int) string {
	d.ids = append(d.ids, id)
	s, err := d.raw(d.ids)
	if err != nil {
		d.ids = d.ids[:len(d.ids)-1]
		return ""
	}
	s = s[:len(s)-incompleteTail(s)]
	if len(s) <= len(d.prefix) {
		return ""
	}
	var out string
	if strings.HasPrefix(s, d.prefix) {
		out = s[len(d.prefix):]
	} else {
		out = s[commonPrefix(s, d.prefix):]
	}
	newIndex := len(d.ids) - d.prefixIndex
	d.ids = append(d.ids[:0], d.ids[d.prefixIndex:]...)
	p, _ := d.raw(d.ids)
	d.prefix = p[:len(p)-incompleteTail(p)]
	d.prefixIndex = newIndex
	return lossyUTF8(out)
}

// Flush returns what is held back (an unfinished character, as U+FFFD) and
// resets the decoder.
func (d *StreamDecoder) Flush() string {
	s, _ := d.raw(d.ids)
	var out string
	if len(s) > len(d.prefix) && strings.HasPrefix(s, d.prefix) {
		out = lossyUTF8(s[len(d.prefix):])
	}
	d.ids, d.prefix, d.prefixIndex = d.ids[:0], "", 0
	return out
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
