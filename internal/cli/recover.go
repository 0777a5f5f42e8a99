package cli

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"gopkg.in/yaml.v3"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/inventory"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/manifest"
)

type recoverStackCmd struct {
	manifestFlags
	clientFlags
	outputFlags
	Stack  string        `arg:"" name:"STACK" help:"The root stack stuck in UPDATE_ROLLBACK_FAILED (name or ID)."`
	DryRun bool          `name:"dry-run" help:"Print the plan (each stuck stack, why, each key the rollback needs and where it will come from) and change nothing."`
	Skip   []string      `name:"skip" placeholder:"RESOURCE" help:"A failed resource to skip if its code cannot be restored (LogicalId, or NestedStack.LogicalId inside a nested stack). Repeatable."`
	Cache  string        `placeholder:"DIR" help:"The artifact cache to restore from (default: the cache of the manifest, -f, when there is one)."`
	Wait   time.Duration `default:"1h" placeholder:"D" help:"How long to wait for the continued rollback."`
	Poll   time.Duration `default:"5s" placeholder:"D" help:"How often to read the stack's status while the rollback continues."`
}

func (c *recoverStackCmd) Help() string {
	return `Gets a CloudFormation stack out of UPDATE_ROLLBACK_FAILED when its rollback could not fetch the
previous code of its Lambda functions (an S3 lifecycle rule or a cleanup deleted the zips):

  1. reads the stack and every nested stack (AWS::CloudFormation::Stack resources), and finds
     each one stuck and why (DescribeStackEvents: the failed resources and their reasons);
  2. finds the exact keys the rollback needs: the previous template's Code.S3Bucket/S3Key
     (GetTemplate and the stack's parameters) and CloudTrail's failed UpdateFunctionCode calls
     (requestParameters.s3Bucket and s3Key);
  3. restores each missing key, in order of trust: the artifact cache by digest (a key
     PREFIX/<sha256>.zip names its bytes), a noncurrent version in a versioned bucket, the code a
     function version still has (GetFunction) when its CodeSha256 matches the key's digest — the
     bytes are checked before anything is written;
  4. continues the rollback (ContinueUpdateRollback on the root stack, which continues the
     nested ones), skipping only --skip resources whose code cannot be restored, waits, and
     reports each stack's final status.

It never deletes or recreates a function: a recreated function loses its resource policy
(AWS::Lambda::Permission), its event sources and its ARN's history, and CloudFormation will not
roll a stack forward from UPDATE_ROLLBACK_FAILED anyway. A key that cannot be restored is named
with the build it needs (bucket, key, expected SHA-256), and nothing is changed.

  aviary recover-stack shop-prod --dry-run
  aviary recover-stack shop-prod

Exit codes: 0 every stack rolled back (or, with --dry-run, the plan can run); 6 a key cannot be
restored (nothing was changed); 2 bad input (no such stack, a stack in another state, a nested
stack, --skip of a resource that did not fail); 1 any other error (a continued rollback that
failed again).`
}

