package server

import (
	"testing"
)

func TestCompletionSmoke(t *testing.T) {
	ts := newTestServer(t, "mamba-tiny", Config{})
	c := ts.complete(t, map[string]any{"prompt": "Hello", "max_tokens": 8, "temperature": 0})
	t.Logf("%+v %q %s", c.Usage, c.Choices[0].Text, *c.Choices[0].FinishReason)
	t.Log(ts.log.String())
}
