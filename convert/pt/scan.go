package pt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Limits applied to every pickle before it reaches the unpickler.
const (
	// maxPickleBytes caps the size of one pickle stream (data.pkl).
	maxPickleBytes = 64 << 20
	// maxStackDepth caps the number of values simultaneously on the
	// unpickler stack (all mark frames together).
	maxStackDepth = 1 << 20
	// maxMarkDepth caps the nesting of MARK frames.
	maxMarkDepth = 1 << 16
	// maxHeapEstimate caps the estimated heap the unpickler may allocate
	// while building the object graph (see opcode costs in scanPickle).
	maxHeapEstimate = 2 << 30
	// maxTensors caps the number of tensors one checkpoint may declare.
	maxTensors = 1_000_000
)

// Pickle opcodes (see CPython Lib/pickletools.py for the definitions).
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opFloat          = 'F'
	opInt            = 'I'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opLong           = 'L'
	opBinInt2        = 'M'
	opNone           = 'N'
	opPersID         = 'P'
	opBinPersID      = 'Q'
	opReduce         = 'R'
	opString         = 'S'
	opBinString      = 'T'
	opShortBinString = 'U'
	opUnicode        = 'V'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opDict           = 'd'
	opEmptyDict      = '}'
	opAppends        = 'e'
	opGet            = 'g'
	opBinGet         = 'h'
	opInst           = 'i'
	opLongBinGet     = 'j'
	opList           = 'l'
	opEmptyList      = ']'
	opObj            = 'o'
	opPut            = 'p'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opSetItems       = 'u'
	opBinFloat       = 'G'
	opProto          = 0x80
	opNewObj         = 0x81
	opExt1           = 0x82
	opExt2           = 0x83
	opExt4           = 0x84
	opTuple1         = 0x85
	opTuple2         = 0x86
	opTuple3         = 0x87
	opNewTrue        = 0x88
	opNewFalse       = 0x89
	opLong1          = 0x8a
	opLong4          = 0x8b
	opBinBytes       = 'B'
	opShortBinBytes  = 'C'
	opShortBinUni    = 0x8c
	opBinUnicode8    = 0x8d
	opBinBytes8      = 0x8e
	opEmptySet       = 0x8f
	opAddItems       = 0x90
	opFrozenSet      = 0x91
	opNewObjEx       = 0x92
	opStackGlobal    = 0x93
	opMemoize        = 0x94
	opFrame          = 0x95
	opByteArray8     = 0x96
	opNextBuffer     = 0x97
	opReadOnlyBuffer = 0x98
)

// scanError is a problem found by the pre-scan; it is reported as is.
type scanError struct{ msg string }

func (e *scanError) Error() string { return e.msg }

func scanErrf(format string, args ...any) error {
	return &scanError{msg: fmt.Sprintf(format, args...)}
}

// slot is the pre-scan's shadow of one unpickler stack value: only string
// values are tracked (they name STACK_GLOBAL targets).
type slot struct {
	s     string
	isStr bool
}

// scanner walks a pickle stream opcode by opcode without building any
// object. It checks that every length field fits the remaining input, that
// the stack and mark structure is well formed (so the unpickler never sees
// a stack underflow or an odd key/value list), that every global reference
// is on the allow-list, and it keeps an estimate of the heap the unpickler
// will allocate.
type scanner struct {
	r     io.ByteReader
	n     int64 // bytes consumed
	limit int64
	buf   []byte // copy of the consumed stream (handed to the unpickler)

	stack []slot
	marks []int
	memo  map[int]*string // shadow memo: nil value for non-string entries
	heap  int64
}

func (s *scanner) readByte() (byte, error) {
	if s.n >= s.limit {
		if s.limit < maxPickleBytes {
			return 0, scanErrf("pickle truncated at byte %d", s.n)
		}
		return 0, scanErrf("pickle larger than %d MiB", s.limit>>20)
	}
	b, err := s.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, scanErrf("pickle truncated at byte %d", s.n)
		}
		return 0, err
	}
	s.n++
	s.buf = append(s.buf, b)
	return b, nil
}

func (s *scanner) read(n int64) ([]byte, error) {
	if n < 0 || n > s.limit-s.n {
		return nil, scanErrf("pickle field of %d bytes at byte %d exceeds the pickle size limit", n, s.n)
	}
	start := len(s.buf)
	for i := int64(0); i < n; i++ {
		if _, err := s.readByte(); err != nil {
			return nil, err
		}
	}
	return s.buf[start:], nil
}

