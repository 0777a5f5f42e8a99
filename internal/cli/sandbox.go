package cli

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/sandbox"
)

type sandboxCmd struct {
	Addr               string        `default:"127.0.0.1:4566" env:"AVIARY_SANDBOX_ADDR" help:"Address to listen on (its own variable: AVIARY_ADDR is aviary serve's)."`
	Data               string        `placeholder:"DIR" help:"Keep functions, objects and alarms in DIR across restarts (default: in memory)."`
	Region             string        `default:"us-east-1" env:"AVIARY_SANDBOX_REGION" help:"Region the sandbox answers as (its own variable: AVIARY_REGION is the region the AWS clients use)."`
	Account            string        `default:"000000000000" help:"AWS account the sandbox answers as (ARNs, STS GetCallerIdentity)."`
	ControlRate        float64       `default:"15" help:"Lambda control-plane quota in requests per second (AWS: 15); 0 turns it off."`
	ControlBurst       int           `help:"Control-plane requests allowed at once (default: the rate)."`
	UpdateDelay        time.Duration `default:"500ms" help:"How long a new function stays Pending and an update InProgress; 0 for none."`
	MetricPeriod       time.Duration `default:"60s" help:"Finest period of the AWS/Lambda metrics (AWS: 60s); shorter makes rehearsals fast."`
	AccountConcurrency int           `default:"1000" help:"Lambda's account concurrency limit: invocations in flight across all functions and versions before Invoke is throttled (AWS: 1000); reserved concurrency comes out of it."`
	MaxConcurrency     int           `hidden:"" env:"-" help:"Deprecated: use --account-concurrency (this now sets it)."`
	MaxStarts          int           `help:"Execution environments starting at once (default: one per CPU); further cold starts wait for a slot or a warm environment."`
	// ReplicationDelay's default is sandbox.DefaultReplicationDelay.
	ReplicationDelay time.Duration `default:"30s" help:"How long a Lambda@Edge version stays replicated, so DeleteFunction refuses it, after its last CloudFront association is removed (AWS: hours); 0 for none."`

	FaultRate       float64       `help:"Share (0..1) of matching requests to fail on purpose."`
	FaultKinds      []string      `help:"Failures to inject: throttle, 5xx (default both)." enum:"throttle,5xx"`
	FaultLatency    time.Duration `help:"Latency to add to matching requests."`
	FaultServices   []string      `help:"Only inject into these services (lambda, s3, monitoring, logs, sts, cloudfront, codedeploy, autoscaling, elasticloadbalancing, sns)."`
	FaultOperations []string      `help:"Only inject into these operations (e.g. UpdateAlias)."`
	FaultSeed       uint64        `help:"Seed for the fault sequence, so a run can be repeated."`

	SchedulerSpeed float64 `default:"1" help:"Run EventBridge Scheduler's clock this many times faster than real time (60: a rate(1 minute) schedule fires every second); POST /_aviary/scheduler/tick?advance=60s also moves it."`
	DynamoDB       string  `name:"dynamodb" placeholder:"URL" help:"Forward DynamoDB requests to this DynamoDB-compatible server (dynalite, DynamoDB Local), so that the store and CloudFormation's tables use the sandbox's endpoint too (default: DynamoDB is not served)."`

	Bootstrap string `placeholder:"MANIFEST" help:"Once up, create what this manifest needs before its first deploy: its artifact bucket and, for every environment, each function it names (placeholder code that answers; existing ones are left alone)."`

	Verbose bool `short:"v" help:"Log every request."`
}

