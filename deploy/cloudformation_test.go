package deploy

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
	"gopkg.in/yaml.v3"

	"github.com/aviary-deploy/aviary/iampolicy"
	"github.com/aviary-deploy/aviary/lambdafleet"
)

const templateFile = "cloudformation/aviary.yaml"

// template parses the template as CloudFormation would with these parameters (conditions
// evaluated).
func template(t *testing.T, params map[string]any) *cloudformation.Template {
	t.Helper()
	p := map[string]any{"ArtifactBucketName": "shop-artifacts", "FunctionNamePrefix": "shop-", "GitHubSubjects": "repo:example/shop:environment:production"}
	for k, v := range params {
		p[k] = v
	}
	src, err := os.ReadFile(templateFile)
	if err != nil {
		t.Fatal(err)
	}
	// Two passes, as goformation's Fn::If reads its condition from the Conditions section as it
	// stands: the first resolves the parameters and the conditions and keeps every Fn::If, the
	// second takes each Fn::If's branch.
	keep := func(name string, input any, _ any) any { return map[string]any{name: input} }
	resolved, err := intrinsics.ProcessYAML(src, &intrinsics.ProcessorOptions{ParameterOverrides: p, IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{"Fn::If": keep}})
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := goformation.ParseJSON(resolved)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestCloudFormationTableIsTheStoresSchema(t *testing.T) {
	tbl, err := template(t, nil).GetDynamoDBTableWithName("Store")
	if err != nil {
		t.Fatal(err)
	}
	got := tableSchema{Attributes: map[string]string{}}
	if tbl.BillingMode != nil {
		got.Billing = *tbl.BillingMode
	}
	for _, k := range tbl.KeySchema {
		if k.KeyType == "HASH" {
			got.Hash = k.AttributeName
		} else {
			got.Sort = k.AttributeName
		}
	}
	for _, a := range tbl.AttributeDefinitions {
		got.Attributes[a.AttributeName] = a.AttributeType
	}
	for _, g := range tbl.GlobalSecondaryIndexes {
		ix := indexSchema{Name: g.IndexName}
		if g.Projection.ProjectionType != nil {
			ix.Projection = *g.Projection.ProjectionType
		}
		for _, k := range g.KeySchema {
			if k.KeyType == "HASH" {
				ix.Hash = k.AttributeName
			} else {
				ix.Sort = k.AttributeName
			}
		}
		got.Indexes = append(got.Indexes, ix)
	}
	if s := tbl.TimeToLiveSpecification; s != nil && s.Enabled && s.AttributeName != nil {
		got.TTL = *s.AttributeName
	}
	if want := codeSchema(); !reflect.DeepEqual(got, want) {
		t.Fatalf("the template's table is not the one `aviary store init` creates:\n got  %+v\n want %+v", got, want)
	}
}

// cfnStatements are the CI role's policy statements: sid → sorted actions.
func cfnStatements(t *testing.T, tpl *cloudformation.Template) map[string][]string {
	t.Helper()
	return cfnRoleStatements(t, tpl, "CIRole")
}

// cfnRoleStatements are a role's one inline policy's statements: sid → sorted actions.
func cfnRoleStatements(t *testing.T, tpl *cloudformation.Template, name string) map[string][]string {
	t.Helper()
	role, err := tpl.GetIAMRoleWithName(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(role.Policies) != 1 {
		t.Fatalf("the role %s has %d policies, want 1", name, len(role.Policies))
	}
	b, err := json.Marshal(role.Policies[0].PolicyDocument)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []*struct {
			Sid    string
			Action any
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, s := range doc.Statement {
		if s == nil {
			continue // AWS::NoValue
		}
		var actions []string
		switch a := s.Action.(type) {
		case string:
			actions = []string{a}
		case []any:
			for _, x := range a {
				actions = append(actions, x.(string))
			}
		}
		out[s.Sid] = slices.Sorted(slices.Values(actions))
	}
	return out
}

func TestCloudFormationCIPolicyActions(t *testing.T) {
	all := map[string]any{"EnableMetricsChecks": "true", "EnableLogsChecks": "true", "EnableSmokeChecks": "true", "AlarmNamePrefix": "shop-", "HookFunctionNamePrefix": "shop-hook-",
		"ControllerCodeS3Bucket": "b", "ControllerCodeS3Key": "controller.zip"}
	if got, want := cfnStatements(t, template(t, all)), policyActions(iampolicy.Build(SymbolicInput())); !reflect.DeepEqual(got, want) {
		t.Fatalf("with every check, the CI role's actions are not `aviary iam-policy`'s:\n got  %v\n want %v", got, want)
	}
	none := SymbolicInput()
	none.Checks, none.Controller = nil, ""
	if got, want := cfnStatements(t, template(t, nil)), policyActions(iampolicy.Build(none)); !reflect.DeepEqual(got, want) {
		t.Fatalf("without checks, the CI role's actions are not `aviary iam-policy`'s:\n got  %v\n want %v", got, want)
	}
}

func TestCloudFormationArtifactLifecycle(t *testing.T) {
	b, err := template(t, nil).GetS3BucketWithName("ArtifactBucket")
	if err != nil {
		t.Fatal(err)
	}
	if b.VersioningConfiguration == nil || b.VersioningConfiguration.Status != "Enabled" {
		t.Fatal("the artifact bucket is not versioned")
	}
	for _, r := range b.LifecycleConfiguration.Rules {
		if r.ExpirationInDays != nil || r.ExpirationDate != nil || r.Transition != nil || len(r.Transitions) > 0 {
			t.Errorf("rule %v expires or archives current objects", r.Id)
		}
		if r.NoncurrentVersionExpiration != nil || r.NoncurrentVersionExpirationInDays != nil || len(r.NoncurrentVersionTransitions) > 0 {
			t.Errorf("rule %v deletes or archives noncurrent versions: doctor warns about it", r.Id)
		}
	}
}

// The gate's environment names only variables cmd/aviary-gate reads, and the ones it requires.
func TestCloudFormationGateEnvironment(t *testing.T) {
	fn, err := template(t, map[string]any{"GateCodeS3Bucket": "b", "GateCodeS3Key": "gate.zip"}).GetLambdaFunctionWithName("Gate")
	if err != nil {
		t.Fatal(err)
	}
	reads := gateReads(t)
	for n := range fn.Environment.Variables {
		if !reads[n] {
			t.Errorf("the template sets %s, which cmd/aviary-gate does not read", n)
		}
	}
	for _, n := range []string{"AVIARY_STORE", "AVIARY_LINK_SECRET"} {
		if _, ok := fn.Environment.Variables[n]; !ok {
			t.Errorf("the template does not set %s", n)
		}
	}
}

// cfnProperty is where CloudFormation keeps what lambdafleet names in Terraform's words.
var cfnProperty = map[string]string{
	"filename": "Code", "s3_bucket": "Code", "s3_key": "Code", "s3_object_version": "Code", "source_code_hash": "Code",
	"function_version": "FunctionVersion", "routing_config": "RoutingConfig",
}

// CloudFormation has no ignore_changes: the example keeps what a release changes fixed (literal,
// never a parameter or another resource's attribute), so no stack update changes it back.
func TestCloudFormationExampleKeepsWhatAviaryChangesFixed(t *testing.T) {
	src, err := os.ReadFile("cloudformation/example-function.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	var res map[string]struct {
		Type       string               `yaml:"Type"`
		Properties map[string]yaml.Node `yaml:"Properties"`
	}
	r := doc["Resources"]
	if err := r.Decode(&res); err != nil {
		t.Fatal(err)
	}
	check := func(typ string, names []string) {
		found := false
		for id, rs := range res {
			if rs.Type != typ {
				continue
			}
			found = true
			for _, n := range names {
				prop, ok := cfnProperty[n]
				if !ok {
					t.Fatalf("lambdafleet names %s, which has no CloudFormation property here: add it to cfnProperty", n)
				}
				if node, ok := rs.Properties[prop]; ok && !literal(&node) {
					t.Errorf("%s.%s is not a literal: a stack update would move it under a release", id, prop)
				}
			}
		}
		if !found {
			t.Fatalf("the example has no %s", typ)
		}
	}
	check("AWS::Lambda::Function", lambdafleet.FunctionIgnoreChanges())
	check("AWS::Lambda::Alias", lambdafleet.AliasIgnoreChanges())
}

// literal: no intrinsic function (a tag such as !Ref, or a Ref/Fn:: key) anywhere in the node.
func literal(n *yaml.Node) bool {
	if n.Tag != "" && n.Tag[0] == '!' && n.Tag[1] != '!' {
		return false
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 && (c.Value == "Ref" || len(c.Value) > 4 && c.Value[:4] == "Fn::") {
			return false
		}
		if !literal(c) {
			return false
		}
	}
	return true
}
