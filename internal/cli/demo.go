package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/examplefn"
	"github.com/aviary-deploy/aviary/sandbox"
)

type demoCmd struct {
	Invocations int     `default:"1000" help:"Invocations to send through the alias while the canary runs."`
	Weight      float64 `default:"0.1" help:"Share of traffic the canary gets."`
}

func (c *demoCmd) Run(e *env) error {
	if c.Weight <= 0 || c.Weight >= 1 {
		return badInput("demo: --weight must be between 0 and 1")
	}
	if c.Invocations < 10 {
		return badInput("demo: --invocations must be at least 10")
	}
	cwd, _ := os.Getwd()
	root, err := examplefn.Root(cwd)
	if err != nil {
		return badInput("demo: %w", err)
	}
	ctx := e.ctx
	out := e.stdout
	step := func(name, format string, args ...any) {
		fmt.Fprintf(out, "  %-9s %s\n", name, fmt.Sprintf(format, args...))
	}
	fmt.Fprintln(out, "Aviary demo: a canary on the local sandbox")

	srv, err := sandbox.Start(ctx, sandbox.Options{MetricResolution: time.Second, UpdateDelay: 200 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("demo: start the sandbox: %w", err)
	}
	defer srv.Close()
	step("sandbox", "%s (Lambda, S3, CloudWatch; control-plane quota 15/s)", srv.URL)

	good, err := examplefn.Build(ctx, root, "./examples/hello", "good")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	bad, err := examplefn.Build(ctx, root, "./examples/hello", "bad")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	step("build", "examples/hello: good flavour %d bytes, bad flavour %d bytes", len(good), len(bad))

	cfg, err := awsconfig.Sandbox(ctx, srv.URL, srv.Region)
	if err != nil {
		return err
	}
	lc := lambda.NewFromConfig(cfg)
	cw := cloudwatch.NewFromConfig(cfg)
	const fn = "demo-hello"

	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(fn), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("arn:aws:iam::000000000000:role/demo"), Code: &lambdatypes.FunctionCode{ZipFile: good},
	}); err != nil {
		return fmt.Errorf("demo: create function: %w", err)
	}
	if err := lambda.NewFunctionActiveV2Waiter(lc).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)}, time.Minute); err != nil {
		return fmt.Errorf("demo: wait for the function: %w", err)
	}
	v1, err := lc.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn)})
	if err != nil {
		return fmt.Errorf("demo: publish: %w", err)
	}
	if _, err := lc.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: v1.Version}); err != nil {
		return fmt.Errorf("demo: create alias: %w", err)
	}
	step("deploy", "function %s, version %s (good), alias live → %s", fn, *v1.Version, *v1.Version)

	up, err := lc.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn), ZipFile: bad})
	if err != nil {
		return fmt.Errorf("demo: update code: %w", err)
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(lc).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)}, time.Minute); err != nil {
		return fmt.Errorf("demo: wait for the update: %w", err)
	}
	v2, err := lc.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn), CodeSha256: up.CodeSha256})
	if err != nil {
		return fmt.Errorf("demo: publish: %w", err)
	}
	if _, err := lc.UpdateAlias(ctx, &lambda.UpdateAliasInput{
		FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: v1.Version,
		RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{*v2.Version: c.Weight}},
	}); err != nil {
		return fmt.Errorf("demo: shift traffic: %w", err)
	}
	step("canary", "version %s (bad flavour) published; live → %s with %.0f%% on %s", *v2.Version, *v1.Version, c.Weight*100, *v2.Version)

	start := time.Now().Add(-time.Minute)
	counts, errs, err := invokeMany(ctx, lc, fn+":live", c.Invocations)
	if err != nil {
		return err
	}
	step("traffic", "%d invocations of %s:live: version %s ran %d (%d errors), version %s ran %d (%d errors)",
		c.Invocations, fn, *v1.Version, counts[*v1.Version], errs[*v1.Version], *v2.Version, counts[*v2.Version], errs[*v2.Version])

	// What a health check sees: per-version errors under the alias, from CloudWatch.
	perVersion := map[string]float64{}
	for _, v := range []string{*v1.Version, *v2.Version} {
		sum, err := metricSum(ctx, cw, fn, fn+":live", v, "Errors", start)
		if err != nil {
			return err
		}
		perVersion[v] = sum
	}
	step("metrics", "CloudWatch AWS/Lambda Errors by ExecutedVersion under %s:live: version %s %.0f, version %s %.0f",
		fn, *v1.Version, perVersion[*v1.Version], *v2.Version, perVersion[*v2.Version])

	if perVersion[*v2.Version] == 0 {
		return errors.New("demo: the canary's errors did not show in CloudWatch")
	}
	if _, err := lc.UpdateAlias(ctx, &lambda.UpdateAliasInput{
		FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: v1.Version,
		RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{}},
	}); err != nil {
		return fmt.Errorf("demo: roll back: %w", err)
	}
	counts, errs, err = invokeMany(ctx, lc, fn+":live", 100)
	if err != nil {
		return err
	}
	step("rollback", "live → %s with no extra weights; 100 more invocations: version %s ran %d (%d errors)",
		*v1.Version, *v1.Version, counts[*v1.Version], errs[*v1.Version])
	fmt.Fprintln(out, "Done. Run `aviary sandbox` to keep a sandbox up and drive it with the AWS CLI or SDKs.")
	return nil
}

func invokeMany(ctx context.Context, lc *lambda.Client, qualified string, n int) (counts, errs map[string]int, err error) {
	counts, errs = map[string]int{}, map[string]int{}
	type result struct {
		version string
		failed  bool
		err     error
	}
	results := make(chan result)
	sem := make(chan struct{}, 8)
	go func() {
		for range n {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(qualified), Payload: []byte(`{}`)})
				if err != nil {
					results <- result{err: err}
					return
				}
				results <- result{version: aws.ToString(out.ExecutedVersion), failed: out.FunctionError != nil}
			}()
		}
	}()
	for range n {
		r := <-results
		if r.err != nil && err == nil {
			err = fmt.Errorf("invoke %s: %w", qualified, r.err)
		}
		counts[r.version]++
		if r.failed {
			errs[r.version]++
		}
	}
	return counts, errs, err
}

func metricSum(ctx context.Context, cw *cloudwatch.Client, fn, resource, version, name string, since time.Time) (float64, error) {
	out, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(since), EndTime: aws.Time(time.Now().Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{{
			Id: aws.String("m"),
			MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{Namespace: aws.String("AWS/Lambda"), MetricName: aws.String(name), Dimensions: []cwtypes.Dimension{
					{Name: aws.String("FunctionName"), Value: aws.String(fn)},
					{Name: aws.String("Resource"), Value: aws.String(resource)},
					{Name: aws.String("ExecutedVersion"), Value: aws.String(version)},
				}},
				Period: aws.Int32(60), Stat: aws.String("Sum"),
			},
		}},
	})
	if err != nil {
		return 0, fmt.Errorf("GetMetricData: %w", err)
	}
	total := 0.0
	for _, r := range out.MetricDataResults {
		for _, v := range r.Values {
			total += v
		}
	}
	return total, nil
}