// stackAPI is the part of *cloudformation.Client recover-stack uses.
type stackAPI interface {
	DescribeStacks(context.Context, *cloudformation.DescribeStacksInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
	DescribeStackResources(context.Context, *cloudformation.DescribeStackResourcesInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeStackResourcesOutput, error)
	DescribeStackEvents(context.Context, *cloudformation.DescribeStackEventsInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeStackEventsOutput, error)
	GetTemplate(context.Context, *cloudformation.GetTemplateInput, ...func(*cloudformation.Options)) (*cloudformation.GetTemplateOutput, error)
	ContinueUpdateRollback(context.Context, *cloudformation.ContinueUpdateRollbackInput, ...func(*cloudformation.Options)) (*cloudformation.ContinueUpdateRollbackOutput, error)
}

// trailAPI reads CloudTrail's management events.
type trailAPI interface {
	LookupEvents(context.Context, *cloudtrail.LookupEventsInput, ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error)
}

// versionsS3 reads a versioned bucket's older versions.
type versionsS3 interface {
	ListObjectVersions(context.Context, *s3.ListObjectVersionsInput, ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// versionsLambda lists a function's versions and their CodeSha256.
type versionsLambda interface {
	ListVersionsByFunction(context.Context, *lambda.ListVersionsByFunctionInput, ...func(*lambda.Options)) (*lambda.ListVersionsByFunctionOutput, error)
}

var (
	_ stackAPI       = (*cloudformation.Client)(nil)
	_ trailAPI       = (*cloudtrail.Client)(nil)
	_ versionsS3     = (*s3.Client)(nil)
	_ versionsLambda = (*lambda.Client)(nil)
)

// recoverer holds recover-stack's clients.
type recoverer struct {
	cfn     stackAPI
	trail   trailAPI
	s3      versionsS3
	lambda  versionsLambda
	kit     *artifactKit // the doctor's restore helpers: verified downloads and uploads
	cache   artifact.Cache
	noCache string // why there is no cache, when there is none
}

// stuckStack is a stack of the tree, and what is stuck in it.
type stuckStack struct {
	Path    string           `json:"path"` // logical ids from the root, "" for the root
	Name    string           `json:"name"`
	ID      string           `json:"id"`
	Status  string           `json:"status"`
	Reason  string           `json:"reason,omitempty"`
	Failed  []failedResource `json:"failed"`
	started time.Time
	params  map[string]string
}

// failedResource is a resource whose rollback failed.
type failedResource struct {
	Skip     string `json:"skip_name"` // its name in ResourcesToSkip
	Logical  string `json:"logical_id"`
	Type     string `json:"type"`
	Physical string `json:"physical_id"`
	Reason   string `json:"reason"`
	// TrailKey is the key of the function's newest failed UpdateFunctionCode call when it is not
	// the template's.
	TrailKey string `json:"cloudtrail_key,omitempty"`
	// Key is the index in the plan's keys of the code it needs, -1 when none is known.
	Key int `json:"-"`
}

// neededKey is an S3 object a rollback needs.
type neededKey struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	// SHA256 is the digest the key names (hex), "" when it names none.
	SHA256   string   `json:"sha256,omitempty"`
	From     []string `json:"found_in"` // "template", "cloudtrail"
	Neededby []string `json:"needed_by"`
	// State: present, restorable, restored, missing.
	State  string `json:"state"`
	Source string `json:"source,omitempty"` // where it is restored from
	Build  string `json:"build_needed,omitempty"`
	Error  string `json:"error,omitempty"`
	Skip   bool   `json:"skipped,omitempty"`
	body   []byte
}

// recoverOutput is `aviary recover-stack -o json`.
type recoverOutput struct {
	v1
	Stack   string        `json:"stack"`
	DryRun  bool          `json:"dry_run"`
	Stacks  []*stuckStack `json:"stacks"`
	Keys    []*neededKey  `json:"keys"`
	Skipped []string      `json:"resources_to_skip"`
	// NotSkipped are --skip resources whose code is restored instead.
	NotSkipped []string      `json:"restored_not_skipped,omitempty"`
	Continued  bool          `json:"continued"`
	Final      []stackStatus `json:"final,omitempty"`
	Warnings   []string      `json:"warnings,omitempty"`
}

type stackStatus struct {
	Path   string `json:"path"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

var digestKeyRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// keyDigest is the SHA-256 (hex) a content-addressed key names, or "".
func keyDigest(key string) string {
	if h := strings.TrimSuffix(path.Base(key), ".zip"); digestKeyRE.MatchString(h) && strings.HasSuffix(key, ".zip") {
		return h
	}
	return ""
}

func codeSha256Of(hexDigest string) string {
	b, _ := hex.DecodeString(hexDigest)
	return base64.StdEncoding.EncodeToString(b)
}

func isValidationError(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ValidationError"
}

func (c *recoverStackCmd) Run(e *env) error {
	if c.Poll <= 0 || c.Wait <= 0 {
		return badInput("recover-stack: --poll and --wait must be above 0")
	}
	progress := io.Writer(e.stderr)
	if e.quiet {
		progress = io.Discard
	}
	cfg, err := c.config(e.ctx, "")
	if err != nil {
		return err
	}
	clients := lambdafleet.NewClients(cfg, lambdafleet.Options{})
	retry := lambdafleet.Retryer(10)
	r := &recoverer{
		cfn:    cloudformation.NewFromConfig(cfg, func(o *cloudformation.Options) { o.Retryer = retry }),
		trail:  cloudtrail.NewFromConfig(cfg, func(o *cloudtrail.Options) { o.Retryer = retry }),
		s3:     clients.S3,
		lambda: clients.Lambda,
		kit:    &artifactKit{s3: clients.S3, lambda: clients.Lambda, http: http.DefaultClient},
	}
	switch {
	case c.Cache != "":
		if fi, err := os.Stat(c.Cache); err != nil || !fi.IsDir() {
			return badInput("recover-stack: --cache %s is not a directory", c.Cache)
		}
		r.cache = artifact.Cache{Dir: c.Cache}
	default:
		m, err := manifest.Load(c.File)
		switch {
		case err == nil:
			r.cache = artifact.Cache{Dir: m.Artifacts.Cache}
		case c.File != manifest.DefaultFile:
			return usageError{err} // a manifest named with -f must load
		default:
			r.noCache = "no artifact cache (no --cache, and no " + manifest.DefaultFile + " here)"
		}
	}

	out := &recoverOutput{Stack: c.Stack, DryRun: c.DryRun, Stacks: []*stuckStack{}, Keys: []*neededKey{}, Skipped: []string{}}
	root, err := r.describe(e.ctx, c.Stack)
	if err != nil {
		return err
	}
	if root == nil {
		return badInput("recover-stack: stack %s does not exist; nothing was changed", c.Stack)
	}
	if aws.ToString(root.ParentId) != "" {
		return badInput("recover-stack: %s is a nested stack: recover its root stack %s (ContinueUpdateRollback continues the nested ones); nothing was changed", c.Stack, aws.ToString(root.RootId))
	}
	if root.StackStatus != cfntypes.StackStatusUpdateRollbackFailed {
		return badInput("recover-stack: stack %s is %s, not UPDATE_ROLLBACK_FAILED: there is no stuck rollback to continue; nothing was changed", c.Stack, root.StackStatus)
	}
	fmt.Fprintf(progress, "Reading %s and its nested stacks\n", c.Stack)
	if err := r.walk(e.ctx, root, "", out); err != nil {
		return err
	}
	fmt.Fprintf(progress, "Finding the keys the rollback needs (the previous templates, CloudTrail)\n")
	if err := r.findKeys(e.ctx, out); err != nil {
		return err
	}
	skip, err := resolveSkips(out, c.Skip)
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "Looking for each missing key (the cache, older S3 versions, the functions' versions)\n")
	if err := r.locate(e.ctx, out); err != nil {
		return err
	}
	// What --skip names is skipped only when its code cannot be restored.
	var blocked []*neededKey
	for _, k := range out.Keys {
		if k.State != "missing" {
			continue
		}
		all := true
		for _, who := range k.Neededby {
			if !skip[who] {
				all = false
			}
		}
		if all {
			k.Skip = true
			continue
		}
		blocked = append(blocked, k)
	}
	for _, st := range out.Stacks {
		for _, f := range st.Failed {
			if !skip[f.Skip] {
				continue
			}
			if f.Key >= 0 && out.Keys[f.Key].State == "restorable" {
				out.NotSkipped = append(out.NotSkipped, f.Skip) // its code is restored: rolled back, not skipped
				continue
			}
			out.Skipped = append(out.Skipped, f.Skip)
		}
	}

	if c.DryRun || len(blocked) > 0 {
		if err := c.print(e.stdout, out); err != nil {
			return err
		}
		if len(blocked) > 0 {
			var builds []string
			for _, k := range blocked {
				builds = append(builds, k.Build)
			}
			return exitError{ExitNotReady, fmt.Errorf("nothing was changed: %s cannot be restored: %s", plural(len(blocked), "key", "keys"), strings.Join(builds, "; "))}
		}
		return nil
	}

	for _, k := range out.Keys {
		if k.State != "restorable" {
			continue
		}
		fmt.Fprintf(progress, "Restoring s3://%s/%s from %s\n", k.Bucket, k.Key, k.Source)
		if err := r.kit.upload(e.ctx, k.Bucket, k.Key, k.body); err != nil {
			k.Error = err.Error()
			_ = c.print(e.stdout, out)
			return fmt.Errorf("the rollback was not continued: %w", err)
		}
		k.State = "restored"
	}
	fmt.Fprintf(progress, "Continuing the rollback of %s\n", c.Stack)
	_, err = r.cfn.ContinueUpdateRollback(e.ctx, &cloudformation.ContinueUpdateRollbackInput{StackName: root.StackId, ResourcesToSkip: out.Skipped})
	if err != nil {
		_ = c.print(e.stdout, out)
		return fmt.Errorf("ContinueUpdateRollback %s: %w", c.Stack, err)
	}
	out.Continued = true
	w := cloudformation.NewStackRollbackCompleteWaiter(r.cfn, func(o *cloudformation.StackRollbackCompleteWaiterOptions) {
		o.MinDelay, o.MaxDelay = c.Poll, max(c.Poll, 4*c.Poll)
	})
	waitErr := w.Wait(e.ctx, &cloudformation.DescribeStacksInput{StackName: root.StackId}, c.Wait)
	for _, st := range out.Stacks {
		s, err := r.describe(e.ctx, st.ID)
		if err != nil || s == nil {
			out.Final = append(out.Final, stackStatus{Path: st.Path, Name: st.Name, Status: "unknown", Reason: fmt.Sprint(err)})
			continue
		}
		out.Final = append(out.Final, stackStatus{Path: st.Path, Name: st.Name, Status: string(s.StackStatus), Reason: aws.ToString(s.StackStatusReason)})
	}
	if err := c.print(e.stdout, out); err != nil {
		return err
	}
	if waitErr != nil {
		return fmt.Errorf("the continued rollback of %s did not complete: %w (see its events)", c.Stack, waitErr)
	}
	return nil
}

// describe reads one stack; nil when it does not exist.
func (r *recoverer) describe(ctx context.Context, name string) (*cfntypes.Stack, error) {
	out, err := r.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if isValidationError(err) {
		return nil, nil // "Stack with id X does not exist": DescribeStacks's only ValidationError for one name
	}
	if err != nil {
		return nil, fmt.Errorf("DescribeStacks %s: %w", name, err)
	}
	if len(out.Stacks) == 0 {
		return nil, nil
	}
	return &out.Stacks[0], nil
}

// walk records a stack and, depth first, its nested stacks.
func (r *recoverer) walk(ctx context.Context, s *cfntypes.Stack, at string, out *recoverOutput) error {
	st := &stuckStack{Path: at, Name: aws.ToString(s.StackName), ID: aws.ToString(s.StackId), Status: string(s.StackStatus),
		Reason: aws.ToString(s.StackStatusReason), Failed: []failedResource{}, params: map[string]string{}}
	for _, p := range s.Parameters {
		st.params[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
	}
	out.Stacks = append(out.Stacks, st)
	res, err := r.cfn.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: s.StackId})
	if err != nil {
		return fmt.Errorf("DescribeStackResources %s: %w", st.Name, err)
	}
	stuck := s.StackStatus == cfntypes.StackStatusUpdateRollbackFailed
	var reasons map[string]string
	if stuck {
		if reasons, st.started, err = r.failures(ctx, st.ID); err != nil {
			return err
		}
	}
	for _, rs := range res.StackResources {
		logical := aws.ToString(rs.LogicalResourceId)
		name := logical
		if at != "" {
			name = at + "." + logical
		}
		if stuck && rs.ResourceStatus == cfntypes.ResourceStatusUpdateFailed {
			reason := reasons[logical]
			if reason == "" {
				reason = aws.ToString(rs.ResourceStatusReason)
			}
			st.Failed = append(st.Failed, failedResource{Skip: name, Logical: logical, Type: aws.ToString(rs.ResourceType),
				Physical: aws.ToString(rs.PhysicalResourceId), Reason: reason, Key: -1})
		}
		if aws.ToString(rs.ResourceType) == "AWS::CloudFormation::Stack" && aws.ToString(rs.PhysicalResourceId) != "" {
			child, err := r.describe(ctx, aws.ToString(rs.PhysicalResourceId))
			if err != nil {
				return err
			}
			if child != nil {
				if err := r.walk(ctx, child, name, out); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// failures reads a stuck stack's events, newest first, back to the start of the update: the
// newest failure reason of each resource, and when the update started.
func (r *recoverer) failures(ctx context.Context, id string) (map[string]string, time.Time, error) {
	reasons := map[string]string{}
	p := cloudformation.NewDescribeStackEventsPaginator(r.cfn, &cloudformation.DescribeStackEventsInput{StackName: aws.String(id)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("DescribeStackEvents %s: %w", id, err)
		}
		for _, ev := range page.StackEvents {
			if aws.ToString(ev.PhysicalResourceId) == id && ev.ResourceStatus == cfntypes.ResourceStatusUpdateInProgress {
				return reasons, aws.ToTime(ev.Timestamp), nil
			}
			if ev.ResourceStatus == cfntypes.ResourceStatusUpdateFailed {
				if l := aws.ToString(ev.LogicalResourceId); reasons[l] == "" {
					reasons[l] = aws.ToString(ev.ResourceStatusReason)
				}
			}
		}
	}
	return reasons, time.Time{}, nil
}

// findKeys finds the code key of each failed function: the previous template's
// Code.S3Bucket/S3Key (what the rollback deploys) and, when the template does not say plainly,
// the newest failed UpdateFunctionCode call CloudTrail recorded for the function since the
// update started (the rollback's, which comes after the update's own).
func (r *recoverer) findKeys(ctx context.Context, out *recoverOutput) error {
	index := map[string]int{}
	add := func(bucket, key, from, who string) int {
		id := bucket + "/" + key
		i, ok := index[id]
		if !ok {
			i = len(out.Keys)
			index[id] = i
			out.Keys = append(out.Keys, &neededKey{Bucket: bucket, Key: key, SHA256: keyDigest(key), From: []string{}, Neededby: []string{}})
		}
		k := out.Keys[i]
		if !slices.Contains(k.From, from) {
			k.From = append(k.From, from)
		}
		if !slices.Contains(k.Neededby, who) {
			k.Neededby = append(k.Neededby, who)
		}
		return i
	}
	for _, st := range out.Stacks {
		var fns []int
		for i, f := range st.Failed {
			if f.Type == "AWS::Lambda::Function" {
				fns = append(fns, i)
			}
		}
		if len(fns) == 0 {
			continue
		}
		tpl, err := r.cfn.GetTemplate(ctx, &cloudformation.GetTemplateInput{StackName: aws.String(st.ID), TemplateStage: cfntypes.TemplateStageOriginal})
		if err != nil {
			return fmt.Errorf("GetTemplate %s: %w", st.Name, err)
		}
		codes := templateCode(aws.ToString(tpl.TemplateBody), st.params)
		trail, err := r.failedCodeCalls(ctx, st.started)
		if err != nil {
			// CloudTrail confirms, and names what a computed key resolves to; the template alone
			// still names the keys its parameters and literals give.
			out.Warnings = append(out.Warnings, err.Error())
			trail = nil
		}
		for _, i := range fns {
			f := &st.Failed[i]
			if loc, ok := codes[f.Logical]; ok {
				f.Key = add(loc[0], loc[1], "template", f.Skip)
			}
			if loc, ok := trail[f.Physical]; ok {
				if f.Key < 0 {
					f.Key = add(loc[0], loc[1], "cloudtrail", f.Skip)
				} else if k := out.Keys[f.Key]; k.Bucket == loc[0] && k.Key == loc[1] {
					if !slices.Contains(k.From, "cloudtrail") {
						k.From = append(k.From, "cloudtrail")
					}
				} else {
					// The template the stack rolls back to says what the rollback deploys; a
					// newer failed call may be the update's own. Shown, so a person can judge.
					f.TrailKey = "s3://" + loc[0] + "/" + loc[1]
				}
			}
		}
	}
	return nil
}

// failedCodeCalls maps each function to the bucket and key of its newest failed
// UpdateFunctionCode call since a time.
func (r *recoverer) failedCodeCalls(ctx context.Context, since time.Time) (map[string][2]string, error) {
	in := &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{{
		AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("UpdateFunctionCode20150331v2")}}}
	if !since.IsZero() {
		in.StartTime = aws.Time(since.Add(-time.Minute))
	}
	found := map[string][2]string{}
	p := cloudtrail.NewLookupEventsPaginator(r.trail, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("CloudTrail LookupEvents: %w", err)
		}
		for _, ev := range page.Events { // newest first
			var rec struct {
				ErrorCode         string `json:"errorCode"`
				RequestParameters struct {
					FunctionName string `json:"functionName"`
					S3Bucket     string `json:"s3Bucket"`
					S3Key        string `json:"s3Key"`
				} `json:"requestParameters"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(ev.CloudTrailEvent)), &rec); err != nil || rec.ErrorCode == "" {
				continue
			}
			rp := rec.RequestParameters
			if rp.S3Key == "" {
				continue
			}
			fn := rp.FunctionName
			if i := strings.LastIndex(fn, ":function:"); i >= 0 {
				fn = strings.SplitN(fn[i+len(":function:"):], ":", 2)[0]
			}
			if _, ok := found[fn]; !ok {
				found[fn] = [2]string{rp.S3Bucket, rp.S3Key}
			}
		}
	}
	return found, nil
}

