package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/iampolicy"
	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/sandbox"
	s3sandbox "github.com/aviary-deploy/aviary/sandbox/s3"
)

// recoverChild is one nested stack: a Go function built to a content-addressed key, a version,
// and the permission that lets S3 invoke it.
const recoverChild = `Parameters:
  Bucket: {Type: String}
  CodeKey: {Type: String}
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      Role: !Sub arn:aws:iam::${AWS::AccountId}:role/degap
      Code:
        S3Bucket: !Ref Bucket
        S3Key: !Ref CodeKey
  Ver:
    Type: AWS::Lambda::Version
    Properties:
      FunctionName: !Ref Fn
  Perm:
    Type: AWS::Lambda::Permission
    Properties:
      FunctionName: !GetAtt Fn.Arn
      Action: lambda:InvokeFunction
      Principal: s3.amazonaws.com
      SourceArn: !Sub "arn:aws:s3:::uploads-${AWS::StackName}"
`

// recoverParent nests three of them.
const recoverParent = `Parameters:
  KeyA: {Type: String}
  KeyB: {Type: String}
  KeyC: {Type: String}
Resources:
  A:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: https://degap-deploy.s3.amazonaws.com/child.yaml
      Parameters: {Bucket: degap-deploy, CodeKey: !Ref KeyA}
  B:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: https://degap-deploy.s3.amazonaws.com/child.yaml
      Parameters: {Bucket: degap-deploy, CodeKey: !Ref KeyB}
  C:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: https://degap-deploy.s3.amazonaws.com/child.yaml
      Parameters: {Bucket: degap-deploy, CodeKey: !Ref KeyC}
`

type recoverScene struct {
	t      *testing.T
	srv    *sandbox.Server
	cfn    *cloudformation.Client
	s3     *s3.Client
	lambda *lambda.Client
	dir    string // where aviary runs: no aviary.yaml
	cache  string
	zips   map[string][]byte // a1, a2, b1, b2, c1, c2
	keys   map[string]string
}

func (s *recoverScene) aviary(args ...string) (int, string, string) {
	s.t.Helper()
	var out, errb strings.Builder
	if err := fleetDir.enter(s.dir); err != nil {
		s.t.Fatal(err)
	}
	defer fleetDir.leave()
	code := cli.Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func (s *recoverScene) put(key string, body []byte) {
	s.t.Helper()
	if _, err := s.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("degap-deploy"), Key: aws.String(key), Body: strings.NewReader(string(body))}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *recoverScene) stack(name string) cfntypes.Stack {
	s.t.Helper()
	out, err := s.cfn.DescribeStacks(context.Background(), &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		s.t.Fatal(err)
	}
	return out.Stacks[0]
}

// settled waits until a stack is no longer in progress.
func (s *recoverScene) settled(name string) cfntypes.Stack {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st := s.stack(name)
		if !strings.HasSuffix(string(st.StackStatus), "_IN_PROGRESS") {
			return st
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s still %s", name, st.StackStatus)
		}
		time.Sleep(20 * time.Millisecond) // polling, as the SDK's waiters do
	}
}

func (s *recoverScene) nested() map[string]string {
	s.t.Helper()
	out, err := s.cfn.DescribeStackResources(context.Background(), &cloudformation.DescribeStackResourcesInput{StackName: aws.String("degap")})
	if err != nil {
		s.t.Fatal(err)
	}
	m := map[string]string{}
	for _, r := range out.StackResources {
		m[aws.ToString(r.LogicalResourceId)] = aws.ToString(r.PhysicalResourceId)
	}
	return m
}

func (s *recoverScene) function(stackID string) string {
	s.t.Helper()
	out, err := s.cfn.DescribeStackResources(context.Background(), &cloudformation.DescribeStackResourcesInput{StackName: aws.String(stackID), LogicalResourceId: aws.String("Fn")})
	if err != nil || len(out.StackResources) != 1 {
		s.t.Fatalf("Fn of %s: %v", stackID, err)
	}
	return aws.ToString(out.StackResources[0].PhysicalResourceId)
}

func params(kv ...string) []cfntypes.Parameter {
	var ps []cfntypes.Parameter
	for i := 0; i+1 < len(kv); i += 2 {
		ps = append(ps, cfntypes.Parameter{ParameterKey: aws.String(kv[i]), ParameterValue: aws.String(kv[i+1])})
	}
	return ps
}

