package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/dynalite"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store/storeurl"
	"github.com/aviary-deploy/aviary/web/lambdaurl/lambdaurltest"
)

// Aviary's own infrastructure, deploy/cloudformation/aviary.yaml, deployed for real on the
// sandbox's CloudFormation (with dynalite as the sandbox's DynamoDB) and then used as a team
// would use it: the store on the stack's table, a release through the stack's artifact bucket,
// the gate answering on the stack's function URL, the CI role granting exactly what `aviary
// iam-policy` prints, the controller with its schedule, its role granting exactly what `aviary
// iam-policy --controller` prints, driving a detached release as the schedule ticks. Then a
// parameter changes (an update) and the stack is deleted, keeping the table and the bucket as
// the template's DeletionPolicy says.
func TestCloudFormationAviaryStackOnTheSandbox(t *testing.T) {
	opts := quick
	opts.DynamoDB = dynalite.Endpoint(t)
	f := newFleet(t, 2, opts, "      canary:\n        - weight: 50%\n          bake: 0s")
	ctx := context.Background()
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfn, s3c, iamc := cloudformation.NewFromConfig(cfg), s3.NewFromConfig(cfg), iam.NewFromConfig(cfg)

	// The gate's code, built as a user builds it, where the template's parameters say it is.
	gate := lambdaurltest.Build(t, "./cmd/aviary-gate", nil)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("shop-gate-code")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("shop-gate-code"), Key: aws.String("aviary-gate.zip"), Body: strings.NewReader(string(gate))}); err != nil {
		t.Fatal(err)
	}
	// And the controller's.
	ctlZip := lambdaurltest.Build(t, "./cmd/aviary-controller", nil)
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("shop-gate-code"), Key: aws.String("aviary-controller.zip"), Body: strings.NewReader(string(ctlZip))}); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join("..", "deploy", "cloudformation", "aviary.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("aviary-cfn-%d", tableSeq.Add(1))
	arch := "arm64"
	if runtime.GOARCH == "amd64" {
		arch = "x86_64"
	}
	params := func(prefix string) []cfntypes.Parameter {
		p := map[string]string{
			"TableName": table, "ArtifactBucketName": "shop-releases", "ArtifactPrefix": prefix, "FunctionNamePrefix": "shop-",
			"GitHubSubjects":   "repo:acme/shop:environment:production",
			"GateCodeS3Bucket": "shop-gate-code", "GateCodeS3Key": "aviary-gate.zip", "GateArchitecture": arch,
			"GateLinkSecret":         "a-link-secret-of-32-random-bytes",
			"ControllerCodeS3Bucket": "shop-gate-code", "ControllerCodeS3Key": "aviary-controller.zip", "ControllerArchitecture": arch,
			"ControllerService": "shop", "ControllerEnvironment": "production",
		}
		var out []cfntypes.Parameter
		for k, v := range p {
			out = append(out, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)})
		}
		return out
	}

	// Without the capability, CloudFormation refuses named roles.
	_, err = cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("aviary"), TemplateBody: aws.String(string(body)), Parameters: params("aviary")})
	var insufficient *cfntypes.InsufficientCapabilitiesException
	if !errors.As(err, &insufficient) {
		t.Fatalf("CreateStack without CAPABILITY_NAMED_IAM: %v, want InsufficientCapabilitiesException", err)
	}
	if _, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("aviary"), TemplateBody: aws.String(string(body)),
		Parameters: params("aviary"), Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityNamedIam}}); err != nil {
		t.Fatal(err)
	}
	st := waitStack(t, cfn, "aviary", cfntypes.StackStatusCreateComplete)
	out := map[string]string{}
	for _, o := range st.Outputs {
		out[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	if out["StoreURL"] != "dynamodb://"+table || out["ArtifactBucket"] != "shop-releases" || out["CIRoleArn"] != "arn:aws:iam::000000000000:role/aviary-ci" {
		t.Fatalf("outputs = %v", out)
	}

	// The store: the stack's table, through the sandbox's one endpoint.
	t.Setenv("AVIARY_STORE", out["StoreURL"])
	if code, stdout, errs := f.aviary("store", "init"); code != 0 || !strings.Contains(stdout, "already exists and is active") {
		t.Fatalf("store init on the stack's table: %d\n%s\n%s", code, stdout, errs)
	}

	// A release through the stack's bucket, recorded in the stack's table.
	manifest, err := os.ReadFile(filepath.Join(f.dir, "aviary.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := strings.Replace(string(manifest), "  bucket: shop-artifacts\n", "  bucket: "+out["ArtifactBucket"]+"\n  prefix: aviary\n", 1) +
		"    controller: {function: " + out["ControllerFunction"] + "}\n"
	if err := os.WriteFile(filepath.Join(f.dir, "aviary.yaml"), []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	f.stampAll("1")
	if code, stdout, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatalf("deploy: %d\n%s\n%s", code, stdout, errs)
	}
	if got := f.served("fn00"); got != "1" {
		t.Errorf("after the release fn00 serves %q, want 1", got)
	}
	objs, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("shop-releases"), Prefix: aws.String("aviary/")})
	if err != nil || len(objs.Contents) == 0 {
		t.Errorf("artifacts under aviary/ in the stack's bucket: %v, %v", objs, err)
	}
	items, err := dynamodb.NewFromConfig(cfg).Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table)})
	if err != nil || items.Count == 0 {
		t.Errorf("the stack's table after a release: %v items, %v", items, err)
	}

	// The gate answers on the stack's function URL.
	u, err := url.Parse(out["GateURL"])
	if err != nil || !strings.HasSuffix(u.Host, ".lambda-url.us-east-1.on.aws") {
		t.Fatalf("GateURL = %q", out["GateURL"])
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/", nil)
	req.Host = u.Host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "shop") {
		t.Errorf("GET the gate's URL = %d, want 200 with the dashboard naming the service:\n%.500s", resp.StatusCode, page)
	}

	// The CI role grants exactly the actions of `aviary iam-policy`.
	code, policyJSON, errs := f.aviary("iam-policy", "-e", "production")
	if code != 0 {
		t.Fatalf("iam-policy: %d\n%s", code, errs)
	}
	if got, want := roleActions(t, iamc, "aviary-ci", "aviary"), policyActions(t, policyJSON); !slices.Equal(got, want) {
		t.Errorf("the CI role's actions:\n %v\nwant aviary iam-policy's:\n %v", got, want)
	}
	gateRole, err := iamc.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("aviary-gate")})
	if err != nil {
		t.Fatal(err)
	}
	fn, err := f.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("aviary-gate")})
	if err != nil || aws.ToString(fn.Configuration.Role) != aws.ToString(gateRole.Role.Arn) {
		t.Errorf("the gate runs as %v (%v), want %s", fn, err, aws.ToString(gateRole.Role.Arn))
	}

	// The controller: its function runs as its role, which grants exactly `aviary iam-policy
	// --controller`'s actions; its schedule ticks it every minute with the environment's Event.
	ctlRole, err := iamc.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("aviary-controller")})
	if err != nil {
		t.Fatal(err)
	}
	if fn, err := f.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(out["ControllerFunction"])}); err != nil || aws.ToString(fn.Configuration.Role) != aws.ToString(ctlRole.Role.Arn) {
		t.Errorf("the controller %q runs as %v (%v), want %s", out["ControllerFunction"], fn, err, aws.ToString(ctlRole.Role.Arn))
	}
	code, policyJSON, errs = f.aviary("iam-policy", "-e", "production", "--controller")
	if code != 0 {
		t.Fatalf("iam-policy --controller: %d\n%s", code, errs)
	}
	if got, want := roleActions(t, iamc, "aviary-controller", "aviary-controller"), policyActions(t, policyJSON); !slices.Equal(got, want) {
		t.Errorf("the controller's role's actions:\n %v\nwant aviary iam-policy --controller's:\n %v", got, want)
	}
	sched, err := scheduler.NewFromConfig(cfg).GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("aviary-controller")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(sched.ScheduleExpression) != "rate(1 minute)" || sched.State != schedtypes.ScheduleStateEnabled ||
		aws.ToString(sched.Target.RoleArn) != aws.ToString(ctlRole.Role.Arn) || aws.ToString(sched.Target.Input) != `{"service":"shop","environment":"production"}` {
		t.Errorf("the controller's schedule: %+v, target %+v", sched, sched.Target)
	}

	// A detached release, driven by the stack's controller as its schedule ticks.
	teamStore, err := storeurl.Open(ctx, out["StoreURL"], "e2e")
	if err != nil {
		t.Fatal(err)
	}
	defer teamStore.Close()
	f.stampAll("2")
	if code, stdout, errs := f.aviary("deploy", "-e", "production", "--detach", "--api-rate", "200"); code != 0 {
		t.Fatalf("deploy --detach: %d\n%s\n%s", code, stdout, errs)
	}
	for i := 0; ; i++ {
		resp, err := http.Post(f.srv.URL+"/_aviary/scheduler/tick?advance=60s", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Invoked []struct {
				Target    string
				Delivered bool
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil || len(rep.Invoked) != 1 || !rep.Invoked[0].Delivered || !strings.HasSuffix(rep.Invoked[0].Target, ":function:"+out["ControllerFunction"]) {
			t.Fatalf("the schedule's tick: %+v %v", rep, err)
		}
		rs, err := teamStore.ListReleases(ctx, release.Filter{Service: "shop", Environment: "production", Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 1 && rs[0].Controller && rs[0].Phase.Final() {
			if rs[0].Phase != release.Promoted || f.served("fn00") != "2" || f.served("fn01") != "2" {
				t.Fatalf("the detached release ended %s: %s", rs[0].Describe(), rs[0].Reason)
			}
			t.Logf("release %s promoted by the stack's controller, %d scheduled ticks", rs[0].ID, i+1)
			break
		}
		if i == 100 {
			t.Fatal("100 scheduled ticks and the detached release is not promoted")
		}
		time.Sleep(300 * time.Millisecond) // the invocation is asynchronous
	}

	// An update: another artifact prefix changes the bucket's lifecycle and the CI role's policy.
	if _, err := cfn.UpdateStack(ctx, &cloudformation.UpdateStackInput{StackName: aws.String("aviary"), UsePreviousTemplate: aws.Bool(true),
		Parameters: params("releases"), Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityNamedIam}}); err != nil {
		t.Fatal(err)
	}
	waitStack(t, cfn, "aviary", cfntypes.StackStatusUpdateComplete)
	lc, err := s3c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String("shop-releases")})
	if err != nil || len(lc.Rules) != 1 || aws.ToString(lc.Rules[0].Filter.Prefix) != "releases/" {
		t.Errorf("lifecycle after the update: %+v, %v; want one rule on releases/", lc, err)
	}
	doc := rolePolicy(t, iamc, "aviary-ci", "aviary")
	if !strings.Contains(doc, "shop-releases/releases/*") || strings.Contains(doc, "shop-releases/aviary/*") {
		t.Errorf("the CI role's policy after the update does not name the new prefix:\n%s", doc)
	}

	// A delete: the roles, the provider and the gate go; the table and the bucket stay.
	if _, err := cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String("aviary")}); err != nil {
		t.Fatal(err)
	}
	waitStack(t, cfn, aws.ToString(st.StackId), cfntypes.StackStatusDeleteComplete)
	if _, err := scheduler.NewFromConfig(cfg).GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("aviary-controller")}); err == nil {
		t.Error("the controller's schedule survived the stack's deletion")
	}
	for _, role := range []string{"aviary-ci", "aviary-gate", "aviary-controller"} {
		_, err := iamc.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role)})
		var nse *iamtypes.NoSuchEntityException
		if !errors.As(err, &nse) {
			t.Errorf("role %s after the stack's deletion: %v, want NoSuchEntity", role, err)
		}
	}
	if list, err := iamc.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{}); err != nil || len(list.OpenIDConnectProviderList) != 0 {
		t.Errorf("OIDC providers after the stack's deletion: %v, %v", list, err)
	}
	if _, err := f.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("aviary-gate")}); err == nil {
		t.Error("the gate function survived the stack's deletion")
	}
	if _, err := dynamodb.NewFromConfig(cfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}); err != nil {
		t.Errorf("the table (DeletionPolicy: Retain) after the stack's deletion: %v", err)
	}
	if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("shop-releases")}); err != nil {
		t.Errorf("the bucket (DeletionPolicy: Retain) after the stack's deletion: %v", err)
	}
}

