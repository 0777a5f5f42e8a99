// Package lambdafleet is the release engine's Fleet on AWS Lambda and S3, through aws-sdk-go-v2.
//
// The rules it keeps: every control-plane call waits on one client-side rate limiter (AWS's 15
// requests per second by default), so a fleet moves as fast as the quota allows and no faster;
// throttles are retried by the SDK's retryer; and every operation is idempotent, converging after
// a crash on the state it was asked for.
package lambdafleet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

	"github.com/aviary-deploy/aviary/internal/textsafe"
	"github.com/aviary-deploy/aviary/inventory"
	"github.com/aviary-deploy/aviary/release"
)

// LambdaAPI is the part of *lambda.Client the fleet uses.
type LambdaAPI interface {
	GetFunction(context.Context, *lambda.GetFunctionInput, ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error)
	GetAlias(context.Context, *lambda.GetAliasInput, ...func(*lambda.Options)) (*lambda.GetAliasOutput, error)
	UpdateFunctionCode(context.Context, *lambda.UpdateFunctionCodeInput, ...func(*lambda.Options)) (*lambda.UpdateFunctionCodeOutput, error)
	PublishVersion(context.Context, *lambda.PublishVersionInput, ...func(*lambda.Options)) (*lambda.PublishVersionOutput, error)
	CreateAlias(context.Context, *lambda.CreateAliasInput, ...func(*lambda.Options)) (*lambda.CreateAliasOutput, error)
	UpdateAlias(context.Context, *lambda.UpdateAliasInput, ...func(*lambda.Options)) (*lambda.UpdateAliasOutput, error)
	DeleteAlias(context.Context, *lambda.DeleteAliasInput, ...func(*lambda.Options)) (*lambda.DeleteAliasOutput, error)
}

// S3API is the part of *s3.Client the fleet uses.
type S3API interface {
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	// ListObjectsV2 tells a missing key from a forbidden one when HeadObject answers 403.
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	// GetObject reads an artifact back: deploy's readiness check refills what a rollback needs.
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadBucket(context.Context, *s3.HeadBucketInput, ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
}

var (
	_ LambdaAPI     = (*lambda.Client)(nil)
	_ S3API         = (*s3.Client)(nil)
	_ release.Fleet = (*Fleet)(nil)
)

// Fleet implements release.Fleet.
type Fleet struct {
	Lambda LambdaAPI
	S3     S3API
	// ECR resolves image functions' tags to digests (see image.go); nil when no function is one.
	ECR ECRAPI
	// UpdatePoll is the first wait between checks of an update in progress; it doubles up to 2s.
	UpdatePoll time.Duration
	// Log receives warnings (nil: slog.Default()).
	Log *slog.Logger
	// SSM reads the {{ssm:/path}} values of managed configuration (see config.go).
	SSM SSMAPI
	// LookupEnv reads the ${VAR} values of managed configuration (nil: os.LookupEnv).
	LookupEnv func(string) (string, bool)
}

func (f *Fleet) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.Default()
}

// Options configure New.
type Options struct {
	// Rate is the control-plane calls per second (AWS's quota: 15); 0 means 15.
	Rate float64
	// MaxAttempts is how often a throttled or failed call is tried (default 10).
	MaxAttempts int
}

// DefaultRate is AWS Lambda's control-plane quota.
const DefaultRate = 15

// getFunctionRate is GetFunction's own quota.
const getFunctionRate = 100

// New builds the fleet's clients from cfg, with the rate limiter and retryer.
func New(cfg aws.Config, o Options) *Fleet {
	c := NewClients(cfg, o)
	attempts := o.MaxAttempts
	if attempts <= 0 {
		attempts = 10
	}
	return &Fleet{Lambda: c.Lambda, S3: c.S3, ECR: c.ECR, SSM: ssm.NewFromConfig(cfg, func(so *ssm.Options) { so.Retryer = Retryer(attempts) })}
}

// Clients are the SDK clients every Aviary command shares: Lambda's control-plane calls pace
// through one limiter (o.Rate), throttles and failures are retried.
type Clients struct {
	Lambda *lambda.Client
	S3     *s3.Client
	ECR    *ecr.Client
}

