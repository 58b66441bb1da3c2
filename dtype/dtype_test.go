package dtype

import (
	"math"
	"strings"
	"testing"
)

func TestNamesAndOrder(t *testing.T) {
	// The Rust crate's enum order and bit sizes (go-stack.md §1.6).
	want := []struct {
		name string
		bits int
	}{
		{"BOOL", 8}, {"F4", 4}, {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"U8", 8}, {"I8", 8},
		{"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8},
		{"I16", 16}, {"U16", 16}, {"F16", 16}, {"BF16", 16}, {"I32", 32}, {"U32", 32}, {"F32", 32},
		{"C64", 64}, {"F64", 64}, {"I64", 64}, {"U64", 64},
	}
	if len(want) != Count {
		t.Fatalf("Count = %d, want %d", Count, len(want))
	}
	for i, w := range want {
		d, err := Parse(w.name)
		if err != nil {
			t.Fatalf("Parse(%q): %v", w.name, err)
		}
		if int(d) != i+1 {
			t.Errorf("Parse(%q) = %d, want enum position %d", w.name, d, i+1)
		}
		if d.String() != w.name || d.BitSize() != w.bits || !d.Valid() {
			t.Errorf("%q: String=%q BitSize=%d Valid=%v", w.name, d.String(), d.BitSize(), d.Valid())
		}
	}
	for _, bad := range []string{"", "F7", "f16", "FLOAT", "F8_E4M3FN", " F16", "INVALID"} {
		if d, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %v, want error", bad, d)
		}
	}
	if Invalid.Valid() || Invalid.BitSize() != 0 || DType(200).String() != "DType(200)" || DType(23).Valid() {
		t.Error("invalid dtype handling")
	}
	// Canonical order examples: larger alignment sorts later in the enum.
	if !(F32 > F16 && F16 > U8 && BF16 > F16 && F8E4M3 > F8E5M2 && U64 > I64) {
		t.Error("enum order does not follow the Rust crate")
	}
}

func TestAlignmentAndFloat(t *testing.T) {
	tests := []struct {
		d        DType
		align    int
		isFloat  bool
		canDecod bool
	}{
		{Bool, 1, false, true}, {F4, 1, false, false}, {F6E2M3, 1, false, false},
		{U8, 1, false, true}, {F8E4M3, 1, true, true}, {F8E5M2, 1, true, true}, {F8E8M0, 1, false, true},
		{F16, 2, true, true}, {BF16, 2, true, true}, {I16, 2, false, true},
		{F32, 4, true, true}, {U32, 4, false, true}, {C64, 8, false, false},
		{F64, 8, true, true}, {I64, 8, false, true}, {Invalid, 0, false, false},
	}
	for _, tc := range tests {
		if tc.d.Alignment() != tc.align || tc.d.IsFloat() != tc.isFloat || tc.d.CanDecode() != tc.canDecod {
			t.Errorf("%v: Alignment=%d IsFloat=%v CanDecode=%v", tc.d, tc.d.Alignment(), tc.d.IsFloat(), tc.d.CanDecode())
		}
	}
}

func TestParseUser(t *testing.T) {
	tests := []struct {
		in   string
		want DType
	}{
		{"fp32", F32}, {"float32", F32}, {"float", F32}, {"f32", F32}, {"F32", F32},
		{"fp16", F16}, {"float16", F16}, {"half", F16}, {"f16", F16}, {"FP16", F16},
		{"bf16", BF16}, {"bfloat16", BF16}, {"BF16", BF16},
		{"fp8", F8E4M3}, {"fp8_e4m3fn", F8E4M3}, {"f8_e4m3", F8E4M3}, {"e4m3", F8E4M3}, {"F8_E4M3", F8E4M3},
		{"fp8_e5m2", F8E5M2}, {"f8_e5m2", F8E5M2}, {"e5m2", F8E5M2},
		{"fp64", F64}, {"U8", U8}, {"i64", I64}, {"F8_E4M3FNUZ", F8E4M3FNUZ},
	}
	for _, tc := range tests {
		got, err := ParseUser(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseUser(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "fp7", "int", "float8"} {
		if _, err := ParseUser(bad); err == nil || !strings.Contains(err.Error(), "unknown dtype") {
			t.Errorf("ParseUser(%q): err = %v", bad, err)
		}
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		d     DType
		numel int64
		want  int64
		err   string
	}{
		{F32, 0, 0, ""}, {F32, 3, 12, ""}, {F16, 5, 10, ""}, {F64, 2, 16, ""}, {U8, 7, 7, ""},
		{F4, 2, 1, ""}, {F4, 4, 2, ""}, {F4, 3, 0, "not a whole number of bytes"},
		{F6E2M3, 4, 3, ""}, {F6E3M2, 2, 0, "not a whole number of bytes"},
		{F32, -1, 0, "negative"}, {F64, math.MaxInt64 / 32, 0, "overflow"},
		{U8, math.MaxInt64 / 8, math.MaxInt64 / 8, ""}, // numel*8 bits still fits in int64
		{Invalid, 1, 0, "invalid dtype"},
	}
	for _, tc := range tests {
		got, err := Size(tc.d, tc.numel)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Size(%v,%d) err = %v, want %q", tc.d, tc.numel, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Size(%v,%d) = %d, %v; want %d", tc.d, tc.numel, got, err, tc.want)
		}
	}
}
