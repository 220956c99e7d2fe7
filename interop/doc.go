// Package interop holds the cross-engine tests: the GGUF files that
// mmconvert --to gguf writes, run in an unmodified llama.cpp (the release
// that scripts/install-llamacpp.sh installs into third_party/llama.cpp, driven
// by testdata/llamacpp/mmllama.c), against this project's runtime; and GGUF
// files written the way llama.cpp's own converter writes them, imported
// here. The package has no code of its own: see llamacpp_test.go. Without
// llama.cpp installed (make llamacpp) the llama.cpp cases skip, and say so.
package interop
