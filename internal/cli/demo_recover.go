package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/internal/examplefn"
)

// demoChild is a nested stack of the recover chapter: a Go function at a content-addressed key,
// and the permission that lets S3 invoke it.
const demoChild = `Parameters:
  Bucket: {Type: String}
  CodeKey: {Type: String}
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      Role: !Sub arn:aws:iam::${AWS::AccountId}:role/shop
      Code:
        S3Bucket: !Ref Bucket
        S3Key: !Ref CodeKey
  Perm:
    Type: AWS::Lambda::Permission
    Properties:
      FunctionName: !GetAtt Fn.Arn
      Action: lambda:InvokeFunction
      Principal: s3.amazonaws.com
      SourceArn: !Sub "arn:aws:s3:::uploads-${AWS::StackName}"
`

func demoParent(bucket string) string {
	nested := func(name string) string {
		return fmt.Sprintf(`  %s:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: https://%s.s3.amazonaws.com/stacks/function.yaml
      Parameters: {Bucket: %s, CodeKey: !Ref %sKey}
`, name, bucket, bucket, name)
	}
	return "Parameters:\n  ApiKey: {Type: String}\n  WorkerKey: {Type: String}\nResources:\n" + nested("Api") + nested("Worker")
}

// recover is the recover chapter, seed 000 rehearsed: a CloudFormation stack with two nested
// stacks of Go functions at content-addressed keys; a lifecycle rule expires the first builds;
// an update fails and the rollback sticks in UPDATE_ROLLBACK_FAILED, the nested stacks too;
// aviary recover-stack shows its plan, restores the keys from the artifact cache and continues
// the rollback; the functions keep their permissions, and the next update goes through.
func (r *rehearsal) recover() error {
	ctx, say, aviary := r.ctx, r.say, r.aviary
	bucket := r.m.Artifacts.Bucket
	sc := s3.NewFromConfig(r.cfg, func(o *s3.Options) { o.UsePathStyle = true })
	cfn := cloudformation.NewFromConfig(r.cfg)
	cacheDir, err := os.MkdirTemp("", "aviary-demo-cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cacheDir)
	cache := artifact.Cache{Dir: cacheDir}

	built, err := examplefn.Build(ctx, r.root, "./examples/hello", "good")
	if err != nil {
		return err
	}
	bootstrap, err := fileInZip(built, "bootstrap")
	if err != nil {
		return err
	}
	keys := map[string]string{}
	for _, b := range []string{"api-1", "worker-1", "api-2", "worker-2"} {
		z, err := artifact.Zip([]artifact.File{{Name: "bootstrap", Executable: true, Data: bootstrap}, {Name: "stamp.txt", Data: []byte(b)}})
		if err != nil {
			return err
		}
		d, err := cache.Put(z) // the build keeps its zip, as aviary deploy does
		if err != nil {
			return err
		}
		keys[b] = artifact.Key("functions", d)
		if b != "worker-2" { // never uploaded: the update will fail
			if _, err := sc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(keys[b]), Body: bytes.NewReader(z)}); err != nil {
				return fmt.Errorf("demo: upload %s: %w", b, err)
			}
		}
	}
	if _, err := sc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("stacks/function.yaml"), Body: strings.NewReader(demoChild)}); err != nil {
		return err
	}

	say("A CloudFormation stack, shop, with nested stacks Api and Worker: Go functions at content-addressed keys (functions/<sha256>.zip) in %s, each with an AWS::Lambda::Permission", bucket)
	params := func(api, worker string) []cfntypes.Parameter {
		return []cfntypes.Parameter{{ParameterKey: aws.String("ApiKey"), ParameterValue: aws.String(keys[api])},
			{ParameterKey: aws.String("WorkerKey"), ParameterValue: aws.String(keys[worker])}}
	}
	if _, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("shop"), TemplateBody: aws.String(demoParent(bucket)), Parameters: params("api-1", "worker-1")}); err != nil {
		return fmt.Errorf("demo: create the stack: %w", err)
	}
	if err := waitStack(ctx, cfn, "shop", cfntypes.StackStatusCreateComplete); err != nil {
		return err
	}
	apiFn, err := demoFunction(ctx, cfn, "Api")
	if err != nil {
		return err
	}
	lc := lambda.NewFromConfig(r.cfg)
	before, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(apiFn)})
	if err != nil {
		return err
	}

	say("Seed 000: the bucket grows, so someone adds a lifecycle rule expiring functions/ after 30 days; a month passes")
	if _, err := sc.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String(bucket),
		LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{{
			ID: aws.String("expire-old-builds"), Status: s3types.ExpirationStatusEnabled,
			Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("functions/")}, Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(30)}}}}}); err != nil {
		return err
	}
	expired, err := r.ageBucket(bucket, 30)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "  the rule expired %d zips\n", expired)
	for _, b := range []string{"api-2"} {
		z, err := cache.Read(keys[b])
		if err != nil {
			return err
		}
		if _, err := sc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(keys[b]), Body: bytes.NewReader(z)}); err != nil {
			return err
		}
	}
	say("An update moves Api to a new build (uploaded) and Worker to one that never was: it fails, and the rollback cannot fetch the expired first builds")
	if _, err := cfn.UpdateStack(ctx, &cloudformation.UpdateStackInput{StackName: aws.String("shop"), UsePreviousTemplate: aws.Bool(true), Parameters: params("api-2", "worker-2")}); err != nil {
		return fmt.Errorf("demo: update the stack: %w", err)
	}
	if err := waitStack(ctx, cfn, "shop", cfntypes.StackStatusUpdateRollbackFailed); err != nil {
		return err
	}
	fmt.Fprintln(r.out, "  shop is UPDATE_ROLLBACK_FAILED: no update is accepted, and its nested stacks cannot be skipped")

	say("aviary recover-stack --dry-run: every stuck stack and why, each key the rollback needs (the previous template, CloudTrail) and where it will come from")
	if code := aviary(nil, "recover-stack", "shop", "--dry-run", "--cache", cacheDir); code != ExitOK {
		return fmt.Errorf("demo: recover-stack --dry-run exited %d", code)
	}
	say("aviary recover-stack: restore the keys (verified against the SHA-256 they name), continue the rollback, wait")
	if code := aviary(nil, "recover-stack", "shop", "--cache", cacheDir, "--poll", "100ms"); code != ExitOK {
		return fmt.Errorf("demo: recover-stack exited %d", code)
	}
	after, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(apiFn)})
	if err != nil {
		return err
	}
	pol, err := lc.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String(apiFn)})
	if err != nil {
		return fmt.Errorf("demo: %s lost its resource policy: %w", apiFn, err)
	}
	if aws.ToString(after.Configuration.FunctionArn) != aws.ToString(before.Configuration.FunctionArn) || !strings.Contains(aws.ToString(pol.Policy), "s3.amazonaws.com") {
		return fmt.Errorf("demo: %s changed: %s, policy %s", apiFn, aws.ToString(after.Configuration.FunctionArn), aws.ToString(pol.Policy))
	}
	fmt.Fprintf(r.out, "  %s kept its ARN and its permission (no function was deleted or recreated): %s\n", apiFn, aws.ToString(pol.Policy))

	say("The next update goes through (Worker's build uploaded this time)")
	z, err := cache.Read(keys["worker-2"])
	if err != nil {
		return err
	}
	if _, err := sc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(keys["worker-2"]), Body: bytes.NewReader(z)}); err != nil {
		return err
	}
	if _, err := cfn.UpdateStack(ctx, &cloudformation.UpdateStackInput{StackName: aws.String("shop"), UsePreviousTemplate: aws.Bool(true), Parameters: params("api-2", "worker-2")}); err != nil {
		return fmt.Errorf("demo: update the stack again: %w", err)
	}
	if err := waitStack(ctx, cfn, "shop", cfntypes.StackStatusUpdateComplete); err != nil {
		return err
	}
	fmt.Fprintln(r.out, "  shop is UPDATE_COMPLETE. To keep it from happening: aviary doctor names the lifecycle rule (aviary demo retention).")
	return nil
}