// templateCode reads the S3 code location of each AWS::Lambda::Function of a template (JSON or
// YAML, with or without the short forms) whose bucket and key are literals or parameter
// references; others are left to CloudTrail.
func templateCode(body string, params map[string]string) map[string][2]string {
	var doc yaml.Node
	out := map[string][2]string{}
	if err := yaml.Unmarshal([]byte(body), &doc); err != nil || len(doc.Content) == 0 {
		return out
	}
	get := func(n *yaml.Node, key string) *yaml.Node {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
		return nil
	}
	value := func(n *yaml.Node) (string, bool) {
		switch {
		case n == nil:
			return "", false
		case n.Kind == yaml.ScalarNode && n.Tag == "!Ref":
			v, ok := params[n.Value]
			return v, ok
		case n.Kind == yaml.ScalarNode && (n.Tag == "" || strings.HasPrefix(n.Tag, "!!")): // a plain value, not an intrinsic (!Sub, !Join...)
			return n.Value, true
		case n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Value == "Ref":
			v, ok := params[n.Content[1].Value]
			return v, ok
		}
		return "", false
	}
	res := get(doc.Content[0], "Resources")
	if res == nil {
		return out
	}
	for i := 0; i+1 < len(res.Content); i += 2 {
		r := res.Content[i+1]
		if t := get(r, "Type"); t == nil || t.Value != "AWS::Lambda::Function" {
			continue
		}
		code := get(get(r, "Properties"), "Code")
		b, ok1 := value(get(code, "S3Bucket"))
		k, ok2 := value(get(code, "S3Key"))
		if ok1 && ok2 {
			out[res.Content[i].Value] = [2]string{b, k}
		}
	}
	return out
}