// changed counts the requests that change something.
func changed(reqs []sandbox.Request) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		switch r.Operation {
		case "PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "ContinueUpdateRollback", "UpdateStack", "DeleteStack",
			"UpdateFunctionCode", "CreateFunction", "DeleteFunction", "AddPermission", "RemovePermission":
			out[r.Operation]++
		}
	}
	return out
}

// stuckDegap is seed 000 rehearsed: a parent stack "degap" with three nested stacks of Go
// functions built to content-addressed keys in a versioned bucket. A lifecycle rule expires the
// first builds; the update moves A and B to new code (which works) and C to code that was never
// uploaded (which fails); C cannot roll back, nor can the parent roll back A and B: every stack
// sticks in UPDATE_ROLLBACK_FAILED. Of the expired keys, a1 is only in the artifact cache, b1 is
// a noncurrent version behind the expiry's delete marker, and c1's versions were deleted for
// good (only C's function still has that code).
func stuckDegap(t *testing.T) *recoverScene {
	t.Helper()
	srv, err := sandbox.Start(context.Background(), sandbox.Options{UpdateDelay: 20 * time.Millisecond, ControlRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &recoverScene{t: t, srv: srv, cfn: cloudformation.NewFromConfig(cfg), lambda: lambda.NewFromConfig(cfg),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), dir: t.TempDir(), cache: t.TempDir(),
		zips: map[string][]byte{}, keys: map[string]string{}}
	ctx := context.Background()
	for _, n := range []string{"a1", "a2", "b1", "b2", "c1", "c2"} {
		z, err := artifact.Zip([]artifact.File{{Name: "bootstrap", Executable: true, Data: built.bootstrap}, {Name: "stamp.txt", Data: []byte(n)}})
		if err != nil {
			t.Fatal(err)
		}
		s.zips[n], s.keys[n] = z, artifact.Key("functions", artifact.DigestOf(z))
	}
	if _, err := (artifact.Cache{Dir: s.cache}).Put(s.zips["a1"]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("degap-deploy")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.s3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("degap-deploy"),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	s.put("child.yaml", []byte(recoverChild))
	for _, n := range []string{"a1", "b1", "c1"} {
		s.put(s.keys[n], s.zips[n])
	}
	if _, err := s.cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("degap"), TemplateBody: aws.String(recoverParent),
		Parameters: params("KeyA", s.keys["a1"], "KeyB", s.keys["b1"], "KeyC", s.keys["c1"])}); err != nil {
		t.Fatal(err)
	}
	if st := s.settled("degap"); st.StackStatus != cfntypes.StackStatusCreateComplete {
		t.Fatalf("degap: %s %s", st.StackStatus, aws.ToString(st.StackStatusReason))
	}

	// The mistake: a lifecycle rule that expires the deployment archives.
	if _, err := s.s3.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String("degap-deploy"),
		LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{{
			ID: aws.String("expire-builds"), Status: s3types.ExpirationStatusEnabled, Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("functions/")},
			Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(30)}}}}}); err != nil {
		t.Fatal(err)
	}
	days := 30
	rep, err := srv.S3.ApplyLifecycle(s3sandbox.LifecycleOptions{Bucket: "degap-deploy", Days: &days})
	if err != nil || len(rep.Expired) != 3 {
		t.Fatalf("lifecycle expired %+v (%v), want the 3 builds", rep.Expired, err)
	}
	// a1 and c1 are gone for good from S3: their noncurrent versions deleted too. And a cleanup
	// deleted A's function version 1, the last one with a1's code: only the cache has it.
	for _, n := range []string{"a1", "c1"} {
		vs, err := s.s3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("degap-deploy"), Prefix: aws.String(s.keys[n])})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs.Versions {
			if _, err := s.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("degap-deploy"), Key: v.Key, VersionId: v.VersionId}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.lambda.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(s.function(s.nested()["A"])), Qualifier: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	s.put(s.keys["a2"], s.zips["a2"])
	s.put(s.keys["b2"], s.zips["b2"]) // c2 never uploaded: the update fails
	if _, err := s.cfn.UpdateStack(ctx, &cloudformation.UpdateStackInput{StackName: aws.String("degap"), UsePreviousTemplate: aws.Bool(true),
		Parameters: params("KeyA", s.keys["a2"], "KeyB", s.keys["b2"], "KeyC", s.keys["c2"])}); err != nil {
		t.Fatal(err)
	}
	if st := s.settled("degap"); st.StackStatus != cfntypes.StackStatusUpdateRollbackFailed {
		t.Fatalf("degap after the failed update: %s, want UPDATE_ROLLBACK_FAILED", st.StackStatus)
	}
	for n, id := range s.nested() {
		if st := s.settled(id); st.StackStatus != cfntypes.StackStatusUpdateRollbackFailed {
			t.Fatalf("nested %s: %s %s, want UPDATE_ROLLBACK_FAILED", n, st.StackStatus, aws.ToString(st.StackStatusReason))
		}
	}
	return s
}