// NewClients builds the Lambda and S3 clients New uses, for the commands that call more of
// Lambda than the release engine does (retention) under the same limiter.
func NewClients(cfg aws.Config, o Options) Clients {
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	control := rate.NewLimiter(rate.Limit(o.Rate), 1)
	getFunction := rate.NewLimiter(getFunctionRate, 1)
	lc := lambda.NewFromConfig(cfg, func(lo *lambda.Options) {
		lo.Retryer = Retryer(o.MaxAttempts)
		lo.APIOptions = append(lo.APIOptions, limit(control, getFunction))
	})
	sc := s3.NewFromConfig(cfg, func(so *s3.Options) { so.Retryer = Retryer(o.MaxAttempts) })
	ec := ecr.NewFromConfig(cfg, func(eo *ecr.Options) { eo.Retryer = Retryer(o.MaxAttempts) })
	return Clients{Lambda: lc, S3: sc, ECR: ec}
}

// Retryer retries throttles and failures up to attempts times with backoff capped at 5 s.
func Retryer(attempts int) aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = attempts
		so.MaxBackoff = 5 * time.Second
		// The client-side limiter already paces calls; the SDK's retry quota would only turn
		// a burst of throttles into failures.
		so.RateLimiter = ratelimit.None
	})
}

// limit makes every attempt of a Lambda control-plane call wait for the shared limiter; Invoke
// is not a control-plane call, and GetFunction has its own quota.
func limit(control, getFunction *rate.Limiter) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("AviaryRateLimit",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				var lim *rate.Limiter
				switch middleware.GetOperationName(ctx) {
				case "Invoke", "InvokeWithResponseStream", "InvokeAsync":
				case "GetFunction":
					lim = getFunction
				default:
					lim = control
				}
				if lim != nil {
					if err := lim.Wait(ctx); err != nil {
						return middleware.FinalizeOutput{}, middleware.Metadata{}, err
					}
				}
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	}
}

func notFound(err error) bool {
	var nf *lambdatypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

// CheckBucket says whether the artifact bucket is reachable.
func (f *Fleet) CheckBucket(ctx context.Context, bucket string) error {
	if _, err := f.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		var nf *s3types.NotFound
		if errors.As(err, &nf) {
			return fmt.Errorf("the artifact bucket %s does not exist (or is not visible to these credentials)", bucket)
		}
		return fmt.Errorf("the artifact bucket %s is not reachable: %w", bucket, err)
	}
	return nil
}

// Inspect reads a function and its alias. A function with an update in progress is waited for,
// so that the RevisionId it reports is the one the release's update will be conditional on.
func (f *Fleet) Inspect(ctx context.Context, name, alias string) (release.Current, error) {
	var cur release.Current
	gf, err := f.settled(ctx, name)
	if notFound(err) {
		return cur, nil
	}
	if err != nil {
		return cur, err
	}
	cur.Exists = true
	cur.LatestRevision = aws.ToString(gf.Configuration.RevisionId)
	cur.LatestCodeSha256 = aws.ToString(gf.Configuration.CodeSha256)
	cur.Timeout = int(aws.ToInt32(gf.Configuration.Timeout))
	cur.PackageType = string(gf.Configuration.PackageType)
	cur.LatestSettings = settingsOf(gf.Configuration)
	cur.LogGroup = "/aws/lambda/" + name
	if lc := gf.Configuration.LoggingConfig; lc != nil && aws.ToString(lc.LogGroup) != "" {
		cur.LogGroup = aws.ToString(lc.LogGroup)
	}
	ga, err := f.Lambda.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(name), Name: aws.String(alias)})
	if notFound(err) {
		return cur, nil
	}
	if err != nil {
		return cur, fmt.Errorf("read alias %s: %w", alias, err)
	}
	cur.AliasExists = true
	cur.AliasVersion = aws.ToString(ga.FunctionVersion)
	cur.AliasRevision = aws.ToString(ga.RevisionId)
	if ga.RoutingConfig != nil && len(ga.RoutingConfig.AdditionalVersionWeights) > 0 {
		cur.AliasWeights = maps.Clone(ga.RoutingConfig.AdditionalVersionWeights)
	}
	if cur.AliasVersion == "$LATEST" {
		cur.AliasCodeSha256 = cur.LatestCodeSha256
		cur.AliasSettings = cur.LatestSettings
		return cur, nil
	}
	gv, err := f.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name), Qualifier: aws.String(cur.AliasVersion)})
	if err != nil {
		return cur, fmt.Errorf("read version %s: %w", cur.AliasVersion, err)
	}
	cur.AliasCodeSha256 = aws.ToString(gv.Configuration.CodeSha256)
	cur.AliasSettings = settingsOf(gv.Configuration)
	return cur, nil
}

