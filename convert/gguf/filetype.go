package gguf

import (
	"fmt"

	"github.com/memmamba/memmamba/quant"
)

// FileType is general.file_type: llama.cpp's enum llama_ftype (llama.h),
// which its tools print as the file's type ("all F32", "Q8_0", ...). Without
// the key llama.cpp guesses it from the most common tensor type.
type FileType uint32

// The llama_ftype values of the types this project writes.
const (
	FileTypeAllF32    FileType = 0  // LLAMA_FTYPE_ALL_F32
	FileTypeMostlyF16 FileType = 1  // LLAMA_FTYPE_MOSTLY_F16 (1-D tensors F32)
	FileTypeMostlyQ40 FileType = 2  // LLAMA_FTYPE_MOSTLY_Q4_0
	FileTypeMostlyQ80 FileType = 7  // LLAMA_FTYPE_MOSTLY_Q8_0
	FileTypeMostlyBF  FileType = 32 // LLAMA_FTYPE_MOSTLY_BF16
)

// FileTypeOf returns the general.file_type of a file whose matrices are
// stored as t (and whose other tensors are F32), as llama.cpp's converter
// writes it for the --outtype it was given. held reports whether any tensor
// actually has type t: a file where none does (every matrix kept in F32) is
// "all F32".
func FileTypeOf(t quant.Type, held bool) (FileType, error) {
	if !held {
		return FileTypeAllF32, nil
	}
	switch t {
	case quant.F32:
		return FileTypeAllF32, nil
	case quant.F16:
		return FileTypeMostlyF16, nil
	case quant.BF16:
		return FileTypeMostlyBF, nil
	case quant.Q8_0:
		return FileTypeMostlyQ80, nil
	case quant.Q4_0:
		return FileTypeMostlyQ40, nil
	}
	return 0, fmt.Errorf("gguf: no llama.cpp file type for tensor type %v", t)
}
