package arch

// CheckpointParams lists every tensor of a single-file checkpoint of a
// (diffusion model under DiffusionPrefix, each text encoder under its
// CheckpointPrefix in its Layout, the VAE, and Extras), with full file names.
// Encoders without a parameter table are omitted.
func CheckpointParams(a *Arch, s Size) []Param {
	var out []Param
	for _, p := range a.Params(s) {
		out = append(out, Param{Name: a.DiffusionPrefix + p.Name, Shape: p.Shape, DType: p.DType})
	}
	for _, e := range a.Encoders {
		if e.Model == nil {
			continue
		}
		ps := e.Model(s)
		if e.Layout == LayoutOpenCLIP {
			ps = OpenCLIPParams(ps, encoderWidth(ps))
		}
		for _, p := range ps {
			out = append(out, Param{Name: e.CheckpointPrefix + p.Name, Shape: p.Shape, DType: p.DType})
		}
	}
	if a.VAE != nil {
		for _, p := range a.VAE(s) {
			out = append(out, Param{Name: a.VAEPrefix + p.Name, Shape: p.Shape, DType: p.DType})
		}
	}
	if a.Extras != nil {
		out = append(out, a.Extras(s)...)
	}
	return out
}

// encoderWidth is a CLIP tower's width, read from its final layer norm.
func encoderWidth(ps []Param) int64 {
	for _, p := range ps {
		if p.Name == "text_model.final_layer_norm.weight" && len(p.Shape) == 1 {
			return p.Shape[0]
		}
	}
	return 0
}

// NumParams is the total element count of a parameter list.
func NumParams(ps []Param) int64 {
	var n int64
	for _, p := range ps {
		e := int64(1)
		for _, d := range p.Shape {
			e *= d
		}
		n += e
	}
	return n
}
