// Package sandbox serves AWS-compatible Lambda, S3, CloudWatch, CloudWatch Logs, STS, CloudFront,
// CloudFormation, CloudTrail, EventBridge Scheduler and ECR (its registry under /v2/) endpoints —
// and CodeDeploy, Auto Scaling, Elastic Load Balancing
// (target groups) and SNS, for EC2 blue/green deployments — on one local port, so that a release
// can be rehearsed with no AWS account. Requests are routed by
// the service name in their SigV4 credential scope, as LocalStack does; signatures are not
// verified. Every service but S3 (served by gofakes3) speaks through sandbox/protocol, one wire layer
// for AWS's protocols and error envelopes. IAM keeps roles and OIDC providers (policies stored,
// not enforced); DynamoDB is forwarded to a DynamoDB-compatible upstream (Options.DynamoDB:
// dynalite, DynamoDB Local), which is the DynamoDB; Lambda function URLs are served to requests
// carrying their host.
//
// The rule it keeps: it is a product, not a test double. Where a deploy tool can tell the
// difference it behaves as AWS documents — error codes and statuses, preconditions, pagination,
// the control-plane quota — and it runs real function zips.
package sandbox

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	dynamodbsdk "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	iamsdk "github.com/aws/aws-sdk-go-v2/service/iam"
	lambdasdk "github.com/aws/aws-sdk-go-v2/service/lambda"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	schedulersdk "github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/aviary-deploy/aviary/sandbox/autoscaling"
	"github.com/aviary-deploy/aviary/sandbox/cloudformation"
	"github.com/aviary-deploy/aviary/sandbox/cloudfront"
	"github.com/aviary-deploy/aviary/sandbox/cloudtrail"
	"github.com/aviary-deploy/aviary/sandbox/cloudwatch"
	"github.com/aviary-deploy/aviary/sandbox/codedeploy"
	"github.com/aviary-deploy/aviary/sandbox/dynamodb"
	"github.com/aviary-deploy/aviary/sandbox/ecr"
	"github.com/aviary-deploy/aviary/sandbox/elbv2"
	"github.com/aviary-deploy/aviary/sandbox/iam"
	"github.com/aviary-deploy/aviary/sandbox/lambda"
	"github.com/aviary-deploy/aviary/sandbox/logs"
	"github.com/aviary-deploy/aviary/sandbox/s3"
	"github.com/aviary-deploy/aviary/sandbox/scheduler"
	"github.com/aviary-deploy/aviary/sandbox/sns"
	"github.com/aviary-deploy/aviary/sandbox/ssm"
	"github.com/aviary-deploy/aviary/sandbox/sts"
)

