// Package ops holds the numeric kernels of the native runtime: matrix-vector
// and matrix-matrix products over weights stored in any quant.Type, the
// normalisation and activation functions, the depthwise causal convolution,
// the selective scan and the small multi-head softmax attention of the Note
// Block (see SPEC.md, "Forward pass").
//
// Weights are used in place: a Matrix wraps the raw bytes of a tensor (for
// example a slice of a memory-mapped model file) and every product decodes
// them block by block inside the dot product, so no float copy of a matrix
// is ever made.
//
// Every kernel is written to be allocation-free and documents the plain loop
// it computes; that loop is also the oracle its tests compare against. Shape
// mismatches are programming errors, not user input, so the kernels panic on
// them (like slice indexing does); user-supplied data is validated where it
// enters, in NewMatrix.
//
// Floating-point results are deterministic for a given build: the same call
// with the same inputs gives the same bits, and the Pool variants give the
// same bits as the single-threaded ones (rows are split, never the sums).
package ops
