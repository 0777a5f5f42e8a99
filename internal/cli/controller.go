package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/controller"
	"github.com/aviary-deploy/aviary/iampolicy"
	"github.com/aviary-deploy/aviary/internal/examplefn"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

type controllerCmd struct {
	Install controllerInstallCmd `cmd:"" help:"Build the controller's Lambda, create or update it, its role and its schedule (rate(1 minute)) for an environment. Idempotent."`
	Status  controllerStatusCmd  `cmd:"" help:"Show an environment's controller: its schedule, its last ticks and errors (from its log), the releases it drives."`
}

func (c *controllerCmd) Help() string {
	return `The controller moves releases on with no process watching: ` + "`aviary deploy --detach`" + ` (or a deploy
cancelled where a controller is configured) hands a release to it, and a Lambda function
(cmd/aviary-controller) invoked every minute by an EventBridge Scheduler schedule takes the
release's lock, advances it as far as it goes without waiting (publish, shift, judge, gate,
promote or roll back, through the same engine as deploy), and lets go until the next tick. A CLI
can still drive the release (resume, rollback): the lock decides who acts, and the other says who.

Give the environment a controller in the manifest, then install it:

  environments:
    production:
      controller: true                    # or {function: NAME}; default aviary-controller

  aviary controller install -e production --dry-run
  aviary controller install -e production
  aviary controller status -e production

The store must be the team store (dynamodb://TABLE): the function reads it from Lambda.`
}

// controllerFunction is the environment's controller function: the manifest's, else the default.
func controllerFunction(envm *manifest.Environment) string {
	if envm != nil && envm.Controller != nil && envm.Controller.Function != "" {
		return envm.Controller.Function
	}
	return manifest.DefaultControllerFunction
}

