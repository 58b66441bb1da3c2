package inspect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// legacy AutoV1 window: 64 KiB at 1 MiB.
const (
	autoV1Offset = 0x100000
	autoV1Size   = 0x10000
)

// hashFile computes every hash in one sequential read: SHA-256 of the
// whole file (AutoV2), of the data section after the header (AutoV3 /
// sshs_model_hash), of the legacy window (AutoV1) and CRC32.
func hashFile(path string, dataOffset int64) (*Hashes, error) {
	return hashFileProgress(path, dataOffset, nil)
}

// hashFileProgress is hashFile reporting each chunk's bytes to progress
// (when not nil).
func hashFileProgress(path string, dataOffset int64, progress func(int64)) (*Hashes, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	defer f.Close()
	whole, data, legacy := sha256.New(), sha256.New(), sha256.New()
	crc := crc32.NewIEEE()
	buf := make([]byte, 4<<20)
	var off int64
	for {
		n, err := f.Read(buf)
		if n > 0 {
			b := buf[:n]
			whole.Write(b)
			crc.Write(b)
			if end := off + int64(n); end > dataOffset {
				start := max(dataOffset-off, 0)
				data.Write(b[start:])
			}
			lo, hi := max(off, autoV1Offset), min(off+int64(n), autoV1Offset+autoV1Size)
			if lo < hi {
				legacy.Write(b[lo-off : hi-off])
			}
			off += int64(n)
			if progress != nil {
				progress(int64(n))
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
	}
	h := &Hashes{
		SHA256: hex.EncodeToString(whole.Sum(nil)),
		Data:   hex.EncodeToString(data.Sum(nil)),
		CRC32:  fmt.Sprintf("%08X", crc.Sum32()),
	}
	h.AutoV2 = h.SHA256[:10]
	h.AutoV3 = h.Data[:12]
	h.AutoV1 = hex.EncodeToString(legacy.Sum(nil))[:8]
	return h, nil
}
