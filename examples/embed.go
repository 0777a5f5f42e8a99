// Package examples holds the example fleet (fleet/aviary.yaml) and the example function it builds
// (hello), embedded so that `aviary demo` runs from an installed binary, without a clone. The
// files stay where a reader of the repository finds them; this package only carries them.
package examples

import "embed"

// FS holds the files the demo needs, at their paths under examples/.
//
//go:embed fleet/aviary.yaml hello/main.go
var FS embed.FS