// scheduleName is the environment's schedule: one per service and environment.
func scheduleName(service, env string) string {
	n := regexp.MustCompile(`[^0-9A-Za-z_.-]`).ReplaceAllString("aviary-"+service+"-"+env, "-")
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

type controllerInstallCmd struct {
	manifestFlags
	storeFlags
	clientFlags
	outputFlags
	Env         string            `short:"e" required:"" placeholder:"ENV" help:"The environment whose releases the controller drives."`
	Zip         string            `placeholder:"PATH" help:"The controller's zip (a bootstrap built from cmd/aviary-controller for Linux); default: build it from the module's source, which needs Go and a clone of Aviary."`
	Source      string            `placeholder:"DIR" help:"Where Aviary's source is, to build the controller from (default: this directory or one above it)."`
	Arch        string            `enum:"arm64,x86_64" default:"arm64" help:"The function's architecture: arm64 (cheaper per GB-second) or x86_64."`
	Role        string            `placeholder:"ARN" help:"The role the function runs as and the schedule invokes it with (it must trust lambda.amazonaws.com and scheduler.amazonaws.com); default: create or update aviary-controller with aviary iam-policy --controller's policy."`
	Memory      int32             `default:"256" placeholder:"MB" help:"The function's memory."`
	Timeout     time.Duration     `default:"50s" placeholder:"D" help:"The function's timeout: a tick stops starting work 5s before it; keep it under a minute so ticks do not pile up."`
	FunctionEnv map[string]string `name:"function-env" placeholder:"KEY=VALUE" help:"More environment for the function (such as AWS_ENDPOINT_URL_DYNAMODB); AVIARY_STORE is set from the store."`
	DryRun      bool              `help:"Say what would be created or updated; change nothing (and build nothing)."`
}

func (c *controllerInstallCmd) Help() string {
	return `Creates, or brings up to date, the three pieces of an environment's controller:

  the function   provided.al2023, --arch, its bootstrap built from cmd/aviary-controller
                 (GOOS=linux CGO_ENABLED=0 go build -tags lambda.norpc) or taken from --zip;
                 AVIARY_STORE set to the store; its code updated only when it changed
  the role       --role, or aviary-controller created with the policy of
                 aviary iam-policy --controller -e ENV (one inline policy per service and
                 environment), trusted by Lambda and EventBridge Scheduler
  the schedule   aviary-SERVICE-ENV, rate(1 minute), flexible window off, no retries (the
                 next tick comes within a minute), targeting the function with the input
                 {"service": SERVICE, "environment": ENV}

Run it again after upgrading Aviary, or to repair: what is already as it should be is left alone.

  aviary controller install -e production --dry-run
  aviary controller install -e production --arch x86_64 --zip aviary-controller.zip
  aviary controller install -e production --role arn:aws:iam::123456789012:role/deployer-controller`
}

// installStep is one piece of an install: what was (or would be) done to it.
type installStep struct {
	Resource string `json:"resource"` // function, role, schedule
	Name     string `json:"name"`
	Action   string `json:"action"` // created, updated, unchanged, given (or "would create"... with --dry-run)
	Detail   string `json:"detail,omitempty"`
}

type controllerInstallOutput struct {
	v1
	Service     string        `json:"service"`
	Environment string        `json:"environment"`
	Function    string        `json:"function"`
	FunctionArn string        `json:"functionArn"`
	Role        string        `json:"role"`
	Schedule    string        `json:"schedule"`
	DryRun      bool          `json:"dryRun"`
	Steps       []installStep `json:"steps"`
}

func (c *controllerInstallCmd) Run(e *env) error {
	m, err := c.load()
	if err != nil {
		return err
	}
	envm, err := m.Environment(c.Env)
	if err != nil {
		return usageError{err}
	}
	url := c.storeFlags.url(m)
	if !strings.HasPrefix(url, "dynamodb://") {
		return badInput("controller install: the store is %s: the controller runs on Lambda and needs the team store, dynamodb://TABLE (aviary store init creates it)", url)
	}
	region := c.Region
	if region == "" {
		region = envm.Region
	}
	cfg, err := c.clientFlags.config(e.ctx, region)
	if err != nil {
		return err
	}
	fn := controllerFunction(envm)
	out := &controllerInstallOutput{Service: m.Service, Environment: c.Env, Function: fn, Schedule: scheduleName(m.Service, c.Env), DryRun: c.DryRun}
	would := func(action string) string {
		if c.DryRun {
			return "would be " + action
		}
		return action
	}
	account := ""
	if id, err := sts.NewFromConfig(cfg).GetCallerIdentity(e.ctx, &sts.GetCallerIdentityInput{}); err == nil {
		account = aws.ToString(id.Account)
	} else if c.Role == "" {
		return fmt.Errorf("controller install: learn the account from STS: %w", err)
	}

	// The role.
	out.Role = c.Role
	if c.Role != "" {
		out.Steps = append(out.Steps, installStep{Resource: "role", Name: c.Role, Action: "given"})
	} else {
		in := iampolicy.Input{Region: cfg.Region, Account: account, Bucket: m.Artifacts.Bucket, Prefix: m.Artifacts.Prefix, Table: strings.TrimPrefix(url, "dynamodb://"), Partition: partition(cfg.Region)}
		for _, f := range m.Functions {
			in.Functions = append(in.Functions, m.FunctionName(envm, f.Name))
		}
		in.Repositories, in.Configuration = shippingRights(m, envm)
		if ch := envm.Checks; ch != nil {
			in.Checks = &iampolicy.Checks{Metrics: ch.Metrics, Alarms: ch.Alarms, Smoke: len(ch.Smoke) > 0}
			if ch.Logs {
				for _, f := range in.Functions {
					in.Checks.LogGroups = append(in.Checks.LogGroups, "/aws/lambda/"+f)
				}
			}
			for _, h := range []string{ch.PreTraffic, ch.PostTraffic} {
				if h != "" {
					in.Checks.Hooks = append(in.Checks.Hooks, h)
				}
			}
		}
		policy := iampolicy.Controller(iampolicy.ControllerInput{Input: in, Function: fn})
		step, arn, err := ensureRole(e.ctx, iam.NewFromConfig(cfg), "aviary-controller", out.Schedule, policy, c.DryRun)
		if err != nil {
			return fmt.Errorf("controller install: the role: %w", err)
		}
		out.Role = arn
		out.Steps = append(out.Steps, step)
	}

	// The function.
	lc := lambda.NewFromConfig(cfg)
	var zip []byte
	if c.Zip != "" {
		if zip, err = os.ReadFile(c.Zip); err != nil {
			return badInput("controller install: --zip: %v", err)
		}
	} else if !c.DryRun {
		if zip, err = buildController(e.ctx, orDefault(c.Source, "."), c.Arch); err != nil {
			return fmt.Errorf("controller install: %w", err)
		}
	}
	vars := map[string]string{}
	for k, v := range c.FunctionEnv {
		vars[k] = v
	}
	vars["AVIARY_STORE"] = url
	step, fnARN, err := ensureFunction(e.ctx, lc, functionSpec{Name: fn, Zip: zip, Arch: lambdatypes.Architecture(c.Arch), Role: out.Role, Memory: c.Memory, Timeout: c.Timeout, Env: vars}, c.DryRun)
	if err != nil {
		return fmt.Errorf("controller install: the function %s: %w", fn, err)
	}
	if fnARN == "" {
		fnARN = fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", orDefault(partition(cfg.Region), "aws"), cfg.Region, account, fn)
	}
	out.FunctionArn = fnARN
	out.Steps = append(out.Steps, step)

	// The schedule.
	input, _ := json.Marshal(controller.Event{Service: m.Service, Environment: c.Env})
	step, err = ensureSchedule(e.ctx, scheduler.NewFromConfig(cfg), out.Schedule, fnARN, out.Role, string(input), c.DryRun)
	if err != nil {
		return fmt.Errorf("controller install: the schedule %s: %w", out.Schedule, err)
	}
	out.Steps = append(out.Steps, step)
	for i := range out.Steps {
		out.Steps[i].Action = would(out.Steps[i].Action)
	}

	if c.json() {
		return writeJSON(e.stdout, out)
	}
	w := e.stdout
	if c.DryRun {
		fmt.Fprintf(w, "The controller of %s in %s (dry run: nothing changed):\n", safe(m.Service), safe(c.Env))
	} else {
		fmt.Fprintf(w, "The controller of %s in %s:\n", safe(m.Service), safe(c.Env))
	}
	for _, s := range out.Steps {
		fmt.Fprintf(w, "  %-9s %s: %s", s.Resource, safe(s.Name), s.Action)
		if s.Detail != "" {
			fmt.Fprintf(w, " (%s)", safe(s.Detail))
		}
		fmt.Fprintln(w)
	}
	if !c.DryRun {
		fmt.Fprintf(w, "It ticks every minute. `aviary deploy -e %s --detach` hands it a release; `aviary controller status -e %s` shows its ticks.\n", safe(c.Env), safe(c.Env))
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// buildController builds cmd/aviary-controller for Lambda from the module this command runs in.
func buildController(ctx context.Context, dir, arch string) ([]byte, error) {
	root, err := examplefn.Root(dir)
	if err != nil {
		return nil, fmt.Errorf("building the controller needs Aviary's source (run this in a clone of Aviary, or pass --source) and Go; or pass --zip with a bootstrap built by: GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -o bootstrap ./cmd/aviary-controller && zip aviary-controller.zip bootstrap (%w)", err)
	}
	goarch := "arm64"
	if arch == "x86_64" {
		goarch = "amd64"
	}
	tmp, err := os.MkdirTemp("", "aviary-controller-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o", bin, "./cmd/aviary-controller")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/aviary-controller (GOOS=linux GOARCH=%s): %w\n%s", goarch, err, b)
	}
	files, err := artifact.Collect(bin)
	if err != nil {
		return nil, err
	}
	return artifact.Zip(files)
}

// apiCode is an AWS error's code, "" for another error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// trust lets Lambda run the function and EventBridge Scheduler invoke it with one role.
const trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com","scheduler.amazonaws.com"]},"Action":"sts:AssumeRole"}]}`

// sameJSON says whether two policy documents are the same JSON; IAM returns its documents
// URL-encoded (RFC 3986), as GetRole and GetRolePolicy document.
func sameJSON(got, want string) bool {
	if u, err := url.QueryUnescape(got); err == nil {
		got = u
	}
	var a, b any
	if json.Unmarshal([]byte(got), &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

// ensureRole creates the role (or updates its trust) and puts the environment's inline policy.
func ensureRole(ctx context.Context, c *iam.Client, name, policyName string, policy iampolicy.Policy, dry bool) (installStep, string, error) {
	step := installStep{Resource: "role", Name: name, Detail: "inline policy " + policyName}
	doc, _ := json.Marshal(policy)
	got, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	var nf *iamtypes.NoSuchEntityException
	switch {
	case errors.As(err, &nf):
		step.Action = "created"
		if dry {
			return step, "", nil
		}
		created, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust),
			Description: aws.String("Aviary's controller: drives detached releases; invoked by its schedule")})
		if err != nil {
			return step, "", err
		}
		got = &iam.GetRoleOutput{Role: created.Role}
	case err != nil:
		return step, "", err
	default:
		sameTrust := sameJSON(aws.ToString(got.Role.AssumeRolePolicyDocument), trust)
		if sameTrust {
			cur, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(policyName)})
			if err != nil && !errors.As(err, &nf) {
				return step, "", err
			}
			if err == nil && sameJSON(aws.ToString(cur.PolicyDocument), string(doc)) {
				step.Action = "unchanged"
				return step, aws.ToString(got.Role.Arn), nil
			}
		}
		step.Action = "updated"
		if dry {
			return step, aws.ToString(got.Role.Arn), nil
		}
		if !sameTrust {
			if _, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(name), PolicyDocument: aws.String(trust)}); err != nil {
				return step, "", err
			}
		}
	}
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(policyName), PolicyDocument: aws.String(string(doc))}); err != nil {
		return step, "", err
	}
	return step, aws.ToString(got.Role.Arn), nil
}

