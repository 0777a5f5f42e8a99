package examplefn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aviary-deploy/aviary/manifest"
)

// TestExtractedModuleMatchesAviarys: the extracted examples require the aws-lambda-go Aviary's
// own go.mod does, with go.sum lines Aviary's go.sum has, so a bump of one fails until the other follows.
func TestExtractedModuleMatchesAviarys(t *testing.T) {
	root, err := Root(".")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), "\t"+lambdaGo+" "+lambdaGoVer+"\n") {
		t.Errorf("Aviary's go.mod does not require %s %s, as the extracted examples do", lambdaGo, lambdaGoVer)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.SplitAfter(strings.TrimSpace(extractedGoSum), "\n") {
		if !strings.Contains(string(sum), strings.TrimSpace(l)+"\n") {
			t.Errorf("Aviary's go.sum lacks the extracted examples' %q", l)
		}
	}
}

// TestCheckoutWithoutClone: outside a clone, the embedded examples are extracted, the fleet's
// manifest loads and the example function builds.
func TestCheckoutWithoutClone(t *testing.T) {
	var said bytes.Buffer
	root, cleanup, err := Checkout(t.TempDir(), &said)
	if err != nil {
		t.Fatal(err)
	}
	if clone, _ := Root("."); root == clone {
		t.Fatalf("Checkout outside a clone returned the clone %s", root)
	}
	if !strings.Contains(said.String(), "Go is needed") {
		t.Errorf("Checkout does not say Go is needed: %q", said.String())
	}
	m, err := manifest.Load(filepath.Join(root, "examples", "fleet", manifest.DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(m.Functions), 3; got != want {
		t.Errorf("the extracted fleet has %d functions, want %d", got, want)
	}
	zip, err := Build(context.Background(), root, "./examples/hello", "good")
	if err != nil {
		t.Fatal(err)
	}
	if len(zip) == 0 {
		t.Fatal("empty zip")
	}
	cleanup()
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cleanup left %s: %v", root, err)
	}
}

func TestCheckoutInCloneUsesIt(t *testing.T) {
	clone, err := Root(".")
	if err != nil {
		t.Fatal(err)
	}
	root, cleanup, err := Checkout(".", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if root != clone {
		t.Fatalf("Checkout in a clone returned %s, want %s", root, clone)
	}
}

func TestCheckoutNeedsGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, _, err := Checkout(t.TempDir(), io.Discard); !errors.Is(err, ErrNoGo) {
		t.Fatalf("Checkout without go on PATH: %v, want ErrNoGo", err)
	}
}
