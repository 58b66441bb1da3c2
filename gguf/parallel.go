package gguf

import (
	"runtime"
	"sync"
)

// QuantizeParallel is Quantize split over up to workers goroutines
// (workers <= 0 means GOMAXPROCS). Blocks are independent, so the bytes
// are identical to a sequential run.
func QuantizeParallel(t Type, src []float32, dst []byte, workers int) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	bs := t.BlockSize()
	nb := len(src) / max(bs, 1)
	const minBlocks = 4096
	if workers == 1 || nb < 2*minBlocks || t.BlockSize() == 1 {
		return Quantize(t, src, dst)
	}
	if need, err := t.RowSize(int64(len(src))); err != nil {
		return err
	} else if int64(len(dst)) != need {
		return Quantize(t, src, dst) // reports the size mismatch
	}
	workers = min(workers, nb/minBlocks)
	ts := t.TypeSize()
	per := (nb + workers - 1) / workers
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for k := 0; k < workers; k++ {
		lo, hi := k*per, min(nb, (k+1)*per)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func(k, lo, hi int) {
			defer wg.Done()
			errs[k] = Quantize(t, src[lo*bs:hi*bs], dst[lo*ts:hi*ts])
		}(k, lo, hi)
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
