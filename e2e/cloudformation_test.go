package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aviary-deploy/aviary/awsconfig"
)

// The example of deploy/cloudformation, deployed on the sandbox's CloudFormation: the stack
// creates the function and its alias, Aviary releases new code through the alias, and a stack
// update of the function's configuration changes that and leaves the release alone.
// (deploy/cloudformation/aviary.yaml is deployed in TestCloudFormationAviaryStackOnTheSandbox.)
func TestCloudFormationExampleStackAndAviaryShareAFunction(t *testing.T) {
	f := newFleet(t, 0, quick, "      canary:\n        - weight: 50%\n          bake: 0s")
	ctx := context.Background()
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfn := cloudformation.NewFromConfig(cfg)

	// The first code, where the template says it is.
	f.names = []string{"api"}
	f.stamp("api", "0")
	if _, err := s3.NewFromConfig(cfg).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("shop-artifacts"), Key: aws.String("bootstrap/placeholder.zip"), Body: bytes.NewReader(f.zip("api"))}); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join("..", "deploy", "cloudformation", "example-function.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	params := func(memory string) []cfntypes.Parameter {
		return []cfntypes.Parameter{
			{ParameterKey: aws.String("RoleArn"), ParameterValue: aws.String("arn:aws:iam::000000000000:role/shop")},
			{ParameterKey: aws.String("MemorySize"), ParameterValue: aws.String(memory)},
		}
	}
	if _, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("shop"), TemplateBody: aws.String(string(body)), Parameters: params("256")}); err != nil {
		t.Fatal(err)
	}
	if err := cloudformation.NewStackCreateCompleteWaiter(cfn, func(o *cloudformation.StackCreateCompleteWaiterOptions) { o.MinDelay = 100 * time.Millisecond }).
		Wait(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("shop")}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.alias("api"); v != "$LATEST" {
		t.Fatalf("the stack's alias serves %q, want $LATEST", v)
	}

	// A release of new code through the alias.
	manifest := "service: shop\nartifacts:\n  bucket: shop-artifacts\n  prefix: releases/shop\nfunctions:\n  api:\n    dir: functions/api\nenvironments:\n  production:\n    function_name: \"{service}-{function}-prod\"\n    strategy:\n      canary:\n        - weight: 50%\n          bake: 0s\n"
	if err := os.WriteFile(filepath.Join(f.dir, "aviary.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	f.stamp("api", "1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatalf("deploy: %d\n%s\n%s", code, out, errs)
	}
	released, _ := f.alias("api")
	if released == "$LATEST" || f.served("api") != "1" {
		t.Fatalf("after the release the alias serves %s (stamp %s)", released, f.served("api"))
	}

	// The stack changes the function's configuration: the release stays.
	if _, err := cfn.UpdateStack(ctx, &cloudformation.UpdateStackInput{StackName: aws.String("shop"), TemplateBody: aws.String(string(body)), Parameters: params("512")}); err != nil {
		t.Fatal(err)
	}
	if err := cloudformation.NewStackUpdateCompleteWaiter(cfn, func(o *cloudformation.StackUpdateCompleteWaiterOptions) { o.MinDelay = 100 * time.Millisecond }).
		Wait(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("shop")}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	fn, err := f.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("shop-api-prod")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt32(fn.Configuration.MemorySize); got != 512 {
		t.Errorf("the stack update did not apply: memory %d", got)
	}
	if v, w := f.alias("api"); v != released || w != nil {
		t.Errorf("after the stack update the alias serves %s with weights %v, want %s alone", v, w, released)
	}
	if got := f.served("api"); got != "1" {
		t.Errorf("after the stack update the alias runs stamp %s, want the release's 1", got)
	}
	code, out, errs := f.aviary("plan", "-e", "production")
	if code != 0 || !strings.Contains(out, "0 functions change") {
		t.Errorf("after the stack update, plan: %d\n%s\n%s", code, out, errs)
	}

	// Why the example's alias must stay as it is: any change to the alias resource sends its
	// FunctionVersion (and no RoutingConfig) again, and the release is undone.
	changed := strings.Replace(string(body), "      Name: live\n", "      Name: live\n      Description: changed\n", 1)
	if changed == string(body) {
		t.Fatal("the example's alias has no Name: live line to change")
	}
	if _, err := cfn.UpdateStack(ctx, &cloudformation.UpdateStackInput{StackName: aws.String("shop"), TemplateBody: aws.String(changed), Parameters: params("512")}); err != nil {
		t.Fatal(err)
	}
	if err := cloudformation.NewStackUpdateCompleteWaiter(cfn, func(o *cloudformation.StackUpdateCompleteWaiterOptions) { o.MinDelay = 100 * time.Millisecond }).
		Wait(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("shop")}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.alias("api"); v != "$LATEST" {
		t.Errorf("a change to the alias resource left it on %s; CloudFormation sends the template's FunctionVersion ($LATEST)", v)
	}
}