type functionSpec struct {
	Name    string
	Zip     []byte
	Arch    lambdatypes.Architecture
	Role    string
	Memory  int32
	Timeout time.Duration
	Env     map[string]string
}

// ensureFunction creates the function, or updates its code (when it changed) and configuration.
func ensureFunction(ctx context.Context, c *lambda.Client, s functionSpec, dry bool) (installStep, string, error) {
	step := installStep{Resource: "function", Name: s.Name}
	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(s.Name)})
	var nf *lambdatypes.ResourceNotFoundException
	timeout := int32(max(s.Timeout, time.Second) / time.Second)
	switch {
	case errors.As(err, &nf):
		step.Action, step.Detail = "created", fmt.Sprintf("provided.al2023, %s, %d MB, timeout %ds", s.Arch, s.Memory, timeout)
		if dry {
			return step, "", nil
		}
		var out *lambda.CreateFunctionOutput
		// A role just created takes a few seconds before Lambda can assume it.
		for attempt := 0; ; attempt++ {
			out, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{
				FunctionName: aws.String(s.Name), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
				Architectures: []lambdatypes.Architecture{s.Arch}, Role: aws.String(s.Role), Code: &lambdatypes.FunctionCode{ZipFile: s.Zip},
				MemorySize: aws.Int32(s.Memory), Timeout: aws.Int32(timeout), Environment: &lambdatypes.Environment{Variables: s.Env},
				Description: aws.String("Aviary's controller: advances detached releases at each tick of its schedule"),
			})
			if err == nil || apiCode(err) != "InvalidParameterValueException" || attempt >= 5 {
				break
			}
			select {
			case <-ctx.Done():
				return step, "", ctx.Err()
			case <-time.After(3 * time.Second):
			}
		}
		if err != nil {
			return step, "", err
		}
		if err := lambda.NewFunctionActiveV2Waiter(c).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(s.Name)}, 2*time.Minute); err != nil {
			return step, "", fmt.Errorf("wait for it to be active: %w", err)
		}
		return step, aws.ToString(out.FunctionArn), nil
	case err != nil:
		return step, "", err
	}
	cur := got.Configuration
	arn := aws.ToString(cur.FunctionArn)
	var changes []string
	sum := sha256.Sum256(s.Zip)
	codeChanged := s.Zip != nil && base64.StdEncoding.EncodeToString(sum[:]) != aws.ToString(cur.CodeSha256) || len(cur.Architectures) > 0 && cur.Architectures[0] != s.Arch
	if codeChanged {
		changes = append(changes, "code")
	}
	vars := map[string]string{}
	if cur.Environment != nil {
		for k, v := range cur.Environment.Variables {
			vars[k] = v // what someone else set stays
		}
	}
	envChanged := false
	for k, v := range s.Env {
		if vars[k] != v {
			vars[k], envChanged = v, true
		}
	}
	configChanged := envChanged || aws.ToString(cur.Role) != s.Role || aws.ToInt32(cur.MemorySize) != s.Memory || aws.ToInt32(cur.Timeout) != timeout
	if configChanged {
		changes = append(changes, "configuration")
	}
	if len(changes) == 0 {
		step.Action = "unchanged"
		return step, arn, nil
	}
	step.Action, step.Detail = "updated", strings.Join(changes, " and ")
	if dry {
		return step, arn, nil
	}
	updated := lambda.NewFunctionUpdatedV2Waiter(c)
	if codeChanged {
		if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(s.Name), ZipFile: s.Zip, Architectures: []lambdatypes.Architecture{s.Arch}}); err != nil {
			return step, "", err
		}
		if err := updated.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(s.Name)}, 2*time.Minute); err != nil {
			return step, "", fmt.Errorf("wait for the code update: %w", err)
		}
	}
	if configChanged {
		if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(s.Name), Role: aws.String(s.Role),
			MemorySize: aws.Int32(s.Memory), Timeout: aws.Int32(timeout), Environment: &lambdatypes.Environment{Variables: vars}}); err != nil {
			return step, "", err
		}
		if err := updated.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(s.Name)}, 2*time.Minute); err != nil {
			return step, "", fmt.Errorf("wait for the configuration update: %w", err)
		}
	}
	return step, arn, nil
}

