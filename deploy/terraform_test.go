package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/aviary-deploy/aviary/iampolicy"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/store/dynamo"
)

// tableSchema is what must agree between the code and a template: keys, indexes, TTL.
type tableSchema struct {
	Billing    string
	Hash, Sort string
	Attributes map[string]string // name → type
	Indexes    []indexSchema
	TTL        string
}

type indexSchema struct{ Name, Hash, Sort, Projection string }

// codeSchema is the table `aviary store init` creates.
func codeSchema() tableSchema {
	in := dynamo.TableInput("aviary")
	s := tableSchema{Billing: string(in.BillingMode), Attributes: map[string]string{}, TTL: dynamo.TTLAttribute}
	for _, k := range in.KeySchema {
		if k.KeyType == "HASH" {
			s.Hash = aws.ToString(k.AttributeName)
		} else {
			s.Sort = aws.ToString(k.AttributeName)
		}
	}
	for _, a := range in.AttributeDefinitions {
		s.Attributes[aws.ToString(a.AttributeName)] = string(a.AttributeType)
	}
	for _, g := range in.GlobalSecondaryIndexes {
		ix := indexSchema{Name: aws.ToString(g.IndexName), Projection: string(g.Projection.ProjectionType)}
		for _, k := range g.KeySchema {
			if k.KeyType == "HASH" {
				ix.Hash = aws.ToString(k.AttributeName)
			} else {
				ix.Sort = aws.ToString(k.AttributeName)
			}
		}
		s.Indexes = append(s.Indexes, ix)
	}
	return s
}

func TestTerraformTableIsTheStoresSchema(t *testing.T) {
	tbl := block(t, tfBlocks(t, "terraform"), "resource", "aws_dynamodb_table", "store")
	got := tableSchema{Billing: str(t, tbl, "billing_mode"), Hash: str(t, tbl, "hash_key"), Sort: str(t, tbl, "range_key"), Attributes: map[string]string{}}
	for _, a := range nested(tbl, "attribute") {
		got.Attributes[str(t, a, "name")] = str(t, a, "type")
	}
	for _, g := range nested(tbl, "global_secondary_index") {
		got.Indexes = append(got.Indexes, indexSchema{Name: str(t, g, "name"), Hash: str(t, g, "hash_key"), Sort: str(t, g, "range_key"), Projection: str(t, g, "projection_type")})
	}
	for _, ttl := range nested(tbl, "ttl") {
		if str(t, ttl, "enabled") == "true" {
			got.TTL = str(t, ttl, "attribute_name")
		}
	}
	if want := codeSchema(); !reflect.DeepEqual(got, want) {
		t.Fatalf("the module's table is not the one `aviary store init` creates:\n got  %+v\n want %+v", got, want)
	}
}

func TestTerraformCIPolicyIsGenerated(t *testing.T) {
	want, err := TerraformCIPolicy()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(CIPolicyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what package iampolicy makes: run `go generate ./deploy`", CIPolicyFile)
	}
}

// statements reads an aws_iam_policy_document's statements, plain and dynamic: sid → actions.
func statements(t *testing.T, doc *hclsyntax.Block) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	add := func(s *hclsyntax.Block) {
		out[str(t, s, "sid")] = slices.Sorted(slices.Values(strs(t, s, "actions")))
	}
	for _, s := range doc.Body.Blocks {
		switch {
		case s.Type == "statement":
			add(s)
		case s.Type == "dynamic" && slices.Equal(s.Labels, []string{"statement"}):
			for _, c := range nested(s, "content") {
				add(c)
			}
		}
	}
	return out
}

// policyActions is the code's policy as sid → sorted actions.
func policyActions(p iampolicy.Policy) map[string][]string {
	out := map[string][]string{}
	for _, s := range p.Statement {
		out[s.Sid] = sortedActions(s.Action)
	}
	return out
}

func TestTerraformCIPolicyActions(t *testing.T) {
	blocks := tfBlocks(t, "terraform")
	got := statements(t, block(t, blocks, "data", "aws_iam_policy_document", "aviary_ci"))
	if want := policyActions(iampolicy.Build(SymbolicInput())); !reflect.DeepEqual(got, want) {
		t.Fatalf("the CI role's actions are not `aviary iam-policy`'s:\n got  %v\n want %v", got, want)
	}
	// And the role has that policy, and only through OIDC with the repository's subjects.
	pol := block(t, blocks, "resource", "aws_iam_role_policy", "ci")
	if got := traversal(t, pol.Body.Attributes["policy"].Expr); got != "data.aws_iam_policy_document.aviary_ci.json" {
		t.Fatalf("the CI role's policy is %s", got)
	}
	trust := block(t, blocks, "data", "aws_iam_policy_document", "ci_trust")
	var vars []string
	for _, s := range nested(trust, "statement") {
		if got := strs(t, s, "actions"); !slices.Equal(got, []string{"sts:AssumeRoleWithWebIdentity"}) {
			t.Fatalf("trust actions %v", got)
		}
		for _, c := range nested(s, "condition") {
			vars = append(vars, str(t, c, "variable"))
		}
	}
	if want := []string{"token.actions.githubusercontent.com:aud", "token.actions.githubusercontent.com:sub"}; !slices.Equal(vars, want) {
		t.Fatalf("the trust policy's conditions are on %v, want %v", vars, want)
	}
}