// settled reads $LATEST once no update or creation is in progress.
func (f *Fleet) settled(ctx context.Context, name string) (*lambda.GetFunctionOutput, error) {
	delay := f.UpdatePoll
	if delay <= 0 {
		delay = 250 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	for {
		gf, err := f.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
		if err != nil {
			return nil, err
		}
		c := gf.Configuration
		switch {
		case c.State == lambdatypes.StateFailed:
			return nil, fmt.Errorf("function %s is in state Failed: %s", name, aws.ToString(c.StateReason))
		case c.LastUpdateStatus == lambdatypes.LastUpdateStatusFailed:
			return nil, fmt.Errorf("the last update of %s failed: %s", name, aws.ToString(c.LastUpdateStatusReason))
		case c.State != lambdatypes.StatePending && c.LastUpdateStatus != lambdatypes.LastUpdateStatusInProgress:
			return gf, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s to finish updating: %w", name, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// Upload puts the artifact in the bucket unless HeadObject finds it there. S3 checks the bytes
// against the SHA-256 the key names.
func (f *Fleet) Upload(ctx context.Context, a release.Artifacts, key string, src release.ArtifactSource) error {
	_, err := f.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(a.Bucket), Key: aws.String(key)})
	if err == nil {
		return nil
	}
	if !inventory.NotFound(err) {
		// Without an unconditioned s3:ListBucket S3 answers a missing key's HeadObject with 403
		// (see inventory.HeadObject): a listing of the key tells missing from forbidden.
		if !inventory.Forbidden(err) {
			return fmt.Errorf("look for s3://%s/%s: %w", a.Bucket, key, err)
		}
		listed, lerr := inventory.KeyListed(ctx, f.S3, a.Bucket, key)
		if lerr != nil {
			return fmt.Errorf("look for s3://%s/%s: %w (and listing it: %w)", a.Bucket, key, err, lerr)
		}
		if listed {
			return nil
		}
	}
	body, err := openArtifact(src, key)
	if err != nil {
		return fmt.Errorf("s3://%s/%s is missing and the local cache cannot supply it (%w): build and deploy again", a.Bucket, key, err)
	}
	defer body.Close()
	// The body is read twice, from the file: once for its SHA-256, once as it is sent. No
	// artifact is ever held in memory (a fleet of 50 MB zips would need gigabytes).
	h := sha256.New()
	size, err := io.Copy(h, body)
	if err != nil {
		return fmt.Errorf("read the cached artifact for %s: %w", key, err)
	}
	sum := h.Sum(nil)
	if want := strings.TrimSuffix(path.Base(key), ".zip"); hex.EncodeToString(sum) != want {
		return fmt.Errorf("the cached artifact for %s does not match its SHA-256: delete it from the cache and build again", key)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read the cached artifact for %s: %w", key, err)
	}
	_, err = f.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(a.Bucket), Key: aws.String(key), Body: body, ContentLength: aws.Int64(size),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256, ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum)),
		ContentType: aws.String("application/zip"),
	})
	if err != nil {
		return fmt.Errorf("upload s3://%s/%s: %w", a.Bucket, key, err)
	}
	return nil
}

// artifactFiles is an ArtifactSource that hands out its artifacts as files (artifact.Cache):
// Upload streams them.
type artifactFiles interface {
	Open(key string) (*os.File, error)
}

// openArtifact opens key's bytes in src: its file when src has files, else its bytes.
func openArtifact(src release.ArtifactSource, key string) (io.ReadSeekCloser, error) {
	if files, ok := src.(artifactFiles); ok {
		return files.Open(key)
	}
	b, err := src.Read(key)
	if err != nil {
		return nil, err
	}
	return nopCloser{bytes.NewReader(b)}, nil
}

type nopCloser struct{ io.ReadSeeker }

func (nopCloser) Close() error { return nil }

// Pin publishes the code $LATEST had when the release was planned — conditionally on that code,
// so code someone changed since is never pinned as "previous" — and points the alias at it.
// PublishVersion returns the existing version when nothing changed, so pinning again after a crash
// converges.
func (f *Fleet) Pin(ctx context.Context, alias string, fn release.Function) (release.Pinned, error) {
	if _, err := f.settled(ctx, fn.FunctionName); err != nil {
		return release.Pinned{}, err
	}
	pv, err := f.Lambda.PublishVersion(ctx, &lambda.PublishVersionInput{
		FunctionName: aws.String(fn.FunctionName), CodeSha256: aws.String(fn.BaseCodeSha256),
		Description: aws.String("pinned by Aviary before a release: what alias " + alias + " served on $LATEST"),
	})
	if err != nil {
		var ipv *lambdatypes.InvalidParameterValueException
		if errors.As(err, &ipv) {
			return release.Pinned{}, fmt.Errorf("%s's code changed since the plan (alias %s follows $LATEST, whose code is no longer %s): plan and deploy again", fn.FunctionName, alias, fn.BaseCodeSha256)
		}
		return release.Pinned{}, fmt.Errorf("publish the code alias %s serves: %w", alias, err)
	}
	p := release.Pinned{Version: aws.ToString(pv.Version)}
	if p.AliasRevision, err = f.Route(ctx, alias, fn, release.Routing{Primary: p.Version}); err != nil {
		return release.Pinned{}, err
	}
	gf, err := f.settled(ctx, fn.FunctionName)
	if err != nil {
		return release.Pinned{}, err
	}
	p.BaseRevision = aws.ToString(gf.Configuration.RevisionId)
	return p, nil
}

