// Package examplefn builds the example functions under examples/ into Lambda zips, the way
// examples/build.sh does, for the demo and for tests written in Go.
package examplefn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aviary-deploy/aviary/artifact"
)

const module = "github.com/aviary-deploy/aviary"

// Root finds the Aviary source tree at or above dir.
func Root(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module "+module+"\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("the Aviary source tree (go.mod of %s) is not at or above %s: run this from a clone of Aviary", module, abs)
		}
	}
}

// Build compiles the Go package pkg (such as "./examples/hello") of the source tree at root
// into a zip holding a bootstrap, with the given flavour baked in. It runs `go build` with the
// same flags as examples/build.sh, so both give the same bytes.
func Build(ctx context.Context, root, pkg, flavor string) ([]byte, error) {
	return BuildWith(ctx, root, pkg, map[string]string{"flavor": flavor})
}

// BuildWith is Build with any of the package's string variables set at link time (-X main.k=v),
// such as {"flavor": "bad", "badRate": "0.3"}.
func BuildWith(ctx context.Context, root, pkg string, vars map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ldflags := "-s -w -buildid="
	for _, k := range keys {
		ldflags += fmt.Sprintf(" -X main.%s=%s", k, vars[k])
	}
	tmp, err := os.MkdirTemp("", "aviary-example-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false",
		"-ldflags", ldflags, "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || len(out) > 0 {
			return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
		return nil, fmt.Errorf("go build %s: %w (is Go installed and on PATH?)", pkg, err)
	}
	files, err := artifact.Collect(bin)
	if err != nil {
		return nil, err
	}
	return artifact.Zip(files)
}