func traversal(t *testing.T, e hcl.Expression) string {
	t.Helper()
	tr, diags := hcl.AbsTraversalForExpr(e)
	if diags.HasErrors() {
		t.Fatalf("not a reference: %s", diags)
	}
	var parts []string
	for _, s := range tr {
		switch s := s.(type) {
		case hcl.TraverseRoot:
			parts = append(parts, s.Name)
		case hcl.TraverseAttr:
			parts = append(parts, s.Name)
		}
	}
	return strings.Join(parts, ".")
}

func TestTerraformExampleIgnoresWhatAviaryChanges(t *testing.T) {
	blocks := tfBlocks(t, filepath.Join("terraform", "examples", "function"))
	want := map[string][]string{
		"aws_lambda_function": lambdafleet.FunctionIgnoreChanges(),
		"aws_lambda_alias":    lambdafleet.AliasIgnoreChanges(),
	}
	// The example's functions whose aviary.yaml entry has a configuration: block: a release
	// changes their configuration too.
	configured := map[string]bool{"worker": true}
	seen := map[string]int{}
	for _, b := range blocks {
		if b.Type != "resource" || want[b.Labels[0]] == nil {
			continue
		}
		seen[b.Labels[0]]++
		w := want[b.Labels[0]]
		if b.Labels[0] == "aws_lambda_function" && configured[b.Labels[1]] {
			w = append(slices.Clone(w), lambdafleet.ConfigurationIgnoreChanges()...)
			seen["configured"]++
		}
		lc := nested(b, "lifecycle")
		if len(lc) != 1 || lc[0].Body.Attributes["ignore_changes"] == nil {
			t.Fatalf("%s.%s has no lifecycle { ignore_changes }", b.Labels[0], b.Labels[1])
		}
		got := slices.Sorted(slices.Values(keywords(t, lc[0].Body.Attributes["ignore_changes"].Expr)))
		if w := slices.Sorted(slices.Values(w)); !slices.Equal(got, w) {
			t.Errorf("%s.%s ignores %v; a release changes %v", b.Labels[0], b.Labels[1], got, w)
		}
	}
	if seen["aws_lambda_function"] == 0 || seen["aws_lambda_alias"] == 0 || seen["configured"] != len(configured) {
		t.Fatalf("the example has no function, no alias or not every configured function: %v", seen)
	}
}

// The gate's environment names only variables cmd/aviary-gate reads, and the ones it requires.
func TestTerraformGateEnvironment(t *testing.T) {
	gate := block(t, tfBlocks(t, "terraform"), "resource", "aws_lambda_function", "gate")
	env := nested(gate, "environment")
	if len(env) != 1 {
		t.Fatal("the gate has no environment")
	}
	var names []string
	hclsyntax.VisitAll(env[0].Body.Attributes["variables"].Expr, func(n hclsyntax.Node) hcl.Diagnostics {
		if o, ok := n.(*hclsyntax.ObjectConsExpr); ok {
			for _, it := range o.Items {
				names = append(names, hcl.ExprAsKeyword(it.KeyExpr))
			}
		}
		return nil
	})
	reads := gateReads(t)
	for _, n := range names {
		if !reads[n] {
			t.Errorf("the module sets %s, which cmd/aviary-gate does not read (it reads %v)", n, reads)
		}
	}
	for _, n := range []string{"AVIARY_STORE", "AVIARY_LINK_SECRET"} {
		if !slices.Contains(names, n) {
			t.Errorf("the module does not set %s", n)
		}
	}
}

// gateReads are the environment variables cmd/aviary-gate reads: its own, and the link secret's
// (links.SecretFromEnv).
func gateReads(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, f := range []string{"../cmd/aviary-gate/main.go", "../links/links.go"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`Getenv\("(AVIARY_[A-Z_]+)"\)`).FindAllStringSubmatch(string(src), -1) {
			out[m[1]] = true
		}
	}
	return out
}

// The artifact bucket is versioned and its lifecycle never expires or archives a current
// artifact; noncurrent versions only when asked.
func TestTerraformArtifactLifecycle(t *testing.T) {
	blocks := tfBlocks(t, "terraform")
	v := block(t, blocks, "resource", "aws_s3_bucket_versioning", "artifacts")
	if got := str(t, nested(v, "versioning_configuration")[0], "status"); got != "Enabled" {
		t.Fatalf("versioning %q", got)
	}
	lc := block(t, blocks, "resource", "aws_s3_bucket_lifecycle_configuration", "artifacts")
	for _, r := range nested(lc, "rule") {
		for _, e := range nested(r, "expiration") {
			for name := range e.Body.Attributes {
				if name != "expired_object_delete_marker" {
					t.Errorf("rule %s expires current objects (%s)", str(t, r, "id"), name)
				}
			}
		}
		if len(nested(r, "transition")) > 0 {
			t.Errorf("rule %s transitions current objects", str(t, r, "id"))
		}
		for _, d := range nested(r, "dynamic") {
			if d.Labels[0] != "noncurrent_version_expiration" {
				t.Errorf("rule %s has a dynamic %s", str(t, r, "id"), d.Labels[0])
			}
		}
	}
	nv := block(t, blocks, "variable", "noncurrent_version_expiration_days")
	if d, ok := nv.Body.Attributes["default"]; !ok || fmt.Sprint(exprValue(t, d.Expr)) != "null" {
		t.Fatalf("noncurrent_version_expiration_days must default to null (keep them): doctor warns otherwise")
	}
}

func exprValue(t *testing.T, e hcl.Expression) string {
	v, diags := e.Value(nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if v.IsNull() {
		return "null"
	}
	return v.GoString()
}