// Options configure a Server. The zero value is a usable in-memory sandbox on a random port.
type Options struct {
	// Addr is where to listen; "" picks a free loopback port.
	Addr string
	// DataDir keeps state across restarts; "" keeps it in memory.
	DataDir string
	Region  string
	Account string
	// ControlRate is Lambda's control-plane quota in requests per second (AWS's default is 15);
	// negative turns it off. Zero means the default.
	ControlRate float64
	// ControlBurst is how many control-plane requests may arrive at once; zero means ControlRate.
	ControlBurst int
	// Faults are injected into matching requests.
	Faults Faults
	// UpdateDelay is how long new functions stay Pending and updates InProgress; zero means
	// the default, negative means none.
	UpdateDelay time.Duration
	// ReplicationDelay is how long a Lambda version stays replicated (undeletable) after the last
	// CloudFront association naming it was removed; AWS takes hours. Zero means
	// DefaultReplicationDelay, negative means none.
	ReplicationDelay time.Duration
	// MetricResolution is the finest period of the AWS/Lambda metrics (AWS: 60 s).
	MetricResolution time.Duration
	// AccountConcurrency is Lambda's account concurrency limit: invocations in flight across all
	// functions and versions, reserved concurrency included (AWS's default, and zero's: 1,000).
	AccountConcurrency int
	// MaxConcurrency is the account concurrency limit's former name.
	//
	// Deprecated: it bounded each version's environments; it now sets AccountConcurrency when
	// that is zero. Use AccountConcurrency.
	MaxConcurrency int
	// ScaleBurst new execution environments per ScaleWindow is each function's scaling rate
	// (AWS, and zero's: 1,000 every 10 s). A test sets a small one to see the rate throttle.
	ScaleBurst  int
	ScaleWindow time.Duration
	// MaxStarts bounds the execution environments starting at once on this machine; zero means
	// runtime.NumCPU(). Invocations wait for a start slot rather than start a process each.
	MaxStarts int
	// IdleTimeout is how long an idle execution environment stays warm.
	IdleTimeout time.Duration
	Logger      *slog.Logger
	// QuotaClock is the clock the control-plane quotas refill by; nil means time.Now. A test
	// that checks how many calls of a burst the quota admits stops it, so that a busy machine
	// spreading the burst over time does not refill the bucket meanwhile.
	QuotaClock func() time.Time
	// CloudFrontClock is the clock CloudFront's deployments and replica releases run by; nil
	// means time.Now. A test advances it past ReplicationDelay instead of sleeping.
	CloudFrontClock func() time.Time
	// SchedulerClock is the clock EventBridge Scheduler's schedules come due by; nil means
	// time.Now. POST /_aviary/scheduler/tick?advance=D (or Server.Scheduler.Advance) moves the
	// scheduler's time forward by D on top of it and fires what is due; a test that wants only
	// its own advances to fire stops this clock (returns a constant).
	SchedulerClock func() time.Time
	// SchedulerSpeed runs the scheduler's clock that many times faster than SchedulerClock from
	// the sandbox's start (60: a rate(1 minute) schedule fires every real second); zero or one
	// is real time.
	SchedulerSpeed float64
	// DynamoDB is the URL of a DynamoDB-compatible server (dynalite, DynamoDB Local) that the
	// sandbox forwards DynamoDB requests to, so that one endpoint serves them too; "" answers
	// them UnknownOperationException.
	DynamoDB string
}

// Defaults.
const (
	DefaultAddr        = "127.0.0.1:4566"
	DefaultControlRate = 15
	DefaultUpdateDelay = 500 * time.Millisecond
	// DefaultReplicationDelay is short next to AWS's hours, so that a rehearsal can wait it out.
	DefaultReplicationDelay = 30 * time.Second
)

// Server is a running sandbox.
type Server struct {
	URL        string
	Region     string
	Lambda     *lambda.Service
	S3         *s3.Service
	CloudWatch *cloudwatch.Service
	// Logs is CloudWatch Logs, where every invocation's log is written.
	Logs *logs.Service
	// CloudFront keeps distributions and the Lambda@Edge replicas they hold.
	CloudFront *cloudfront.Service
	// CodeDeploy runs EC2 deployments (blue/green ones copy Auto Scaling groups) and sends their
	// triggers through SNS, which delivers to Lambda subscriptions.
	CodeDeploy  *codedeploy.Service
	AutoScaling *autoscaling.Service
	ELB         *elbv2.Service
	SNS         *sns.Service
	// CloudFormation deploys stacks through the sandbox's own Lambda API; CloudTrail records
	// the Lambda control-plane calls.
	CloudFormation *cloudformation.Service
	CloudTrail     *cloudtrail.Service
	// Scheduler is EventBridge Scheduler; its due schedules invoke Lambda targets through the
	// sandbox's own Lambda API.
	Scheduler *scheduler.Service
	// IAM keeps roles and OIDC providers; their policies are stored, not enforced.
	IAM *iam.Service
	// DynamoDB forwards to Options.DynamoDB.
	DynamoDB *dynamodb.Forward
	// ECR is the container registry: its control API, and the OCI distribution API under /v2/
	// that image tools push to; Lambda's image functions run its images.
	ECR *ecr.Service
	// SSM is Parameter Store, where configuration values are read from.
	SSM *ssm.Service

	opts     Options
	ln       net.Listener
	http     *http.Server
	handlers map[string]http.Handler
	registry http.Handler // ECR's /v2/ API: one handler, which keeps uploads in progress
	limits   *limiter
	log      *requestLog
	closeMu  sync.Mutex
	closed   bool
	served   chan struct{}
}

