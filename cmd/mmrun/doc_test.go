package main

import (
	"os"
	"strings"
	"testing"
)

// TestDocListsCommands: the package doc of main.go shows every command in
// the dispatch table.
func TestDocListsCommands(t *testing.T) {
	b, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, _, _ := strings.Cut(string(b), "package main")
	for n := range commands {
		if !strings.Contains(doc, "//\tmmrun "+n+" ") {
			t.Errorf("the package doc does not show mmrun %s", n)
		}
	}
}
