package merge

import (
	"context"

	"github.com/urfave/cli/v3"

	"github.com/loratool/loratool/internal/cliutil"
)

// loraMergeAction merges LoRAs into one LoRA (no --base).
func loraMergeAction(ctx context.Context, cmd *cli.Command, inputs []Input, out string) error {
	return cliutil.Fail("LoRA+LoRA merge is not available yet")
}