func (s *scanner) readLine() (string, error) {
	start := len(s.buf)
	for {
		b, err := s.readByte()
		if err != nil {
			return "", err
		}
		if b == '\n' {
			return string(s.buf[start : len(s.buf)-1]), nil
		}
	}
}

func (s *scanner) push(v slot) error {
	if len(s.stack) >= maxStackDepth {
		return scanErrf("pickle stack deeper than %d values", maxStackDepth)
	}
	s.stack = append(s.stack, v)
	return nil
}

func (s *scanner) pushOther() error { return s.push(slot{}) }

// need checks that the current mark frame holds at least k values.
func (s *scanner) need(op byte, k int) error {
	base := 0
	if len(s.marks) > 0 {
		base = s.marks[len(s.marks)-1]
	}
	if len(s.stack)-base < k {
		return scanErrf("malformed pickle: opcode 0x%02x at byte %d needs %d stack values", op, s.n-1, k)
	}
	return nil
}

func (s *scanner) pop(k int) {
	s.stack = s.stack[:len(s.stack)-k]
}

// popMark removes the topmost mark frame and returns how many values it held.
func (s *scanner) popMark(op byte) (int, error) {
	if len(s.marks) == 0 {
		return 0, scanErrf("malformed pickle: opcode 0x%02x at byte %d without MARK", op, s.n-1)
	}
	base := s.marks[len(s.marks)-1]
	s.marks = s.marks[:len(s.marks)-1]
	k := len(s.stack) - base
	s.stack = s.stack[:base]
	return k, nil
}

func (s *scanner) memoPut(i int, v slot) {
	if v.isStr {
		str := v.s
		s.memo[i] = &str
	} else {
		s.memo[i] = nil
	}
}

func (s *scanner) memoGet(i int) slot {
	if p := s.memo[i]; p != nil {
		return slot{s: *p, isStr: true}
	}
	return slot{}
}