// Start starts a sandbox; Close stops it and every function process it started.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Account == "" {
		opts.Account = "000000000000"
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case opts.ControlRate == 0:
		opts.ControlRate = DefaultControlRate
	case opts.ControlRate < 0:
		opts.ControlRate = 0
	}
	switch {
	case opts.UpdateDelay == 0:
		opts.UpdateDelay = DefaultUpdateDelay
	case opts.UpdateDelay < 0:
		opts.UpdateDelay = 0
	}
	switch {
	case opts.ReplicationDelay == 0:
		opts.ReplicationDelay = DefaultReplicationDelay
	case opts.ReplicationDelay < 0:
		opts.ReplicationDelay = 0
	}
	if err := opts.Faults.validate(); err != nil {
		return nil, err
	}
	ddb, err := dynamodb.New(opts.DynamoDB)
	if err != nil {
		return nil, err
	}
	if opts.DataDir != "" {
		abs, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, err
		}
		opts.DataDir = abs
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", opts.Addr, err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), Region: opts.Region, opts: opts, ln: ln, log: newRequestLog(200000), served: make(chan struct{}), DynamoDB: ddb}
	s.limits = newLimiter(opts.ControlRate, opts.ControlBurst, opts.Faults, s.log)
	if opts.QuotaClock != nil {
		s.limits.now = opts.QuotaClock
	}

	cw, err := cloudwatch.New(cloudwatch.Config{Region: opts.Region, Account: opts.Account, Resolution: opts.MetricResolution, DataDir: opts.DataDir, Logger: opts.Logger})
	if err != nil {
		ln.Close()
		return nil, err
	}
	lg, err := logs.New(logs.Config{Region: opts.Region, Account: opts.Account, DataDir: opts.DataDir, Logger: opts.Logger})
	if err != nil {
		cw.Close()
		ln.Close()
		return nil, err
	}
	st, err := s3.New(s3.Config{DataDir: opts.DataDir, Logger: opts.Logger})
	if err != nil {
		lg.Close()
		cw.Close()
		ln.Close()
		return nil, err
	}
	// CloudFront asks Lambda whether an associated version exists, and Lambda asks CloudFront
	// whether a version is replicated: versions is set once Lambda exists, before serving.
	versions := &lambdaVersions{}
	cf, err := cloudfront.New(cloudfront.Config{Account: opts.Account, Functions: versions, DataDir: opts.DataDir,
		DeployDelay: opts.UpdateDelay, ReplicationDelay: opts.ReplicationDelay, Now: opts.CloudFrontClock, Logger: opts.Logger})
	if err != nil {
		lg.Close()
		cw.Close()
		ln.Close()
		return nil, err
	}
	ct, err := cloudtrail.New(cloudtrail.Config{Region: opts.Region, Account: opts.Account, DataDir: opts.DataDir})
	if err != nil {
		lg.Close()
		cw.Close()
		ln.Close()
		return nil, err
	}
	images, err := ecr.New(ecr.Config{Region: opts.Region, Account: opts.Account, BaseURL: s.URL, DataDir: opts.DataDir, Logger: opts.Logger})
	if err != nil {
		lg.Close()
		cw.Close()
		ln.Close()
		return nil, err
	}
	s.ECR = images
	lm, err := lambda.New(lambda.Config{
		Region: opts.Region, Account: opts.Account, BaseURL: s.URL, DataDir: opts.DataDir,
		UpdateDelay: opts.UpdateDelay, AccountConcurrency: cmp.Or(opts.AccountConcurrency, opts.MaxConcurrency), IdleTimeout: opts.IdleTimeout,
		ScaleBurst: opts.ScaleBurst, ScaleWindow: opts.ScaleWindow, MaxStarts: opts.MaxStarts,
		Objects: objectSource{st}, Metrics: lambdaMetrics{cw}, Logs: lambdaLogs{lg}, Replicas: cf, Logger: opts.Logger,
		Trail: lambdaTrail{ct}, Images: lambdaImages{images},
	})
	if err != nil {
		lg.Close()
		cw.Close()
		ln.Close()
		return nil, err
	}
	versions.lambda = lm
	if s.SSM, err = ssm.New(ssm.Config{Region: opts.Region, Account: opts.Account, DataDir: opts.DataDir}); err != nil {
		lm.Close()
		lg.Close()
		cw.Close()
		ln.Close()
		return nil, err
	}
	s.Lambda, s.S3, s.CloudWatch, s.Logs, s.CloudFront, s.CloudTrail = lm, st, cw, lg, cf, ct
	s.ELB = elbv2.New(opts.Region, opts.Account)
	s.AutoScaling = autoscaling.New(autoscaling.Config{Region: opts.Region, Account: opts.Account, TargetGroups: s.ELB})
	s.SNS = sns.New(sns.Config{Region: opts.Region, Account: opts.Account, Functions: lm, Logger: opts.Logger})
	s.CodeDeploy = codedeploy.New(codedeploy.Config{Region: opts.Region, Account: opts.Account, Groups: s.AutoScaling,
		Topics: s.SNS, StepDelay: opts.UpdateDelay, Logger: opts.Logger})
	cfnCfg := serviceConfig(opts.Region, "cloudformation.amazonaws.com")
	cfm, err := cloudformation.New(cloudformation.Config{Region: opts.Region, Account: opts.Account, DataDir: opts.DataDir,
		Lambda: serviceLambdaClient(s.URL, opts.Region, "cloudformation.amazonaws.com"), Objects: objectSource{st},
		DynamoDB:     dynamodbsdk.NewFromConfig(cfnCfg, func(o *dynamodbsdk.Options) { o.BaseEndpoint = aws.String(s.URL) }),
		S3:           s3sdk.NewFromConfig(cfnCfg, func(o *s3sdk.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(s.URL), true }),
		IAM:          iamsdk.NewFromConfig(cfnCfg, func(o *iamsdk.Options) { o.BaseEndpoint = aws.String(s.URL) }),
		Scheduler:    schedulersdk.NewFromConfig(cfnCfg, func(o *schedulersdk.Options) { o.BaseEndpoint = aws.String(s.URL) }),
		PollInterval: min(max(opts.UpdateDelay/5, 20*time.Millisecond), 200*time.Millisecond), Logger: opts.Logger})
	if err != nil {
		lm.Close()
		lg.Close()
		cw.Close()
		ln.Close()
		return nil, err
	}
	s.CloudFormation = cfm
	sch, err := scheduler.New(schedulerConfig(opts, s.URL))
	if err != nil {
		cfm.Close()
		lm.Close()
		lg.Close()
		cw.Close()
		ln.Close()
		return nil, err
	}
	if s.IAM, err = iam.New(iam.Config{Account: opts.Account, DataDir: opts.DataDir, Logger: opts.Logger}); err != nil {
		sch.Close()
		cfm.Close()
		lm.Close()
		lg.Close()
		cw.Close()
		ln.Close()
		return nil, err
	}
	s.Scheduler = sch
	s.handlers = map[string]http.Handler{
		"lambda":     lm.Handler(s.limits),
		"s3":         st.Handler(s.limits),
		"monitoring": cw.Handler(s.limits),
		"logs":       lg.Handler(s.limits),
		"sts":        sts.New(opts.Account).Handler(s.limits),
		"cloudfront": cf.Handler(s.limits),
		// EC2 blue/green: CodeDeploy, Auto Scaling, Elastic Load Balancing v2, SNS.
		"codedeploy":           s.CodeDeploy.Handler(s.limits),
		"autoscaling":          s.AutoScaling.Handler(s.limits),
		"elasticloadbalancing": s.ELB.Handler(s.limits),
		"sns":                  s.SNS.Handler(s.limits),
		"cloudformation":       cfm.Handler(s.limits),
		"cloudtrail":           ct.Handler(s.limits),
		"scheduler":            sch.Handler(s.limits),
		"iam":                  s.IAM.Handler(s.limits),
		"dynamodb":             ddb.Handler(s.limits),
		"ecr":                  images.Handler(s.limits),
		"ssm":                  s.SSM.Handler(s.limits),
	}
	s.registry = images.Registry()
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		defer close(s.served)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Logger.Error("sandbox server stopped", "err", err)
		}
	}()
	return s, nil
}