// resolveSkips checks every --skip names a resource whose rollback failed, and not a nested
// stack (which AWS does not allow skipping unless it is being deleted).
func resolveSkips(out *recoverOutput, names []string) (map[string]bool, error) {
	failed := map[string]failedResource{}
	for _, st := range out.Stacks {
		for _, f := range st.Failed {
			failed[f.Skip] = f
		}
	}
	skip := map[string]bool{}
	for _, n := range names {
		f, ok := failed[n]
		switch {
		case !ok:
			var names []string
			for k, f := range failed {
				if f.Type != "AWS::CloudFormation::Stack" {
					names = append(names, k)
				}
			}
			slices.Sort(names)
			return nil, badInput("recover-stack: --skip %s: no such resource failed its rollback (those that did: %s); nothing was changed", n, strings.Join(names, ", "))
		case f.Type == "AWS::CloudFormation::Stack":
			return nil, badInput("recover-stack: --skip %s: a nested stack cannot be skipped (AWS allows it only while the stack is being deleted); skip the failed resources inside it, as %s.LogicalId; nothing was changed", n, n)
		}
		skip[n] = true
	}
	return skip, nil
}

// locate finds each key: present, or where its bytes can be restored from (read and verified
// now, written later), or missing with the build it needs.
func (r *recoverer) locate(ctx context.Context, out *recoverOutput) error {
	physical := map[string][]string{} // key index → the functions that need it
	for _, st := range out.Stacks {
		for _, f := range st.Failed {
			if f.Key >= 0 {
				physical[out.Keys[f.Key].Bucket+"/"+out.Keys[f.Key].Key] = append(physical[out.Keys[f.Key].Bucket+"/"+out.Keys[f.Key].Key], f.Physical)
			}
		}
	}
	for _, k := range out.Keys {
		_, found, err := inventory.HeadObject(ctx, r.kit.s3, k.Bucket, k.Key)
		if err != nil {
			return fmt.Errorf("read s3://%s/%s: %w", k.Bucket, k.Key, err)
		}
		if found {
			k.State = "present"
			continue
		}
		var tried []string
		if body, from, err := r.fromCache(k); err == nil {
			k.body, k.Source = body, from
		} else {
			tried = append(tried, err.Error())
		}
		if k.body == nil {
			if body, from, err := r.fromVersions(ctx, k); err == nil {
				k.body, k.Source = body, from
			} else {
				tried = append(tried, err.Error())
			}
		}
		if k.body == nil {
			if body, from, err := r.fromFunctions(ctx, k, physical[k.Bucket+"/"+k.Key]); err == nil {
				k.body, k.Source = body, from
			} else {
				tried = append(tried, err.Error())
			}
		}
		if k.body != nil {
			k.State = "restorable"
			continue
		}
		k.State, k.Error = "missing", strings.Join(tried, "; ")
		k.Build = fmt.Sprintf("build the code of %s and upload it to s3://%s/%s", strings.Join(k.Neededby, ", "), k.Bucket, k.Key)
		if k.SHA256 != "" {
			k.Build += fmt.Sprintf(" (its SHA-256 must be %s)", k.SHA256)
		}
	}
	return nil
}

