// Command aviary-controller is package controller as an AWS Lambda function: invoked every
// minute by an EventBridge Scheduler schedule (and at once by a nudge after a decision), it moves
// on the releases handed to the controller (`aviary deploy --detach`, a cancelled deploy) as far
// as each goes without waiting — publish, shift, judge, gate, promote or roll back — through the
// same release engine the CLI uses, holding each release's lock while it acts.
//
// # Build and deploy
//
// `aviary controller install -e ENV` builds it, creates the function, its role and the schedule.
// By hand:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -o bootstrap ./cmd/aviary-controller
//	zip aviary-controller.zip bootstrap
//	aws lambda create-function --function-name aviary-controller --runtime provided.al2023 \
//	    --architectures arm64 --handler bootstrap --zip-file fileb://aviary-controller.zip \
//	    --timeout 50 --memory-size 256 --role arn:aws:iam::ACCOUNT:role/aviary-controller \
//	    --environment 'Variables={AVIARY_STORE=dynamodb://aviary}'
//	aws scheduler create-schedule --name aviary-shop-prod --schedule-expression 'rate(1 minute)' \
//	    --flexible-time-window Mode=OFF \
//	    --target '{"Arn":"arn:aws:lambda:REGION:ACCOUNT:function:aviary-controller","RoleArn":"arn:aws:iam::ACCOUNT:role/aviary-controller-scheduler","Input":"{\"service\":\"shop\",\"environment\":\"prod\"}","RetryPolicy":{"MaximumRetryAttempts":0}}'
//
// (GOARCH=amd64 with --architectures x86_64 works as well.) The schedule's input is a
// controller.Event: {"service", "environment"} narrows a tick to one environment of one service
// (a DynamoDB Query); {} ticks every release of the store handed to the controller (a Scan);
// {"release": ID} ticks one release. No retries by the schedule (MaximumRetryAttempts 0): the
// next tick comes within a minute. (Lambda itself retries a failed asynchronous invocation twice,
// a minute or two later, unless the function's event invoke configuration says 0; see Failures.)
//
// # Environment
//
//	AVIARY_STORE        required: dynamodb://TABLE, the team store the CLI records releases in
//	                    (sqlite://PATH only for tests)
//	AVIARY_LOCK_LEASE   optional: the lease a tick keeps renewing while it acts (default 30s);
//	                    keep it below the schedule's minute, so that the lease of a tick killed
//	                    mid-way has run out by the next one
//	AVIARY_API_RATE     optional: Lambda control-plane calls per second (default 15, AWS's
//	                    quota per account and region, shared with anything else deploying)
//	AWS_MAX_ATTEMPTS    optional: the SDK's attempts per call (default here 10, so that a
//	                    throttled store or API is retried with backoff within the tick)
//	(notify variables)  the ${NAME}s the environment's notify: URLs use (SLACK_PATH in the
//	                    README's example): a release handed over keeps its notice URLs as the
//	                    manifest wrote them, so that no webhook secret is stored, and the
//	                    controller fills them in from its own variables (`aviary controller
//	                    install --function-env SLACK_PATH=...`; install keeps variables set
//	                    by hand) to send, as an attached deploy does, started, step, awaiting
//	                    (without signed links: the controller has no link secret), promoted,
//	                    rolled-back and failed. A variable it lacks is an error on the
//	                    release's log line; the release goes on.
//
// AWS is reached through the standard configuration chain (the function's role; the region
// Lambda runs in; AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB to point it elsewhere, such as a
// sandbox and dynalite). A release recorded in another region is driven there.
//
// # Log
//
// One JSON line per release and per tick on stdout (see package controller), which Lambda sends
// to the function's log group, /aws/lambda/FUNCTION; `aviary controller status` reads it.
//
// # Failures
//
// A configuration error fails the function's initialisation with a message saying what to set. A
// tick that cannot list the releases fails its invocation; one release's failure is logged and
// the invocation succeeds (the next tick tries again). A failed invocation (that error, or the
// function's timeout) shows in the function's Errors metric, and Lambda retries it, as it does
// any asynchronous invocation, up to twice (`aws lambda put-function-event-invoke-config
// --maximum-retry-attempts 0` turns that off): a retry is one more tick, harmless since every
// tick acts only under each release's lock, and the schedule's next tick would come anyway.
// Artifacts are read from the bucket only: the CLI uploads them before it hands a release over.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/controller"
	"github.com/aviary-deploy/aviary/health"
	"github.com/aviary-deploy/aviary/internal/lambdaboot"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// appID marks the controller's AWS requests in their User-Agent (and so in CloudTrail).
