package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/manifest"
)

// placeholderBootstrap is the code a bootstrapped function starts with, until its first deploy
// replaces it: a Lambda custom runtime in sh and curl (both on provided.al2023 and on the hosts
// the sandbox runs on) that answers every event with {"placeholder":true}.
const placeholderBootstrap = `#!/bin/sh
# Created by aviary sandbox --bootstrap: answers every event until the first deploy replaces it.
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
headers=$(mktemp)
while :; do
	curl -sS -D "$headers" -o /dev/null "$api/next" || exit 1
	id=$(tr -d '\r' <"$headers" | sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *//p')
	curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"placeholder":true}' "$api/$id/response"
done
`

// placeholderZip is placeholderBootstrap as a Lambda zip.
func placeholderZip() ([]byte, error) {
	return artifact.Zip([]artifact.File{{Name: "bootstrap", Executable: true, Data: []byte(placeholderBootstrap)}})
}

// bootstrapSandbox creates, on the sandbox at url, what a manifest needs before its first deploy
// and Terraform would own on AWS: the artifact bucket and, in every environment, each function
// (provided.al2023, placeholder code, role aviary-sandbox), in the environment's region or else
// the sandbox's. What exists is left alone. It says what it created on w.
func bootstrapSandbox(ctx context.Context, w io.Writer, url, region, account string, m *manifest.Manifest) error {
	cfg, err := awsconfig.Sandbox(ctx, url, region)
	if err != nil {
		return err
	}
	s3c := s3.NewFromConfig(cfg)
	bucket := m.Artifacts.Bucket
	if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		fmt.Fprintf(w, "  bucket %s exists\n", bucket)
	} else {
		in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
		if region != "us-east-1" {
			in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
		}
		var owned *s3types.BucketAlreadyOwnedByYou
		switch _, err := s3c.CreateBucket(ctx, in); {
		case errors.As(err, &owned):
			fmt.Fprintf(w, "  bucket %s exists\n", bucket)
		case err != nil:
			return fmt.Errorf("create bucket %s: %w", bucket, err)
		default:
			fmt.Fprintf(w, "  created bucket %s\n", bucket)
		}
	}

	zip, err := placeholderZip()
	if err != nil {
		return err
	}
	role := "arn:aws:iam::" + account + ":role/aviary-sandbox"
	seen := map[string]bool{}
	type created struct {
		lc   *lambda.Client
		name string
	}
	var pending []created
	for _, envName := range slices.Sorted(maps.Keys(m.Environments)) {
		env := m.Environments[envName]
		r := region
		if env.Region != "" {
			r = env.Region
		}
		lc := lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.Region = r })
		for _, fn := range m.Functions {
			name := m.FunctionName(env, fn.Name)
			if seen[r+"/"+name] {
				continue
			}
			seen[r+"/"+name] = true
			var missing *lambdatypes.ResourceNotFoundException
			_, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
			switch {
			case err == nil:
				fmt.Fprintf(w, "  function %s exists (%s, environment %s)\n", name, r, env.Name)
				continue
			case !errors.As(err, &missing):
				return fmt.Errorf("read function %s: %w", name, err)
			}
			if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
				FunctionName: aws.String(name), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
				Role: aws.String(role), Code: &lambdatypes.FunctionCode{ZipFile: zip},
			}); err != nil {
				return fmt.Errorf("create function %s: %w", name, err)
			}
			fmt.Fprintf(w, "  created function %s (%s, environment %s)\n", name, r, env.Name)
			pending = append(pending, created{lc, name})
		}
	}
	// A new function is Pending for a moment, as on AWS: ready once Active.
	for _, c := range pending {
		if err := lambda.NewFunctionActiveV2Waiter(c.lc, func(o *lambda.FunctionActiveV2WaiterOptions) {
			o.MinDelay = 100 * time.Millisecond
			o.MaxDelay = time.Second
		}).
			Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(c.name)}, 2*time.Minute); err != nil {
			return fmt.Errorf("function %s: %w", c.name, err)
		}
	}
	return nil
}
