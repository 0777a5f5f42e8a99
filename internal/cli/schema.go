package cli

import (
	"github.com/aviary-deploy/aviary/manifest"
)

type schemaCmd struct{}

func (schemaCmd) Run(e *env) error {
	_, err := e.stdout.Write(manifest.Schema)
	return err
}