// Close stops the server, its function processes and its alarm evaluator, and saves CloudWatch
// Logs once the last invocation has written its log.
func (s *Server) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// CloudFormation's operations call the sandbox's own Lambda: stop them while it still answers.
	s.CloudFormation.Close()
	s.Scheduler.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if err != nil {
		s.http.Close()
	}
	<-s.served
	s.CodeDeploy.Close()
	return errors.Join(s.Lambda.Close(), s.Logs.Close(), s.CloudWatch.Close(), s.ECR.Close())
}

// Env is the environment a client needs to reach the sandbox with the standard AWS config chain.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.URL,
		"AWS_REGION=" + s.Region,
		"AWS_DEFAULT_REGION=" + s.Region,
		"AWS_ACCESS_KEY_ID=sandbox",
		"AWS_SECRET_ACCESS_KEY=sandbox",
	}
}

// Requests returns the request log, oldest first.
func (s *Server) Requests() []Request { return s.log.all() }

// OnRequest calls fn with every request once it is answered.
func (s *Server) OnRequest(fn func(Request)) {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	s.log.watch = fn
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() { s.log.reset() }

// SetControlRate changes Lambda's control-plane quota (requests per second; 0 turns quotas off).
func (s *Server) SetControlRate(rate float64, burst int) { s.limits.setQuota(rate, burst) }

// SetFaults replaces the fault settings.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.limits.setFaults(f)
	return nil
}