// waitStack polls a stack until it is no longer in progress, and wants a status.
func waitStack(ctx context.Context, cfn *cloudformation.Client, name string, want cfntypes.StackStatus) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err != nil {
			return err
		}
		st := out.Stacks[0]
		if !strings.HasSuffix(string(st.StackStatus), "_IN_PROGRESS") {
			if st.StackStatus != want {
				return fmt.Errorf("demo: stack %s is %s (%s), want %s", name, st.StackStatus, aws.ToString(st.StackStatusReason), want)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: stack %s still %s", name, st.StackStatus)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// demoFunction is the function of one of shop's nested stacks.
func demoFunction(ctx context.Context, cfn *cloudformation.Client, nested string) (string, error) {
	res, err := cfn.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String("shop"), LogicalResourceId: aws.String(nested)})
	if err != nil || len(res.StackResources) != 1 {
		return "", fmt.Errorf("demo: nested stack %s: %v", nested, err)
	}
	fn, err := cfn.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: res.StackResources[0].PhysicalResourceId, LogicalResourceId: aws.String("Fn")})
	if err != nil || len(fn.StackResources) != 1 {
		return "", fmt.Errorf("demo: the function of %s: %v", nested, err)
	}
	return aws.ToString(fn.StackResources[0].PhysicalResourceId), nil
}

func fileInZip(z []byte, name string) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		return nil, err
	}
	for _, f := range zr.File {
		if f.Name == name {
			rc, err := f.Open()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}
	}
	return nil, fmt.Errorf("no %s in the zip", name)
}