// scanPickle pre-scans one pickle stream read from r (at most limit bytes)
// and returns the exact bytes of the stream, up to and including STOP.
// check is called for every global the stream references.
func scanPickle(r io.ByteReader, limit int64, check func(module, name string) error) ([]byte, error) {
	s := &scanner{r: r, limit: limit, memo: map[int]*string{}}
	for {
		op, err := s.readByte()
		if err != nil {
			return nil, err
		}
		cost := int64(16)
		switch op {
		case opProto:
			b, err := s.readByte()
			if err != nil {
				return nil, err
			}
			if b > 5 {
				return nil, scanErrf("unsupported pickle protocol %d", b)
			}
		case opFrame:
			b, err := s.read(8)
			if err != nil {
				return nil, err
			}
			n := binary.LittleEndian.Uint64(b)
			if n > uint64(s.limit-s.n) {
				return nil, scanErrf("pickle frame of %d bytes exceeds the pickle size limit", n)
			}
			cost += int64(n)
		case opStop:
			if err := s.need(op, 1); err != nil {
				return nil, err
			}
			if len(s.marks) != 0 || len(s.stack) != 1 {
				return nil, scanErrf("malformed pickle: STOP with %d values and %d marks on the stack", len(s.stack), len(s.marks))
			}
			return s.buf, nil
		case opMark:
			if len(s.marks) >= maxMarkDepth {
				return nil, scanErrf("pickle MARKs nested deeper than %d", maxMarkDepth)
			}
			s.marks = append(s.marks, len(s.stack))
			cost = 288
		case opPop:
			base := 0
			if len(s.marks) > 0 {
				base = s.marks[len(s.marks)-1]
			}
			if len(s.stack) > base {
				s.pop(1)
			} else if _, err := s.popMark(op); err != nil {
				return nil, err
			}
		case opPopMark:
			if _, err := s.popMark(op); err != nil {
				return nil, err
			}
		case opDup:
			if err := s.need(op, 1); err != nil {
				return nil, err
			}
			if err := s.push(s.stack[len(s.stack)-1]); err != nil {
				return nil, err
			}
		case opNone, opNewTrue, opNewFalse, opEmptyTuple:
			cost = 24
			err = s.pushOther()
		case opEmptyList:
			cost = 96
			err = s.pushOther()
		case opEmptyDict:
			cost = 160
			err = s.pushOther()
		case opEmptySet:
			cost = 200
			err = s.pushOther()
		case opBinInt1:
			_, err = s.read(1)
			if err == nil {
				err = s.pushOther()
			}
		case opBinInt2:
			_, err = s.read(2)
			if err == nil {
				err = s.pushOther()
			}
		case opBinInt:
			_, err = s.read(4)
			if err == nil {
				err = s.pushOther()
			}
		case opBinFloat:
			_, err = s.read(8)
			if err == nil {
				err = s.pushOther()
			}
		case opInt, opLong, opFloat:
			var line string
			line, err = s.readLine()
			if err == nil && len(line) == 0 {
				err = scanErrf("malformed pickle: empty number at byte %d", s.n)
			}
			cost += 48 + int64(len(line))
			if err == nil {
				err = s.pushOther()
			}
		case opLong1, opLong4:
			var n int64
			if op == opLong1 {
				var b []byte
				b, err = s.read(1)
				if err == nil {
					n = int64(b[0])
				}
			} else {
				var b []byte
				b, err = s.read(4)
				if err == nil {
					n = int64(int32(binary.LittleEndian.Uint32(b)))
				}
			}
			if err == nil && (n <= 0 || n > 4096) {
				err = scanErrf("unsupported pickle long of %d bytes at byte %d", n, s.n)
			}
			if err == nil {
				_, err = s.read(n)
			}
			cost += 2 * n
			if err == nil {
				err = s.pushOther()
			}
		case opString, opUnicode:
			var line string
			line, err = s.readLine()
			cost += 48 + 2*int64(len(line))
			if err == nil && op == opString && !quoted(line) {
				err = scanErrf("malformed pickle: unquoted STRING at byte %d", s.n)
			}
			if err == nil {
				v := line
				if op == opString {
					v = line[1 : len(line)-1]
				}
				err = s.push(slot{s: v, isStr: true})
			}
		case opShortBinString, opShortBinBytes, opShortBinUni,
			opBinString, opBinBytes, opBinUnicode,
			opBinUnicode8, opBinBytes8, opByteArray8:
			var n int64
			n, err = s.readLen(op)
			var b []byte
			if err == nil {
				b, err = s.read(n)
			}
			cost += 48 + 2*n
			if err == nil {
				switch op {
				case opShortBinString, opShortBinUni, opBinString, opBinUnicode, opBinUnicode8:
					err = s.push(slot{s: string(b), isStr: true})
				default:
					err = s.pushOther()
				}
			}
		case opGet, opBinGet, opLongBinGet:
			var i int
			i, err = s.memoIndex(op)
			if err == nil {
				if _, ok := s.memo[i]; !ok {
					err = scanErrf("malformed pickle: memo entry %d read before it is written", i)
				}
			}
			if err == nil {
				err = s.push(s.memoGet(i))
			}
		case opPut, opBinPut, opLongBinPut, opMemoize:
			i := len(s.memo)
			if op != opMemoize {
				i, err = s.memoIndex(op)
			}
			if err == nil {
				err = s.need(op, 1)
			}
			if err == nil {
				s.memoPut(i, s.stack[len(s.stack)-1])
			}
			cost = 96
		case opGlobal:
			var mod, name string
			mod, err = s.readLine()
			if err == nil {
				name, err = s.readLine()
			}
			if err == nil {
				err = check(mod, name)
			}
			cost += 64 + int64(len(mod)+len(name))
			if err == nil {
				err = s.pushOther()
			}
		case opStackGlobal:
			if err = s.need(op, 2); err == nil {
				m, n := s.stack[len(s.stack)-2], s.stack[len(s.stack)-1]
				if !m.isStr || !n.isStr {
					err = scanErrf("malformed pickle: STACK_GLOBAL at byte %d without string operands", s.n-1)
				} else {
					err = check(m.s, n.s)
				}
				if err == nil {
					s.pop(2)
					err = s.pushOther()
				}
			}
		case opInst:
			var mod, name string
			mod, err = s.readLine()
			if err == nil {
				name, err = s.readLine()
			}
			if err == nil {
				err = check(mod, name)
			}
			if err == nil {
				_, err = s.popMark(op)
			}
			cost = 256
			if err == nil {
				err = s.pushOther()
			}
		case opObj:
			var k int
			k, err = s.popMark(op)
			if err == nil && k < 1 {
				err = scanErrf("malformed pickle: OBJ without class at byte %d", s.n-1)
			}
			cost = 256
			if err == nil {
				err = s.pushOther()
			}
		case opPersID:
			var line string
			line, err = s.readLine()
			cost += 48 + int64(len(line))
			if err == nil {
				err = s.pushOther()
			}
		case opBinPersID, opTuple1, opReadOnlyBuffer:
			if err = s.need(op, 1); err == nil {
				s.pop(1)
				err = s.pushOther()
			}
			cost = 64
		case opTuple2, opAppend, opReduce, opBuild, opNewObj:
			if err = s.need(op, 2); err == nil {
				s.pop(2)
				err = s.pushOther()
			}
			cost = 256
		case opTuple3, opSetItem, opNewObjEx:
			if err = s.need(op, 3); err == nil {
				s.pop(3)
				err = s.pushOther()
			}
			cost = 256
		case opTuple, opList, opFrozenSet, opDict:
			var k int
			k, err = s.popMark(op)
			if err == nil && op == opDict && k%2 != 0 {
				err = scanErrf("malformed pickle: DICT with an odd number of values at byte %d", s.n-1)
			}
			cost = 64 + 32*int64(k)
			if err == nil {
				err = s.pushOther()
			}
		case opAppends, opSetItems, opAddItems:
			var k int
			k, err = s.popMark(op)
			if err == nil && op == opSetItems && k%2 != 0 {
				err = scanErrf("malformed pickle: SETITEMS with an odd number of values at byte %d", s.n-1)
			}
			if err == nil {
				err = s.need(op, 1)
			}
			if err == nil {
				s.pop(1)
				err = s.pushOther()
			}
			cost = 64 + 64*int64(k)
		case opExt1, opExt2, opExt4:
			return nil, scanErrf("unsupported pickle opcode EXT (extension registry) at byte %d", s.n-1)
		case opNextBuffer:
			return nil, scanErrf("unsupported pickle opcode NEXT_BUFFER (out-of-band data) at byte %d", s.n-1)
		default:
			return nil, scanErrf("unknown pickle opcode 0x%02x at byte %d", op, s.n-1)
		}
		if err != nil {
			return nil, err
		}
		s.heap += cost
		if s.heap > maxHeapEstimate {
			return nil, scanErrf("pickle would need more than %d MiB of memory to load", int64(maxHeapEstimate)>>20)
		}
	}
}