const appID = "aviary-controller"

func main() {
	if os.Getenv("AWS_MAX_ATTEMPTS") == "" {
		// The standard chain reads it: a throttled store is retried rather than failing the tick.
		_ = os.Setenv("AWS_MAX_ATTEMPTS", "10")
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	// Lambda gives a function's initialisation 10 seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	c, err := newController(ctx, log)
	cancel()
	if err != nil {
		initFailed(err)
	}
	lambda.Start(handler(c))
}

// handler ticks once per invocation.
func handler(c *controller.Controller) func(context.Context, controller.Event) error {
	return func(ctx context.Context, ev controller.Event) error {
		id := ""
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			id = lc.AwsRequestID
		}
		_, err := c.Tick(ctx, id, ev)
		return err
	}
}

// newController builds the controller from the environment.
func newController(ctx context.Context, log *slog.Logger) (*controller.Controller, error) {
	st, err := openStore(ctx, os.Getenv("AVIARY_STORE"))
	if err != nil {
		return nil, err
	}
	lease := release.DefaultLease
	if v := os.Getenv("AVIARY_LOCK_LEASE"); v != "" {
		if lease, err = time.ParseDuration(v); err != nil || lease < time.Second {
			st.Close()
			return nil, fmt.Errorf("AVIARY_LOCK_LEASE=%q: want a duration of at least 1s, such as 30s", v)
		}
	}
	rate := float64(lambdafleet.DefaultRate)
	if v := os.Getenv("AVIARY_API_RATE"); v != "" {
		if rate, err = strconv.ParseFloat(v, 64); err != nil || rate <= 0 {
			st.Close()
			return nil, fmt.Errorf("AVIARY_API_RATE=%q: want calls per second above 0, such as 15", v)
		}
	}
	fn := os.Getenv("AWS_LAMBDA_FUNCTION_NAME")
	if fn == "" {
		fn = appID
	}
	engines := &engines{store: st, rate: rate, lease: lease, function: fn, regions: map[string]*regional{}}
	return &controller.Controller{Store: st, Engine: engines.engine, Log: log, NoticeLog: os.Stderr}, nil
}

// engines builds each release's engine, with one fleet and one health checker per region.
type engines struct {
	store    store.Store
	rate     float64
	lease    time.Duration
	function string

	mu      sync.Mutex
	regions map[string]*regional
}

type regional struct {
	fleet   *lambdafleet.Fleet
	checker *health.Checker
	region  string
}

func (e *engines) engine(ctx context.Context, r *release.Release) (*release.Engine, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	reg, ok := e.regions[r.Region]
	if !ok {
		cfg, err := awsconfig.Load(ctx, awsconfig.Options{Region: r.Region, AppID: appID})
		if err != nil {
			return nil, err
		}
		if cfg.Region == "" {
			return nil, errors.New("no AWS region: the release names none and AWS_REGION is not set")
		}
		reg = &regional{fleet: lambdafleet.New(cfg, lambdafleet.Options{Rate: e.rate}), checker: health.New(cfg), region: cfg.Region}
		e.regions[r.Region] = reg
	}
	return &release.Engine{
		Store: e.store, Fleet: reg.fleet, Health: reg.checker, Artifacts: bucketOnly{},
		Actor:  "aviary-controller",
		Source: fmt.Sprintf("controller %s in %s", e.function, reg.region),
		// A fresh owner per tick: two invocations at once are two owners, and the lock lets one act.
		Owner: release.NewOwner("controller:" + e.function), LockTTL: e.lease,
		// Every tick judges the release and says when it next needs acting on; a minute is the
		// schedule's period.
		Poll: time.Minute,
	}, nil
}

// bucketOnly is the controller's artifact source: it has no local cache.
type bucketOnly struct{}

func (bucketOnly) Read(key string) ([]byte, error) {
	return nil, fmt.Errorf("the controller has no local copy of %s: the CLI uploads a release's artifacts before it hands the release over", key)
}

// openStore opens the store AVIARY_STORE names, as the CLI does.
func openStore(ctx context.Context, url string) (store.Store, error) {
	return lambdaboot.OpenStore(ctx, url, appID, "dynamodb://TABLE")
}

// initFailed reports err as the function's initialisation error and exits (see lambdaboot).
func initFailed(err error) { lambdaboot.InitFailed("aviary-controller", err) }
