package arch

import "strings"

// unetBlockWords are the block names of LDM and diffusers UNets.
var unetBlockWords = []string{"down_blocks", "input_blocks", "up_blocks", "output_blocks", "middle_block", "mid_block"}

// LooksLikeUNet reports whether a module name uses UNet block names — how a
// module no architecture resolves is told apart from a DiT's.
func LooksLikeUNet(name string) bool {
	for _, w := range unetBlockWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// Regions a module can sit in, for grouping reports and plots.
const (
	RegionIn          = "down / input blocks"
	RegionMid         = "mid block / single blocks"
	RegionOut         = "up / output blocks"
	RegionTextEncoder = "text encoders"
	RegionOther       = "other"
)

// regionWords lists, per region, the block names of the registered
// architectures, in the order they are tried: text encoders, then the UNet
// block words (a UNet's attention modules are "transformer_blocks" inside
// input, middle and output blocks, so the UNet words decide first), then
// the MMDiT single blocks before the double/joint blocks
// ("single_transformer_blocks" contains "transformer_blocks").
var regionWords = []struct {
	region string
	words  []string
}{
	{RegionTextEncoder, []string{"lora_te", "text_encoder", "text_model", "encoder.block"}},
	{RegionOut, []string{"up_blocks", "output_blocks"}},
	{RegionMid, []string{"mid_block", "middle_block"}},
	{RegionIn, []string{"down_blocks", "input_blocks"}},
	{RegionMid, []string{"single_blocks", "single_transformer_blocks", "single_stream_blocks"}},
	{RegionIn, []string{"double_blocks", "joint_blocks", "transformer_blocks", "double_stream_blocks"}},
}

// Region names where a module (native, diffusers or LoRA name) sits, by
// its name alone; RegionOf answers from the block table when the module is
// resolved.
func Region(name string) string {
	for _, r := range regionWords {
		for _, w := range r.words {
			if strings.Contains(name, w) {
				return r.region
			}
		}
	}
	return RegionOther
}

// EncoderWidth is a CLIP tower's width, read from its final layer norm in
// an HF-named parameter list (0 when there is none).
func EncoderWidth(ps []Param) int64 { return encoderWidth(ps) }