func (r *recoverer) fromCache(k *neededKey) ([]byte, string, error) {
	if k.SHA256 == "" {
		return nil, "", errors.New("the key names no digest, so no cache entry can be matched")
	}
	if r.cache.Dir == "" {
		return nil, "", errors.New(r.noCache)
	}
	b, err := r.cache.Read(k.Key)
	if err != nil {
		return nil, "", err
	}
	return b, "the artifact cache " + r.cache.Dir, nil
}

// fromVersions reads the newest older version of the key in a versioned bucket (behind the
// delete marker an expiry or a delete left), checked against the key's digest when it names
// one.
func (r *recoverer) fromVersions(ctx context.Context, k *neededKey) ([]byte, string, error) {
	out, err := r.s3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(k.Bucket), Prefix: aws.String(k.Key)})
	if err != nil {
		return nil, "", fmt.Errorf("list the older versions of s3://%s/%s: %w", k.Bucket, k.Key, err)
	}
	var problems []string
	for _, v := range out.Versions { // newest first
		if aws.ToString(v.Key) != k.Key {
			continue
		}
		id := aws.ToString(v.VersionId)
		obj, err := r.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(k.Bucket), Key: aws.String(k.Key), VersionId: aws.String(id)})
		if err != nil {
			problems = append(problems, fmt.Sprintf("version %s: %v", id, err))
			continue
		}
		b, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			problems = append(problems, fmt.Sprintf("version %s: %v", id, err))
			continue
		}
		if k.SHA256 != "" {
			if err := verify(b, codeSha256Of(k.SHA256)); err != nil {
				problems = append(problems, fmt.Sprintf("version %s: %v", id, err))
				continue
			}
		}
		return b, fmt.Sprintf("its noncurrent version %s (copied back)", id), nil
	}
	if len(problems) == 0 {
		return nil, "", fmt.Errorf("s3://%s/%s has no older version", k.Bucket, k.Key)
	}
	return nil, "", errors.New(strings.Join(problems, "; "))
}