// ServeHTTP routes a request to the service its SigV4 scope names.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_aviary/") {
		s.admin(w, r)
		return
	}
	if id, ok := lambda.FunctionURLID(r.Host); ok {
		s.Lambda.ServeFunctionURL(w, r, id)
		return
	}
	service := signingService(r)
	if r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/") {
		// The OCI distribution API (docker, crane, go-containerregistry) is ECR's registry,
		// whatever credentials the client sends.
		service = "ecr"
		h := s.registry
		entry := &Request{Time: time.Now(), Service: service, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, UserAgent: r.UserAgent()}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		entry.Status, entry.Duration = rec.status, time.Since(entry.Time)
		s.log.add(*entry)
		return
	}
	h, ok := s.handlers[service]
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("x-amzn-ErrorType", "UnknownServiceException")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"message": fmt.Sprintf("The Aviary sandbox does not serve the %q service; it serves lambda, s3, monitoring (CloudWatch), logs (CloudWatch Logs), sts, cloudfront, codedeploy, autoscaling, elasticloadbalancing, sns, cloudformation, cloudtrail, scheduler, iam, ecr and dynamodb (forwarded to --dynamodb).", service)})
		json.NewEncoder(w).Encode(map[string]string{"message": fmt.Sprintf("The Aviary sandbox does not serve the %q service; it serves lambda, s3, monitoring (CloudWatch), logs (CloudWatch Logs), sts, cloudfront, codedeploy, autoscaling, elasticloadbalancing, sns, cloudformation, cloudtrail and ssm.", service)})
		return
	}
	entry := &Request{Time: time.Now(), Service: service, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, UserAgent: r.UserAgent()}
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	h.ServeHTTP(rec, r.WithContext(withEntry(r.Context(), entry)))
	entry.Status = rec.status
	entry.ErrorCode = errorCodeOf(rec.Header())
	entry.Duration = time.Since(entry.Time)
	s.log.add(*entry)
}