// ensureSchedule creates the schedule, or puts it back as it should be.
func ensureSchedule(ctx context.Context, c *scheduler.Client, name, fnARN, role, input string, dry bool) (installStep, error) {
	step := installStep{Resource: "schedule", Name: name, Detail: "rate(1 minute)"}
	want := func() (string, *schedtypes.Target) {
		return "rate(1 minute)", &schedtypes.Target{Arn: aws.String(fnARN), RoleArn: aws.String(role), Input: aws.String(input),
			RetryPolicy: &schedtypes.RetryPolicy{MaximumRetryAttempts: aws.Int32(0)}}
	}
	expr, target := want()
	got, err := c.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(name)})
	var nf *schedtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		step.Action = "created"
		if dry {
			return step, nil
		}
		_, err := c.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String(name), ScheduleExpression: aws.String(expr), Target: target,
			FlexibleTimeWindow: &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff}, State: schedtypes.ScheduleStateEnabled,
			Description: aws.String("Aviary's controller ticks " + input)})
		return step, err
	case err != nil:
		return step, err
	}
	if aws.ToString(got.ScheduleExpression) == expr && got.State == schedtypes.ScheduleStateEnabled && got.Target != nil &&
		aws.ToString(got.Target.Arn) == fnARN && aws.ToString(got.Target.RoleArn) == role && aws.ToString(got.Target.Input) == input &&
		got.FlexibleTimeWindow != nil && got.FlexibleTimeWindow.Mode == schedtypes.FlexibleTimeWindowModeOff {
		step.Action = "unchanged"
		return step, nil
	}
	step.Action = "updated"
	if dry {
		return step, nil
	}
	_, err = c.UpdateSchedule(ctx, &scheduler.UpdateScheduleInput{Name: aws.String(name), ScheduleExpression: aws.String(expr), Target: target,
		FlexibleTimeWindow: &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff}, State: schedtypes.ScheduleStateEnabled,
		Description: aws.String("Aviary's controller ticks " + input)})
	return step, err
}