// waitStack waits for a stack to settle and fails the test, with its failed events, unless it
// settled in want.
func waitStack(t *testing.T, cfn *cloudformation.Client, name string, want cfntypes.StackStatus) cfntypes.Stack {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		st := out.Stacks[0]
		if !strings.HasSuffix(string(st.StackStatus), "_IN_PROGRESS") {
			if st.StackStatus != want {
				evs, _ := cfn.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(name)})
				var why []string
				for _, e := range evs.StackEvents {
					if strings.HasSuffix(string(e.ResourceStatus), "_FAILED") {
						why = append(why, aws.ToString(e.LogicalResourceId)+": "+aws.ToString(e.ResourceStatusReason))
					}
				}
				t.Fatalf("stack %s is %s (%s), want %s:\n%s", name, st.StackStatus, aws.ToString(st.StackStatusReason), want, strings.Join(why, "\n"))
			}
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stack %s still %s", name, st.StackStatus)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func rolePolicy(t *testing.T, c *iam.Client, role, policy string) string {
	t.Helper()
	out, err := c.GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(policy)})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := url.QueryUnescape(aws.ToString(out.PolicyDocument))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// roleActions is the sorted set of actions a role's inline policy allows.
func roleActions(t *testing.T, c *iam.Client, role, policy string) []string {
	return policyActions(t, rolePolicy(t, c, role, policy))
}

func policyActions(t *testing.T, doc string) []string {
	t.Helper()
	var p struct {
		Statement []struct {
			Action any
		}
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatalf("policy %s: %v", doc, err)
	}
	var out []string
	for _, s := range p.Statement {
		switch a := s.Action.(type) {
		case string:
			out = append(out, a)
		case []any:
			for _, x := range a {
				out = append(out, fmt.Sprint(x))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
