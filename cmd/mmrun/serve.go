package main

import "github.com/memmamba/memmamba/internal/cli"

// serve runs the OpenAI-compatible HTTP server (package server).
func serve(args []string) error {
	return cli.Usagef("mmrun serve is not built yet")
}