type controllerStatusCmd struct {
	manifestFlags
	storeFlags
	clientFlags
	outputFlags
	Env   string        `short:"e" required:"" placeholder:"ENV" help:"The environment whose controller to show."`
	Since time.Duration `default:"1h" placeholder:"D" help:"How far back to read the controller's log."`
	Ticks int           `default:"10" placeholder:"N" help:"How many of the last ticks to show."`
}

func (c *controllerStatusCmd) Help() string {
	return `Shows an environment's controller: whether its schedule is there and enabled, its last ticks (from
the function's log group, /aws/lambda/FUNCTION: one line per tick and one per release it looked at),
the errors among them, and the live releases handed to it, from the store.

  aviary controller status -e production
  aviary controller status -e production --since 24h -o json`
}

// tickLine is one tick as its log line says it.
type tickLine struct {
	Time     time.Time      `json:"time"`
	Tick     string         `json:"tick"`
	Listed   int            `json:"listed"`
	Drove    int            `json:"drove"`
	Held     int            `json:"held"`
	Errors   int            `json:"errors"`
	Skipped  int            `json:"skipped"`
	Ms       int64          `json:"ms"`
	Error    string         `json:"error,omitempty"`
	Releases []releaseTickL `json:"releases,omitempty"`
}

// releaseTickL is one release's line of a tick.
type releaseTickL struct {
	Release string    `json:"release"`
	Action  string    `json:"action"`
	From    string    `json:"from"`
	Phase   string    `json:"phase"`
	Step    int       `json:"step,omitempty"`
	Next    time.Time `json:"next,omitzero"`
	Waiting string    `json:"waiting,omitempty"`
	HeldBy  string    `json:"heldBy,omitempty"`
	Error   string    `json:"error,omitempty"`
}

