package onnxinit

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Protocol buffers wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

var errTruncated = errors.New("truncated protobuf data")

// field is one decoded field of a message: its number, wire type, and its
// value (the varint or fixed value in num, or the bytes of a
// length-delimited field in data, a sub-slice of the input).
type field struct {
	num  uint64
	wire int
	val  uint64
	data []byte
	// off is the offset of data (or of the value) within the buffer given to
	// the iterator.
	off int
}

// fields iterates over the fields of one message in b. It never allocates
// and never reads past b: every length is checked against what remains.
type fields struct {
	b   []byte
	pos int
	err error
}

func uvarint(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0
	}
	return v, n
}

// next decodes the next field; it returns false at the end of the message or
// on an error (in it.err).
func (it *fields) next(f *field) bool {
	if it.err != nil || it.pos >= len(it.b) {
		return false
	}
	tag, n := uvarint(it.b[it.pos:])
	if n == 0 {
		it.err = fmt.Errorf("bad field tag at byte %d", it.pos)
		return false
	}
	it.pos += n
	f.num, f.wire, f.data = tag>>3, int(tag&7), nil
	if f.num == 0 {
		it.err = fmt.Errorf("field number 0 at byte %d", it.pos-n)
		return false
	}
	f.off = it.pos
	switch f.wire {
	case wireVarint:
		v, n := uvarint(it.b[it.pos:])
		if n == 0 {
			it.err = fmt.Errorf("field %d: bad varint at byte %d", f.num, it.pos)
			return false
		}
		f.val = v
		it.pos += n
	case wireFixed64:
		if len(it.b)-it.pos < 8 {
			it.err = fmt.Errorf("field %d: %w", f.num, errTruncated)
			return false
		}
		f.val = binary.LittleEndian.Uint64(it.b[it.pos:])
		it.pos += 8
	case wireFixed32:
		if len(it.b)-it.pos < 4 {
			it.err = fmt.Errorf("field %d: %w", f.num, errTruncated)
			return false
		}
		f.val = uint64(binary.LittleEndian.Uint32(it.b[it.pos:]))
		it.pos += 4
	case wireBytes:
		l, n := uvarint(it.b[it.pos:])
		if n == 0 {
			it.err = fmt.Errorf("field %d: bad length at byte %d", f.num, it.pos)
			return false
		}
		it.pos += n
		if l > uint64(len(it.b)-it.pos) {
			it.err = fmt.Errorf("field %d: length %d runs past the end of its message: %w", f.num, l, errTruncated)
			return false
		}
		f.off = it.pos
		f.data = it.b[it.pos : it.pos+int(l)]
		it.pos += int(l)
	default:
		// Groups (3, 4) are not used by ONNX.
		it.err = fmt.Errorf("field %d: unsupported wire type %d at byte %d", f.num, f.wire, it.pos)
		return false
	}
	return true
}

// strings decodes a StringStringEntryProto (key = 1, value = 2).
func stringEntry(b []byte) (key, value string, err error) {
	it := fields{b: b}
	var f field
	for it.next(&f) {
		if f.wire != wireBytes {
			continue
		}
		switch f.num {
		case 1:
			key = string(f.data)
		case 2:
			value = string(f.data)
		}
	}
	return key, value, it.err
}
