package iampolicy

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The Terraform form parses, and each statement's strings evaluate back to the policy's own:
// template sequences in names stay literal.
func TestTerraformRoundTrip(t *testing.T) {
	p := Build(Input{Region: "eu-west-1", Account: "123456789012", Functions: []string{"a", "b"}, Bucket: "bkt",
		Prefix: "${x}/%{y}", Table: "t", Checks: &Checks{Metrics: true, Alarms: []string{"al\"arm"}}})
	src := p.Terraform(Terraform{Name: "aviary_ci"})
	f, diags := hclsyntax.ParseConfig([]byte(src), "policy.tf", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s\n%s", diags, src)
	}
	blocks := f.Body.(*hclsyntax.Body).Blocks
	if len(blocks) != 1 || blocks[0].Type != "data" || blocks[0].Labels[1] != "aviary_ci" {
		t.Fatalf("not one data source:\n%s", src)
	}
	stmts := blocks[0].Body.Blocks
	if got, want := len(stmts), len(p.Statement); got != want {
		t.Fatalf("%d statements, want %d", got, want)
	}
	for i, s := range stmts {
		want := p.Statement[i]
		for attr, list := range map[string][]string{"actions": want.Action, "resources": want.Resource} {
			v, diags := s.Body.Attributes[attr].Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			var got []string
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				got = append(got, e.AsString())
			}
			if strings.Join(got, "\n") != strings.Join(list, "\n") {
				t.Errorf("%s %s = %q, want %q", want.Sid, attr, got, list)
			}
		}
	}
}

func TestHCLQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     `"plain"`,
		`a"b\c`:     `"a\"b\\c"`,
		"${var.x}":  `"$${var.x}"`,
		"%{if}":     `"%%{if}"`,
		"$x %y":     `"$x %y"`,
		"tab\there": `"tab\there"`,
	} {
		if got := HCLQuote(in); got != want {
			t.Errorf("HCLQuote(%q)=%s, want %s", in, got, want)
		}
	}
}