type controllerStatusOutput struct {
	v1
	Service     string          `json:"service"`
	Environment string          `json:"environment"`
	Function    string          `json:"function"`
	Schedule    string          `json:"schedule"`
	State       string          `json:"state"` // ENABLED, DISABLED, missing
	Expression  string          `json:"expression,omitempty"`
	Ticks       []tickLine      `json:"ticks"`
	Errors      []releaseTickL  `json:"errors"`
	Driving     []releaseOutput `json:"driving"`
}

func (c *controllerStatusCmd) Run(e *env) error {
	m, err := c.load()
	if err != nil {
		return err
	}
	envm, err := m.Environment(c.Env)
	if err != nil {
		return usageError{err}
	}
	region := c.Region
	if region == "" {
		region = envm.Region
	}
	cfg, err := c.clientFlags.config(e.ctx, region)
	if err != nil {
		return err
	}
	out := &controllerStatusOutput{Service: m.Service, Environment: c.Env, Function: controllerFunction(envm), Schedule: scheduleName(m.Service, c.Env),
		Ticks: []tickLine{}, Errors: []releaseTickL{}, Driving: []releaseOutput{}}
	sch, err := scheduler.NewFromConfig(cfg).GetSchedule(e.ctx, &scheduler.GetScheduleInput{Name: aws.String(out.Schedule)})
	var nf *schedtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		out.State = "missing"
	case err != nil:
		return fmt.Errorf("controller status: read the schedule %s: %w", out.Schedule, err)
	default:
		out.State, out.Expression = string(sch.State), aws.ToString(sch.ScheduleExpression)
	}
	if out.Ticks, out.Errors, err = readTicks(e.ctx, cloudwatchlogs.NewFromConfig(cfg), out.Function, m.Service, c.Env, time.Now().Add(-c.Since), c.Ticks); err != nil {
		return fmt.Errorf("controller status: read the log of %s: %w", out.Function, err)
	}
	st, err := c.storeFlags.open(e.ctx, m)
	if err != nil {
		return err
	}
	defer st.Close()
	rs, err := st.ListReleases(e.ctx, release.Filter{Service: m.Service, Environment: c.Env, Limit: 3})
	if err != nil {
		return err
	}
	var driving []*release.Release
	for _, r := range rs {
		if r.Controller && !r.Phase.Final() {
			driving = append(driving, r)
			out.Driving = append(out.Driving, releaseOf(r))
		}
	}
	if c.json() {
		return writeJSON(e.stdout, out)
	}
	w := e.stdout
	fmt.Fprintf(w, "Controller of %s in %s: function %s\n", safe(m.Service), safe(c.Env), safe(out.Function))
	switch out.State {
	case "missing":
		fmt.Fprintf(w, "  schedule  %s: missing (aviary controller install -e %s creates it)\n", safe(out.Schedule), safe(c.Env))
	default:
		fmt.Fprintf(w, "  schedule  %s: %s, %s\n", safe(out.Schedule), safe(out.State), safe(out.Expression))
	}
	if len(out.Ticks) == 0 {
		fmt.Fprintf(w, "  ticks     none in the last %s\n", c.Since)
	} else {
		fmt.Fprintf(w, "  last %d ticks (newest first):\n", len(out.Ticks))
		for _, t := range out.Ticks {
			line := fmt.Sprintf("    %s  %d live: %d drove, %d held, %d errors, %d skipped  (%d ms)", t.Time.Local().Format(time.DateTime), t.Listed, t.Drove, t.Held, t.Errors, t.Skipped, t.Ms)
			if t.Error != "" {
				line = fmt.Sprintf("    %s  failed: %s", t.Time.Local().Format(time.DateTime), safe(t.Error))
			}
			fmt.Fprintln(w, line)
			for _, r := range t.Releases {
				fmt.Fprintf(w, "      %s %s: %s → %s%s\n", safe(r.Release), safe(r.Action), safe(r.From), safe(r.Phase), tickDetail(r))
			}
		}
	}
	if len(out.Errors) > 0 {
		fmt.Fprintf(w, "  errors:\n")
		for _, r := range out.Errors {
			fmt.Fprintf(w, "    %s: %s\n", safe(r.Release), safe(r.Error))
		}
	}
	if len(driving) == 0 {
		fmt.Fprintln(w, "  driving   no live release")
	}
	for _, r := range driving {
		fmt.Fprintf(w, "  driving   %s: %s\n", safe(r.ID), safe(r.Describe()))
	}
	return nil
}