// readLen reads the length prefix of a counted string/bytes opcode.
func (s *scanner) readLen(op byte) (int64, error) {
	switch op {
	case opShortBinString, opShortBinBytes, opShortBinUni:
		b, err := s.read(1)
		if err != nil {
			return 0, err
		}
		return int64(b[0]), nil
	case opBinString, opBinBytes, opBinUnicode:
		b, err := s.read(4)
		if err != nil {
			return 0, err
		}
		if op == opBinString {
			n := int64(int32(binary.LittleEndian.Uint32(b)))
			if n < 0 {
				return 0, scanErrf("malformed pickle: negative string length at byte %d", s.n)
			}
			return n, nil
		}
		return int64(binary.LittleEndian.Uint32(b)), nil
	default:
		b, err := s.read(8)
		if err != nil {
			return 0, err
		}
		n := binary.LittleEndian.Uint64(b)
		if n > math.MaxInt64 {
			return 0, scanErrf("pickle field of %d bytes exceeds the pickle size limit", n)
		}
		return int64(n), nil
	}
}

// memoIndex reads the argument of a GET/PUT-family opcode the way the
// unpickler will.
func (s *scanner) memoIndex(op byte) (int, error) {
	switch op {
	case opBinGet, opBinPut:
		b, err := s.read(1)
		if err != nil {
			return 0, err
		}
		return int(b[0]), nil
	case opLongBinGet, opLongBinPut:
		b, err := s.read(4)
		if err != nil {
			return 0, err
		}
		return int(binary.LittleEndian.Uint32(b)), nil
	default:
		line, err := s.readLine()
		if err != nil {
			return 0, err
		}
		i := 0
		if len(line) == 0 || len(line) > 10 {
			return 0, scanErrf("malformed pickle: bad memo index %q", line)
		}
		for _, c := range line {
			if c < '0' || c > '9' {
				return 0, scanErrf("malformed pickle: bad memo index %q", line)
			}
			i = i*10 + int(c-'0')
		}
		return i, nil
	}
}

func quoted(b string) bool {
	return len(b) >= 2 && b[0] == b[len(b)-1] && (b[0] == '\'' || b[0] == '"')
}