// signingService finds the service a request was signed for; unsigned requests are recognised
// by their shape.
func signingService(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); auth != "" {
		if _, rest, ok := strings.Cut(auth, "Credential="); ok {
			cred, _, _ := strings.Cut(rest, ",")
			if parts := strings.Split(strings.TrimSpace(cred), "/"); len(parts) >= 5 {
				return parts[3]
			}
		}
	}
	if cred := r.URL.Query().Get("X-Amz-Credential"); cred != "" {
		if parts := strings.Split(cred, "/"); len(parts) >= 5 {
			return parts[3]
		}
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/2015-03-31/"), strings.HasPrefix(p, "/2017-10-31/"), strings.HasPrefix(p, "/2019-09-30/"), strings.HasPrefix(p, "/2016-08-19/"), strings.HasPrefix(p, "/2021-10-31/"):
		return "lambda"
	case strings.HasPrefix(p, "/service/GraniteServiceVersion20100801/"),
		strings.HasPrefix(r.Header.Get("X-Amz-Target"), "GraniteServiceVersion20100801."):
		return "monitoring"
	case strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonEC2ContainerRegistry_V20150921."):
		return "ecr"
	case strings.HasPrefix(r.Header.Get("X-Amz-Target"), "Logs_20140328."):
		return "logs"
	case strings.HasPrefix(r.Header.Get("X-Amz-Target"), "CodeDeploy_20141006."):
		return "codedeploy"
	case strings.HasPrefix(r.Header.Get("X-Amz-Target"), dynamodb.TargetPrefix):
		return "dynamodb"
	case strings.HasPrefix(p, "/2020-05-31/distribution"):
		return "cloudfront"
	case strings.HasPrefix(r.Header.Get("X-Amz-Target"), "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."),
		strings.HasPrefix(r.Header.Get("X-Amz-Target"), "CloudTrail_20131101."):
		return "cloudtrail"
	case strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM."):
		return "ssm"
	case r.Method == http.MethodPost && p == "/" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		return queryService(r)
	}
	return "s3"
}

// queryVersions name the query-protocol services by their API version.
var queryVersions = map[string]string{"2010-05-15": "cloudformation", "2011-06-15": "sts", "2010-08-01": "monitoring",
	"2011-01-01": "autoscaling", "2015-12-01": "elasticloadbalancing", "2010-03-31": "sns", "2010-05-08": "iam"}

// queryService recognises an unsigned query-protocol request by the Version in its form, which
// it peeks at and puts back; CloudWatch is the default, as before there were others.
func queryService(r *http.Request) string {
	const peek = 64 << 10
	head, err := io.ReadAll(io.LimitReader(r.Body, peek))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	if err == nil {
		for _, pair := range strings.Split(string(head), "&") {
			if v, ok := strings.CutPrefix(pair, "Version="); ok {
				if svc, ok := queryVersions[v]; ok {
					return svc
				}
			}
		}
	}
	return "monitoring"
}

func errorCodeOf(h http.Header) string {
	if t := h.Get("x-amzn-ErrorType"); t != "" {
		code, _, _ := strings.Cut(t, ":")
		return code
	}
	if q := h.Get("x-amzn-query-error"); q != "" {
		code, _, _ := strings.Cut(q, ";")
		return code
	}
	return ""
}

type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// objectSource lets Lambda fetch S3Bucket/S3Key code from the sandbox's S3.
type objectSource struct{ s3 *s3.Service }

func (o objectSource) GetObject(bucket, key, version string) ([]byte, error) {
	b, err := o.s3.GetObject(bucket, key, version)
	var oe *s3.ObjectError
	if errors.As(err, &oe) {
		return nil, &lambda.ObjectError{Code: oe.Code, Message: oe.Message}
	}
	return b, err
}

