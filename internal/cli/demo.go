package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/examplefn"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/sqlite"
)

type demoCmd struct {
	Keep bool `help:"Keep the sandbox running after the demo, so you can look around with the AWS CLI and aviary status/history."`
}

// demo rehearses what Aviary is for, on a sandbox in this process: the example fleet deployed by
// its first release, a faulty canary caught by its errors in CloudWatch and rolled back, and a good
// release promoted — all through `aviary deploy` and `aviary rollback` as CI and people run them.
func (c *demoCmd) Run(e *env) error {
	cwd, _ := os.Getwd()
	root, err := examplefn.Root(cwd)
	if err != nil {
		return badInput("demo: %w", err)
	}
	fleetDir := filepath.Join(root, "examples", "fleet")
	m, err := manifest.Load(filepath.Join(fleetDir, manifest.DefaultFile))
	if err != nil {
		return err
	}
	ctx, out := e.ctx, e.stdout
	say := func(format string, args ...any) { fmt.Fprintf(out, "\n▸ "+format+"\n", args...) }

	srv, err := sandbox.Start(ctx, sandbox.Options{MetricResolution: time.Second, UpdateDelay: 300 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("demo: start the sandbox: %w", err)
	}
	defer srv.Close()
	stateDir, err := os.MkdirTemp("", "aviary-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	// This process's AWS clients (and the aviary commands it runs) reach the sandbox through
	// the standard chain, exactly as `aviary sandbox` users do with its exports.
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AVIARY_NEW_VERSION_WEIGHT"} {
		os.Unsetenv(k)
	}
	storeURL := "sqlite://" + filepath.Join(stateDir, "state.db")
	os.Setenv("AVIARY_STORE", storeURL)
	fmt.Fprintf(out, "Aviary demo on a local sandbox at %s (Lambda, S3, CloudWatch; AWS's quota of 15 control-plane calls/s)\n", srv.URL)

	cfg, err := awsconfig.Load(ctx, awsconfig.Options{})
	if err != nil {
		return err
	}
	lc, cw := lambda.NewFromConfig(cfg), cloudwatch.NewFromConfig(cfg)
	env, _ := m.Environment("production")

	say("The infrastructure, as Terraform would own it: bucket %s and functions %s", m.Artifacts.Bucket, names3(m, env))
	if _, err := s3.NewFromConfig(cfg).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(m.Artifacts.Bucket)}); err != nil {
		return err
	}
	placeholder, err := examplefn.Build(ctx, root, "./examples/hello", "good")
	if err != nil {
		return err
	}
	for _, fn := range m.Functions {
		if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String(m.FunctionName(env, fn.Name)), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
			Role: aws.String("arn:aws:iam::000000000000:role/shop"), Code: &lambdatypes.FunctionCode{ZipFile: placeholder},
		}); err != nil {
			return fmt.Errorf("demo: create %s: %w", fn.Name, err)
		}
	}

	// aviary runs a command as a user would type it (the manifest's builds read FLAVOR and STAMP
	// from the environment), showing its output under the prompt unless quiet.
	aviary := func(env map[string]string, quiet bool, args ...string) int {
		for k, v := range env {
			os.Setenv(k, v)
			defer os.Unsetenv(k)
		}
		fmt.Fprintf(out, "  $ %saviary %s\n", envPrefix(env), quoteArgs(args))
		var stdout, stderr io.Writer = indent{out}, indent{e.stderr}
		if quiet {
			stdout, stderr = io.Discard, io.Discard
		}
		return Main(ctx, append(args, "-f", filepath.Join(fleetDir, manifest.DefaultFile)), stdout, stderr)
	}

	say("Release 1: the first release of the fleet creates the aliases")
	if code := aviary(map[string]string{"STAMP": "1"}, false, "deploy", "-e", "production"); code != ExitOK {
		return fmt.Errorf("demo: the first release exited %d", code)
	}

	say("Release 2: a faulty build. Its canary takes 10%% of live traffic; its errors show in CloudWatch by ExecutedVersion")
	traffic, stopTraffic := trafficOn(ctx, lc, m, env)
	done := make(chan int, 1)
	go func() {
		done <- aviary(map[string]string{"STAMP": "2", "FLAVOR": "bad"}, false, "deploy", "-e", "production")
	}()
	r, err := awaitBaking(ctx, storeURL)
	if err != nil {
		stopTraffic()
		return err
	}
	caught := ""
	for deadline := time.Now().Add(30 * time.Second); caught == "" && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		for _, f := range r.Functions {
			canary, base, err := errorsByVersion(ctx, cw, f.FunctionName, m.Alias, f.New, f.Previous)
			if err != nil {
				stopTraffic()
				return err
			}
			if canary >= 3 {
				caught = fmt.Sprintf("%s: %.0f errors on canary version %s, %.0f on version %s (CloudWatch AWS/Lambda Errors by ExecutedVersion)",
					f.FunctionName, canary, f.New, base, f.Previous)
				break
			}
		}
	}
	if caught == "" {
		stopTraffic()
		return errors.New("demo: the faulty canary's errors never showed in CloudWatch")
	}
	fmt.Fprintf(out, "  caught: %s\n", caught)
	code := aviary(nil, true, "rollback", r.ID, "--reason", "canary errors in CloudWatch")
	if code != ExitOK || <-done != ExitRolledBack {
		stopTraffic()
		return fmt.Errorf("demo: the rollback exited %d", code)
	}
	stopTraffic()
	fmt.Fprintf(out, "  traffic during release 2: %s\n", traffic())

	say("Release 3: a good build, shifted 10%% → 50%% → 100%% and promoted")
	traffic, stopTraffic = trafficOn(ctx, lc, m, env)
	code = aviary(map[string]string{"STAMP": "3"}, false, "deploy", "-e", "production")
	stopTraffic()
	if code != ExitOK {
		return fmt.Errorf("demo: release 3 exited %d", code)
	}
	fmt.Fprintf(out, "  traffic during release 3: %s\n", traffic())

	say("The record: every release and every transition, with who and why")
	aviary(nil, false, "history", "-e", "production")
	fmt.Fprintf(out, "\nDone. Each step above is a command you can run against AWS or `aviary sandbox` (see README).\n")
	if c.Keep {
		fmt.Fprintf(out, "The sandbox stays up at %s, the store at %s; Ctrl-C ends it.\n", srv.URL, storeURL)
		for _, kv := range srv.Env() {
			fmt.Fprintln(out, "export "+kv)
		}
		fmt.Fprintln(out, "export AVIARY_STORE="+storeURL)
		<-ctx.Done()
	}
	return nil
}

