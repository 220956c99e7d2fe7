package format

import (
	"encoding/binary"
	"fmt"
)

// prescan checks the structure of the msgpack object in b before it is
// decoded, so that decoding cannot be made to allocate by a declared length:
// msgpack/v5 pre-allocates up to a million elements for an array or map of a
// declared length, and up to 1 MiB for a string, whatever follows.
//
// b must hold exactly one object, which ends at the end of b. Every array
// and map declares at most as many elements as bytes remain (each element
// takes at least one) and at most MaxTensors; the total of all elements is at
// most maxElements; strings are at most MaxStringLen bytes; binary and
// extension data fit in what remains; nesting is at most maxDepth deep. With
// that, what decoding allocates is bounded by a small multiple of len(b) and
// by maxElements.
//
// It walks iteratively (a stack of counts), so hostile nesting cannot
// exhaust the goroutine stack.
func prescan(b []byte) error {
	var (
		pos      int
		pending  = []int{1} // items left to read at each open level
		elements int
	)
	need := func(n uint64, what string) error {
		if n > uint64(len(b)-pos) {
			return fmt.Errorf("header byte %d: %s of %d bytes runs past the header's end (%d bytes left)", pos, what, n, len(b)-pos)
		}
		return nil
	}
	// length reads a big-endian length of w bytes.
	length := func(w int) (uint64, error) {
		if err := need(uint64(w), "length"); err != nil {
			return 0, err
		}
		var n uint64
		switch w {
		case 1:
			n = uint64(b[pos])
		case 2:
			n = uint64(binary.BigEndian.Uint16(b[pos:]))
		case 4:
			n = uint64(binary.BigEndian.Uint32(b[pos:]))
		}
		pos += w
		return n, nil
	}
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == 0 {
			pending = pending[:top]
			continue
		}
		pending[top]--
		if pos >= len(b) {
			return fmt.Errorf("header byte %d: truncated msgpack", pos)
		}
		start := pos
		c := b[pos]
		pos++
		var (
			skip      uint64 // payload bytes to skip
			items     uint64 // child items to push (2n for maps)
			container bool
			isStr     bool
			err       error
		)
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			// fixint, nil, bool
		case c >= 0x80 && c <= 0x8f:
			items, container = 2*uint64(c&0x0f), true
		case c >= 0x90 && c <= 0x9f:
			items, container = uint64(c&0x0f), true
		case c >= 0xa0 && c <= 0xbf:
			skip, isStr = uint64(c&0x1f), true
		case c == 0xc4 || c == 0xc5 || c == 0xc6: // bin 8/16/32
			skip, err = length(1 << (c - 0xc4))
		case c == 0xc7 || c == 0xc8 || c == 0xc9: // ext 8/16/32: len, type, data
			skip, err = length(1 << (c - 0xc7))
			skip++
		case c == 0xca:
			skip = 4
		case c == 0xcb:
			skip = 8
		case c >= 0xcc && c <= 0xcf: // uint 8..64
			skip = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3: // int 8..64
			skip = 1 << (c - 0xd0)
		case c >= 0xd4 && c <= 0xd8: // fixext 1..16: type, data
			skip = 1 + 1<<(c-0xd4)
		case c == 0xd9 || c == 0xda || c == 0xdb: // str 8/16/32
			skip, err = length(1 << (c - 0xd9))
			isStr = true
		case c == 0xdc || c == 0xdd: // array 16/32
			items, err = length(2 << (c - 0xdc))
			container = true
		case c == 0xde || c == 0xdf: // map 16/32
			items, err = length(2 << (c - 0xde))
			items *= 2
			container = true
		default: // 0xc1 is never used
			return fmt.Errorf("header byte %d: invalid msgpack code 0x%02x", start, c)
		}
		if err != nil {
			return err
		}
		if isStr && skip > MaxStringLen {
			return fmt.Errorf("header byte %d: string of %d bytes, above the limit of %d", start, skip, MaxStringLen)
		}
		if err := need(skip, "value"); err != nil {
			return err
		}
		pos += int(skip)
		if !container {
			continue
		}
		if items > 2*MaxTensors {
			return fmt.Errorf("header byte %d: array or map of %d items, above the limit of %d", start, items, 2*MaxTensors)
		}
		if items > uint64(len(b)-pos) {
			return fmt.Errorf("header byte %d: array or map of %d items in %d bytes left", start, items, len(b)-pos)
		}
		elements += int(items)
		if elements > maxElements {
			return fmt.Errorf("header byte %d: more than %d array and map items in all", start, maxElements)
		}
		if len(pending) > maxDepth {
			return fmt.Errorf("header byte %d: nested more than %d deep", start, maxDepth)
		}
		pending = append(pending, int(items))
	}
	if pos != len(b) {
		return fmt.Errorf("header byte %d: %d bytes after the header object", pos, len(b)-pos)
	}
	return nil
}