// lambdaVersions lets CloudFront check a Lambda@Edge association against the sandbox's Lambda.
type lambdaVersions struct{ lambda *lambda.Service }

func (v *lambdaVersions) HasVersion(functionARN, version string) bool {
	return v.lambda != nil && v.lambda.HasVersion(functionARN, version)
}

// admin serves the sandbox's own API under /_aviary/.
func (s *Server) admin(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/_aviary/")
	writeJSON := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(v)
	}
	fail := func(status int, msg string) { writeJSON(status, map[string]string{"error": msg}) }
	switch {
	case path == "health":
		writeJSON(http.StatusOK, map[string]string{"status": "ok", "url": s.URL, "region": s.Region})
	case path == "requests" && r.Method == http.MethodGet:
		writeJSON(http.StatusOK, s.Requests())
	case path == "requests" && r.Method == http.MethodDelete:
		s.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	case path == "faults" && r.Method == http.MethodGet:
		writeJSON(http.StatusOK, s.limits.faults())
	case path == "faults" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		var f Faults
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			fail(http.StatusBadRequest, "faults: "+err.Error())
			return
		}
		if err := s.SetFaults(f); err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(http.StatusOK, s.limits.faults())
	case path == "quota" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		var q struct {
			Rate  float64 `json:"rate"`
			Burst int     `json:"burst"`
		}
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil || q.Rate < 0 || q.Burst < 0 {
			fail(http.StatusBadRequest, `quota: send {"rate": 15, "burst": 15} (rate 0 turns quotas off)`)
			return
		}
		s.SetControlRate(q.Rate, q.Burst)
		writeJSON(http.StatusOK, q)
	case path == "faults" && r.Method == http.MethodDelete:
		s.limits.setFaults(Faults{})
		w.WriteHeader(http.StatusNoContent)
	case path == "scheduler/tick" && r.Method == http.MethodPost:
		// Moves the scheduler's clock forward by ?advance=D (default 0) and fires what is then
		// due, answering what it invoked (see scheduler.Report).
		var d time.Duration
		if a := r.URL.Query().Get("advance"); a != "" {
			var err error
			if d, err = time.ParseDuration(a); err != nil || d < 0 {
				fail(http.StatusBadRequest, "scheduler/tick: advance must be a duration ≥ 0, such as 60s or 5m")
				return
			}
		}
		rep, err := s.Scheduler.Advance(r.Context(), d)
		if err != nil {
			fail(http.StatusBadRequest, "scheduler/tick: "+err.Error())
			return
		}
		writeJSON(http.StatusOK, rep)
	case path == "s3/lifecycle/apply" && r.Method == http.MethodPost:
		// Runs lifecycle rules now, as S3 would after {"days": N} more days (see s3.ApplyLifecycle).
		var opts s3.LifecycleOptions
		if err := json.NewDecoder(r.Body).Decode(&opts); err != nil && !errors.Is(err, io.EOF) {
			fail(http.StatusBadRequest, `lifecycle/apply: send {"bucket": "b", "days": 30} (both optional)`)
			return
		}
		rep, err := s.S3.ApplyLifecycle(opts)
		if err != nil {
			fail(http.StatusNotFound, "lifecycle/apply: "+err.Error())
			return
		}
		writeJSON(http.StatusOK, rep)
	case strings.HasPrefix(path, "lambda/code/") && r.Method == http.MethodGet:
		key := strings.TrimSuffix(strings.TrimPrefix(path, "lambda/code/"), ".zip")
		b, err := s.Lambda.CodeZip(key)
		if err != nil {
			fail(http.StatusNotFound, "no code "+url.PathEscape(key))
			return
		}
		w.Header().Set("Content-Type", "application/zip")
		w.Write(b)
	default:
		fail(http.StatusNotFound, "unknown sandbox admin path /_aviary/"+path+" (try health, requests, faults, quota, scheduler/tick)")
	}
}

