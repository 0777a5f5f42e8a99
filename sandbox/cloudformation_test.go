package sandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// cfnEnv is a sandbox with CloudFormation and CloudTrail clients.
type cfnEnv struct {
	*env
	cfn   *cloudformation.Client
	trail *cloudtrail.Client
}

func startCFN(t *testing.T) *cfnEnv {
	t.Helper()
	opts := fast
	opts.UpdateDelay = 20 * time.Millisecond // functions settle, so CloudFormation waits for them
	opts.ControlRate = 0                     // AWS's control-plane quota, which CloudFormation's calls count against too
	e := start(t, opts)
	ce := &cfnEnv{env: e, cfn: cloudformation.NewFromConfig(e.cfg), trail: cloudtrail.NewFromConfig(e.cfg)}
	if _, err := e.s3.CreateBucket(ctx(t), &s3.CreateBucketInput{Bucket: aws.String("artifacts")}); err != nil {
		t.Fatal(err)
	}
	return ce
}

func (e *cfnEnv) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := e.s3.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("artifacts"), Key: aws.String(key), Body: strings.NewReader(string(body))}); err != nil {
		t.Fatal(err)
	}
}

func (e *cfnEnv) del(t *testing.T, key string) {
	t.Helper()
	if _, err := e.s3.DeleteObject(ctx(t), &s3.DeleteObjectInput{Bucket: aws.String("artifacts"), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
}

// settled polls a stack until its status is no longer in progress, and returns it.
func (e *cfnEnv) settled(t *testing.T, name string) cfntypes.Stack {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := e.cfn.DescribeStacks(ctx(t), &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err != nil {
			t.Fatalf("DescribeStacks %s: %v", name, err)
		}
		st := out.Stacks[0]
		if !strings.HasSuffix(string(st.StackStatus), "_IN_PROGRESS") {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stack %s still %s after a minute", name, st.StackStatus)
		}
		time.Sleep(10 * time.Millisecond) // polling, as the SDK's waiters do
	}
}

func (e *cfnEnv) waitCreate(t *testing.T, name string) {
	t.Helper()
	w := cloudformation.NewStackCreateCompleteWaiter(e.cfn, func(o *cloudformation.StackCreateCompleteWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(ctx(t), &cloudformation.DescribeStacksInput{StackName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("wait for %s to be created: %v\n%s", name, err, e.eventLog(t, name))
	}
}

func (e *cfnEnv) waitUpdate(t *testing.T, name string) {
	t.Helper()
	w := cloudformation.NewStackUpdateCompleteWaiter(e.cfn, func(o *cloudformation.StackUpdateCompleteWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(ctx(t), &cloudformation.DescribeStacksInput{StackName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("wait for %s to be updated: %v\n%s", name, err, e.eventLog(t, name))
	}
}

func (e *cfnEnv) waitRollback(t *testing.T, name string) {
	t.Helper()
	w := cloudformation.NewStackRollbackCompleteWaiter(e.cfn, func(o *cloudformation.StackRollbackCompleteWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(ctx(t), &cloudformation.DescribeStacksInput{StackName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("wait for %s to roll back: %v\n%s", name, err, e.eventLog(t, name))
	}
}

// eventLog is a stack's events, oldest first, for failure messages.
func (e *cfnEnv) eventLog(t *testing.T, name string) string {
	var lines []string
	for _, ev := range e.events(t, name) {
		lines = append([]string{aws.ToString(ev.LogicalResourceId) + " " + string(ev.ResourceStatus) + " " + aws.ToString(ev.ResourceStatusReason)}, lines...)
	}
	return strings.Join(lines, "\n")
}

func (e *cfnEnv) events(t *testing.T, name string) []cfntypes.StackEvent {
	t.Helper()
	var all []cfntypes.StackEvent
	p := cloudformation.NewDescribeStackEventsPaginator(e.cfn, &cloudformation.DescribeStackEventsInput{StackName: aws.String(name)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatalf("DescribeStackEvents %s: %v", name, err)
		}
		all = append(all, out.StackEvents...)
	}
	return all
}

func (e *cfnEnv) resources(t *testing.T, name string) map[string]cfntypes.StackResource {
	t.Helper()
	out, err := e.cfn.DescribeStackResources(ctx(t), &cloudformation.DescribeStackResourcesInput{StackName: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeStackResources %s: %v", name, err)
	}
	m := map[string]cfntypes.StackResource{}
	for _, r := range out.StackResources {
		m[aws.ToString(r.LogicalResourceId)] = r
	}
	return m
}

func param(k, v string) cfntypes.Parameter {
	return cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)}
}

// appYAML is a function with a version, an alias on it and a permission, in YAML short forms.
const appYAML = `AWSTemplateFormatVersion: "2010-09-09"
Description: an app
Parameters:
  CodeKey:
    Type: String
  Bucket:
    Type: String
    Default: artifacts
  Memory:
    Type: Number
    Default: 128
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      MemorySize: !Ref Memory
      Role: !Sub arn:aws:iam::${AWS::AccountId}:role/app
      Code:
        S3Bucket: !Ref Bucket
        S3Key: !Ref CodeKey
  Ver:
    Type: AWS::Lambda::Version
    Properties:
      FunctionName: !Ref Fn
  Live:
    Type: AWS::Lambda::Alias
    Properties:
      FunctionName: !Ref Fn
      FunctionVersion: !GetAtt Ver.Version
      Name: live
  Perm:
    Type: AWS::Lambda::Permission
    Properties:
      FunctionName: !GetAtt Fn.Arn
      Action: lambda:InvokeFunction
      Principal: s3.amazonaws.com
      SourceArn: !Sub "arn:aws:s3:::uploads-${AWS::StackName}"
Outputs:
  FunctionArn:
    Value: !GetAtt Fn.Arn
`

func (e *cfnEnv) createApp(t *testing.T, name, key string) map[string]cfntypes.StackResource {
	t.Helper()
	_, err := e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(appYAML),
		Parameters: []cfntypes.Parameter{param("CodeKey", key)}})
	if err != nil {
		t.Fatalf("CreateStack: %v", err)
	}
	e.waitCreate(t, name)
	return e.resources(t, name)
}

func (e *cfnEnv) function(t *testing.T, name string) *lambda.GetFunctionOutput {
	t.Helper()
	out, err := e.lambda.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetFunction %s: %v", name, err)
	}
	return out
}

func TestCloudFormationCreatesFunctionsVersionsAliasesPermissions(t *testing.T) {
	e := startCFN(t)
	e.put(t, "k1.zip", zips.good)
	res := e.createApp(t, "app", "k1.zip")

	fn := aws.ToString(res["Fn"].PhysicalResourceId)
	if !strings.HasPrefix(fn, "app-Fn-") || len(fn) != len("app-Fn-")+12 {
		t.Errorf("generated function name = %q, want app-Fn-<12 random>", fn)
	}
	got := e.function(t, fn)
	if got, want := aws.ToString(got.Configuration.CodeSha256), codeSha256(zips.good); got != want {
		t.Errorf("CodeSha256 = %s, want %s", got, want)
	}
	if got, want := aws.ToString(got.Configuration.Role), "arn:aws:iam::000000000000:role/app"; got != want {
		t.Errorf("Role = %s, want %s (from !Sub)", got, want)
	}
	alias, err := e.lambda.GetAlias(ctx(t), &lambda.GetAliasInput{FunctionName: aws.String(fn), Name: aws.String("live")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(alias.FunctionVersion), "1"; got != want {
		t.Errorf("alias live → %s, want %s (!GetAtt Ver.Version)", got, want)
	}
	if got, want := aws.ToString(res["Live"].PhysicalResourceId), aws.ToString(alias.AliasArn); got != want {
		t.Errorf("alias physical id = %s, want its ARN %s", got, want)
	}
	pol, err := e.lambda.GetPolicy(ctx(t), &lambda.GetPolicyInput{FunctionName: aws.String(fn)})
	if err != nil {
		t.Fatalf("GetPolicy: %v", err)
	}
	if !strings.Contains(aws.ToString(pol.Policy), `"AWS:SourceArn":"arn:aws:s3:::uploads-app"`) || !strings.Contains(aws.ToString(pol.Policy), `"Service":"s3.amazonaws.com"`) {
		t.Errorf("policy = %s", aws.ToString(pol.Policy))
	}
	stacks, err := e.cfn.DescribeStacks(ctx(t), &cloudformation.DescribeStacksInput{StackName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	st := stacks.Stacks[0]
	var ps []string
	for _, p := range st.Parameters {
		ps = append(ps, aws.ToString(p.ParameterKey)+"="+aws.ToString(p.ParameterValue))
	}
	if got, want := strings.Join(ps, ","), "Bucket=artifacts,CodeKey=k1.zip,Memory=128"; got != want {
		t.Errorf("parameters = %s, want %s", got, want)
	}
	if st.Tags != nil || st.Capabilities != nil {
		t.Errorf("empty lists answered: tags %v, capabilities %v", st.Tags, st.Capabilities)
	}
	if len(st.Outputs) != 1 || aws.ToString(st.Outputs[0].OutputValue) != aws.ToString(got.Configuration.FunctionArn) {
		t.Errorf("outputs = %+v, want FunctionArn %s", st.Outputs, aws.ToString(got.Configuration.FunctionArn))
	}

	// A second stack of the same name is refused; a template with an unsupported type too.
	_, err = e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("app"), TemplateBody: aws.String(appYAML),
		Parameters: []cfntypes.Parameter{param("CodeKey", "k1.zip")}})
	wantAPIError[*cfntypes.AlreadyExistsException](t, err, http.StatusBadRequest)
	_, err = e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("other"),
		TemplateBody: aws.String("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n")})
	if errorCode(err) != "ValidationError" || !strings.Contains(err.Error(), "Unrecognized resource types: [AWS::SQS::Queue]") {
		t.Errorf("unsupported type: %v, want ValidationError naming AWS::SQS::Queue", err)
	}
	_, err = e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("other"), TemplateBody: aws.String(appYAML)})
	if errorCode(err) != "ValidationError" || !strings.Contains(err.Error(), "Parameters: [CodeKey] must have values") {
		t.Errorf("missing parameter: %v", err)
	}

	// Delete removes everything.
	if _, err := e.cfn.DeleteStack(ctx(t), &cloudformation.DeleteStackInput{StackName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	w := cloudformation.NewStackDeleteCompleteWaiter(e.cfn, func(o *cloudformation.StackDeleteCompleteWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(ctx(t), &cloudformation.DescribeStacksInput{StackName: st.StackId}, time.Minute); err != nil {
		t.Fatalf("wait for delete: %v\n%s", err, e.eventLog(t, aws.ToString(st.StackId)))
	}
	_, err = e.lambda.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(fn)})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, http.StatusNotFound)
	_, err = e.cfn.DescribeStacks(ctx(t), &cloudformation.DescribeStacksInput{StackName: aws.String("app")})
	if errorCode(err) != "ValidationError" {
		t.Errorf("DescribeStacks of a deleted stack by name: %v, want ValidationError", err)
	}
}

func (e *cfnEnv) update(t *testing.T, name string, params ...cfntypes.Parameter) {
	t.Helper()
	_, err := e.cfn.UpdateStack(ctx(t), &cloudformation.UpdateStackInput{StackName: aws.String(name), UsePreviousTemplate: aws.Bool(true), Parameters: params})
	if err != nil {
		t.Fatalf("UpdateStack %s: %v", name, err)
	}
}

// failedReasons lists the reasons of a stack's UPDATE_FAILED events for one resource, newest first.
func (e *cfnEnv) failedReasons(t *testing.T, stack, logical string) []string {
	var out []string
	for _, ev := range e.events(t, stack) {
		if aws.ToString(ev.LogicalResourceId) == logical && ev.ResourceStatus == cfntypes.ResourceStatusUpdateFailed {
			out = append(out, aws.ToString(ev.ResourceStatusReason))
		}
	}
	return out
}

func TestCloudFormationUpdateAndRollback(t *testing.T) {
	e := startCFN(t)
	e.put(t, "k1.zip", zips.good)
	e.put(t, "k2.zip", zips.bad)
	res := e.createApp(t, "app", "k1.zip")
	fn := aws.ToString(res["Fn"].PhysicalResourceId)
	arn := aws.ToString(e.function(t, fn).Configuration.FunctionArn)

	// A good update changes the code in place.
	e.update(t, "app", param("CodeKey", "k2.zip"), param("Memory", "256"))
	e.waitUpdate(t, "app")
	got := e.function(t, fn)
	if aws.ToString(got.Configuration.CodeSha256) != codeSha256(zips.bad) || aws.ToInt32(got.Configuration.MemorySize) != 256 {
		t.Fatalf("after update: code %s memory %d", aws.ToString(got.Configuration.CodeSha256), aws.ToInt32(got.Configuration.MemorySize))
	}
	_, err := e.cfn.UpdateStack(ctx(t), &cloudformation.UpdateStackInput{StackName: aws.String("app"), UsePreviousTemplate: aws.Bool(true),
		Parameters: []cfntypes.Parameter{param("CodeKey", "k2.zip"), param("Memory", "256")}})
	if errorCode(err) != "ValidationError" || !strings.Contains(err.Error(), "No updates are to be performed.") {
		t.Errorf("an update that changes nothing: %v", err)
	}

	// An update to a key that does not exist fails and rolls back to k2 and 256 MB.
	e.update(t, "app", param("CodeKey", "missing.zip"), param("Memory", "512"))
	e.waitRollback(t, "app")
	got = e.function(t, fn)
	if aws.ToString(got.Configuration.CodeSha256) != codeSha256(zips.bad) || aws.ToInt32(got.Configuration.MemorySize) != 256 {
		t.Errorf("after rollback: code %s memory %d, want k2's and 256", aws.ToString(got.Configuration.CodeSha256), aws.ToInt32(got.Configuration.MemorySize))
	}
	if got := aws.ToString(got.Configuration.FunctionArn); got != arn {
		t.Errorf("function ARN changed: %s → %s", arn, got)
	}
	reasons := e.failedReasons(t, "app", "Fn")
	if len(reasons) != 1 || !strings.Contains(reasons[0], "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist.") ||
		!strings.HasPrefix(reasons[0], "Resource handler returned message:") {
		t.Errorf("Fn UPDATE_FAILED reasons = %q", reasons)
	}
	st := e.settled(t, "app")
	if got, want := aws.ToString(st.StackStatusReason), ""; got != want {
		t.Errorf("UPDATE_ROLLBACK_COMPLETE reason = %q", got)
	}
	var sawReason bool
	for _, ev := range e.events(t, "app") {
		if ev.ResourceStatus == cfntypes.ResourceStatusUpdateRollbackInProgress && aws.ToString(ev.ResourceStatusReason) == "The following resource(s) failed to update: [Fn]. " {
			sawReason = true
		}
	}
	if !sawReason {
		t.Errorf("no UPDATE_ROLLBACK_IN_PROGRESS event naming Fn:\n%s", e.eventLog(t, "app"))
	}
}

// TestCloudFormationStuckRollback is seed 000: the code the rollback needs was deleted (a
// lifecycle rule expired it), so the rollback fails into UPDATE_ROLLBACK_FAILED; CloudTrail shows
// the keys the failed UpdateFunctionCode calls asked for; once the key is back,
// ContinueUpdateRollback finishes the rollback, and the function keeps its ARN and permissions.
func TestCloudFormationStuckRollback(t *testing.T) {
	e := startCFN(t)
	e.put(t, "k1.zip", zips.good)
	res := e.createApp(t, "app", "k1.zip")
	fn := aws.ToString(res["Fn"].PhysicalResourceId)
	before := e.function(t, fn)
	policyBefore, err := e.lambda.GetPolicy(ctx(t), &lambda.GetPolicyInput{FunctionName: aws.String(fn)})
	if err != nil {
		t.Fatal(err)
	}

	e.del(t, "k1.zip")                             // expired
	e.update(t, "app", param("CodeKey", "k2.zip")) // never uploaded
	st := e.settled(t, "app")
	if st.StackStatus != cfntypes.StackStatusUpdateRollbackFailed {
		t.Fatalf("status = %s, want UPDATE_ROLLBACK_FAILED\n%s", st.StackStatus, e.eventLog(t, "app"))
	}
	if got, want := aws.ToString(st.StackStatusReason), "The following resource(s) failed to update: [Fn]."; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
	if got := e.resources(t, "app")["Fn"]; got.ResourceStatus != cfntypes.ResourceStatusUpdateFailed || !strings.Contains(aws.ToString(got.ResourceStatusReason), "NoSuchKey") {
		t.Errorf("Fn: %s %q", got.ResourceStatus, aws.ToString(got.ResourceStatusReason))
	}
	if reasons := e.failedReasons(t, "app", "Fn"); len(reasons) != 2 {
		t.Errorf("Fn failed %d times, want twice (update, rollback): %q", len(reasons), reasons)
	}
	// An update is refused until the rollback is finished.
	_, err = e.cfn.UpdateStack(ctx(t), &cloudformation.UpdateStackInput{StackName: aws.String("app"), UsePreviousTemplate: aws.Bool(true),
		Parameters: []cfntypes.Parameter{param("CodeKey", "k1.zip")}})
	if errorCode(err) != "ValidationError" || !strings.Contains(err.Error(), "UPDATE_ROLLBACK_FAILED state and can not be updated") {
		t.Errorf("UpdateStack in UPDATE_ROLLBACK_FAILED: %v", err)
	}

	// CloudTrail has both failed calls, with the keys they asked for.
	out, err := e.trail.LookupEvents(ctx(t), &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{{
		AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("UpdateFunctionCode20150331v2")}}})
	if err != nil {
		t.Fatalf("LookupEvents: %v", err)
	}
	var keys []string
	for _, ev := range out.Events {
		var rec struct {
			EventSource       string `json:"eventSource"`
			ErrorCode         string `json:"errorCode"`
			ErrorMessage      string `json:"errorMessage"`
			UserAgent         string `json:"userAgent"`
			RequestParameters struct {
				FunctionName string `json:"functionName"`
				S3Bucket     string `json:"s3Bucket"`
				S3Key        string `json:"s3Key"`
				Publish      *bool  `json:"publish"`
			} `json:"requestParameters"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(ev.CloudTrailEvent)), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.ErrorCode != "InvalidParameterValueException" || rec.ErrorMessage != "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist." ||
			rec.RequestParameters.FunctionName != fn || rec.RequestParameters.S3Bucket != "artifacts" || rec.RequestParameters.Publish == nil ||
			rec.EventSource != "lambda.amazonaws.com" || rec.UserAgent != "cloudformation.amazonaws.com" {
			t.Errorf("event = %s", aws.ToString(ev.CloudTrailEvent))
		}
		keys = append(keys, rec.RequestParameters.S3Key)
	}
	if got, want := strings.Join(keys, ","), "k1.zip,k2.zip"; got != want {
		t.Errorf("failed UpdateFunctionCode keys, newest first = %s, want %s", got, want)
	}

	// Skipping a resource that did not fail is refused; restoring the key and continuing works.
	_, err = e.cfn.ContinueUpdateRollback(ctx(t), &cloudformation.ContinueUpdateRollbackInput{StackName: aws.String("app"), ResourcesToSkip: []string{"Perm"}})
	if errorCode(err) != "ValidationError" {
		t.Errorf("skip a resource that did not fail: %v, want ValidationError", err)
	}
	e.put(t, "k1.zip", zips.good)
	if _, err := e.cfn.ContinueUpdateRollback(ctx(t), &cloudformation.ContinueUpdateRollbackInput{StackName: aws.String("app")}); err != nil {
		t.Fatalf("ContinueUpdateRollback: %v", err)
	}
	e.waitRollback(t, "app")
	after := e.function(t, fn)
	if aws.ToString(after.Configuration.FunctionArn) != aws.ToString(before.Configuration.FunctionArn) ||
		aws.ToString(after.Configuration.CodeSha256) != codeSha256(zips.good) || aws.ToString(after.Configuration.Role) != aws.ToString(before.Configuration.Role) {
		t.Errorf("function after recovery: %+v", after.Configuration)
	}
	policyAfter, err := e.lambda.GetPolicy(ctx(t), &lambda.GetPolicyInput{FunctionName: aws.String(fn)})
	if err != nil {
		t.Fatalf("GetPolicy after recovery: %v", err)
	}
	if aws.ToString(policyAfter.Policy) != aws.ToString(policyBefore.Policy) {
		t.Errorf("policy changed: %s → %s", aws.ToString(policyBefore.Policy), aws.ToString(policyAfter.Policy))
	}
	_, err = e.cfn.ContinueUpdateRollback(ctx(t), &cloudformation.ContinueUpdateRollbackInput{StackName: aws.String("app")})
	if errorCode(err) != "ValidationError" {
		t.Errorf("ContinueUpdateRollback of a stack in UPDATE_ROLLBACK_COMPLETE: %v, want ValidationError", err)
	}
	// And a new update succeeds.
	e.put(t, "k2.zip", zips.bad)
	e.update(t, "app", param("CodeKey", "k2.zip"))
	e.waitUpdate(t, "app")
}

// parentJSON nests appYAML three times, from two forms of TemplateURL.
func parentJSON(sandboxURL string) string {
	nested := func(name, url string) string {
		return `"` + name + `": {"Type": "AWS::CloudFormation::Stack", "Properties": {
      "TemplateURL": "` + url + `", "Parameters": {"CodeKey": {"Ref": "Key` + name + `"}}}}`
	}
	return `{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {"KeyA": {"Type": "String"}, "KeyB": {"Type": "String"}, "KeyC": {"Type": "String"}},
  "Resources": {
    ` + nested("A", "https://artifacts.s3.us-east-1.amazonaws.com/child.yaml") + `,
    ` + nested("B", "https://s3.amazonaws.com/artifacts/child.yaml") + `,
    ` + nested("C", sandboxURL+"/artifacts/child.yaml") + `
  },
  "Outputs": {"AFunction": {"Value": {"Fn::GetAtt": ["A", "Outputs.FunctionArn"]}}}
}`
}

// nestedStuck is seed 000 with nested stacks: a parent of A, B and C, updated together. The
// update moves A to new code (which works) and B to code that was never uploaded (which fails);
// C does not change. B rolls back by itself, but the parent's rollback of A needs A's previous
// code, which a lifecycle rule deleted: A sticks in UPDATE_ROLLBACK_FAILED, though its own update
// went well, and so does the parent. It returns the nested stacks' ids and A's function.
func nestedStuck(t *testing.T, e *cfnEnv) (a, b, c, aFn string) {
	t.Helper()
	e.put(t, "child.yaml", []byte(appYAML))
	for _, k := range []string{"a1.zip", "a2.zip", "b1.zip", "c1.zip"} {
		e.put(t, k, zips.good)
	}
	_, err := e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("parent"), TemplateBody: aws.String(parentJSON(e.srv.URL)),
		Parameters: []cfntypes.Parameter{param("KeyA", "a1.zip"), param("KeyB", "b1.zip"), param("KeyC", "c1.zip")}})
	if err != nil {
		t.Fatal(err)
	}
	e.waitCreate(t, "parent")
	res := e.resources(t, "parent")
	a, b, c = aws.ToString(res["A"].PhysicalResourceId), aws.ToString(res["B"].PhysicalResourceId), aws.ToString(res["C"].PhysicalResourceId)
	nested, err := e.cfn.DescribeStacks(ctx(t), &cloudformation.DescribeStacksInput{StackName: aws.String(a)})
	if err != nil {
		t.Fatal(err)
	}
	if name := aws.ToString(nested.Stacks[0].StackName); !strings.HasPrefix(name, "parent-A-") || aws.ToString(nested.Stacks[0].ParentId) == "" {
		t.Errorf("nested stack %s (parent %s), want parent-A-<random> with a ParentId", name, aws.ToString(nested.Stacks[0].ParentId))
	}
	aFn = aws.ToString(e.resources(t, a)["Fn"].PhysicalResourceId)
	parent := e.settled(t, "parent")
	if len(parent.Outputs) != 1 || aws.ToString(parent.Outputs[0].OutputValue) != aws.ToString(e.function(t, aFn).Configuration.FunctionArn) {
		t.Errorf("parent outputs = %+v", parent.Outputs)
	}

	e.del(t, "a1.zip")
	e.update(t, "parent", param("KeyA", "a2.zip"), param("KeyB", "b2.zip"), param("KeyC", "c1.zip"))
	parent = e.settled(t, "parent")
	if parent.StackStatus != cfntypes.StackStatusUpdateRollbackFailed {
		t.Fatalf("parent %s, want UPDATE_ROLLBACK_FAILED\n%s", parent.StackStatus, e.eventLog(t, "parent"))
	}
	for n, want := range map[string]cfntypes.StackStatus{a: cfntypes.StackStatusUpdateRollbackFailed, b: cfntypes.StackStatusUpdateRollbackComplete} {
		if got := e.settled(t, n).StackStatus; got != want {
			t.Errorf("nested %s %s, want %s\n%s", n, got, want, e.eventLog(t, n))
		}
	}
	r := e.resources(t, "parent")["A"]
	if want := "Embedded stack " + a + " was not successfully updated. Currently in UPDATE_ROLLBACK_FAILED."; r.ResourceStatus != cfntypes.ResourceStatusUpdateFailed || aws.ToString(r.ResourceStatusReason) != want {
		t.Errorf("parent's A: %s %q, want UPDATE_FAILED %q", r.ResourceStatus, aws.ToString(r.ResourceStatusReason), want)
	}
	return a, b, c, aFn
}

// TestCloudFormationNestedStuckRollback: a nested stack cannot be continued by itself nor
// skipped as a resource of its parent; restoring the key and continuing the parent continues it.
func TestCloudFormationNestedStuckRollback(t *testing.T) {
	e := startCFN(t)
	a, b, c, aFn := nestedStuck(t, e)

	_, err := e.cfn.ContinueUpdateRollback(ctx(t), &cloudformation.ContinueUpdateRollbackInput{StackName: aws.String(a)})
	if errorCode(err) != "ValidationError" {
		t.Errorf("ContinueUpdateRollback of a nested stack: %v, want ValidationError", err)
	}
	_, err = e.cfn.ContinueUpdateRollback(ctx(t), &cloudformation.ContinueUpdateRollbackInput{StackName: aws.String("parent"), ResourcesToSkip: []string{"A"}})
	if errorCode(err) != "ValidationError" || !strings.Contains(err.Error(), "DELETE_IN_PROGRESS, DELETE_COMPLETE or DELETE_FAILED") {
		t.Errorf("skip a nested stack resource: %v, want ValidationError", err)
	}
	_, err = e.cfn.ContinueUpdateRollback(ctx(t), &cloudformation.ContinueUpdateRollbackInput{StackName: aws.String("parent"), ResourcesToSkip: []string{"B.Fn"}})
	if errorCode(err) != "ValidationError" {
		t.Errorf("skip a nested resource whose rollback did not fail: %v, want ValidationError", err)
	}
	if got := e.settled(t, "parent").StackStatus; got != cfntypes.StackStatusUpdateRollbackFailed {
		t.Errorf("a refused ContinueUpdateRollback changed the parent to %s", got)
	}

	e.put(t, "a1.zip", zips.good)
	if _, err := e.cfn.ContinueUpdateRollback(ctx(t), &cloudformation.ContinueUpdateRollbackInput{StackName: aws.String("parent")}); err != nil {
		t.Fatal(err)
	}
	e.waitRollback(t, "parent")
	if got := e.settled(t, a).StackStatus; got != cfntypes.StackStatusUpdateRollbackComplete {
		t.Errorf("nested A %s after continuing the parent, want UPDATE_ROLLBACK_COMPLETE", got)
	}
	// C, which the update did not change, was updated and rolled back with its parent.
	if got := e.settled(t, c).StackStatus; got != cfntypes.StackStatusUpdateRollbackComplete {
		t.Errorf("nested C %s, want UPDATE_ROLLBACK_COMPLETE", got)
	}
	if got := aws.ToString(e.function(t, aFn).Configuration.CodeSha256); got != codeSha256(zips.good) {
		t.Errorf("A's function code %s after recovery", got)
	}
	e.put(t, "b2.zip", zips.bad)
	e.update(t, "parent", param("KeyA", "a2.zip"), param("KeyB", "b2.zip"), param("KeyC", "c1.zip"))
	e.waitUpdate(t, "parent")
	for _, n := range []string{a, b, c} {
		if got := e.settled(t, n).StackStatus; got != cfntypes.StackStatusUpdateComplete {
			t.Errorf("nested %s %s after the parent's update, want UPDATE_COMPLETE (nested stacks update with their parent)", n, got)
		}
	}
}

// TestCloudFormationSkipNestedResource: what cannot be restored can be skipped, named
// NestedStack.LogicalId; the skipped function keeps the code it has.
func TestCloudFormationSkipNestedResource(t *testing.T) {
	e := startCFN(t)
	a, _, _, aFn := nestedStuck(t, e)
	if _, err := e.cfn.ContinueUpdateRollback(ctx(t), &cloudformation.ContinueUpdateRollbackInput{StackName: aws.String("parent"), ResourcesToSkip: []string{"A.Fn"}}); err != nil {
		t.Fatal(err)
	}
	e.waitRollback(t, "parent")
	fn := e.resources(t, a)["Fn"]
	if fn.ResourceStatus != cfntypes.ResourceStatusUpdateComplete || aws.ToString(fn.ResourceStatusReason) != "Resource skipped during UPDATE_ROLLBACK" {
		t.Errorf("skipped Fn: %s %q", fn.ResourceStatus, aws.ToString(fn.ResourceStatusReason))
	}
	if got := e.function(t, aFn); aws.ToString(got.Configuration.CodeSha256) != codeSha256(zips.good) {
		t.Errorf("skipped function's code %s", aws.ToString(got.Configuration.CodeSha256))
	}
}

// TestCloudFormationReplacementAndRemoval: renaming a function replaces it (the old one is
// deleted in the cleanup, after the new one exists); a resource the template drops is deleted;
// a failed create rolls back to ROLLBACK_COMPLETE.
func TestCloudFormationReplacementAndRemoval(t *testing.T) {
	e := startCFN(t)
	e.put(t, "k1.zip", zips.good)
	tmpl := func(name string, withAlias bool) string {
		s := `{"Resources": {
  "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "` + name + `", "Runtime": "provided.al2023", "Handler": "bootstrap",
    "Role": "arn:aws:iam::000000000000:role/app", "Code": {"S3Bucket": "artifacts", "S3Key": "k1.zip"}}}`
		if withAlias {
			s += `,
  "Live": {"Type": "AWS::Lambda::Alias", "Properties": {"FunctionName": {"Ref": "Fn"}, "Name": "live", "FunctionVersion": "$LATEST"}}`
		}
		return s + "}}"
	}
	if _, err := e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("r"), TemplateBody: aws.String(tmpl("first", true))}); err != nil {
		t.Fatal(err)
	}
	e.waitCreate(t, "r")
	if _, err := e.cfn.UpdateStack(ctx(t), &cloudformation.UpdateStackInput{StackName: aws.String("r"), TemplateBody: aws.String(tmpl("second", false))}); err != nil {
		t.Fatal(err)
	}
	e.waitUpdate(t, "r")
	e.function(t, "second")
	_, err := e.lambda.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("first")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, http.StatusNotFound)
	res := e.resources(t, "r")
	if _, ok := res["Live"]; ok || aws.ToString(res["Fn"].PhysicalResourceId) != "second" {
		t.Errorf("resources after the update: %+v", res)
	}
	tpl, err := e.cfn.GetTemplate(ctx(t), &cloudformation.GetTemplateInput{StackName: aws.String("r"), TemplateStage: cfntypes.TemplateStageOriginal})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(tpl.TemplateBody) != tmpl("second", false) {
		t.Errorf("GetTemplate = %s", aws.ToString(tpl.TemplateBody))
	}

	// A create that fails rolls back what it made.
	_, err = e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("broken"), TemplateBody: aws.String(`{"Resources": {
  "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "ok-fn", "Runtime": "provided.al2023", "Handler": "bootstrap",
    "Role": "arn:aws:iam::000000000000:role/app", "Code": {"S3Bucket": "artifacts", "S3Key": "k1.zip"}}},
  "Bad": {"Type": "AWS::Lambda::Function", "DependsOn": "Fn", "Properties": {"Runtime": "provided.al2023", "Handler": "bootstrap",
    "Role": "arn:aws:iam::000000000000:role/app", "Code": {"S3Bucket": "artifacts", "S3Key": "absent.zip"}}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	st := e.settled(t, "broken")
	if st.StackStatus != cfntypes.StackStatusRollbackComplete {
		t.Fatalf("broken: %s\n%s", st.StackStatus, e.eventLog(t, "broken"))
	}
	_, err = e.lambda.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("ok-fn")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, http.StatusNotFound)
	var reason string
	for _, ev := range e.events(t, "broken") {
		if ev.ResourceStatus == cfntypes.ResourceStatusRollbackInProgress {
			reason = aws.ToString(ev.ResourceStatusReason)
		}
	}
	if want := "The following resource(s) failed to create: [Bad]. Rollback requested by user."; reason != want {
		t.Errorf("ROLLBACK_IN_PROGRESS reason %q, want %q", reason, want)
	}

	// A template from S3 (virtual-hosted URL), with inline ZipFile code.
	e.put(t, "inline.yaml", []byte(`Resources:
  Py:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Role: arn:aws:iam::000000000000:role/app
      Code:
        ZipFile: |
          def handler(event, context):
              return "hi"
`))
	if _, err := e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("inline"),
		TemplateURL: aws.String("https://artifacts.s3.amazonaws.com/inline.yaml")}); err != nil {
		t.Fatal(err)
	}
	e.waitCreate(t, "inline")
	py := e.function(t, aws.ToString(e.resources(t, "inline")["Py"].PhysicalResourceId))
	if aws.ToInt64(&py.Configuration.CodeSize) == 0 || aws.ToString(py.Configuration.Handler) != "index.handler" {
		t.Errorf("inline function: %+v", py.Configuration)
	}
	_, err = e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("nourl"),
		TemplateURL: aws.String("https://artifacts.s3.amazonaws.com/absent.yaml")})
	if errorCode(err) != "ValidationError" || !strings.Contains(err.Error(), "TemplateURL must reference a valid S3 object") {
		t.Errorf("CreateStack from a missing TemplateURL: %v", err)
	}

	// DescribeStacks pages through every stack.
	all, err := e.cfn.DescribeStacks(ctx(t), &cloudformation.DescribeStacksInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Stacks) != 3 {
		t.Errorf("DescribeStacks lists %d stacks, want 3", len(all.Stacks))
	}
	_, err = e.cfn.DescribeStacks(ctx(t), &cloudformation.DescribeStacksInput{StackName: aws.String("nope")})
	if errorCode(err) != "ValidationError" || !strings.Contains(err.Error(), "Stack with id nope does not exist") {
		t.Errorf("DescribeStacks of a missing stack: %v", err)
	}
}

// TestCloudFormationPersists: stacks survive a restart with a data directory.
func TestCloudFormationPersists(t *testing.T) {
	dir := t.TempDir()
	opts := fast
	opts.DataDir = dir
	srv, err := startSandbox(opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &cfnEnv{env: connect(t, srv)}
	e.cfn, e.trail = cloudformation.NewFromConfig(e.cfg), cloudtrail.NewFromConfig(e.cfg)
	if _, err := e.s3.CreateBucket(ctx(t), &s3.CreateBucketInput{Bucket: aws.String("artifacts")}); err != nil {
		t.Fatal(err)
	}
	e.put(t, "k1.zip", zips.good)
	e.createApp(t, "app", "k1.zip")
	srv.Close()

	srv, err = startSandbox(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e = &cfnEnv{env: connect(t, srv)}
	e.cfn, e.trail = cloudformation.NewFromConfig(e.cfg), cloudtrail.NewFromConfig(e.cfg)
	if got := e.settled(t, "app").StackStatus; got != cfntypes.StackStatusCreateComplete {
		t.Errorf("after restart: %s", got)
	}
	out, err := e.trail.LookupEvents(ctx(t), &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{{
		AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("CreateFunction20150331")}}})
	if err != nil || len(out.Events) != 1 {
		t.Errorf("CloudTrail after restart: %v, %d CreateFunction events", err, len(out.Events))
	}
}

// TestUnsignedQueryAndCloudTrailRequests: unsigned requests find their service by their shape —
// the query protocol's Version, CloudTrail's X-Amz-Target.
func TestUnsignedQueryAndCloudTrailRequests(t *testing.T) {
	e := start(t, fast)
	for _, tc := range []struct{ body, target, want string }{
		{"Action=DescribeStacks&Version=2010-05-15", "", "<DescribeStacksResponse"},
		{"Action=GetCallerIdentity&Version=2011-06-15", "", "<GetCallerIdentityResponse"},
		{"Action=ListMetrics&Version=2010-08-01", "", "<ListMetricsResponse"},
		{"{}", "CloudTrail_20131101.LookupEvents", `"Events":[]`},
		{"{}", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents", `"Events":[]`},
	} {
		req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, e.srv.URL+"/", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.target != "" {
			req.Header.Set("X-Amz-Target", tc.target)
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		} else {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s %s: %d %s, want 200 with %s", tc.target, tc.body, resp.StatusCode, b.String(), tc.want)
		}
	}
}

// TestCloudFormationVersionReplacement: a Version whose properties change is replaced — a new
// version published, the alias moved to it — and the old one deleted, unless its
// UpdateReplacePolicy is Retain. A Version whose function did not change cannot be published
// again (Lambda would answer the existing version), and the update rolls back.
func TestCloudFormationVersionReplacement(t *testing.T) {
	e := startCFN(t)
	e.put(t, "k1.zip", zips.good)
	tmpl := func(desc, policy string) string {
		return `Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties: {FunctionName: vfn, Runtime: provided.al2023, Handler: bootstrap, Role: arn:aws:iam::000000000000:role/app,
      Code: {S3Bucket: artifacts, S3Key: k1.zip}, Description: ` + desc + `}
  Ver:
    Type: AWS::Lambda::Version
    UpdateReplacePolicy: ` + policy + `
    Properties: {FunctionName: !Ref Fn, Description: ` + desc + `}
  Live:
    Type: AWS::Lambda::Alias
    Properties: {FunctionName: !Ref Fn, Name: live, FunctionVersion: !GetAtt Ver.Version}
`
	}
	if _, err := e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("v"), TemplateBody: aws.String(tmpl("one", "Retain"))}); err != nil {
		t.Fatal(err)
	}
	e.waitCreate(t, "v")
	for i, step := range []struct{ desc, policy, alias, versions string }{
		{"two", "Retain", "2", "$LATEST,1,2"}, // version 1 retained
		{"three", "Delete", "3", "$LATEST,1,3"},
	} {
		if _, err := e.cfn.UpdateStack(ctx(t), &cloudformation.UpdateStackInput{StackName: aws.String("v"), TemplateBody: aws.String(tmpl(step.desc, step.policy))}); err != nil {
			t.Fatal(err)
		}
		e.waitUpdate(t, "v")
		alias, err := e.lambda.GetAlias(ctx(t), &lambda.GetAliasInput{FunctionName: aws.String("vfn"), Name: aws.String("live")})
		if err != nil {
			t.Fatal(err)
		}
		vs, err := e.lambda.ListVersionsByFunction(ctx(t), &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("vfn")})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, v := range vs.Versions {
			names = append(names, aws.ToString(v.Version))
		}
		if got := strings.Join(names, ","); aws.ToString(alias.FunctionVersion) != step.alias || got != step.versions {
			t.Errorf("step %d: alias → %s, versions %s; want %s, %s", i, aws.ToString(alias.FunctionVersion), got, step.alias, step.versions)
		}
	}
	// A new Version of an unchanged function: Lambda has it already.
	body := strings.Replace(tmpl("three", "Delete"), "Description: three}\n  Live", "Description: other}\n  Live", 1)
	if _, err := e.cfn.UpdateStack(ctx(t), &cloudformation.UpdateStackInput{StackName: aws.String("v"), TemplateBody: aws.String(body)}); err != nil {
		t.Fatal(err)
	}
	e.waitRollback(t, "v")
	if reasons := e.failedReasons(t, "v", "Ver"); len(reasons) == 0 {
		t.Errorf("no UPDATE_FAILED for Ver:\n%s", e.eventLog(t, "v"))
	}
}

// TestCloudFormationNestedTemplateMissing: a nested stack whose new TemplateURL is missing fails
// the parent's update before it changes the nested stack; the rollback completes, rolling back
// the nested stack the update did reach.
func TestCloudFormationNestedTemplateMissing(t *testing.T) {
	e := startCFN(t)
	e.put(t, "child.yaml", []byte(appYAML))
	e.put(t, "k.zip", zips.good)
	params := []cfntypes.Parameter{param("KeyA", "k.zip"), param("KeyB", "k.zip"), param("KeyC", "k.zip")}
	body := parentJSON(e.srv.URL)
	if _, err := e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("p"), TemplateBody: aws.String(body), Parameters: params}); err != nil {
		t.Fatal(err)
	}
	e.waitCreate(t, "p")
	res := e.resources(t, "p")
	broken := strings.Replace(body, "https://s3.amazonaws.com/artifacts/child.yaml", "https://s3.amazonaws.com/artifacts/gone.yaml", 1)
	if _, err := e.cfn.UpdateStack(ctx(t), &cloudformation.UpdateStackInput{StackName: aws.String("p"), TemplateBody: aws.String(broken), Parameters: params}); err != nil {
		t.Fatal(err)
	}
	e.waitRollback(t, "p")
	if got := e.settled(t, aws.ToString(res["A"].PhysicalResourceId)).StackStatus; got != cfntypes.StackStatusUpdateRollbackComplete {
		t.Errorf("A (updated, nothing changed) %s, want UPDATE_ROLLBACK_COMPLETE", got)
	}
	if got := e.settled(t, aws.ToString(res["B"].PhysicalResourceId)).StackStatus; got != cfntypes.StackStatusCreateComplete {
		t.Errorf("B (never reached) %s, want CREATE_COMPLETE", got)
	}
	if reasons := e.failedReasons(t, "p", "B"); len(reasons) != 1 || reasons[0] != "TemplateURL must reference a valid S3 object to which you have access." {
		t.Errorf("B's failures: %q", reasons)
	}
}