// Publish puts the release's code in $LATEST and publishes it in the same call, conditional on
// the RevisionId the plan saw. Called again after a crash, it finds the code already there and
// publishes it (PublishVersion returns the version already published).
func (f *Fleet) Publish(ctx context.Context, a release.Artifacts, fn release.Function) (string, error) {
	if fn.New != "" {
		return fn.New, nil
	}
	if fn.ImageUri != "" {
		return f.publishImage(ctx, fn)
	}
	if fn.Configuration != nil {
		return f.publishConfigured(ctx, a, fn)
	}
	gf, err := f.settled(ctx, fn.FunctionName)
	if err != nil {
		return "", err
	}
	if aws.ToString(gf.Configuration.CodeSha256) == fn.CodeSha256 {
		return f.publishLatest(ctx, fn)
	}
	in := &lambda.UpdateFunctionCodeInput{
		FunctionName: aws.String(fn.FunctionName), S3Bucket: aws.String(a.Bucket), S3Key: aws.String(fn.ArtifactKey), Publish: true,
	}
	base := fn.BaseRevision
	if base != "" {
		in.RevisionId = aws.String(base)
	} else {
		// AWS always returns a RevisionId; an emulator may not. An empty one is no precondition
		// (it would be refused, or worse, taken as "any"), so the next best is checked here: the
		// code is still what the plan saw. Someone's change in the instant between this read and
		// the update would be overwritten, which is why it is said loudly.
		if got := aws.ToString(gf.Configuration.CodeSha256); got != fn.BaseCodeSha256 {
			return "", fmt.Errorf("%s was changed by someone else since the plan (its code is no longer %s): plan and deploy again", fn.FunctionName, fn.BaseCodeSha256)
		}
		f.log().Warn("Lambda reported no RevisionId for this function, so its code update cannot be conditional: updating it unconditionally, its code checked unchanged since the plan just before",
			"function", textsafe.Clean(fn.FunctionName), "code_sha256", fn.BaseCodeSha256)
	}
	up, err := f.Lambda.UpdateFunctionCode(ctx, in)
	if err != nil {
		var pf *lambdatypes.PreconditionFailedException
		if !errors.As(err, &pf) {
			return "", fmt.Errorf("update code: %w", err)
		}
		// Either someone else changed the function, or this very call took effect and its answer
		// was lost (the SDK retried it): the code tells which.
		gf, gerr := f.settled(ctx, fn.FunctionName)
		if gerr == nil && aws.ToString(gf.Configuration.CodeSha256) == fn.CodeSha256 {
			return f.publishLatest(ctx, fn)
		}
		return "", fmt.Errorf("%s was changed by someone else since the plan (its RevisionId is no longer %s): plan and deploy again", fn.FunctionName, base)
	}
	if got := aws.ToString(up.CodeSha256); got != fn.CodeSha256 {
		return "", fmt.Errorf("Lambda reports CodeSha256 %s for s3://%s/%s, want %s", got, a.Bucket, fn.ArtifactKey, fn.CodeSha256)
	}
	if _, err := f.settled(ctx, fn.FunctionName); err != nil {
		return "", err
	}
	if v := aws.ToString(up.Version); v != "" && v != "$LATEST" {
		return v, nil
	}
	return f.publishLatest(ctx, fn)
}

func (f *Fleet) publishLatest(ctx context.Context, fn release.Function) (string, error) {
	pv, err := f.Lambda.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn.FunctionName), CodeSha256: aws.String(fn.CodeSha256)})
	if err != nil {
		return "", fmt.Errorf("publish: %w", err)
	}
	return aws.ToString(pv.Version), nil
}

