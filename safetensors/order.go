package safetensors

// CanonicalOrder returns a copy of specs in the order Create writes them
// (dtype descending, then name), for callers that hash the data section
// before writing it (sshs_model_hash goes in the header).
func CanonicalOrder(specs []TensorSpec) []TensorSpec {
	out := append([]TensorSpec(nil), specs...)
	canonicalOrder(out)
	return out
}
