package cli

import (
	"fmt"

	"github.com/aviary-deploy/aviary/artifact"
)

type packageCmd struct {
	outputFlags
	Zip   string   `required:"" placeholder:"FILE.zip" help:"Where to write the zip."`
	Paths []string `arg:"" name:"path" help:"Files (stored by base name) or directories (stored relative to themselves) to package. A Lambda on provided.al2023 needs an executable named bootstrap at the top."`
}

func (c *packageCmd) Run(e *env) error {
	files, err := artifact.Collect(c.Paths...)
	if err != nil {
		return badInput("package: %w", err)
	}
	if len(files) == 0 {
		return badInput("package: %v holds no files", c.Paths)
	}
	d, size, err := artifact.WriteFile(c.Zip, files)
	if err != nil {
		return fmt.Errorf("package: %w", err)
	}
	if c.json() {
		return writeJSON(e.stdout, &packageOutput{Zip: c.Zip, Files: len(files), Bytes: int(size), Sha256: d.Hex, CodeSha256: d.CodeSha256})
	}
	fmt.Fprintf(e.stdout, "%s  %d files, %d bytes, sha256 %s (CodeSha256 %s)\n", c.Zip, len(files), size, d.Hex, d.CodeSha256)
	return nil
}