// Route sets the alias conditionally on the RevisionId the release last saw. If that fails, the
// alias is read: already as asked (a crash came between the change and its record), it is
// accepted; otherwise someone else changed it, and Route says how.
func (f *Fleet) Route(ctx context.Context, alias string, fn release.Function, to release.Routing) (string, error) {
	name := aws.String(fn.FunctionName)
	if to.Delete {
		// Only an alias that routes as this release left it is this release's to delete.
		ga, err := f.Lambda.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: name, Name: aws.String(alias)})
		if notFound(err) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("read alias %s: %w", alias, err)
		}
		var w map[string]float64
		if ga.RoutingConfig != nil {
			w = ga.RoutingConfig.AdditionalVersionWeights
		}
		if !ours(fn, aws.ToString(ga.FunctionVersion), w) {
			return "", fmt.Errorf("alias %s was changed by someone else (it routes to version %s); left alone", alias, aws.ToString(ga.FunctionVersion))
		}
		_, err = f.Lambda.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: name, Name: aws.String(alias)})
		if err != nil && !notFound(err) {
			return "", fmt.Errorf("delete alias %s: %w", alias, err)
		}
		return "", nil
	}
	weights := map[string]float64{}
	if to.Extra != "" && to.Weight > 0 {
		weights[to.Extra] = to.Weight
	}
	routing := &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: weights}
	if fn.AliasMissing && fn.AliasRevision == "" {
		out, err := f.Lambda.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: name, Name: aws.String(alias),
			FunctionVersion: aws.String(to.Primary), RoutingConfig: routing, Description: aws.String("managed by Aviary")})
		if err == nil {
			return aws.ToString(out.RevisionId), nil
		}
		var rc *lambdatypes.ResourceConflictException
		if !errors.As(err, &rc) {
			return "", fmt.Errorf("create alias %s: %w", alias, err)
		}
		// It exists: created by this release before a crash lost the record (then it routes as
		// this release would), or by someone else (then it is not this release's to move).
		ga, gerr := f.Lambda.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: name, Name: aws.String(alias)})
		if gerr != nil {
			return "", fmt.Errorf("create alias %s: %w (and reading it: %v)", alias, err, gerr)
		}
		var w map[string]float64
		if ga.RoutingConfig != nil {
			w = ga.RoutingConfig.AdditionalVersionWeights
		}
		if !ours(fn, aws.ToString(ga.FunctionVersion), w) {
			return "", fmt.Errorf("alias %s was created by someone else since the plan (it routes to version %s): plan and deploy again", alias, aws.ToString(ga.FunctionVersion))
		}
		fn.AliasRevision = aws.ToString(ga.RevisionId)
	}
	in := &lambda.UpdateAliasInput{FunctionName: name, Name: aws.String(alias), FunctionVersion: aws.String(to.Primary), RoutingConfig: routing}
	if fn.AliasRevision != "" {
		in.RevisionId = aws.String(fn.AliasRevision)
	}
	out, err := f.Lambda.UpdateAlias(ctx, in)
	if err == nil {
		return aws.ToString(out.RevisionId), nil
	}
	var pf *lambdatypes.PreconditionFailedException
	if !errors.As(err, &pf) {
		return "", fmt.Errorf("update alias %s: %w", alias, err)
	}
	ga, gerr := f.Lambda.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: name, Name: aws.String(alias)})
	if gerr != nil {
		return "", fmt.Errorf("update alias %s: %w (and reading it: %v)", alias, err, gerr)
	}
	var now map[string]float64
	if ga.RoutingConfig != nil {
		now = ga.RoutingConfig.AdditionalVersionWeights
	}
	if aws.ToString(ga.FunctionVersion) == to.Primary && sameWeights(now, weights) {
		return aws.ToString(ga.RevisionId), nil
	}
	if !ours(fn, aws.ToString(ga.FunctionVersion), now) {
		return "", fmt.Errorf("alias %s was changed by someone else since this release last set it: it now routes to version %s with extra weights %v",
			alias, aws.ToString(ga.FunctionVersion), now)
	}
	// The alias is where this release itself put it, by a change whose record a crash lost:
	// carry on from there.
	in.RevisionId = ga.RevisionId
	out, err = f.Lambda.UpdateAlias(ctx, in)
	if err != nil {
		return "", fmt.Errorf("update alias %s: %w", alias, err)
	}
	return aws.ToString(out.RevisionId), nil
}

// ours reports whether an alias is in a state the release could have set: all on the previous
// version, all on the new one, or the previous one with weight on the new one.
func ours(fn release.Function, version string, weights map[string]float64) bool {
	switch {
	case len(weights) == 0:
		return version == fn.Previous || version == fn.New
	case len(weights) == 1 && version == fn.Previous:
		_, ok := weights[fn.New]
		return ok
	}
	return false
}

func sameWeights(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
