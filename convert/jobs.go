package convert

// Job is one input file and the path its output goes to, as ExpandJobs
// returns it (for other commands that take PATH... like convert).
type Job struct{ In, Out string }

// ExpandJobs is Expand with exported results: files, folders searched
// recursively for exts, and globs, each paired with its output path.
func ExpandJobs(args []string, out, outDir, suffix string, exts []string) ([]Job, []error) {
	js, errs := Expand(args, out, outDir, suffix, exts)
	res := make([]Job, len(js))
	for i, j := range js {
		res[i] = Job{In: j.in, Out: j.out}
	}
	return res, errs
}

// RunJobs runs fn over jobs with n workers (n ≤ 0: one per core); report
// is called once per job, never concurrently.
func RunJobs(jobs []Job, n int, fn func(Job) (any, error), report func(any, error)) {
	js := make([]job, len(jobs))
	for i, j := range jobs {
		js[i] = job{in: j.In, out: j.Out}
	}
	runBatch(js, n, func(j job) (any, error) { return fn(Job{In: j.in, Out: j.out}) }, report)
}
