package examplefn_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aviary-deploy/aviary/internal/examplefn"
)

// TestBuildIsReproducible: the Go builder and examples/build.sh give the same bytes, twice over,
// and flavours differ — so each flavour has one CodeSha256 however it is built.
func TestBuildIsReproducible(t *testing.T) {
	root, err := examplefn.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := examplefn.Build(ctx, root, "./examples/hello", "good")
	if err != nil {
		t.Fatal(err)
	}
	b, err := examplefn.Build(ctx, root, "./examples/hello", "good")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same source differ")
	}
	out := filepath.Join(t.TempDir(), "good.zip")
	if msg, err := exec.Command(filepath.Join(root, "examples", "build.sh"), out, "good").CombinedOutput(); err != nil {
		t.Fatalf("examples/build.sh: %v\n%s", err, msg)
	}
	script, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, script) {
		t.Error("examples/build.sh and examplefn.Build give different bytes")
	}
	bad, err := examplefn.Build(ctx, root, "./examples/hello", "bad")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, bad) {
		t.Error("the good and bad flavours are the same bytes")
	}
	if _, err := examplefn.Root(os.TempDir()); err == nil {
		t.Error("Root found a source tree above the temp directory")
	}
}