// lambdaTrail records Lambda's control-plane calls in CloudTrail.
type lambdaTrail struct{ ct *cloudtrail.Service }

func (t lambdaTrail) RecordCall(c lambda.TrailCall) {
	call := cloudtrail.Call{Time: c.Time, EventSource: "lambda.amazonaws.com", EventName: c.EventName, ReadOnly: c.ReadOnly,
		RequestID: c.RequestID, UserAgent: c.UserAgent, SourceIP: c.SourceIP, AccessKeyID: c.AccessKeyID,
		RequestParameters: c.RequestParameters, ErrorCode: c.ErrorCode, ErrorMessage: c.ErrorMessage}
	if c.FunctionName != "" {
		call.ResourceType, call.ResourceName = "AWS::Lambda::Function", c.FunctionName
	}
	t.ct.Record(call)
}

// serviceLambdaClient is the Lambda client an AWS service of the sandbox calls Lambda with, over
// HTTP against the sandbox itself, as the service's own principal: its requests carry the
// service's name as their user agent, which CloudTrail records as invokedBy and source, as
// AWS records CloudFormation's calls. It retries throttles patiently, as AWS's services do.
func serviceLambdaClient(url, region, principal string) *lambdasdk.Client {
	return lambdasdk.NewFromConfig(serviceConfig(region, principal), func(o *lambdasdk.Options) { o.BaseEndpoint = aws.String(url) })
}

// serviceConfig is the configuration of the clients an AWS service of the sandbox calls the
// sandbox with (see serviceLambdaClient).
func serviceConfig(region, principal string) aws.Config {
	return aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("sandbox", "sandbox", ""),
		HTTPClient:  &http.Client{Transport: userAgent{principal, http.DefaultTransport}},
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 20
				o.MaxBackoff = time.Second
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

// userAgent sets a request's User-Agent (after signing: the sandbox verifies no signatures).
type userAgent struct {
	name string
	next http.RoundTripper
}

func (u userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.name)
	return u.next.RoundTrip(r)
}

// schedulerConfig sets up EventBridge Scheduler: its clock (sped up when asked) and the Lambda
// client it invokes targets with, as scheduler.amazonaws.com.
func schedulerConfig(opts Options, url string) scheduler.Config {
	now := opts.SchedulerClock
	if now == nil {
		now = time.Now
	}
	poll := time.Second
	if speed := opts.SchedulerSpeed; speed > 1 {
		base, start := now, now()
		now = func() time.Time { return start.Add(time.Duration(float64(base().Sub(start)) * speed)) }
		poll = max(time.Duration(float64(time.Second)/speed), 20*time.Millisecond)
	}
	return scheduler.Config{Region: opts.Region, Account: opts.Account, DataDir: opts.DataDir, Logger: opts.Logger,
		Lambda: serviceLambdaClient(url, opts.Region, "scheduler.amazonaws.com"), Now: now, PollInterval: poll}
}

// lambdaImages lets Lambda's image functions resolve and unpack images in the sandbox's ECR.
type lambdaImages struct{ ecr *ecr.Service }

func (l lambdaImages) ResolveImage(uri string) (resolved, digest, mediaType string, ok bool) {
	ref, err := l.ecr.Resolve(uri)
	if err != nil {
		return "", "", "", false
	}
	return ref.Resolved, ref.Digest, ref.MediaType, true
}

func (l lambdaImages) UnpackImage(resolved string) (lambda.ImageRoot, error) {
	ref, err := l.ecr.Resolve(resolved)
	if err != nil {
		return lambda.ImageRoot{}, fmt.Errorf("image %s: %w", resolved, err)
	}
	im, err := l.ecr.Unpack(ref.Repository, ref.Digest)
	if err != nil {
		return lambda.ImageRoot{}, err
	}
	return lambda.ImageRoot{Dir: im.Dir, Entrypoint: im.Entrypoint, Cmd: im.Cmd, WorkingDir: im.WorkingDir, Env: im.Env}, nil
}
