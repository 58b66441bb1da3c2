package extract

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"

	"github.com/loratool/loratool/arch"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// plotGroups colour the curves by the model region a module sits in.
var plotGroups = []struct {
	label string
	color color.RGBA
}{
	{arch.RegionIn, color.RGBA{R: 31, G: 119, B: 180, A: 255}},
	{arch.RegionMid, color.RGBA{R: 44, G: 160, B: 44, A: 255}},
	{arch.RegionOut, color.RGBA{R: 214, G: 39, B: 40, A: 255}},
	{arch.RegionTextEncoder, color.RGBA{R: 148, G: 103, B: 189, A: 255}},
	{arch.RegionOther, color.RGBA{R: 127, G: 127, B: 127, A: 255}},
}

// plotGroup is the module's region from its architecture's block table
// (by its LoRA name when it has none).
func plotGroup(m ModuleReport) int {
	r := m.region
	if r == "" {
		r = arch.Region(m.Name)
	}
	for i, g := range plotGroups {
		if g.label == r {
			return i
		}
	}
	return len(plotGroups) - 1
}

// Plot draws, for every extracted module, the fraction of ‖Δ‖_F that
// ranks 1..k keep (sqrt of the cumulative singular-value energy over the
// exact total), coloured by model part, with a marker at the rank kept —
// so a rank can be chosen by eye. path's extension picks the format
// (.png, .svg, .pdf).
func Plot(rep *Report, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: retained Frobenius fraction by rank (%d modules)", rep.Arch, len(rep.Modules))
	p.X.Label.Text = "rank"
	p.Y.Label.Text = "retained fraction of ||Δ||_F"
	p.Y.Min, p.Y.Max = 0, 1
	seen := map[int]bool{}
	kept := plotter.XYs{}
	for _, m := range rep.Modules {
		if len(m.spectrum) == 0 || m.DeltaNorm == 0 {
			continue
		}
		total := m.DeltaNorm * m.DeltaNorm
		pts := make(plotter.XYs, 0, len(m.spectrum)+1)
		pts = append(pts, plotter.XY{X: 0, Y: 0})
		var cum float64
		for i, s := range m.spectrum {
			cum += s * s
			pts = append(pts, plotter.XY{X: float64(i + 1), Y: math.Min(1, math.Sqrt(cum/total))})
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		g := plotGroup(m)
		line.Color = plotGroups[g].color
		line.Width = vg.Points(0.6)
		p.Add(line)
		if !seen[g] {
			seen[g] = true
			p.Legend.Add(plotGroups[g].label, line)
		}
		if m.Rank > 0 && m.Rank <= len(m.spectrum) {
			kept = append(kept, pts[m.Rank])
		}
	}
	if len(kept) > 0 {
		sc, err := plotter.NewScatter(kept)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Radius = vg.Points(1.5)
		p.Add(sc)
		p.Legend.Add("rank kept", sc)
	}
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	if err := p.Save(9*vg.Inch, 6*vg.Inch, path); err != nil {
		return fmt.Errorf("%s: %v", filepath.Base(path), err)
	}
	return nil
}
