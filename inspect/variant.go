package inspect

// setVariant records the variants the file fits: the first as Variant,
// all of them in Variants when there are several.
func setVariant(r *Report, names []string) {
	if len(names) == 0 {
		return
	}
	r.Variant = names[0]
	if len(names) > 1 {
		r.Variants = append([]string(nil), names...)
	}
}
