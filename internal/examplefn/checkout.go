package examplefn

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/aviary-deploy/aviary/examples"
)

// ErrNoGo says the Go toolchain is not on PATH: the example functions are Go, built on this
// machine.
var ErrNoGo = errors.New("the demo builds its example functions (Go, with aws-lambda-go) on this machine and needs the Go toolchain: `go` is not on PATH; install Go from https://go.dev/dl/ and run it again")

// The module the extracted examples build in. Its requirement is the one Aviary's own go.mod
// has (a test keeps them equal), and go.sum pins it, so that a machine whose module cache has it
// builds offline and any other fetches it through its GOPROXY, checked against these sums.
const (
	lambdaGo       = "github.com/aws/aws-lambda-go"
	lambdaGoVer    = "v1.55.1"
	extractedGoMod = "module aviary-demo\n\ngo 1.26\n\nrequire " + lambdaGo + " " + lambdaGoVer + "\n"
	extractedGoSum = lambdaGo + " " + lambdaGoVer + " h1:We2cCp4BwqqH/JW+bEEo1FhgG71rslvjfi4y7KmlrR0=\n" +
		lambdaGo + " " + lambdaGoVer + "/go.mod h1:V+NzkHNR6vBC8C1PDloqSLE+7jYWFiPvJJFiCiTm8nE=\n"
)

// Checkout returns a source tree holding examples/fleet and examples/hello, for Build and for the
// fleet's manifest: the Aviary clone at or above dir when there is one, else the examples built
// into this binary, extracted to a temporary directory that cleanup removes. Either way the Go
// toolchain must be on PATH (ErrNoGo), and w is told where the examples come from.
func Checkout(dir string, w io.Writer) (root string, cleanup func(), err error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", nil, ErrNoGo
	}
	if root, err := Root(dir); err == nil {
		return root, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "aviary-examples-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	if err := extract(tmp); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("extract the example fleet: %w", err)
	}
	fmt.Fprintf(w, "No Aviary clone here: the example fleet built into this binary is in %s; its functions are built with %s (Go is needed for that; aws-lambda-go comes from the module cache or GOPROXY)\n", tmp, goBin)
	return tmp, cleanup, nil
}

// extract writes the embedded examples and their module files under root.
func extract(root string) error {
	err := fs.WalkDir(examples.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := examples.FS.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(root, "examples", filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte(extractedGoMod), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, "go.sum"), []byte(extractedGoSum), 0o644)
}