func TestRecoverStackSeed000(t *testing.T) {
	s := stuckDegap(t)
	ctx := context.Background()
	nested := s.nested()
	type fnState struct{ arn, role, policy string }
	before := map[string]fnState{}
	for n, id := range nested {
		fn := s.function(id)
		gf, err := s.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)})
		if err != nil {
			t.Fatal(err)
		}
		pol, err := s.lambda.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String(fn)})
		if err != nil {
			t.Fatalf("GetPolicy %s: %v", fn, err)
		}
		before[n] = fnState{aws.ToString(gf.Configuration.FunctionArn), aws.ToString(gf.Configuration.Role), aws.ToString(pol.Policy)}
	}

	// Bad input changes nothing, and exits 2.
	s.srv.ResetRequests()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"recover-stack", "nope", "--cache", s.cache}, "does not exist"},
		{[]string{"recover-stack", nested["A"], "--cache", s.cache}, "is a nested stack"},
		{[]string{"recover-stack", "degap", "--cache", s.cache, "--skip", "A"}, "a nested stack cannot be skipped"},
		{[]string{"recover-stack", "degap", "--cache", s.cache, "--skip", "A.Perm"}, "no such resource failed its rollback"},
	} {
		code, out, errs := s.aviary(tc.args...)
		if code != cli.ExitBadInput || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, want %d naming %q\n%s\n%s", tc.args, code, cli.ExitBadInput, tc.want, out, errs)
		}
	}

	// A key that cannot be restored (no cache given, none here): exit 6 naming the build needed.
	code, out, errs := s.aviary("recover-stack", "degap", "--poll", "20ms")
	a1 := strings.TrimSuffix(strings.TrimPrefix(s.keys["a1"], "functions/"), ".zip")
	if code != cli.ExitNotReady || !strings.Contains(errs, "upload it to s3://degap-deploy/"+s.keys["a1"]+" (its SHA-256 must be "+a1+")") ||
		!strings.Contains(errs, "nothing was changed") || !strings.Contains(out, "Cannot continue the rollback") {
		t.Errorf("recover-stack without the cache: exit %d, want %d naming a1's build\n%s\n%s", code, cli.ExitNotReady, out, errs)
	}
	// A dry run that would skip the function whose code is missing may proceed.
	code, out, errs = s.aviary("recover-stack", "degap", "--dry-run", "--skip", "A.Fn")
	if code != 0 || !strings.Contains(out, "Resources to skip: A.Fn") || !strings.Contains(out, "MISSING, skipped") {
		t.Errorf("dry run skipping A.Fn: exit %d\n%s\n%s", code, out, errs)
	}

	// The dry run shows the plan: every stuck stack, why, each key and where it comes from.
	code, out, errs = s.aviary("recover-stack", "degap", "--dry-run", "--cache", s.cache)
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"NoSuchKey",
		"s3://degap-deploy/" + s.keys["a1"] + " (for A.Fn; from template and cloudtrail): missing; will be restored from the artifact cache " + s.cache,
		"s3://degap-deploy/" + s.keys["b1"] + " (for B.Fn; from template and cloudtrail): missing; will be restored from its noncurrent version",
		"s3://degap-deploy/" + s.keys["c1"] + " (for C.Fn; from template and cloudtrail): missing; will be restored from the deployed code of ",
		"nested A): UPDATE_ROLLBACK_FAILED", "nested B): UPDATE_ROLLBACK_FAILED", "nested C): UPDATE_ROLLBACK_FAILED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, s.keys["c2"]) {
		t.Errorf("the plan names c2, which the update (not the rollback) needed:\n%s", out)
	}
	if got := changed(s.srv.Requests()); len(got) != 0 {
		t.Errorf("bad input, an unrestorable key and dry runs changed something: %v", got)
	}
	if st := s.stack("degap"); st.StackStatus != cfntypes.StackStatusUpdateRollbackFailed {
		t.Errorf("degap %s after the dry runs", st.StackStatus)
	}

	// The recovery, as JSON.
	// C.Fn's code can be restored, so --skip C.Fn restores it rather than skipping it.
	code, out, errs = s.aviary("recover-stack", "degap", "--cache", s.cache, "--poll", "20ms", "--skip", "C.Fn", "-o", "json")
	if code != 0 {
		t.Fatalf("recover-stack: exit %d\n%s\n%s", code, out, errs)
	}
	var doc struct {
		Skipped    []string `json:"resources_to_skip"`
		NotSkipped []string `json:"restored_not_skipped"`
		Continued  bool     `json:"continued"`
		Keys       []struct {
			Key, State string
		} `json:"keys"`
		Final []struct{ Path, Status string } `json:"final"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !doc.Continued || len(doc.Keys) != 3 || len(doc.Final) != 4 || len(doc.Skipped) != 0 || strings.Join(doc.NotSkipped, ",") != "C.Fn" {
		t.Fatalf("recover-stack output: %s", out)
	}
	for _, k := range doc.Keys {
		if k.State != "restored" {
			t.Errorf("key %s: %s, want restored", k.Key, k.State)
		}
	}
	for _, f := range doc.Final {
		if f.Status != "UPDATE_ROLLBACK_COMPLETE" {
			t.Errorf("stack %q ended %s, want UPDATE_ROLLBACK_COMPLETE", f.Path, f.Status)
		}
	}
	for _, n := range []string{"a1", "b1", "c1"} {
		if got := getObjectFrom(t, s.s3, "degap-deploy", s.keys[n]); string(got) != string(s.zips[n]) {
			t.Errorf("%s restored with other bytes", n)
		}
	}
	if got := changed(s.srv.Requests()); got["ContinueUpdateRollback"] != 1 || got["DeleteFunction"] != 0 || got["CreateFunction"] != 0 || got["RemovePermission"] != 0 {
		t.Errorf("the recovery's writes: %v; want one ContinueUpdateRollback, no function or permission deleted or created", got)
	}

	// The functions kept their ARNs, roles and permissions, run the first builds, and answer.
	for n, id := range nested {
		fn := s.function(id)
		gf, err := s.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)})
		if err != nil {
			t.Fatal(err)
		}
		pol, err := s.lambda.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String(fn)})
		if err != nil {
			t.Fatalf("GetPolicy %s after the recovery: %v", fn, err)
		}
		got := fnState{aws.ToString(gf.Configuration.FunctionArn), aws.ToString(gf.Configuration.Role), aws.ToString(pol.Policy)}
		if got != before[n] || !strings.Contains(got.policy, `"Service":"s3.amazonaws.com"`) {
			t.Errorf("%s: %+v after the recovery, was %+v", n, got, before[n])
		}
		if want := artifact.DigestOf(s.zips[strings.ToLower(n)+"1"]).CodeSha256; aws.ToString(gf.Configuration.CodeSha256) != want {
			t.Errorf("%s runs %s, want the first build %s", n, aws.ToString(gf.Configuration.CodeSha256), want)
		}
		inv, err := s.lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: gf.Configuration.FunctionArn})
		if err != nil || inv.FunctionError != nil {
			t.Errorf("invoke %s: %v %s", n, err, aws.ToString(inv.FunctionError))
		}
	}

	// Another run: the stack is no longer stuck.
	s.srv.ResetRequests()
	code, _, errs = s.aviary("recover-stack", "degap", "--cache", s.cache)
	if code != cli.ExitBadInput || !strings.Contains(errs, "is UPDATE_ROLLBACK_COMPLETE, not UPDATE_ROLLBACK_FAILED") {
		t.Errorf("recover-stack of a recovered stack: exit %d\n%s", code, errs)
	}
	if got := changed(s.srv.Requests()); len(got) != 0 {
		t.Errorf("recover-stack of a stack in another state changed something: %v", got)
	}

	// And the next deploy goes through.
	s.put(s.keys["c2"], s.zips["c2"])
	if _, err := s.cfn.UpdateStack(ctx, &cloudformation.UpdateStackInput{StackName: aws.String("degap"), UsePreviousTemplate: aws.Bool(true),
		Parameters: params("KeyA", s.keys["a2"], "KeyB", s.keys["b2"], "KeyC", s.keys["c2"])}); err != nil {
		t.Fatal(err)
	}
	if st := s.settled("degap"); st.StackStatus != cfntypes.StackStatusUpdateComplete {
		t.Errorf("the next update: %s %s", st.StackStatus, aws.ToString(st.StackStatusReason))
	}
}

func getObjectFrom(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The policy `aviary iam-policy --recover` prints allows every call recover-stack makes in a
// recovery that reads every source (the cache, an older S3 version, a function's code), and grants
// nothing that deletes.
func TestIAMRecoverPolicyCoversEveryCall(t *testing.T) {
	s := stuckDegap(t)
	stackIDs := map[string]string{"degap": aws.ToString(s.stack("degap").StackId)}
	for _, id := range s.nested() {
		stackIDs[id] = id
	}
	s.srv.ResetRequests()
	if code, out, errs := s.aviary("recover-stack", "degap", "--cache", s.cache, "--poll", "20ms"); code != 0 {
		t.Fatalf("recover-stack: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs := s.aviary("iam-policy", "--recover", "--stack", "degap", "--bucket", "degap-deploy", "--account", "000000000000", "--region", "us-east-1")
	if code != 0 {
		t.Fatalf("iam-policy --recover: %s", errs)
	}
	var p iampolicy.Policy
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, req := range s.srv.Requests() {
		if !strings.Contains(req.UserAgent, "app/aviary") {
			continue // the test's own calls, and CloudFormation's
		}
		action := iampolicy.Action(req.Service, req.Operation)
		var resource string
		switch req.Service {
		case "lambda":
			resource = "arn:aws:lambda:us-east-1:000000000000:function:" + req.Resource
			if q, _ := url.ParseQuery(req.Query); q.Get("Qualifier") != "" {
				resource += ":" + q.Get("Qualifier")
			}
		case "s3":
			resource = "arn:aws:s3:::" + strings.TrimPrefix(req.Path, "/")
			if q, _ := url.ParseQuery(req.Query); req.Operation == "GetObject" && q.Get("versionId") != "" {
				action = "s3:GetObjectVersion"
			}
		case "cloudformation":
			id := req.Resource
			if full, ok := stackIDs[id]; ok {
				id = full
			}
			resource = id
		case "cloudtrail":
			resource = "*"
		}
		used[action] = true
		if !p.Allows(action, resource) {
			t.Errorf("the policy does not allow %s on %s (%s %s %s)", action, resource, req.Method, req.Path, req.Query)
		}
	}
	for _, want := range []string{"cloudformation:ContinueUpdateRollback", "cloudtrail:LookupEvents", "s3:GetObjectVersion", "s3:PutObject", "lambda:GetFunction"} {
		if !used[want] {
			t.Errorf("the run did not call %s: it does not prove the policy (used %v)", want, used)
		}
	}
	for _, st := range p.Statement {
		for _, a := range st.Action {
			if strings.Contains(a, "Delete") || a == "lambda:CreateFunction" {
				t.Errorf("the policy grants %s", a)
			}
		}
	}
}

// TestRecoverStackSkipsWhatCannotBeRestored: with no cache, a1 can be found nowhere; --skip A.Fn
// skips that one function (AWS's NestedStack.LogicalId form), the other keys are restored, and
// every stack rolls back; the skipped function keeps the code it has.
func TestRecoverStackSkipsWhatCannotBeRestored(t *testing.T) {
	s := stuckDegap(t)
	ctx := context.Background()
	code, out, errs := s.aviary("recover-stack", "degap", "--skip", "A.Fn", "--poll", "20ms")
	if code != 0 || !strings.Contains(out, "Resources to skip: A.Fn") || strings.Count(out, ": UPDATE_ROLLBACK_COMPLETE") != 4 {
		t.Fatalf("recover-stack --skip A.Fn: exit %d\n%s\n%s", code, out, errs)
	}
	a := s.nested()["A"]
	res, err := s.cfn.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(a), LogicalResourceId: aws.String("Fn")})
	if err != nil || len(res.StackResources) != 1 {
		t.Fatal(err)
	}
	if r := res.StackResources[0]; aws.ToString(r.ResourceStatusReason) != "Resource skipped during UPDATE_ROLLBACK" {
		t.Errorf("A.Fn: %s %q, want skipped", r.ResourceStatus, aws.ToString(r.ResourceStatusReason))
	}
	gf, err := s.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(s.function(a))})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(gf.Configuration.CodeSha256), artifact.DigestOf(s.zips["a2"]).CodeSha256; got != want {
		t.Errorf("the skipped function runs %s, want the code it had (a2) %s", got, want)
	}
	for _, n := range []string{"b1", "c1"} {
		if got := getObjectFrom(t, s.s3, "degap-deploy", s.keys[n]); string(got) != string(s.zips[n]) {
			t.Errorf("%s not restored", n)
		}
	}
	if _, err := s.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("degap-deploy"), Key: aws.String(s.keys["a1"])}); err == nil {
		t.Errorf("a1 exists, though nothing had it")
	}
}
