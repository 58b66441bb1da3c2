package safetensors

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/loratool/loratool/dtype"
)

// compareParsers runs ParseHeader and parseHeaderStdlib on file and reports
// any difference: verdict, error message, or parsed header.
func compareParsers(t testing.TB, file []byte) (accepted bool) {
	t.Helper()
	size := int64(len(file))
	h1, err1 := ParseHeader(file, size)
	h2, err2 := parseHeaderStdlib(file, size)
	switch {
	case err1 != nil && err2 != nil:
		if err1.Error() != err2.Error() {
			t.Fatalf("error messages differ for %q:\nnew: %v\nold: %v", file, err1, err2)
		}
		if _, ok := err1.(*Error); !ok {
			t.Fatalf("error %T is not *Error", err1)
		}
		return false
	case err1 != nil:
		t.Fatalf("new parser rejects what the old accepts: %v\n%q", err1, file)
	case err2 != nil:
		t.Fatalf("new parser accepts what the old rejects (%v):\n%q", err2, file)
	}
	if !reflect.DeepEqual(h1, h2) {
		t.Fatalf("parsed headers differ for %q:\nnew: %+v\nold: %+v", file, h1, h2)
	}
	for i := range h1.Tensors {
		if s := h1.Tensors[i].Shape; s == nil || len(s) != cap(s) {
			t.Fatalf("tensor %q: shape %v has len %d, cap %d (nil: %v)", h1.Tensors[i].Name, s, len(s), cap(s), s == nil)
		}
	}
	return true
}

