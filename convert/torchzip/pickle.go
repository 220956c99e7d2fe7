package torchzip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Limits of the unpickler. A state_dict pickle is small (about 100 bytes a
// tensor) and shallow; these bound what a hostile file can make us do.
const (
	// MaxPickleBytes bounds data.pkl, uncompressed (a state_dict pickle
	// takes about 85 bytes a tensor: 16 MiB is some 200,000 tensors).
	MaxPickleBytes = 16 << 20
	// MaxItems bounds the containers built (tuples, lists, dicts, tensor
	// views, storages: one each) and the items put into them, all
	// together: a state_dict counts about 26 a tensor, so 2^20 is some
	// 40,000 tensors (a MemMamba of arch.MaxLayers layers has 36,000),
	// and what they take is some tens of megabytes.
	MaxItems = 1 << 20
	// MaxStack bounds the unpickler's stack (Python's pickler batches
	// SETITEMS/APPENDS by 1000, so a real pickle stays far below this).
	MaxStack = 1 << 16
	// MaxMarks bounds the MARK nesting depth.
	MaxMarks = 256
	// MaxMemo bounds the memo's entry count (a state_dict memoizes about
	// nine values a tensor).
	MaxMemo = 1 << 19
	// MaxString bounds one string or bytes value.
	MaxString = 16 << 20
	// MaxDepth bounds how deep containers may nest in the loaded object.
	MaxDepth = 100
	// MaxRank bounds a tensor's number of dimensions.
	MaxRank = 8
)

// The value model of the unpickler. Python's None is nil; ints are int64
// (larger ones are refused); floats are float64; str is string; bytes is
// []byte. Containers are pointers so the memo shares them as Python does.
type (
	// pyGlobal is an allow-listed global (a class, function or dtype).
	pyGlobal struct{ module, name string }
	// pyTuple is a tuple.
	pyTuple struct{ items []any }
	// pyList is a list.
	pyList struct{ items []any }
	// pyDict is a dict or OrderedDict, keeping insertion order.
	pyDict struct {
		keys  []any
		vals  []any
		index map[any]int
	}
	// storageRef is a storage loaded by BINPERSID: the zip entry
	// <archive>/data/<key> holding numel elements of dtype.
	storageRef struct {
		key   string
		dtype string // one of the dtype names of dtypes
		numel int64
	}
	// tensorVal is a tensor rebuilt from a storage: elements
	// storage[offset + sum(i_k * stride[k])] for each index i.
	tensorVal struct {
		storage *storageRef
		offset  int64
		shape   []int
		stride  []int64
	}
)

func (g pyGlobal) String() string { return g.module + "." + g.name }

// set stores d[k] = v with Python's semantics (a key set twice keeps its
// first position and its last value).
func (d *pyDict) set(k, v any) error {
	hk, err := hashKey(k)
	if err != nil {
		return err
	}
	if d.index == nil {
		d.index = map[any]int{}
	}
	if i, ok := d.index[hk]; ok {
		d.vals[i] = v
		return nil
	}
	d.index[hk] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

// hashKey maps a hashable Python value to a comparable Go value;
// unhashable values (lists, dicts) are an error, as in Python. Tuples are
// keyed by identity rather than by value (Python compares their items):
// hashing nested tuples by value could cost time and memory exponential in
// their depth, and no state_dict uses tuple keys.
func hashKey(k any) (any, error) {
	switch k := k.(type) {
	case nil, bool, int64, float64, string, pyGlobal, *pyTuple:
		return k, nil
	case []byte:
		return "b:" + string(k), nil
	}
	return nil, fmt.Errorf("unhashable dict key of type %s", typeName(k))
}

// typeName names a value's Python type for error messages.
func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case pyGlobal:
		return "global " + v.String()
	case *pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case *storageRef:
		return "storage"
	case *tensorVal:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}

// dtypes maps the storage classes and torch dtypes a checkpoint may name to
// the dtype names used by the reader.
var dtypes = map[string]string{
	"FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16",
	"DoubleStorage": "F64", "LongStorage": "I64", "IntStorage": "I32",
	"ByteStorage": "U8", "CharStorage": "I8", "BoolStorage": "BOOL",
	"float32": "F32", "float": "F32", "float16": "F16", "half": "F16",
	"bfloat16": "BF16", "float64": "F64", "double": "F64", "int64": "I64",
	"long": "I64", "int32": "I32", "int": "I32", "uint8": "U8", "int8": "I8",
	"bool": "BOOL",
}

// allowedGlobal reports whether module.name is on the allow-list: the
// globals a state_dict pickle needs and nothing else.
func allowedGlobal(module, name string) bool {
	switch module {
	case "collections":
		return name == "OrderedDict"
	case "torch._utils":
		switch name {
		case "_rebuild_tensor_v2", "_rebuild_tensor", "_rebuild_parameter", "_rebuild_parameter_with_state":
			return true
		}
	case "torch._tensor":
		return name == "_rebuild_from_type_v2"
	case "torch.nn.parameter":
		return name == "Parameter"
	case "torch":
		return name == "Tensor" || dtypes[name] != ""
	}
	return false
}

// RefusedGlobalError is returned when a pickle names a global that is not
// on the allow-list (os.system, builtins.eval, ...).
type RefusedGlobalError struct{ Global string }

func (e *RefusedGlobalError) Error() string {
	return fmt.Sprintf("pickle asks for global %q, which a state_dict never needs; refusing", e.Global)
}

// opNames names the opcodes for error messages, including the refused ones.
var opNames = map[byte]string{
	'(': "MARK", '.': "STOP", '0': "POP", '1': "POP_MARK", '2': "DUP", 'F': "FLOAT",
	'I': "INT", 'J': "BININT", 'K': "BININT1", 'L': "LONG", 'M': "BININT2", 'N': "NONE",
	'P': "PERSID", 'Q': "BINPERSID", 'R': "REDUCE", 'S': "STRING", 'T': "BINSTRING",
	'U': "SHORT_BINSTRING", 'V': "UNICODE", 'X': "BINUNICODE", 'a': "APPEND", 'b': "BUILD",
	'c': "GLOBAL", 'd': "DICT", '}': "EMPTY_DICT", 'e': "APPENDS", 'g': "GET", 'h': "BINGET",
	'i': "INST", 'j': "LONG_BINGET", 'l': "LIST", ']': "EMPTY_LIST", 'o': "OBJ", 'p': "PUT",
	'q': "BINPUT", 'r': "LONG_BINPUT", 's': "SETITEM", 't': "TUPLE", ')': "EMPTY_TUPLE",
	'u': "SETITEMS", 'G': "BINFLOAT", 0x80: "PROTO", 0x81: "NEWOBJ", 0x82: "EXT1",
	0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3",
	0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8a: "LONG1", 0x8b: "LONG4", 'B': "BINBYTES",
	'C': "SHORT_BINBYTES", 0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8", 0x8e: "BINBYTES8",
	0x8f: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX",
	0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME", 0x96: "BYTEARRAY8",
	0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
}

// unpickler is a restricted pickle machine: the opcodes a state_dict uses,
// allow-listed globals only, persistent ids resolved by persistentLoad.
type unpickler struct {
	data  []byte
	pos   int
	stack []any
	marks []int
	memo  map[uint32]any
	items int // containers built and items put into them so far, against MaxItems
	// persistentLoad turns a BINPERSID id into a value (a storage).
	persistentLoad func(pid any) (any, error)
}

// unpickle runs the pickle in data and returns the object it builds.
func unpickle(data []byte, persistentLoad func(any) (any, error)) (any, error) {
	if len(data) > MaxPickleBytes {
		return nil, fmt.Errorf("pickle of %d bytes exceeds the %d-byte limit", len(data), MaxPickleBytes)
	}
	u := &unpickler{data: data, memo: map[uint32]any{}, persistentLoad: persistentLoad}
	v, err := u.run()
	if err != nil {
		var rg *RefusedGlobalError
		if errors.As(err, &rg) {
			return nil, err
		}
		return nil, fmt.Errorf("pickle offset %d: %w", u.pos, err)
	}
	return v, nil
}

var errTruncated = errors.New("pickle ends early")

func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, errTruncated
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

// readLen reads an n-byte little-endian length and checks it against the
// limit and the bytes left.
func (u *unpickler) readLen(n int, what string) (int, error) {
	b, err := u.read(n)
	if err != nil {
		return 0, err
	}
	var l uint64
	for i := n - 1; i >= 0; i-- {
		l = l<<8 | uint64(b[i])
	}
	if l > MaxString {
		return 0, fmt.Errorf("%s of %d bytes exceeds the %d-byte limit", what, l, MaxString)
	}
	if l > uint64(len(u.data)-u.pos) {
		return 0, errTruncated
	}
	return int(l), nil
}

// readLine reads a GLOBAL operand line (at most 256 bytes).
func (u *unpickler) readLine() (string, error) {
	rest := u.data[u.pos:]
	if len(rest) > 257 {
		rest = rest[:257]
	}
	i := strings.IndexByte(string(rest), '\n')
	if i < 0 {
		return "", errors.New("GLOBAL operand is not a short line")
	}
	u.pos += i + 1
	return string(rest[:i]), nil
}

func (u *unpickler) push(v any) error {
	if len(u.stack) >= MaxStack {
		return fmt.Errorf("stack deeper than %d", MaxStack)
	}
	u.stack = append(u.stack, v)
	return nil
}

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 || len(u.marks) > 0 && len(u.stack) <= u.marks[len(u.marks)-1] {
		return nil, errors.New("stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 || len(u.marks) > 0 && len(u.stack) <= u.marks[len(u.marks)-1] {
		return nil, errors.New("stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark pops everything above the last MARK, and the mark.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, errors.New("no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := make([]any, len(u.stack)-m)
	copy(items, u.stack[m:])
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) memoPut(i uint32) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	if _, ok := u.memo[i]; !ok && len(u.memo) >= MaxMemo {
		return fmt.Errorf("memo larger than %d entries", MaxMemo)
	}
	u.memo[i] = v
	return nil
}

func (u *unpickler) memoGet(i uint32) error {
	v, ok := u.memo[i]
	if !ok {
		return fmt.Errorf("memo entry %d is not set", i)
	}
	return u.push(v)
}

// global resolves a GLOBAL / STACK_GLOBAL against the allow-list.
func global(module, name string) (any, error) {
	if !allowedGlobal(module, name) {
		if !utf8.ValidString(module) || !utf8.ValidString(name) {
			return nil, &RefusedGlobalError{Global: fmt.Sprintf("%q.%q", module, name)}
		}
		return nil, &RefusedGlobalError{Global: module + "." + name}
	}
	return pyGlobal{module, name}, nil
}

func (u *unpickler) run() (any, error) {
	for {
		if u.pos >= len(u.data) {
			return nil, errors.New("pickle ends without STOP")
		}
		op := u.data[u.pos]
		u.pos++
		if err := u.step(op); err != nil {
			if err == errStop {
				v, err := u.pop()
				if err != nil {
					return nil, err
				}
				return v, nil
			}
			name := opNames[op]
			if name == "" {
				name = fmt.Sprintf("0x%02x", op)
			}
			var rg *RefusedGlobalError
			if errors.As(err, &rg) {
				return nil, err
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
}

var errStop = errors.New("STOP")

// step runs one opcode. The opcodes a state_dict uses are listed here by
// group, each group in a method of its own; any other opcode is refused,
// named when it is a known one.
func (u *unpickler) step(op byte) error {
	switch op {
	case 0x80, 0x95, '.': // PROTO, FRAME, STOP
		return u.control(op)
	case '(', '0', '1', '2': // MARK, POP, POP_MARK, DUP
		return u.stackOp(op)
	case 'q', 'r', 0x94, 'h', 'j': // BINPUT, LONG_BINPUT, MEMOIZE, BINGET, LONG_BINGET
		return u.memoOp(op)
	case 'X', 0x8c, 0x8d, 'B', 'C': // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINBYTES, SHORT_BINBYTES
		return u.text(op)
	case 'J', 'K', 'M', 0x8a, 0x8b, 'G', 0x88, 0x89, 'N': // the ints, BINFLOAT, NEWTRUE, NEWFALSE, NONE
		return u.number(op)
	case '}', ']', ')', 't', 0x85, 0x86, 0x87, 'l', 'd': // the constructors of dicts, lists, tuples
		return u.construct(op)
	case 's', 'u', 'a', 'e': // SETITEM, SETITEMS, APPEND, APPENDS
		return u.fill(op)
	case 'c', 0x93: // GLOBAL, STACK_GLOBAL
		return u.globalOp(op)
	case 'R', 0x81, 'b', 'Q': // REDUCE, NEWOBJ, BUILD, BINPERSID
		return u.object(op)
	}
	return refuse(op)
}

// refuse is the error for an opcode step does not run.
func refuse(op byte) error {
	if name, ok := opNames[op]; ok {
		return fmt.Errorf("opcode %s is not needed by a state_dict; refusing", name)
	}
	return fmt.Errorf("unknown opcode 0x%02x", op)
}

// control runs PROTO (protocols 2 to 5), FRAME (a length hint, skipped) and
// STOP.
func (u *unpickler) control(op byte) error {
	switch op {
	case 0x80: // PROTO
		b, err := u.read(1)
		if err != nil {
			return err
		}
		if b[0] < 2 || b[0] > 5 {
			return fmt.Errorf("protocol %d is not supported (want 2 to 5)", b[0])
		}
		return nil
	case 0x95: // FRAME: a length hint only
		_, err := u.read(8)
		return err
	case '.':
		return errStop
	}
	return refuse(op)
}

// stackOp runs the opcodes that move the stack and its marks: MARK (at most
// MaxMarks deep), POP (of an item, or of a mark with nothing above it),
// POP_MARK and DUP.
func (u *unpickler) stackOp(op byte) error {
	switch op {
	case '(': // MARK
		if len(u.marks) >= MaxMarks {
			return fmt.Errorf("MARKs nested deeper than %d", MaxMarks)
		}
		u.marks = append(u.marks, len(u.stack))
		return nil
	case '0': // POP
		if len(u.marks) > 0 && len(u.stack) == u.marks[len(u.marks)-1] {
			_, err := u.popMark()
			return err
		}
		_, err := u.pop()
		return err
	case '1': // POP_MARK
		_, err := u.popMark()
		return err
	case '2': // DUP
		v, err := u.top()
		if err != nil {
			return err
		}
		return u.push(v)
	}
	return refuse(op)
}

// memoOp runs the memo's opcodes: BINPUT and LONG_BINPUT (a 1- or 4-byte
// index), MEMOIZE (the next index), BINGET and LONG_BINGET.
func (u *unpickler) memoOp(op byte) error {
	if op == 0x94 { // MEMOIZE
		if len(u.memo) > math.MaxUint32 {
			return errors.New("memo full")
		}
		return u.memoPut(uint32(len(u.memo)))
	}
	w := 1
	if op == 'r' || op == 'j' {
		w = 4
	}
	b, err := u.read(w)
	if err != nil {
		return err
	}
	i := uint32(b[0])
	if w == 4 {
		i = binary.LittleEndian.Uint32(b)
	}
	if op == 'q' || op == 'r' {
		return u.memoPut(i)
	}
	return u.memoGet(i)
}

// text pushes a string (BINUNICODE, SHORT_BINUNICODE, BINUNICODE8: valid
// UTF-8 only) or a bytes value (BINBYTES, SHORT_BINBYTES), each at most
// MaxString bytes.
func (u *unpickler) text(op byte) error {
	switch op {
	case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
		w := map[byte]int{'X': 4, 0x8c: 1, 0x8d: 8}[op]
		n, err := u.readLen(w, "string")
		if err != nil {
			return err
		}
		b, _ := u.read(n)
		if !utf8.Valid(b) {
			return errors.New("string is not valid UTF-8")
		}
		return u.push(string(b))
	case 'B', 'C': // BINBYTES, SHORT_BINBYTES
		w := 4
		if op == 'C' {
			w = 1
		}
		n, err := u.readLen(w, "bytes")
		if err != nil {
			return err
		}
		b, _ := u.read(n)
		return u.push(append([]byte(nil), b...))
	}
	return refuse(op)
}

// number pushes an int (BININT, BININT1, BININT2, LONG1, LONG4), a float
// (BINFLOAT), True, False or None.
func (u *unpickler) number(op byte) error {
	switch op {
	case 'J': // BININT
		b, err := u.read(4)
		if err != nil {
			return err
		}
		return u.push(int64(int32(binary.LittleEndian.Uint32(b))))
	case 'K': // BININT1
		b, err := u.read(1)
		if err != nil {
			return err
		}
		return u.push(int64(b[0]))
	case 'M': // BININT2
		b, err := u.read(2)
		if err != nil {
			return err
		}
		return u.push(int64(binary.LittleEndian.Uint16(b)))
	case 0x8a, 0x8b: // LONG1, LONG4
		x, err := u.readLong(op)
		if err != nil {
			return err
		}
		return u.push(x)
	case 'G': // BINFLOAT, big-endian
		b, err := u.read(8)
		if err != nil {
			return err
		}
		return u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 0x88:
		return u.push(true)
	case 0x89:
		return u.push(false)
	case 'N':
		return u.push(nil)
	}
	return refuse(op)
}

// readLong reads the operand of LONG1 or LONG4: a 1- or 4-byte length, then
// that many bytes of a two's complement little-endian integer, refused when
// longer than 8 bytes (larger ints are not in a state_dict).
func (u *unpickler) readLong(op byte) (int64, error) {
	w := 1
	if op == 0x8b {
		w = 4
	}
	b, err := u.read(w)
	if err != nil {
		return 0, err
	}
	var n uint64
	for i := w - 1; i >= 0; i-- {
		n = n<<8 | uint64(b[i])
	}
	if n > 8 {
		return 0, fmt.Errorf("integer of %d bytes does not fit in 64 bits", n)
	}
	v, err := u.read(int(n))
	if err != nil {
		return 0, err
	}
	var x int64
	if n > 0 {
		var ux uint64
		for i := int(n) - 1; i >= 0; i-- {
			ux = ux<<8 | uint64(v[i])
		}
		// Sign-extend from n bytes.
		shift := 64 - 8*n
		x = int64(ux<<shift) >> shift
	}
	return x, nil
}

// construct builds a container: an empty dict, list or tuple, a tuple of
// the items above the mark or of the top one to three items, a list or a
// dict of the items above the mark. Each counts against MaxItems.
func (u *unpickler) construct(op byte) error {
	switch op {
	case '}': // EMPTY_DICT
		return u.pushContainer(0, &pyDict{})
	case ']': // EMPTY_LIST
		return u.pushContainer(0, &pyList{})
	case ')': // EMPTY_TUPLE
		return u.pushContainer(0, &pyTuple{})
	case 0x85, 0x86, 0x87: // TUPLE1..3
		n := int(op-0x85) + 1
		if err := u.addItems(n + 1); err != nil {
			return err
		}
		items := make([]any, n)
		for i := n - 1; i >= 0; i-- {
			v, err := u.pop()
			if err != nil {
				return err
			}
			items[i] = v
		}
		return u.push(&pyTuple{items})
	}
	items, err := u.popMark()
	if err != nil {
		return err
	}
	switch op {
	case 't': // TUPLE
		return u.pushContainer(len(items), &pyTuple{items})
	case 'l': // LIST
		return u.pushContainer(len(items), &pyList{items})
	case 'd': // DICT
		return u.pushDict(items)
	}
	return refuse(op)
}

// fill puts items into the dict or list below them: SETITEM (one pair),
// SETITEMS (the pairs above the mark), APPEND (one item), APPENDS (the
// items above the mark).
func (u *unpickler) fill(op byte) error {
	switch op {
	case 's': // SETITEM
		v, err := u.pop()
		if err != nil {
			return err
		}
		k, err := u.pop()
		if err != nil {
			return err
		}
		return u.setItems([]any{k, v})
	case 'a': // APPEND
		v, err := u.pop()
		if err != nil {
			return err
		}
		return u.appendItems([]any{v})
	}
	items, err := u.popMark()
	if err != nil {
		return err
	}
	switch op {
	case 'u': // SETITEMS
		return u.setItems(items)
	case 'e': // APPENDS
		return u.appendItems(items)
	}
	return refuse(op)
}

// globalOp pushes an allow-listed global named by GLOBAL's two operand
// lines or by STACK_GLOBAL's two strings on the stack.
func (u *unpickler) globalOp(op byte) error {
	var module, name string
	switch op {
	case 'c': // GLOBAL "module\nname\n"
		var err error
		if module, err = u.readLine(); err != nil {
			return err
		}
		if name, err = u.readLine(); err != nil {
			return err
		}
	case 0x93: // STACK_GLOBAL
		nv, err := u.pop()
		if err != nil {
			return err
		}
		mv, err := u.pop()
		if err != nil {
			return err
		}
		var ok1, ok2 bool
		module, ok1 = mv.(string)
		name, ok2 = nv.(string)
		if !ok1 || !ok2 {
			return fmt.Errorf("operands are %s and %s, not strings", typeName(mv), typeName(nv))
		}
	default:
		return refuse(op)
	}
	g, err := global(module, name)
	if err != nil {
		return err
	}
	return u.push(g)
}

// object runs the opcodes that make objects other than containers: REDUCE
// (an allow-listed callable applied to a tuple), NEWOBJ (an OrderedDict
// only), BUILD (state ignored, on dicts and tensors only) and BINPERSID (a
// storage, through persistentLoad).
func (u *unpickler) object(op byte) error {
	switch op {
	case 'R': // REDUCE
		args, err := u.pop()
		if err != nil {
			return err
		}
		fn, err := u.pop()
		if err != nil {
			return err
		}
		v, err := call(fn, args)
		if err != nil {
			return err
		}
		if err := u.addItems(cost(v)); err != nil {
			return err
		}
		return u.push(v)
	case 0x81: // NEWOBJ: cls.__new__(cls, *args)
		args, err := u.pop()
		if err != nil {
			return err
		}
		cls, err := u.pop()
		if err != nil {
			return err
		}
		if _, ok := args.(*pyTuple); !ok {
			return fmt.Errorf("arguments are a %s, not a tuple", typeName(args))
		}
		if g, ok := cls.(pyGlobal); ok && g.module == "collections" && g.name == "OrderedDict" {
			return u.pushContainer(0, &pyDict{})
		}
		return fmt.Errorf("cannot create an instance of %s", typeName(cls))
	case 'b': // BUILD: set an object's state
		if _, err := u.pop(); err != nil {
			return err
		}
		obj, err := u.top()
		if err != nil {
			return err
		}
		switch obj.(type) {
		case *pyDict, *tensorVal:
			// OrderedDict attributes (a state_dict's _metadata) and tensor
			// attributes carry no weights: ignored.
			return nil
		}
		return fmt.Errorf("cannot set the state of a %s", typeName(obj))
	case 'Q': // BINPERSID
		pid, err := u.pop()
		if err != nil {
			return err
		}
		if u.persistentLoad == nil {
			return errors.New("persistent id without a loader")
		}
		v, err := u.persistentLoad(pid)
		if err != nil {
			return err
		}
		if err := u.addItems(1); err != nil {
			return err
		}
		return u.push(v)
	}
	return refuse(op)
}

// addItems counts n containers built or items put into them against
// MaxItems.
func (u *unpickler) addItems(n int) error {
	u.items += n
	if u.items > MaxItems {
		return fmt.Errorf("more than %d containers and container items (the limit)", MaxItems)
	}
	return nil
}

// pushContainer counts a new container of n items (the container is one
// more) and pushes it.
func (u *unpickler) pushContainer(n int, c any) error {
	if err := u.addItems(n + 1); err != nil {
		return err
	}
	return u.push(c)
}

// cost is what a value made by REDUCE counts against MaxItems: a dict one
// plus two a pair (its items were counted in the list they came from, but
// the dict holds them again), a tensor view one plus its size and stride.
func cost(v any) int {
	switch v := v.(type) {
	case *pyDict:
		return 1 + 2*len(v.keys)
	case *tensorVal:
		return 1 + 2*len(v.shape)
	}
	return 1
}

func (u *unpickler) pushDict(items []any) error {
	if err := u.addItems(len(items) + 1); err != nil {
		return err
	}
	if len(items)%2 != 0 {
		return errors.New("odd number of items for a dict")
	}
	d := &pyDict{}
	for i := 0; i < len(items); i += 2 {
		if err := d.set(items[i], items[i+1]); err != nil {
			return err
		}
	}
	return u.push(d)
}

func (u *unpickler) setItems(items []any) error {
	if len(items)%2 != 0 {
		return errors.New("odd number of items for a dict")
	}
	obj, err := u.top()
	if err != nil {
		return err
	}
	d, ok := obj.(*pyDict)
	if !ok {
		return fmt.Errorf("cannot set items on a %s", typeName(obj))
	}
	if err := u.addItems(len(items)); err != nil {
		return err
	}
	for i := 0; i < len(items); i += 2 {
		if err := d.set(items[i], items[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func (u *unpickler) appendItems(items []any) error {
	obj, err := u.top()
	if err != nil {
		return err
	}
	l, ok := obj.(*pyList)
	if !ok {
		return fmt.Errorf("cannot append to a %s", typeName(obj))
	}
	if err := u.addItems(len(items)); err != nil {
		return err
	}
	l.items = append(l.items, items...)
	return nil
}

// call applies an allow-listed callable (REDUCE) to its argument tuple.
func call(fn, argv any) (any, error) {
	g, ok := fn.(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("cannot call a %s", typeName(fn))
	}
	at, ok := argv.(*pyTuple)
	if !ok {
		return nil, fmt.Errorf("%s: arguments are a %s, not a tuple", g, typeName(argv))
	}
	args := at.items
	nargs := func(lo, hi int) error {
		if len(args) < lo || len(args) > hi {
			return fmt.Errorf("%s: %d arguments, want %d to %d", g, len(args), lo, hi)
		}
		return nil
	}
	switch g.String() {
	case "collections.OrderedDict":
		if err := nargs(0, 1); err != nil {
			return nil, err
		}
		d := &pyDict{}
		if len(args) == 1 {
			// OrderedDict(iterable of pairs)
			var pairs []any
			switch it := args[0].(type) {
			case *pyList:
				pairs = it.items
			case *pyTuple:
				pairs = it.items
			default:
				return nil, fmt.Errorf("%s: argument is a %s, not a list of pairs", g, typeName(args[0]))
			}
			for _, p := range pairs {
				kv, ok := p.(*pyTuple)
				if !ok || len(kv.items) != 2 {
					return nil, fmt.Errorf("%s: item is not a (key, value) pair", g)
				}
				if err := d.set(kv.items[0], kv.items[1]); err != nil {
					return nil, err
				}
			}
		}
		return d, nil
	case "torch._utils._rebuild_tensor_v2":
		// (storage, storage_offset, size, stride, requires_grad,
		// backward_hooks[, metadata])
		if err := nargs(4, 7); err != nil {
			return nil, err
		}
		return rebuildTensor(g, args[:4])
	case "torch._utils._rebuild_tensor":
		if err := nargs(4, 4); err != nil {
			return nil, err
		}
		return rebuildTensor(g, args)
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		// (data, requires_grad, backward_hooks[, state])
		if err := nargs(3, 4); err != nil {
			return nil, err
		}
		if _, ok := args[0].(*tensorVal); !ok {
			return nil, fmt.Errorf("%s: data is a %s, not a tensor", g, typeName(args[0]))
		}
		return args[0], nil
	case "torch._tensor._rebuild_from_type_v2":
		// (func, new_type, args, state): func(*args), as a plain tensor or
		// Parameter.
		if err := nargs(4, 4); err != nil {
			return nil, err
		}
		if t, ok := args[1].(pyGlobal); !ok || (t.String() != "torch.Tensor" && t.String() != "torch.nn.parameter.Parameter") {
			return nil, fmt.Errorf("%s: type is a %s, not torch.Tensor or Parameter", g, typeName(args[1]))
		}
		if inner, ok := args[0].(pyGlobal); !ok || inner.module != "torch._utils" {
			return nil, fmt.Errorf("%s: function is a %s, not a torch._utils rebuild function", g, typeName(args[0]))
		}
		return call(args[0], args[2])
	}
	return nil, fmt.Errorf("%s is not callable here", g)
}

// rebuildTensor checks (storage, storage_offset, size, stride) and makes a
// tensor view of the storage: rank and dims within limits, non-negative
// strides, every addressed element inside the storage.
func rebuildTensor(g pyGlobal, args []any) (*tensorVal, error) {
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("%s: storage is a %s", g, typeName(args[0]))
	}
	off, ok := args[1].(int64)
	if !ok || off < 0 {
		return nil, fmt.Errorf("%s: bad storage offset %v", g, args[1])
	}
	size, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("%s: size: %w", g, err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("%s: stride: %w", g, err)
	}
	if len(size) > MaxRank {
		return nil, fmt.Errorf("%s: rank %d exceeds the limit of %d", g, len(size), MaxRank)
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("%s: size %v and stride %v differ in rank", g, size, stride)
	}
	shape := make([]int, len(size))
	numel := int64(1)
	last := off // index of the last addressed element
	for i, d := range size {
		if d < 0 || stride[i] < 0 {
			return nil, fmt.Errorf("%s: negative size or stride in %v / %v", g, size, stride)
		}
		if d != 0 && numel > math.MaxInt64/d {
			return nil, fmt.Errorf("%s: size %v overflows", g, size)
		}
		numel *= d
		shape[i] = int(d)
	}
	if numel > 0 {
		for i, d := range size {
			if d > 1 && stride[i] > (math.MaxInt64-last)/(d-1) {
				return nil, fmt.Errorf("%s: size %v with stride %v overflows", g, size, stride)
			}
			last += (d - 1) * stride[i]
		}
		if last >= st.numel {
			return nil, fmt.Errorf("%s: view (offset %d, size %v, stride %v) reaches element %d of a %d-element storage",
				g, off, size, stride, last, st.numel)
		}
	}
	return &tensorVal{storage: st, offset: off, shape: shape, stride: stride}, nil
}

// intTuple reads a tuple of ints (a torch.Size or stride).
func intTuple(v any) ([]int64, error) {
	t, ok := v.(*pyTuple)
	if !ok {
		return nil, fmt.Errorf("a %s, not a tuple", typeName(v))
	}
	out := make([]int64, len(t.items))
	for i, it := range t.items {
		n, ok := it.(int64)
		if !ok {
			return nil, fmt.Errorf("item %d is a %s, not an int", i, typeName(it))
		}
		out[i] = n
	}
	return out, nil
}

// contiguous reports whether the view is row-major contiguous (dims of
// size 1 may have any stride, as in PyTorch).
func (t *tensorVal) contiguous() bool {
	want := int64(1)
	for i := len(t.shape) - 1; i >= 0; i-- {
		d := int64(t.shape[i])
		if d == 0 {
			return true
		}
		if d != 1 && t.stride[i] != want {
			return false
		}
		want *= d
	}
	return true
}

func (t *tensorVal) numel() int64 {
	n := int64(1)
	for _, d := range t.shape {
		n *= int64(d)
	}
	return n
}
