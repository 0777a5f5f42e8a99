package lambdafleet

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/aviary-deploy/aviary/configvalue"
	"github.com/aviary-deploy/aviary/release"
)

// SSMAPI is the part of *ssm.Client configuration values are read through.
type SSMAPI interface {
	GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var _ SSMAPI = (*ssm.Client)(nil)

// ConfigurationLambdaAPI is what applying a configuration needs besides LambdaAPI.
type ConfigurationLambdaAPI interface {
	UpdateFunctionConfiguration(context.Context, *lambda.UpdateFunctionConfigurationInput, ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error)
}

var _ ConfigurationLambdaAPI = (*lambda.Client)(nil)

// settingsOf is a function version's configuration as far as a release can manage it.
func settingsOf(c *lambdatypes.FunctionConfiguration) *release.Settings {
	if c == nil {
		return nil
	}
	s := &release.Settings{Environment: map[string]string{}, Layers: []string{},
		MemorySize: int(aws.ToInt32(c.MemorySize)), Timeout: int(aws.ToInt32(c.Timeout))}
	if c.Environment != nil {
		maps.Copy(s.Environment, c.Environment.Variables)
	}
	for _, l := range c.Layers {
		s.Layers = append(s.Layers, aws.ToString(l.Arn))
	}
	for _, a := range c.Architectures {
		s.Architectures = append(s.Architectures, string(a))
	}
	return s
}

// ConfigurationError is a configuration value that cannot be resolved: Key names the variable.
type ConfigurationError struct {
	Key string
	Err error
}

func (e *ConfigurationError) Error() string { return fmt.Sprintf("environment.%s: %v", e.Key, e.Err) }
func (e *ConfigurationError) Unwrap() error { return e.Err }

// resolver resolves references for one plan or one publish. At plan time (pinned nil) it reads
// each parameter's current version and records it; at publish time it reads exactly the
// recorded versions.
type resolver struct {
	ssm    SSMAPI
	lookup func(string) (string, bool)
	pinned map[string]string // parameter → version, at publish time

	mu       sync.Mutex
	versions map[string]string
	cache    map[configvalue.Ref]configvalue.Resolved
}

// ssmBase is a parameter's name without its :version or :label selector.
func ssmBase(name string) string {
	if i := strings.LastIndex(name, ":"); i > 0 {
		return name[:i]
	}
	return name
}

func (r *resolver) Resolve(ctx context.Context, ref configvalue.Ref) (configvalue.Resolved, error) {
	r.mu.Lock()
	if v, ok := r.cache[ref]; ok {
		r.mu.Unlock()
		return v, nil
	}
	r.mu.Unlock()
	var out configvalue.Resolved
	switch ref.Kind {
	case configvalue.Env:
		v, ok := r.lookup(ref.Name)
		if !ok {
			if r.pinned != nil {
				return out, fmt.Errorf("%s is not set in this process's environment: a configuration that uses ${VAR} can be published only where the variable is set (by the process that planned it, or one given the same variables; a controller is not)", ref)
			}
			return out, fmt.Errorf("%s is not set in the environment", ref)
		}
		out = configvalue.Resolved{Value: v, Secret: true}
	case configvalue.SSM:
		name := ref.Name
		if r.pinned != nil {
			v, ok := r.pinned[ref.Name]
			if !ok {
				return out, fmt.Errorf("%s was not read when the release was planned", ref)
			}
			name = ssmBase(ref.Name) + ":" + v
		}
		if r.ssm == nil {
			return out, fmt.Errorf("%s: no SSM client", ref)
		}
		p, err := r.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
		var nf *ssmtypes.ParameterNotFound
		var vnf *ssmtypes.ParameterVersionNotFound
		switch {
		case errors.As(err, &nf), errors.As(err, &vnf):
			return out, fmt.Errorf("SSM parameter %s does not exist (or is not visible to these credentials)", name)
		case err != nil:
			return out, fmt.Errorf("read SSM parameter %s: %w", name, err)
		case p.Parameter == nil:
			return out, fmt.Errorf("read SSM parameter %s: no parameter in the answer", name)
		}
		out = configvalue.Resolved{Value: aws.ToString(p.Parameter.Value), Secret: p.Parameter.Type == ssmtypes.ParameterTypeSecureString,
			Version: strconv.FormatInt(p.Parameter.Version, 10)}
		r.mu.Lock()
		r.versions[ref.Name] = out.Version
		r.mu.Unlock()
	default:
		return out, fmt.Errorf("unknown reference %s", ref)
	}
	r.mu.Lock()
	r.cache[ref] = out
	r.mu.Unlock()
	return out, nil
}

// pinnedText stands for an SSM reference in the digest: the parameter at its version, never its
// value, so that the store holds nothing from which a secret parameter could be guessed.
type pinnedText struct {
	env      *resolver
	versions map[string]string
}

func (p pinnedText) Resolve(ctx context.Context, ref configvalue.Ref) (configvalue.Resolved, error) {
	if ref.Kind == configvalue.SSM {
		return configvalue.Resolved{Value: "{{ssm:" + ssmBase(ref.Name) + ":" + p.versions[ref.Name] + "}}"}, nil
	}
	return p.env.Resolve(ctx, ref)
}

func (f *Fleet) newResolver(pinned map[string]string) *resolver {
	lookup := f.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &resolver{ssm: f.SSM, lookup: lookup, pinned: pinned, versions: map[string]string{}, cache: map[configvalue.Ref]configvalue.Resolved{}}
}

// PrepareConfiguration resolves a configuration template at plan time: every ${VAR} from this
// process's environment, every {{ssm:/path}} from SSM (decrypted). It returns the record a
// release keeps (the template, the parameters' versions, a salted digest of the ${VAR} values)
// and the resolved settings, which are shown masked and never stored. A problem is a
// *ConfigurationError naming the variable.
func (f *Fleet) PrepareConfiguration(ctx context.Context, template release.Settings) (*release.Configuration, *release.Settings, error) {
	r := f.newResolver(nil)
	resolved, err := fill(ctx, template, r)
	if err != nil {
		return nil, nil, err
	}
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, nil, err
	}
	c := &release.Configuration{Template: template, Salt: hex.EncodeToString(salt[:])}
	if len(r.versions) > 0 {
		c.SSMVersions = maps.Clone(r.versions)
	}
	if c.Digest, err = digest(ctx, c, r); err != nil {
		return nil, nil, err
	}
	return c, resolved, nil
}