// fromFunctions downloads the code of a version of the functions that need the key whose
// CodeSha256 is the key's digest (GetFunction's code location, verified).
func (r *recoverer) fromFunctions(ctx context.Context, k *neededKey, fns []string) ([]byte, string, error) {
	if k.SHA256 == "" {
		return nil, "", errors.New("the key names no digest, so no function version's code can be matched to it")
	}
	want := codeSha256Of(k.SHA256)
	var tried []string
	for _, fn := range fns {
		p := lambda.NewListVersionsByFunctionPaginator(r.lambda, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(fn)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				tried = append(tried, fmt.Sprintf("ListVersionsByFunction %s: %v", fn, err))
				break
			}
			for _, v := range page.Versions {
				if aws.ToString(v.CodeSha256) != want {
					continue
				}
				q := fn + ":" + aws.ToString(v.Version)
				b, err := r.kit.fromLambda(ctx, q, want)
				if err != nil {
					tried = append(tried, err.Error())
					continue
				}
				return b, "the deployed code of " + q + " (GetFunction)", nil
			}
		}
	}
	if len(tried) == 0 {
		return nil, "", fmt.Errorf("no version of %s has that code", strings.Join(fns, ", "))
	}
	return nil, "", errors.New(strings.Join(tried, "; "))
}