func names3(m *manifest.Manifest, env *manifest.Environment) string {
	var n []string
	for _, f := range m.Functions {
		n = append(n, m.FunctionName(env, f.Name))
	}
	return strings.Join(n, ", ")
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if strings.ContainsAny(a, " '\"") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

func envPrefix(env map[string]string) string {
	var b strings.Builder
	for _, k := range []string{"FLAVOR", "STAMP"} {
		if v, ok := env[k]; ok {
			fmt.Fprintf(&b, "%s=%s ", k, v)
		}
	}
	return b.String()
}

// indent writes a command's output indented under its prompt.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	lines := bytes.SplitAfter(p, []byte("\n"))
	for _, l := range lines {
		if len(l) == 0 {
			continue
		}
		if _, err := i.w.Write(append([]byte("    "), l...)); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// trafficOn invokes every function's alias continuously, counting which version answered and
// how; the returned func summarises, the other stops it.
func trafficOn(ctx context.Context, lc *lambda.Client, m *manifest.Manifest, env *manifest.Environment) (summary func() string, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	ok, failed := map[string]int{}, map[string]int{}
	var wg sync.WaitGroup
	for _, fn := range m.Functions {
		name := m.FunctionName(env, fn.Name) + ":" + m.Alias
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name)})
				if err == nil {
					key := "version " + aws.ToString(out.ExecutedVersion)
					mu.Lock()
					if out.FunctionError != nil {
						failed[key]++
					} else {
						ok[key]++
					}
					mu.Unlock()
				}
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	return func() string {
			mu.Lock()
			defer mu.Unlock()
			var parts []string
			for _, k := range sortedKeys(ok, failed) {
				parts = append(parts, fmt.Sprintf("%s answered %d (%d failed)", k, ok[k]+failed[k], failed[k]))
			}
			return strings.Join(parts, ", ")
		}, func() {
			cancel()
			wg.Wait()
		}
}

func sortedKeys(ms ...map[string]int) []string {
	all := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			all[k] = true
		}
	}
	return slices.Sorted(maps.Keys(all))
}

// awaitBaking waits for the latest release to reach its first bake.
func awaitBaking(ctx context.Context, storeURL string) (*release.Release, error) {
	st, err := sqlite.Open(ctx, strings.TrimPrefix(storeURL, "sqlite://"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rs, err := st.ListReleases(ctx, store.Filter{Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(rs) > 0 && rs[0].Phase == release.Shifting && !rs[0].StepStarted.IsZero() {
			return rs[0], nil
		}
		if len(rs) > 0 && rs[0].Phase.Final() && rs[0].CreatedAt.After(time.Now().Add(-time.Minute)) && rs[0].Phase != release.Promoted {
			return nil, fmt.Errorf("demo: release %s ended before its canary: %s", rs[0].ID, rs[0].Describe())
		}
	}
	return nil, errors.New("demo: the release never reached its canary step")
}

// errorsByVersion sums the Errors metric of two versions under an alias over the last minutes.
func errorsByVersion(ctx context.Context, cw *cloudwatch.Client, fn, alias, canary, baseline string) (float64, float64, error) {
	q := func(id, v string) cwtypes.MetricDataQuery {
		return cwtypes.MetricDataQuery{Id: aws.String(id), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/Lambda"), MetricName: aws.String("Errors"), Dimensions: []cwtypes.Dimension{
				{Name: aws.String("FunctionName"), Value: aws.String(fn)},
				{Name: aws.String("Resource"), Value: aws.String(fn + ":" + alias)},
				{Name: aws.String("ExecutedVersion"), Value: aws.String(v)},
			}},
			Period: aws.Int32(60), Stat: aws.String("Sum")}}
	}
	out, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(time.Now().Add(-5 * time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{q("canary", canary), q("baseline", baseline)},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("GetMetricData: %w", err)
	}
	sums := map[string]float64{}
	for _, r := range out.MetricDataResults {
		for _, v := range r.Values {
			sums[aws.ToString(r.Id)] += v
		}
	}
	return sums["canary"], sums["baseline"], nil
}