// ResolveConfiguration resolves a release's recorded configuration at publish time: SSM
// parameters at the versions plan read, ${VAR} from this process's environment, checked against
// the plan's digest.
func (f *Fleet) ResolveConfiguration(ctx context.Context, c *release.Configuration) (*release.Settings, error) {
	pinned := c.SSMVersions
	if pinned == nil {
		pinned = map[string]string{}
	}
	r := f.newResolver(pinned)
	resolved, err := fill(ctx, c.Template, r)
	if err != nil {
		return nil, err
	}
	d, err := digestAs(ctx, c, r, c.Digest)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(d), []byte(c.Digest)) != 1 {
		return nil, errors.New("its configuration resolves to other values than when the release was planned (an environment variable it uses changed since): plan and deploy again")
	}
	return resolved, nil
}

func fill(ctx context.Context, template release.Settings, r configvalue.Resolver) (*release.Settings, error) {
	out := template
	out.Secret = map[string]bool{}
	if template.Environment != nil {
		out.Environment = make(map[string]string, len(template.Environment))
		size := 0
		for _, k := range sortedMapKeys(template.Environment) {
			v, secret, err := configvalue.Fill(ctx, template.Environment[k], r)
			if err != nil {
				return nil, &ConfigurationError{Key: k, Err: err}
			}
			out.Environment[k] = v
			if secret {
				out.Secret[k] = true
			}
			size += len(k) + len(v)
		}
		if size > 4096 {
			return nil, fmt.Errorf("environment: resolves to %d bytes (names and values); Lambda takes at most 4 KB", size)
		}
	}
	return &out, nil
}