func (c *recoverStackCmd) print(w io.Writer, out *recoverOutput) error {
	if c.json() {
		return writeJSON(w, out)
	}
	if out.DryRun {
		fmt.Fprintf(w, "Plan to recover %s (dry run: nothing will be changed)\n", safe(out.Stack))
	} else {
		fmt.Fprintf(w, "Recovering %s\n", safe(out.Stack))
	}
	fmt.Fprintln(w, "Stacks, as found:")
	for _, st := range out.Stacks {
		where := "root"
		if st.Path != "" {
			where = "nested " + st.Path
		}
		fmt.Fprintf(w, "  %s (%s): %s", safe(st.Name), safe(where), st.Status)
		if st.Reason != "" {
			fmt.Fprintf(w, ": %s", safe(st.Reason))
		}
		fmt.Fprintln(w)
		for _, f := range st.Failed {
			fmt.Fprintf(w, "    failed %s (%s %s): %s\n", safe(f.Skip), safe(f.Type), safe(f.Physical), safe(f.Reason))
			if f.TrailKey != "" {
				fmt.Fprintf(w, "      note: its newest failed UpdateFunctionCode in CloudTrail asked for %s, not the previous template's key\n", safe(f.TrailKey))
			}
		}
	}
	for _, warning := range out.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", safe(warning))
	}
	fmt.Fprintln(w, "Keys the rollback needs:")
	if len(out.Keys) == 0 {
		fmt.Fprintln(w, "  none found")
	}
	for _, k := range out.Keys {
		fmt.Fprintf(w, "  s3://%s/%s (for %s; from %s): ", safe(k.Bucket), safe(k.Key), safe(strings.Join(k.Neededby, ", ")), strings.Join(k.From, " and "))
		switch k.State {
		case "present":
			fmt.Fprintln(w, "present")
		case "restorable":
			fmt.Fprintf(w, "missing; will be restored from %s, verified\n", safe(k.Source))
		case "restored":
			fmt.Fprintf(w, "restored from %s, verified\n", safe(k.Source))
		default:
			if k.Skip {
				fmt.Fprintf(w, "MISSING, skipped (--skip): %s\n", safe(k.Error))
			} else {
				fmt.Fprintf(w, "MISSING: %s. Build needed: %s\n", safe(k.Error), safe(k.Build))
			}
		}
	}
	if len(out.Skipped) > 0 {
		fmt.Fprintf(w, "Resources to skip: %s\n", safe(strings.Join(out.Skipped, ", ")))
	}
	if len(out.NotSkipped) > 0 {
		fmt.Fprintf(w, "Not skipped, since their code is restored: %s\n", safe(strings.Join(out.NotSkipped, ", ")))
	}
	blocked := false
	for _, k := range out.Keys {
		if k.State == "missing" && !k.Skip {
			blocked = true
		}
	}
	switch {
	case blocked:
		fmt.Fprintln(w, "Cannot continue the rollback until every missing key is uploaded (or its resource skipped with --skip). Nothing was changed.")
	case out.Continued:
		fmt.Fprintln(w, "Continued the rollback. Final status:")
		for _, f := range out.Final {
			fmt.Fprintf(w, "  %s: %s\n", safe(f.Name), f.Status)
		}
	case out.DryRun:
		fmt.Fprintln(w, "Then: ContinueUpdateRollback, and wait for UPDATE_ROLLBACK_COMPLETE. No function is deleted or recreated.")
	default:
		fmt.Fprintln(w, "The rollback was not continued.")
	}
	return nil
}
