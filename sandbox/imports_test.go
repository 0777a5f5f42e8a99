package sandbox_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sandboxImporters are the only non-test files outside sandbox/ allowed to import it: the CLI's
// sandbox and demo commands, and a test-support package (it imports "testing") that deploys a
// function to a sandbox for other packages' tests.
var sandboxImporters = []string{
	"internal/cli/sandbox.go",
	"internal/cli/demo.go",
	"web/lambdaurl/lambdaurltest/deploy.go",
}

// TestProductNeverImportsSandbox: product code does not depend on the sandbox, so that what ships
// to users cannot reach for a stand-in of AWS; only the commands that start one, and tests, do.
func TestProductNeverImportsSandbox(t *testing.T) {
	const module = "github.com/aviary-deploy/aviary/"
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var found []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "sandbox" || rel == "node_modules" || strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == module+"sandbox" || strings.HasPrefix(p, module+"sandbox/") {
				found = append(found, rel)
				if !slices.Contains(sandboxImporters, rel) {
					t.Errorf("%s imports %s: product code must not depend on the sandbox (only %v may)", rel, p, sandboxImporters)
				}
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The walk must see the allowed importers, or it proves nothing.
	for _, want := range sandboxImporters[:2] {
		if !slices.Contains(found, want) {
			t.Errorf("the walk did not find %s importing the sandbox; is the test looking at the module?", want)
		}
	}
}