// digestKDF marks a digest derived with PBKDF2-HMAC-SHA256 (digestRounds rounds); a digest
// without it is the salted SHA-256 releases recorded before.
const (
	digestKDF    = "pbkdf2-sha256:"
	digestRounds = 100_000
)

// digest is what a release records of its configuration's resolved values: the store keeps it
// beside its salt, so a fast hash would let whoever reads the store try guesses of a weak secret
// by the billion; a key derivation makes each guess cost what it costs here, once per plan.
func digest(ctx context.Context, c *release.Configuration, r *resolver) (string, error) {
	return digestAs(ctx, c, r, digestKDF)
}

// digestAs computes the digest the way recorded was (a recorded digest's form, or digestKDF).
func digestAs(ctx context.Context, c *release.Configuration, r *resolver, recorded string) (string, error) {
	var text strings.Builder
	p := pinnedText{env: r, versions: c.SSMVersions}
	for _, k := range sortedMapKeys(c.Template.Environment) {
		v, _, err := configvalue.Fill(ctx, c.Template.Environment[k], p)
		if err != nil {
			return "", &ConfigurationError{Key: k, Err: err}
		}
		fmt.Fprintf(&text, "%q=%q;", k, v)
	}
	if !strings.HasPrefix(recorded, digestKDF) {
		sum := sha256.Sum256([]byte(c.Salt + text.String()))
		return hex.EncodeToString(sum[:]), nil
	}
	key, err := pbkdf2.Key(sha256.New, text.String(), []byte(c.Salt), digestRounds, sha256.Size)
	if err != nil {
		return "", err
	}
	return digestKDF + hex.EncodeToString(key), nil
}

func sortedMapKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// publishConfigured applies a release's configuration and code to $LATEST and publishes it:
// UpdateFunctionConfiguration conditional on the RevisionId the plan saw, a wait for the update
// to settle, UpdateFunctionCode (when the code or architecture differs) conditional on the
// RevisionId that left, and PublishVersion conditional on the code and the last RevisionId.
// Called again after a crash it finds $LATEST already as wanted and only publishes.
func (f *Fleet) publishConfigured(ctx context.Context, a release.Artifacts, fn release.Function) (string, error) {
	cl, ok := f.Lambda.(ConfigurationLambdaAPI)
	if !ok {
		return "", errors.New("this Lambda client cannot update function configuration")
	}
	want, err := f.ResolveConfiguration(ctx, fn.Configuration)
	if err != nil {
		return "", fmt.Errorf("%s: %w", fn.FunctionName, err)
	}
	gf, err := f.settled(ctx, fn.FunctionName)
	if err != nil {
		return "", err
	}
	rev := aws.ToString(gf.Configuration.RevisionId)
	code := aws.ToString(gf.Configuration.CodeSha256)
	if code != fn.CodeSha256 && code != fn.BaseCodeSha256 {
		return "", fmt.Errorf("%s was changed by someone else since the plan (its code is neither %s nor %s): plan and deploy again", fn.FunctionName, fn.BaseCodeSha256, fn.CodeSha256)
	}
	changes := want.Changes(settingsOf(gf.Configuration))
	if needsConfigurationUpdate(changes) {
		if fn.BaseRevision != "" && rev != fn.BaseRevision {
			return "", fmt.Errorf("%s was changed by someone else since the plan (its RevisionId is no longer %s): plan and deploy again", fn.FunctionName, fn.BaseRevision)
		}
		in := &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn.FunctionName)}
		if rev != "" {
			in.RevisionId = aws.String(rev)
		}
		if want.Environment != nil {
			in.Environment = &lambdatypes.Environment{Variables: want.Environment}
		}
		if want.MemorySize != 0 {
			in.MemorySize = aws.Int32(int32(want.MemorySize))
		}
		if want.Timeout != 0 {
			in.Timeout = aws.Int32(int32(want.Timeout))
		}
		if want.Layers != nil {
			in.Layers = want.Layers
		}
		if _, err := cl.UpdateFunctionConfiguration(ctx, in); err != nil {
			var pf *lambdatypes.PreconditionFailedException
			if !errors.As(err, &pf) {
				return "", fmt.Errorf("update configuration: %w", err)
			}
			// Someone else's change, or this very call's lost answer (the SDK retried): the
			// configuration tells which.
			again, gerr := f.settled(ctx, fn.FunctionName)
			if gerr != nil || needsConfigurationUpdate(want.Changes(settingsOf(again.Configuration))) {
				return "", fmt.Errorf("%s was changed by someone else since the plan (its RevisionId is no longer %s): plan and deploy again", fn.FunctionName, rev)
			}
		}
		if gf, err = f.settled(ctx, fn.FunctionName); err != nil {
			return "", err
		}
		rev = aws.ToString(gf.Configuration.RevisionId)
	}
	archChange := !release.ConfigurationOnly(want.Changes(settingsOf(gf.Configuration)))
	if aws.ToString(gf.Configuration.CodeSha256) != fn.CodeSha256 || archChange {
		in := &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn.FunctionName), S3Bucket: aws.String(a.Bucket), S3Key: aws.String(fn.ArtifactKey)}
		if rev != "" {
			in.RevisionId = aws.String(rev)
		}
		for _, arch := range want.Architectures {
			in.Architectures = append(in.Architectures, lambdatypes.Architecture(arch))
		}
		up, err := f.Lambda.UpdateFunctionCode(ctx, in)
		if err != nil {
			var pf *lambdatypes.PreconditionFailedException
			if !errors.As(err, &pf) {
				return "", fmt.Errorf("update code: %w", err)
			}
			again, gerr := f.settled(ctx, fn.FunctionName)
			if gerr != nil || aws.ToString(again.Configuration.CodeSha256) != fn.CodeSha256 || len(want.Changes(settingsOf(again.Configuration))) > 0 {
				return "", fmt.Errorf("%s was changed by someone else since the plan (its RevisionId is no longer %s): plan and deploy again", fn.FunctionName, rev)
			}
		} else if got := aws.ToString(up.CodeSha256); got != fn.CodeSha256 {
			return "", fmt.Errorf("Lambda reports CodeSha256 %s for s3://%s/%s, want %s", got, a.Bucket, fn.ArtifactKey, fn.CodeSha256)
		}
		if gf, err = f.settled(ctx, fn.FunctionName); err != nil {
			return "", err
		}
		rev = aws.ToString(gf.Configuration.RevisionId)
	}
	if left := want.Changes(settingsOf(gf.Configuration)); len(left) > 0 {
		return "", fmt.Errorf("%s: after the update Lambda reports %s", fn.FunctionName, left[0])
	}
	in := &lambda.PublishVersionInput{FunctionName: aws.String(fn.FunctionName), CodeSha256: aws.String(fn.CodeSha256)}
	if rev != "" {
		in.RevisionId = aws.String(rev)
	}
	pv, err := f.Lambda.PublishVersion(ctx, in)
	if err != nil {
		return "", fmt.Errorf("publish: %w", err)
	}
	return aws.ToString(pv.Version), nil
}

// needsConfigurationUpdate: some change is made by UpdateFunctionConfiguration.
func needsConfigurationUpdate(cs []release.FieldChange) bool {
	return slices.ContainsFunc(cs, func(c release.FieldChange) bool { return c.Field != "architectures" })
}