// TestParseHeaderDifferential compares the new parser with the original
// encoding/json-based one on every test vector, every truncation of every
// vector's header, generated valid headers and mutations of them.
func TestParseHeaderDifferential(t *testing.T) {
	all := append(append([]vector{}, failVectors...), goodVectors...)
	for _, v := range all {
		compareParsers(t, v.file)
	}
	// Every truncation and every single-byte deletion of each vector's
	// JSON, with the length prefix adjusted.
	n := 0
	for _, v := range all {
		if len(v.file) < 8 {
			continue
		}
		n64 := binary.LittleEndian.Uint64(v.file)
		if n64 > uint64(len(v.file)-8) {
			continue
		}
		hdrLen := int(n64)
		hdr, data := string(v.file[8:8+hdrLen]), v.file[8+hdrLen:]
		for i := 0; i <= len(hdr); i++ {
			compareParsers(t, mk(hdr[:i], data))
			if i < len(hdr) {
				compareParsers(t, mk(hdr[:i]+hdr[i+1:], data))
			}
			n += 2
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	accepted, total := 0, 0
	for i := 0; i < 3000; i++ {
		file := genHeader(rng)
		if compareParsers(t, file) {
			accepted++
		}
		total++
		for j := 0; j < 10; j++ {
			compareParsers(t, mutate(rng, file))
			n++
		}
	}
	if accepted < total*9/10 {
		t.Errorf("only %d of %d generated headers accepted", accepted, total)
	}
	// Mostly metadata: the preallocated arrays are clipped.
	big := mk(`{"__metadata__":{"k":"`+strings.Repeat("x", 100_000)+`"},`+tj("a", "F32", "[2,3]", "[0,24]")+","+tj("b", "U8", "[]", "[24,25]")+"}", zeros(25))
	if compareParsers(t, big) {
		h, _ := ParseHeader(big, int64(len(big)))
		if cap(h.Tensors) != 2 || cap(h.Tensors[0].Shape) != 2 || cap(h.Tensors[1].Shape) != 0 {
			t.Errorf("metadata-heavy header: capacities %d, %d, %d", cap(h.Tensors), cap(h.Tensors[0].Shape), cap(h.Tensors[1].Shape))
		}
	} else {
		t.Error("metadata-heavy header rejected")
	}
	hdr, fileSize := loraHeaderFile(t)
	h1, err1 := ParseHeader(hdr, fileSize)
	h2, err2 := parseHeaderStdlib(hdr, fileSize)
	if err1 != nil || err2 != nil || !reflect.DeepEqual(h1, h2) {
		t.Fatalf("LoRA header: %v, %v, equal: %v", err1, err2, reflect.DeepEqual(h1, h2))
	}
	t.Logf("%d vectors, %d truncations/deletions/mutations, %d generated headers (%d accepted)", len(all), n, total, accepted)
}

var genDTypes = []string{"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "F4", "F6_E2M3"}

// genString returns the JSON text (without quotes) of a random string with
// escapes, raw non-ASCII UTF-8 and surrogate pairs (valid and not).
func genString(rng *rand.Rand, maxParts int) string {
	parts := []string{"lora_unet", "_down_blocks_", "0", "1", ".", "weight", "a", "b", "ss_", "é", "日本", "😀",
		`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u00e9`, `\u00E9`, `\u0041`, `\u0000`, `\u001f`,
		`\ud83d\ude00`, `\uD83D\uDE00`, `\ud800`, `\udc00`, `\ud800\u0041`, `\ud800\ud800`, `\udbff\udfff`,
		`\ud800x`, `\u005c`, `\u0022`, " ", "[", "{", "]", "}", ":", ","}
	var b strings.Builder
	for k := rng.IntN(maxParts + 1); k > 0; k-- {
		b.WriteString(parts[rng.IntN(len(parts))])
	}
	return b.String()
}

func genWS(rng *rand.Rand) string {
	return []string{"", "", "", " ", "\n", "\t", "\r\n  ", "  "}[rng.IntN(8)]
}

func genKey(rng *rand.Rand, key string) string {
	if rng.IntN(8) == 0 {
		// Escape one character of a fixed key.
		i := rng.IntN(len(key))
		return key[:i] + fmt.Sprintf(`\u%04x`, key[i]) + key[i+1:]
	}
	return key
}

func genInt(rng *rand.Rand, v int64) string {
	if v == 0 && rng.IntN(10) == 0 {
		return "-0"
	}
	return fmt.Sprint(v)
}

// genHeader returns a random, almost always valid file: tensors with random
// names, dtypes and shapes in random key order, optional metadata anywhere,
// random whitespace between tokens.
func genHeader(rng *rand.Rand) []byte {
	type ent struct{ name, json string }
	var ents []ent
	var off int64
	nt := rng.IntN(12)
	for i := 0; i < nt; i++ {
		name := fmt.Sprintf("t%d", i) + genString(rng, 4)
		var dt string
		var shape []int64
		var size int64
		for {
			dt = genDTypes[rng.IntN(len(genDTypes))]
			shape = shape[:0]
			for r := rng.IntN(4); r > 0; r-- {
				shape = append(shape, int64(rng.IntN(5)))
			}
			d, _ := dtype.Parse(dt)
			var err error
			if size, err = dtype.Size(d, TensorInfo{Shape: shape}.NumElements()); err == nil {
				break
			}
		}
		w := func() string { return genWS(rng) }
		var sh []string
		for _, d := range shape {
			sh = append(sh, w()+genInt(rng, d)+w())
		}
		fields := []string{
			`"` + genKey(rng, "dtype") + `"` + w() + ":" + w() + `"` + dt + `"`,
			`"` + genKey(rng, "shape") + `"` + w() + ":" + w() + "[" + strings.Join(sh, ",") + w() + "]",
			`"` + genKey(rng, "data_offsets") + `"` + w() + ":" + w() + "[" + w() + genInt(rng, off) + w() + "," + w() + genInt(rng, off+size) + w() + "]",
		}
		rng.Shuffle(3, func(a, b int) { fields[a], fields[b] = fields[b], fields[a] })
		for k := range fields {
			fields[k] = w() + fields[k] + w()
		}
		ents = append(ents, ent{name, `"` + name + `"` + w() + ":" + w() + "{" + strings.Join(fields, ",") + "}"})
		off += size
	}
	if rng.IntN(2) == 0 {
		var kv []string
		for k := rng.IntN(6); k > 0; k-- {
			kv = append(kv, genWS(rng)+`"`+genString(rng, 3)+`"`+genWS(rng)+":"+genWS(rng)+`"`+genString(rng, 8)+`"`+genWS(rng))
		}
		md := `"` + genKey(rng, metadataKey) + `"` + genWS(rng) + ":" + genWS(rng) + "{" + strings.Join(kv, ",") + genWS(rng) + "}"
		at := rng.IntN(len(ents) + 1)
		ents = append(ents[:at], append([]ent{{metadataKey, md}}, ents[at:]...)...)
	}
	rng.Shuffle(len(ents), func(a, b int) { ents[a], ents[b] = ents[b], ents[a] })
	var parts []string
	for _, e := range ents {
		parts = append(parts, genWS(rng)+e.json+genWS(rng))
	}
	return mk(genWS(rng)+"{"+strings.Join(parts, ",")+"}"+genWS(rng), zeros(int(off)))
}

// mutate returns a copy of file with its JSON header randomly damaged
// (the length prefix is kept consistent).
func mutate(rng *rand.Rand, file []byte) []byte {
	hdrLen := int(binary.LittleEndian.Uint64(file))
	hdr, data := []byte(string(file[8:8+hdrLen])), file[8+hdrLen:]
	const alphabet = "{}[]:,\"\\ \t\n0123456789-+.eEtrufalsnu_dtypeshapedataoffsets\x00\x01\xff"
	for k := 1 + rng.IntN(3); k > 0; k-- {
		i := 0
		if len(hdr) > 0 {
			i = rng.IntN(len(hdr))
		}
		c := alphabet[rng.IntN(len(alphabet))]
		switch rng.IntN(5) {
		case 0: // delete
			if len(hdr) > 0 {
				hdr = append(hdr[:i], hdr[i+1:]...)
			}
		case 1: // insert
			hdr = append(hdr[:i], append([]byte{c}, hdr[i:]...)...)
		case 2: // replace
			if len(hdr) > 0 {
				hdr[i] = c
			}
		case 3: // truncate
			hdr = hdr[:i]
		case 4: // duplicate a span
			j := i + rng.IntN(len(hdr)-i+1)
			hdr = append(hdr[:j], append([]byte(string(hdr[i:j])), hdr[j:]...)...)
		}
	}
	if rng.IntN(4) == 0 && len(data) > 0 {
		data = data[:rng.IntN(len(data))]
	}
	return mk(string(hdr), data)
}
