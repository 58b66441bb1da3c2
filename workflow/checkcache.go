package workflow

import (
	"github.com/loratool/loratool/inspect"
	"github.com/loratool/loratool/merge"
)

// checkCache keeps what Check learns about each file, so that a LoRA used
// by many nodes (or samplers) is inspected and mapped once.
type checkCache struct {
	reports  map[string]*inspect.Report
	mappings map[mappingKey]*mappingResult
}

type mappingKey struct {
	base, lora       string
	modelOnly        bool
	zeroModel, zeroC bool // strength 0 skips a part
}

type mappingResult struct {
	patches, unmatched int
	first              []string // the first unmatched tensors with reasons
	err                error
}

func (c *checkCache) inspect(path string) *inspect.Report {
	if r, ok := c.reports[path]; ok {
		return r
	}
	if c.reports == nil {
		c.reports = map[string]*inspect.Report{}
	}
	r := inspect.File(path, inspect.Options{})
	c.reports[path] = r
	return r
}

func (c *checkCache) mapping(base string, in merge.Input, modelOnly bool) *mappingResult {
	k := mappingKey{base, in.Path, modelOnly, in.StrengthModel == 0, in.StrengthClip == 0}
	if r, ok := c.mappings[k]; ok {
		return r
	}
	if c.mappings == nil {
		c.mappings = map[mappingKey]*mappingResult{}
	}
	r := &mappingResult{}
	p, err := merge.NewPlan(base, []merge.Input{in}, merge.PlanOptions{ModelOnly: modelOnly})
	if err != nil {
		r.err = err
	} else {
		r.patches, r.unmatched = len(p.Patches), len(p.Unmatched)
		for _, u := range p.Unmatched[:min(3, len(p.Unmatched))] {
			r.first = append(r.first, u.Key+" ("+u.Reason+")")
		}
		p.Close()
	}
	c.mappings[k] = r
	return r
}
