package pt

import (
	"fmt"
	"testing"
	"time"
)

// TestSharedDeflatedStorageInflatedOnce: many views on one deflated
// storage read in linear time (the storage is inflated once), with the
// right bytes.
func TestSharedDeflatedStorageInflatedOnce(t *testing.T) {
	const numel = 8 << 20 // 32 MiB of float32
	data := make([]byte, 4*numel)
	for i := 0; i < 16; i++ {
		data[len(data)-1-i] = byte(i + 1)
	}
	var es []entry
	const views = 400
	for i := 0; i < views; i++ {
		es = append(es, entry{fmt.Sprintf("v%03d", i), tensorVal("FloatStorage", "0", numel, numel-4, []int64{4}, []int64{1})})
	}
	pkl := dictPickle(es...)
	path := writeZip(t, zipEntry{name: "archive/data.pkl", data: pkl}, zipEntry{name: "archive/data/0", data: data, deflate: true},
		zipEntry{name: "archive/version", data: []byte("3\n")})
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	for _, ten := range c.Tensors {
		b, err := c.Read(ten)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != 16 || b[15] != 1 || b[0] != 16 {
			t.Fatalf("%s: got %v", ten.Name, b)
		}
	}
	// re-inflating 32 MiB per view would be 12.8 GB of inflation (minutes)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("%d views took %v: the storage is not inflated once", views, d)
	}
}
