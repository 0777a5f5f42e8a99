package sandbox_test

import (
	"encoding/json"
	"errors"
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

	"github.com/aviary-deploy/aviary/sandbox"
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

// waiterOpts make the SDK's stack waiters poll quickly.
func waitFast[O any](set func(*O)) func(*O) { return set }

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
	if len(st.Outputs) != 1 || aws.ToString(st.Outputs[0].OutputValue) != aws.ToString(got.Configuration.FunctionArn) {
		t.Errorf("outputs = %+v, want FunctionArn %s", st.Outputs, aws.ToString(got.Configuration.FunctionArn))
	}

	// A second stack of the same name is refused; a template with an unsupported type too.
	_, err = e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("app"), TemplateBody: aws.String(appYAML),
		Parameters: []cfntypes.Parameter{param("CodeKey", "k1.zip")}})
	wantAPIError[*cfntypes.AlreadyExistsException](t, err, http.StatusBadRequest)
	_, err = e.cfn.CreateStack(ctx(t), &cloudformation.CreateStackInput{StackName: aws.String("other"),
		TemplateBody: aws.String("Resources:\n  B:\n    Type: AWS::S3::Bucket\n")})
	if errorCode(err) != "ValidationError" || !strings.Contains(err.Error(), "Unrecognized resource types: [AWS::S3::Bucket]") {
		t.Errorf("unsupported type: %v, want ValidationError naming AWS::S3::Bucket", err)
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

var _ = errors.New
var _ = json.Marshal
var _ = sandbox.Options{}
var _ cttypes.LookupAttribute
