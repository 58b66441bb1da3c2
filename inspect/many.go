package inspect

import (
	"github.com/loratool/loratool/safetensors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// inspectable are the extensions a folder walk picks up: safetensors and
// PyTorch pickles (read without running them).
var inspectable = map[string]bool{".safetensors": true, ".ckpt": true, ".pt": true, ".pth": true}

// Expand turns files and folders into the list of files to inspect:
// folders are walked recursively for *.safetensors, *.ckpt, *.pt and
// *.pth, in lexical order.
// Missing paths are returned as reports with an error.
func Expand(paths []string) (files []string, bad []*Report) {
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			bad = append(bad, &Report{File: p, Error: err.Error()})
			continue
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				bad = append(bad, &Report{File: path, Error: err.Error()})
				return nil
			}
			if !d.IsDir() && inspectable[strings.ToLower(filepath.Ext(path))] {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			bad = append(bad, &Report{File: p, Error: err.Error()})
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	return files, bad
}

// Many inspects files in parallel (jobs workers; 0 = 2 per core) and calls
// emit for each report in input order.
func Many(files []string, opt Options, jobs int, emit func(*Report)) {
	if jobs <= 0 {
		jobs = 2 * runtime.GOMAXPROCS(0)
	}
	results := make([]chan *Report, len(files))
	for i := range results {
		results[i] = make(chan *Report, 1)
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer safetensors.Guard()()
			defer wg.Done()
			for i := range work {
				results[i] <- File(files[i], opt)
			}
		}()
	}
	go func() {
		defer safetensors.Guard()()
		for i := range files {
			work <- i
		}
		close(work)
	}()
	for i := range files {
		emit(<-results[i])
	}
	wg.Wait()
}
