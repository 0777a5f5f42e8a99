package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// tfBlocks parses every .tf file of a directory and returns their top-level blocks.
func tfBlocks(t *testing.T, dir string) hclsyntax.Blocks {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .tf files in %s (%v)", dir, err)
	}
	p := hclparse.NewParser()
	var out hclsyntax.Blocks
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, diags := p.ParseHCL(src, f)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %s", f, diags)
		}
		out = append(out, file.Body.(*hclsyntax.Body).Blocks...)
	}
	return out
}

// block is the block of that type and labels, or fails.
func block(t *testing.T, blocks hclsyntax.Blocks, typ string, labels ...string) *hclsyntax.Block {
	t.Helper()
	for _, b := range blocks {
		if b.Type == typ && slices.Equal(b.Labels, labels) {
			return b
		}
	}
	t.Fatalf("no %s %q", typ, labels)
	return nil
}

// nested are a block's blocks of a type.
func nested(b *hclsyntax.Block, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, c := range b.Body.Blocks {
		if c.Type == typ {
			out = append(out, c)
		}
	}
	return out
}

// str is a literal attribute's value ("" when absent); an attribute that is not a literal string
// fails.
func str(t *testing.T, b *hclsyntax.Block, name string) string {
	t.Helper()
	a, ok := b.Body.Attributes[name]
	if !ok {
		return ""
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || !v.Type().Equals(v.Type()) || !v.IsKnown() {
		t.Fatalf("%s.%s is not a literal: %s", b.Type, name, diags)
	}
	if v.Type().FriendlyName() == "bool" {
		if v.True() {
			return "true"
		}
		return "false"
	}
	return v.AsString()
}

// strs is a literal list attribute's strings.
func strs(t *testing.T, b *hclsyntax.Block, name string) []string {
	t.Helper()
	a, ok := b.Body.Attributes[name]
	if !ok {
		t.Fatalf("%s has no %s", b.Type, name)
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("%s.%s is not a literal list: %s", b.Type, name, diags)
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e.AsString())
	}
	return out
}

// keywords are the names in a list of bare attribute names, such as ignore_changes's.
func keywords(t *testing.T, e hcl.Expression) []string {
	t.Helper()
	exprs, diags := hcl.ExprList(e)
	if diags.HasErrors() {
		t.Fatalf("not a list: %s", diags)
	}
	var out []string
	for _, x := range exprs {
		k := hcl.ExprAsKeyword(x)
		if k == "" {
			t.Fatalf("%T is not a bare name", x)
		}
		out = append(out, k)
	}
	return out
}
