package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"
)

func TestMarkdownOnlyForReports(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"plan", "-e", "x", "-o", "markdown", "--help"}, true},
		{[]string{"status", "-o", "markdown", "--help"}, true},
		{[]string{"deploy", "-e", "x", "-o", "markdown"}, false},
		{[]string{"history", "-o", "markdown"}, false},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errs bytes.Buffer
			code := Main(context.Background(), tc.args, &out, &errs)
			if got := code == 0; got != tc.ok {
				t.Fatalf("exit %d, want ok=%v; stderr: %s", code, tc.ok, errs.String())
			}
			if !tc.ok && !strings.Contains(errs.String(), "markdown") {
				t.Fatalf("the refusal does not name markdown: %s", errs.String())
			}
		})
	}
}

func TestMarkdownEscapesValues(t *testing.T) {
	for in, want := range map[string]string{
		"api":           "api",
		"a|b":           `a\|b`,
		"<img src=x>":   `\<img src=x\>`,
		"[x](http://e)": `\[x\]\(http://e\)`,
	} {
		if got := md(in); got != want {
			t.Errorf("md(%q)=%q, want %q", in, got, want)
		}
	}
	if got, want := code("a`b"), "`a'b`"; got != want {
		t.Errorf("code=%q, want %q", got, want)
	}
}

// iam-policy --format terraform writes the same statements as the JSON, as a data source
// Terraform parses.
func TestIAMPolicyTerraform(t *testing.T) {
	dir := t.TempDir()
	mf := filepath.Join(dir, "aviary.yaml")
	if err := os.WriteFile(mf, []byte(`service: shop
alias: live
store: dynamodb://aviary
artifacts:
  bucket: shop-artifacts
  prefix: "${x}/aviary"
functions:
  api:
    zip: api.zip
environments:
  production:
    region: eu-west-1
    strategy: all-at-once
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api.zip"), []byte("PK"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if code := Main(context.Background(), []string{"iam-policy", "-f", mf, "-e", "production", "--account", "123456789012", "--format", "terraform"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	f, diags := hclparse.NewParser().ParseHCL(out.Bytes(), "policy.tf")
	if diags.HasErrors() {
		t.Fatalf("%s\n%s", diags, out.String())
	}
	_ = f
	for _, want := range []string{`data "aws_iam_policy_document" "aviary_ci"`, `"lambda:UpdateAlias"`, `"arn:aws:s3:::shop-artifacts/$${x}/aviary/*"`, `"dynamodb:PutItem"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %s in\n%s", want, out.String())
		}
	}
}

// The Markdown reports, held to golden files (go test ./internal/cli -run MarkdownGolden -update):
// values from outside stay text (no terminal controls, no HTML, no table breaks).
func TestMarkdownGolden(t *testing.T) {
	for name, write := range map[string]func(*bytes.Buffer){
		"plan.md":   func(b *bytes.Buffer) { markdownPlan(b, samplePlan()) },
		"status.md": func(b *bytes.Buffer) { markdownStatus(b, sample(), sampleEvents(), 0) },
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			write(&b)
			path := filepath.Join("testdata", "markdown", name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("%s differs from %s (run with -update if the change is meant):\n%s", name, path, got)
			}
			for _, bad := range []string{"\x1b", "\u202e", "<img", "\r"} {
				if strings.Contains(b.String(), bad) {
					t.Errorf("%s carries %q", name, bad)
				}
			}
		})
	}
}