func (c *sandboxCmd) Run(e *env) error {
	opts := sandbox.Options{
		Addr: c.Addr, DataDir: c.Data, Region: c.Region, Account: c.Account,
		ControlRate: c.ControlRate, ControlBurst: c.ControlBurst,
		UpdateDelay: c.UpdateDelay, MetricResolution: c.MetricPeriod, AccountConcurrency: c.AccountConcurrency, MaxStarts: c.MaxStarts,
		ReplicationDelay: c.ReplicationDelay, SchedulerSpeed: c.SchedulerSpeed, DynamoDB: c.DynamoDB,
		Faults: sandbox.Faults{
			Rate: c.FaultRate, Kinds: c.FaultKinds, Latency: sandbox.Duration(c.FaultLatency),
			Services: c.FaultServices, Operations: c.FaultOperations, Seed: c.FaultSeed,
		},
	}
	if c.ControlRate == 0 {
		opts.ControlRate = -1
	}
	if c.MaxConcurrency > 0 {
		// --max-concurrency bounded each version's environments; the account limit replaced it.
		fmt.Fprintln(e.stderr, "aviary sandbox: --max-concurrency is deprecated; it now sets --account-concurrency")
		opts.AccountConcurrency = c.MaxConcurrency
	}
	if c.AccountConcurrency < 1 || c.MaxStarts < 0 {
		return badInput("sandbox: --account-concurrency must be at least 1 and --max-starts ≥ 0")
	}
	if c.UpdateDelay == 0 {
		opts.UpdateDelay = -1
	}
	if c.ReplicationDelay == 0 {
		opts.ReplicationDelay = -1
	}
	if c.SchedulerSpeed < 1 {
		return badInput("sandbox: --scheduler-speed must be at least 1 (real time)")
	}
	if c.ControlRate < 0 || c.FaultRate < 0 || c.FaultRate > 1 || c.MetricPeriod < time.Second || c.ReplicationDelay < 0 {
		return badInput("sandbox: --control-rate must be ≥ 0, --fault-rate within 0..1, --metric-period at least 1s and --replication-delay ≥ 0")
	}
	if len(c.Account) != 12 || strings.Trim(c.Account, "0123456789") != "" {
		return badInput("sandbox: --account %q is not an AWS account ID (12 digits)", c.Account)
	}
	var boot *manifest.Manifest
	if c.Bootstrap != "" {
		m, err := manifestFlags{File: c.Bootstrap}.load()
		if err != nil {
			return err
		}
		boot = m
	}
	if c.Verbose {
		opts.Logger = slog.New(slog.NewTextHandler(e.stderr, nil))
	}
	srv, err := sandbox.Start(e.ctx, opts)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	defer srv.Close()
	if c.Verbose {
		srv.OnRequest(func(r sandbox.Request) {
			opts.Logger.Info("request", "service", r.Service, "op", r.Operation, "resource", r.Resource, "status", r.Status, "error", r.ErrorCode, "took", r.Duration.Round(time.Microsecond))
		})
	}

	state := "in memory"
	if c.Data != "" {
		state = "in " + c.Data
	}
	quota := "off"
	if c.ControlRate > 0 {
		quota = fmt.Sprintf("%g requests/s", c.ControlRate)
	}
	w := e.stdout
	fmt.Fprintf(w, "Aviary sandbox: Lambda, S3, CloudWatch, CloudWatch Logs, STS, CloudFront, CloudFormation, CloudTrail, CodeDeploy, Auto Scaling, ELB target groups and SNS on %s (region %s, control-plane quota %s, state %s)\n\n", srv.URL, c.Region, quota, state)
	if c.DynamoDB != "" {
		fmt.Fprintf(w, "DynamoDB: requests are forwarded to %s.\n\n", c.DynamoDB)
	}
	fmt.Fprintf(w, "Aviary sandbox: Lambda, S3, CloudWatch, CloudWatch Logs, STS, CloudFront, CloudFormation, CloudTrail, CodeDeploy, Auto Scaling, ELB target groups, SNS and SSM on %s (region %s, control-plane quota %s, state %s)\n\n", srv.URL, c.Region, quota, state)
	fmt.Fprintln(w, "Point the AWS SDKs and CLI at it:")
	for _, kv := range srv.Env() {
		fmt.Fprintln(w, "export "+kv)
	}
	fmt.Fprintf(w, "\nawscli before 2.13 ignores AWS_ENDPOINT_URL: pass --endpoint-url %s\n", srv.URL)
	fmt.Fprintf(w, "Request log: %s/_aviary/requests   Faults: %s/_aviary/faults\n", srv.URL, srv.URL)
	fmt.Fprintf(w, "ECR and its registry: push images to %s/REPOSITORY:TAG (create the repository first: aws ecr create-repository)\n", strings.TrimPrefix(srv.URL, "http://"))
	if f := opts.Faults; f.Rate > 0 || f.Latency > 0 {
		fmt.Fprintf(w, "Injecting faults: rate %g, kinds %s, latency %s, services %s, operations %s, seed %d\n",
			f.Rate, orAll(f.Kinds), time.Duration(f.Latency), orAll(f.Services), orAll(f.Operations), f.Seed)
	}
	if boot != nil {
		fmt.Fprintf(w, "Bootstrapping %s from %s:\n", boot.Service, c.Bootstrap)
		if err := bootstrapSandbox(e.ctx, w, srv.URL, c.Region, c.Account, boot); err != nil {
			return fmt.Errorf("sandbox --bootstrap %s: %w", c.Bootstrap, err)
		}
		fmt.Fprintf(w, "Ready: aviary deploy -f %s -e ENV deploys to it.\n", c.Bootstrap)
	}
	fmt.Fprintln(w, "Ctrl-C stops it.")
	<-e.ctx.Done()
	fmt.Fprintln(w, "\nStopping the sandbox.")
	return nil
}

func orAll(s []string) string {
	if len(s) == 0 {
		return "all"
	}
	return strings.Join(s, ",")
}