func tickDetail(r releaseTickL) string {
	switch {
	case r.Error != "":
		return ": " + r.Error
	case r.HeldBy != "":
		return " (held by " + r.HeldBy + ")"
	case !r.Next.IsZero():
		return fmt.Sprintf(" (%s until %s)", r.Waiting, r.Next.Local().Format(time.TimeOnly))
	}
	return ""
}

// logLine is a line of the controller's log, either kind (see package controller).
type logLine struct {
	Time        time.Time `json:"time"`
	Msg         string    `json:"msg"`
	Tick        string    `json:"tick"`
	Service     string    `json:"service"`
	Environment string    `json:"environment"`
	Error       string    `json:"error"`
	// A tick's.
	Listed, Drove, Held, Errors, Skipped int
	Ms                                   int64 `json:"ms"`
	// A release's.
	Release string    `json:"release"`
	Action  string    `json:"action"`
	From    string    `json:"from"`
	Phase   string    `json:"phase"`
	Step    int       `json:"step"`
	Next    time.Time `json:"next"`
	Waiting string    `json:"waiting"`
	HeldBy  string    `json:"heldBy"`
}

// readTicks reads the controller's log lines of this service's environment since from: the last
// n ticks, newest first, with their releases' lines, and the release lines with errors.
func readTicks(ctx context.Context, c *cloudwatchlogs.Client, function, service, env string, from time.Time, n int) ([]tickLine, []releaseTickL, error) {
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/" + function), StartTime: aws.Int64(from.UnixMilli()),
		FilterPattern: aws.String(fmt.Sprintf(`{ $.environment = %q }`, env))}
	ticks := map[string]*tickLine{}
	var errs []releaseTickL
	for {
		page, err := c.FilterLogEvents(ctx, in)
		var nf *cwltypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil, nil, nil // never ran
		}
		if err != nil {
			return nil, nil, err
		}
		for _, ev := range page.Events {
			var l logLine
			dec := json.NewDecoder(bytes.NewReader([]byte(aws.ToString(ev.Message))))
			if dec.Decode(&l) != nil || l.Environment != env || l.Service != "" && l.Service != service {
				continue
			}
			t := ticks[l.Tick]
			if t == nil {
				t = &tickLine{Tick: l.Tick}
				ticks[l.Tick] = t
			}
			switch l.Msg {
			case "tick":
				t.Time, t.Error = l.Time, l.Error
				t.Listed, t.Drove, t.Held, t.Errors, t.Skipped, t.Ms = l.Listed, l.Drove, l.Held, l.Errors, l.Skipped, l.Ms
			case "release":
				r := releaseTickL{Release: l.Release, Action: l.Action, From: l.From, Phase: l.Phase, Step: l.Step, Next: l.Next,
					Waiting: l.Waiting, HeldBy: l.HeldBy, Error: l.Error}
				t.Releases = append(t.Releases, r)
				if t.Time.IsZero() {
					t.Time = l.Time
				}
				if r.Error != "" {
					errs = append(errs, r)
				}
			}
		}
		if page.NextToken == nil {
			break
		}
		in.NextToken = page.NextToken
	}
	var out []tickLine
	for _, t := range ticks {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	if len(out) > n {
		out = out[:n]
	}
	if len(errs) > n {
		errs = errs[len(errs)-n:]
	}
	return out, errs, nil
}
