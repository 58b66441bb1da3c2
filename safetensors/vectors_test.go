package safetensors

import (
	"encoding/binary"
	"strings"
)

// mk builds a file: 8-byte little-endian length of hdr, hdr, then data.
func mk(hdr string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, data...)
}

// mkN builds a file with an explicit (possibly lying) header length.
func mkN(n uint64, rest string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

func zeros(n int) []byte { return make([]byte, n) }

// tensorJSON returns one tensor entry.
func tj(name, dt, shape, offs string) string {
	return `"` + name + `":{"dtype":"` + dt + `","shape":` + shape + `,"data_offsets":` + offs + `}`
}

type vector struct {
	name string
	file []byte
	want string // substring of the error; "" = must be accepted
}

// rustAttack is the Rust crate's "JSON attack" test: 10 tensors sharing
// the offsets [0,16].
func rustAttack() []byte {
	var parts []string
	for i := 0; i < 10; i++ {
		parts = append(parts, tj("weight_"+string(rune('0'+i)), "F32", "[2,2]", "[0,16]"))
	}
	return mk("{"+strings.Join(parts, ",")+"}", zeros(16))
}

func deepJSON(levels int) string {
	return `{"__metadata__":{"k":` + strings.Repeat("[", levels) + strings.Repeat("]", levels) + `}}`
}

// failVectors lists one malformed file per rejection rule of go-stack.md
// §1.7 (numbered), including the Rust crate's own test vectors (§1.6).
var failVectors = []vector{
	// 1. shorter than 8 bytes
	{"fail_empty_file", nil, "too small"},
	{"fail_7_bytes", []byte{2, 0, 0, 0, 0, 0, 0}, "too small"},
	// 2. header length over the 100 MB cap
	{"fail_header_too_large", mkN(100_000_001, "{}"), "header length (first 8 bytes) exceeds the limit of 100000000 bytes: not a safetensors file"},
	{"fail_rust_header_too_large", append([]byte{'<', 0, 0, 0, 0, 0xff, 0xff, 0xff}, `{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}`...), "exceeds the limit"},
	{"fail_header_length_max_uint64", mkN(1<<64-1, "{}"), "exceeds the limit"},
	// 3. 8+N past the end of the file
	{"fail_rust_header_length_past_eof", []byte{'<', 0, 0, 0, 0, 0, 0, 0}, "header length (first 8 bytes) exceeds the file size (8 bytes)"},
	{"fail_header_length_one_past_eof", mkN(3, "{}"), "header length (first 8 bytes) exceeds the file size (10 bytes)"},
	// 4. not UTF-8
	{"fail_rust_not_utf8", mkN(1, "\xff"), "header is not valid UTF-8"},
	{"fail_not_utf8_in_name", mk("{\"a\xc3\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", nil), "header is not valid UTF-8"},
	{"fail_overlong_utf8", mk("{\"__metadata__\":{\"k\":\"\xc0\xaf\"}}", nil), "header is not valid UTF-8"},
	// 5. not exactly one JSON object
	{"fail_rust_truncated_json", mkN(1, "{"), "header JSON"},
	{"fail_top_level_array", mk(`[]`, nil), "header is not a JSON object"},
	{"fail_top_level_null", mk(`null`, nil), "header is not a JSON object"},
	{"fail_top_level_string", mk(`"x"`, nil), "header is not a JSON object"},
	{"fail_top_level_number", mk(`1`, nil), "header is not a JSON object"},
	{"fail_empty_header", mk(``, nil), "header is empty"},
	{"fail_whitespace_header", mk("  \n", nil), "header is empty"},
	{"fail_trailing_garbage", mk(`{} x`, nil), "trailing data after the JSON object"},
	{"fail_two_objects", mk(`{}{}`, nil), "trailing data after the JSON object"},
	{"fail_nul_padding", mk("{}\x00\x00\x00\x00\x00\x00", nil), "NUL bytes after the JSON object"},
	{"fail_syntax_error", mk(`{"a" 1}`, nil), "header is not valid JSON"},
	{"fail_trailing_comma", mk(`{"__metadata__":{},}`, nil), "header is not valid JSON"},
	// 6. duplicate keys
	{"fail_duplicate_tensor", mk("{"+tj("x", "U8", "[1]", "[0,1]")+","+tj("x", "U8", "[1]", "[1,2]")+"}", zeros(2)), `duplicate tensor name "x"`},
	{"fail_duplicate_tensor_escaped", mk("{"+tj("ab", "U8", "[0]", "[0,0]")+","+tj(`a\u0062`, "U8", "[0]", "[0,0]")+"}", nil), `duplicate tensor name "ab"`},
	{"fail_duplicate_metadata_object", mk(`{"__metadata__":{},"__metadata__":{}}`, nil), `duplicate "__metadata__" key`},
	{"fail_duplicate_metadata_key", mk(`{"__metadata__":{"k":"1","k":"2"}}`, nil), `duplicate metadata key "k"`},
	{"fail_duplicate_key_in_tensor", mk(`{"x":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, zeros(1)), `tensor "x": duplicate key "dtype"`},
	{"fail_duplicate_shape_in_tensor", mk(`{"x":{"dtype":"U8","shape":[1],"shape":[1],"data_offsets":[0,1]}}`, zeros(1)), `tensor "x": duplicate key "shape"`},
	{"fail_duplicate_offsets_in_tensor", mk(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"data_offsets":[0,1]}}`, zeros(1)), `tensor "x": duplicate key "data_offsets"`},
	// 7. __metadata__ shape
	{"fail_metadata_not_object", mk(`{"__metadata__":"x"}`, nil), `"__metadata__" is a string, not an object`},
	{"fail_metadata_null", mk(`{"__metadata__":null}`, nil), `"__metadata__" is null, not an object`},
	{"fail_metadata_value_number", mk(`{"__metadata__":{"k":1}}`, nil), `metadata value for "k" is not a string`},
	{"fail_metadata_value_object", mk(`{"__metadata__":{"k":{"a":"b"}}}`, nil), `metadata value for "k" is not a string`},
	{"fail_metadata_value_null", mk(`{"__metadata__":{"k":null}}`, nil), `metadata value for "k" is not a string`},
	// 8. tensor entry shape
	{"fail_tensor_not_object", mk(`{"x":[1]}`, nil), `tensor "x" is an array, not an object`},
	{"fail_tensor_string", mk(`{"x":"U8"}`, nil), `tensor "x" is a string, not an object`},
	{"fail_missing_dtype", mk(`{"x":{"shape":[1],"data_offsets":[0,1]}}`, zeros(1)), `tensor "x": missing "dtype"`},
	{"fail_missing_shape", mk(`{"x":{"dtype":"U8","data_offsets":[0,1]}}`, zeros(1)), `tensor "x": missing "shape"`},
	{"fail_missing_offsets", mk(`{"x":{"dtype":"U8","shape":[1]}}`, zeros(1)), `tensor "x": missing "data_offsets"`},
	{"fail_extra_key", mk(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"foo":1}}`, zeros(1)), `tensor "x": unknown key "foo"`},
	// 9. dtype
	{"fail_unknown_dtype", mk("{"+tj("x", "F7", "[1]", "[0,1]")+"}", zeros(1)), `unknown dtype "F7" for tensor "x"`},
	{"fail_lowercase_dtype", mk("{"+tj("x", "f16", "[1]", "[0,2]")+"}", zeros(2)), `unknown dtype "f16" for tensor "x"`},
	{"fail_dtype_not_string", mk(`{"x":{"dtype":8,"shape":[1],"data_offsets":[0,1]}}`, zeros(1)), `tensor "x": dtype is the number 8, not a string`},
	// 10. shape
	{"fail_shape_float", mk("{"+tj("x", "U8", "[2.0]", "[0,2]")+"}", zeros(2)), `tensor "x": shape value 2.0 is not a non-negative integer`},
	{"fail_shape_exponent", mk("{"+tj("x", "U8", "[1e3]", "[0,1000]")+"}", zeros(1000)), `shape value 1e3 is not a non-negative integer`},
	{"fail_shape_negative", mk("{"+tj("x", "U8", "[-8]", "[0,0]")+"}", nil), `shape value -8 is not a non-negative integer`},
	{"fail_shape_string", mk("{"+tj("x", "U8", `["2"]`, "[0,2]")+"}", zeros(2)), `tensor "x": shape contains a string, not an integer`},
	{"fail_shape_nested", mk("{"+tj("x", "U8", `[[2]]`, "[0,2]")+"}", zeros(2)), `tensor "x": shape contains an array, not an integer`},
	{"fail_shape_not_array", mk("{"+tj("x", "U8", `2`, "[0,2]")+"}", zeros(2)), `tensor "x": shape is the number 2, not an array`},
	{"fail_shape_null", mk("{"+tj("x", "U8", `null`, "[0,2]")+"}", zeros(2)), `tensor "x": shape is null, not an array`},
	{"fail_rust_shape_too_large", mk("{"+tj("test", "I32", "[2,18446744073709551614]", "[0,16]")+"}", zeros(16)), `shape value 18446744073709551614 is too large`},
	// 11. data_offsets
	{"fail_offsets_one", mk("{"+tj("x", "U8", "[1]", "[1]")+"}", zeros(1)), `data_offsets has 1 elements, want 2`},
	{"fail_offsets_three", mk("{"+tj("x", "U8", "[1]", "[0,1,1]")+"}", zeros(1)), `data_offsets has more than 2 elements`},
	{"fail_offsets_negative", mk("{"+tj("x", "U8", "[1]", "[-1,0]")+"}", zeros(1)), `data_offsets value -1 is not a non-negative integer`},
	{"fail_offsets_float", mk("{"+tj("x", "U8", "[1]", "[0,1.0]")+"}", zeros(1)), `data_offsets value 1.0 is not a non-negative integer`},
	{"fail_offsets_object", mk("{"+tj("x", "U8", "[1]", `{"a":1}`)+"}", zeros(1)), `data_offsets is an object, not an array`},
	// 12. end < begin
	{"fail_end_before_begin", mk("{"+tj("x", "U8", "[0]", "[8,4]")+"}", zeros(8)), `tensor "x": data_offsets [8 4] end before they begin`},
	// 13. layout after sorting
	{"fail_first_begin_not_zero", mk("{"+tj("a", "F32", "[1]", "[4,8]")+"}", zeros(8)), `gap before tensor "a" (bytes 0-4 unused)`},
	{"fail_hole", mk("{"+tj("a", "F32", "[4]", "[0,16]")+","+tj("b", "F32", "[2]", "[24,32]")+"}", zeros(32)), `gap before tensor "b" (bytes 16-24 unused)`},
	{"fail_overlap", mk("{"+tj("b", "F32", "[2]", "[4,12]")+","+tj("a", "F32", "[2]", "[0,8]")+"}", zeros(12)), `tensors "a" and "b" overlap`},
	{"fail_identical_offsets", mk("{"+tj("a", "F32", "[2]", "[0,8]")+","+tj("b", "F32", "[2]", "[0,8]")+"}", zeros(8)), `tensors "a" and "b" overlap`},
	{"fail_rust_json_attack", rustAttack(), `overlap`},
	{"fail_empty_tensor_inside_other", mk("{"+tj("a", "F32", "[2]", "[0,8]")+","+tj("z", "F32", "[0]", "[4,4]")+"}", zeros(8)), `tensors "a" and "z" overlap`},
	// 14. overflow, sub-byte totals
	{"fail_rust_validation_overflow", mk("{"+tj("test", "I32", "[2,9223372036854775807]", "[0,16]")+"}", zeros(16)), `shape [2 9223372036854775807] overflows the element count`},
	{"fail_element_count_overflow", mk("{"+tj("x", "U8", "[4611686018427387904,4]", "[0,16]")+"}", zeros(16)), `overflows the element count`},
	{"fail_bit_count_overflow", mk("{"+tj("x", "F64", "[2305843009213693952]", "[0,16]")+"}", zeros(16)), `shape [2305843009213693952] of F64 overflows the byte count`},
	{"fail_rust_misaligned_f4", mk("{"+tj("x", "F4", "[3]", "[0,2]")+"}", zeros(2)), `tensor "x": shape [3] of F4 is 12 bits, not a whole number of bytes`},
	{"fail_misaligned_f6", mk("{"+tj("x", "F6_E3M2", "[2]", "[0,2]")+"}", zeros(2)), `shape [2] of F6_E3M2 is 12 bits`},
	// 15. size mismatch
	{"fail_rust_tensor_invalid_info", mk("{"+tj("test", "I32", "[2,2]", "[0,4]")+"}", zeros(4)), `tensor "test": shape [2 2] of I32 needs 16 bytes, offsets give 4`},
	{"fail_size_mismatch_f16", mk("{"+tj("a.weight", "F16", "[2,2]", "[0,6]")+"}", zeros(6)), `tensor "a.weight": shape [2 2] of F16 needs 8 bytes, offsets give 6`},
	// 16. data section must end at the end of the file
	{"fail_rust_polyglot", mk("{"+tj("test", "I32", "[2,2]", "[0,16]")+"}", append(zeros(16), "extra_bogus_data_for_polyglot_file"...)), `trailing 34 bytes after the last tensor`},
	{"fail_rust_truncated_data", mk("{"+tj("test", "I32", "[2,2]", "[0,16]")+"}", zeros(14)), `tensor "test" ends at data byte 16, past the end of the file (data section is 14 bytes)`},
	{"fail_data_without_tensors", mk(`{}`, zeros(12)), `trailing 12 bytes after the last tensor`},
	// 17. empty tensor name
	{"fail_empty_name", mk("{"+tj("", "U8", "[1]", "[0,1]")+"}", zeros(1)), `empty tensor name`},
	// 19. pathological JSON
	{"fail_deep_nesting", mk(deepJSON(70), nil), `nested deeper than 64 levels`},
}

// goodVectors must be accepted.
var goodVectors = []vector{
	{"good_empty_object", mk(`{}`, nil), ""},
	{"good_rust_whitespace_padding", mk("\r\n\t {}\r\n\t ", nil), ""},
	{"good_space_padding", mk(`{}      `, nil), ""},
	{"good_rust_zero_rank", mk("{"+tj("test", "I32", "[]", "[0,4]")+"}", zeros(4)), ""},
	{"good_rust_zero_size", mk("{"+tj("test", "I32", "[2,0]", "[0,0]")+"}", nil), ""},
	{"good_metadata_only", mk(`{"__metadata__":{"format":"pt","ss_network_dim":"16"}}`, nil), ""},
	{"good_empty_metadata", mk(`{"__metadata__":{}}`, nil), ""},
	{"good_reverse_order", mk("{"+tj("b", "F16", "[3]", "[8,14]")+`,"__metadata__":{"a":"b"},`+tj("a", "F32", "[2]", "[0,8]")+"}", zeros(14)), ""},
	{"good_f4_even", mk("{"+tj("x", "F4", "[2,3]", "[0,3]")+"}", zeros(3)), ""},
	{"good_f8", mk("{"+tj("w", "F8_E4M3", "[4]", "[0,4]")+","+tj("s", "F32", "[]", "[4,8]")+"}", zeros(8)), ""},
	{"good_unaligned_start", mk("{"+tj("a", "U8", "[3]", "[0,3]")+","+tj("b", "F32", "[1]", "[3,7]")+"}", zeros(7)), ""},
	{"good_zero_size_between", mk("{"+tj("a", "U8", "[2]", "[0,2]")+","+tj("e", "F16", "[0,5]", "[2,2]")+","+tj("f", "F16", "[0]", "[2,2]")+","+tj("b", "U8", "[1]", "[2,3]")+"}", zeros(3)), ""},
	{"good_unicode_escape_name", mk("{"+tj(`caf\u00e9.\"q\"`, "U8", "[1]", "[0,1]")+"}", zeros(1)), ""},
	{"good_brackets_in_strings", mk(`{"__metadata__":{"k":"`+strings.Repeat("[{", 100)+`\"[{"}}`, nil), ""},
}
