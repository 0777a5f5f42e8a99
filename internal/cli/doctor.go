package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/inventory"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/retention"
	"github.com/aviary-deploy/aviary/store"
)

type doctorCmd struct {
	manifestFlags
	storeFlags
	awsFlags
	outputFlags
	Env     string `short:"e" required:"" placeholder:"ENV" help:"The environment whose rollbacks to check."`
	Restore bool   `help:"Put every missing artifact back in S3 and in the local cache: from the cache, or from the deployed version's own code (GetFunction), verified against its SHA-256."`
}

func (c *doctorCmd) Help() string {
	return `Checks that every rollback of ENV can still run, and says how to fix what would stop one:

  - every version an alias of the environment's functions points to (any alias, as its version
    or an extra weight) or a retained release names (the live ones and the latest
    retain.releases promoted) still exists, and its artifact is in S3 (HeadObject: present, the
    version's code size, the SHA-256 S3 recorded if it recorded one, not in GLACIER or
    DEEP_ARCHIVE nor in INTELLIGENT_TIERING's archive tiers) and in the local artifact cache;
    when S3 recorded no SHA-256 of it, an object of at most 50 MiB is downloaded and hashed,
    and a larger one (or one that cannot be read) is a warning, "digest unverified";
  - no enabled lifecycle rule of the bucket can expire or archive objects under the artifact
    prefix (each rule is named with what it does; tag and size filters are explained);
  - bucket versioning (off: a deleted artifact cannot be recovered from S3);
  - the account's Lambda code storage against its quota (warned above 80%).

With --restore, every missing artifact is put back, from the local cache or from the deployed
version's own code (GetFunction's code location), checked byte for byte against the SHA-256 the
key names before it is uploaded (with that checksum, so S3 records and verifies it); a missing
cache entry is refilled the same way.

Exit codes: 0 every rollback can run (warnings may be printed); 6 something would stop a
rollback (after --restore: something could not be restored, or a lifecycle rule still threatens
the artifacts); 2 bad input (unknown environment, unreadable bucket); 1 any other error.`
}

// artifactKit reads and restores one environment's artifacts: doctor's artifact part, which
// deploy runs too.
type artifactKit struct {
	s3     artifactS3
	lambda codeAPI
	bucket string
	prefix string
	cache  artifact.Cache
	http   *http.Client
}

// artifactS3 is the part of *s3.Client doctor and deploy's readiness check read and restore
// artifacts with.
type artifactS3 interface {
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// codeAPI reads a version's code location.
type codeAPI interface {
	GetFunction(context.Context, *lambda.GetFunctionInput, ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error)
}

var (
	_ artifactS3 = (*s3.Client)(nil)
	_ artifactS3 = lambdafleet.S3API(nil)
	_ codeAPI    = (*lambda.Client)(nil)
	_ codeAPI    = lambdafleet.LambdaAPI(nil)
)

func newArtifactKit(c lambdafleet.Clients, m *manifest.Manifest) *artifactKit {
	return &artifactKit{s3: c.S3, lambda: c.Lambda, bucket: m.Artifacts.Bucket, prefix: m.Artifacts.Prefix,
		cache: artifact.Cache{Dir: m.Artifacts.Cache}, http: http.DefaultClient}
}

// artifactState is what doctor found about one wanted artifact, and what it did.
type artifactState struct {
	retention.Wanted
	// S3 is the problem with the S3 object ("" when fine); Cache with the cache entry.
	S3    string
	Cache string
	// Restored says where the S3 object was restored from; CacheRestored, the cache entry.
	Restored      string
	CacheRestored string
	// RestoreError says why a restore failed.
	RestoreError string
	// Unverified says why the object's bytes were not checked against the version's SHA-256
	// ("" when S3's recorded checksum or doctor's own hash of the object matched).
	Unverified string
}

func (s artifactState) broken() bool { return s.S3 != "" && s.Restored == "" }

// check reads every wanted artifact's object (and, with cache, its cache entry), several at a
// time. With hash, an object S3 recorded no SHA-256 of is downloaded and hashed when it is at
// most retention.HashAtMost bytes; a larger one, or one that cannot be read, is reported
// Unverified (doctor never claims a digest it did not check). Deploy's readiness check does not
// hash: it looks only for what a rollback would miss.
func (k *artifactKit) check(ctx context.Context, wanted []retention.Wanted, cache, hash bool) ([]artifactState, error) {
	out := make([]artifactState, len(wanted))
	errs := make([]error, len(wanted))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, w := range wanted {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			st := artifactState{Wanted: w}
			obj, found, err := inventory.HeadObject(ctx, k.s3, k.bucket, w.Key)
			if err != nil {
				errs[i] = err
				return
			}
			st.S3 = retention.ObjectProblem(w, obj, found)
			if hash && st.S3 == "" && !retention.DigestRecorded(obj) {
				st.S3, st.Unverified = k.hash(ctx, w, obj)
			}
			if cache {
				if _, err := k.cache.Read(w.Key); err != nil {
					st.Cache = err.Error()
				}
			}
			out[i] = st
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// restore puts a broken artifact back in S3 (and, with cache, in the cache): from the cache, or
// from the code of a version that has it. The bytes are checked against the SHA-256 before
// anything is written.
func (k *artifactKit) restore(ctx context.Context, st *artifactState, cache bool) {
	if st.S3 == "" && (!cache || st.Cache == "") {
		return
	}
	var body []byte
	var from string
	if b, err := k.cache.Read(st.Key); err == nil {
		body, from = b, "the local cache"
	}
	if body == nil && st.S3 == "" {
		if b, err := k.fromS3(ctx, st); err == nil {
			body, from = b, "S3"
		}
	}
	var tried []string
	if body == nil {
		for _, v := range st.Versions {
			b, err := k.fromLambda(ctx, v, st.CodeSha256)
			if err != nil {
				tried = append(tried, err.Error())
				continue
			}
			body, from = b, "the deployed code of "+v+" (GetFunction)"
			break
		}
	}
	if body == nil {
		st.RestoreError = "not in the local cache, and no version's code could be read"
		if len(tried) > 0 {
			st.RestoreError += ": " + strings.Join(tried, "; ")
		}
		return
	}
	if st.S3 != "" {
		if err := k.upload(ctx, k.bucket, st.Key, body); err != nil {
			st.RestoreError = err.Error()
			return
		}
		st.Restored = from
	}
	if cache && st.Cache != "" && from != "the local cache" {
		if _, err := k.cache.Put(body); err != nil {
			st.RestoreError = fmt.Sprintf("refill the local cache: %v", err)
			return
		}
		st.CacheRestored = from
	}
}

// upload puts verified bytes back under a key, with their SHA-256 (so S3 records and checks
// it), and reads the object back.
func (k *artifactKit) upload(ctx context.Context, bucket, key string, body []byte) error {
	sum := sha256.Sum256(body)
	_, err := k.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256, ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		ContentType: aws.String("application/zip"),
	})
	if err != nil {
		return fmt.Errorf("upload s3://%s/%s: %w", bucket, key, err)
	}
	obj, found, err := inventory.HeadObject(ctx, k.s3, bucket, key)
	if err != nil || !found || obj.Size != int64(len(body)) {
		return fmt.Errorf("s3://%s/%s does not read back as uploaded (%v)", bucket, key, err)
	}
	return nil
}

// fromS3 reads an artifact from the bucket, checked against its SHA-256.
func (k *artifactKit) fromS3(ctx context.Context, st *artifactState) ([]byte, error) {
	b, err := k.get(ctx, st.Key)
	if err != nil {
		return nil, err
	}
	return b, verify(b, st.CodeSha256)
}

func (k *artifactKit) get(ctx context.Context, key string) ([]byte, error) {
	out, err := k.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(k.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// hash checks an object S3 recorded no SHA-256 of: downloaded and hashed when it is small
// enough (a problem when the digest differs), otherwise, or when it cannot be read, unverified.
func (k *artifactKit) hash(ctx context.Context, w retention.Wanted, obj inventory.Object) (problem, unverified string) {
	if obj.Size > retention.HashAtMost {
		return "", fmt.Sprintf("S3 recorded no SHA-256 of it and it is larger than %s, so doctor does not download it", retention.Bytes(retention.HashAtMost))
	}
	b, err := k.get(ctx, w.Key)
	if err != nil {
		return "", fmt.Sprintf("S3 recorded no SHA-256 of it and it could not be read to hash it: %v", err)
	}
	if err := verify(b, w.CodeSha256); err != nil {
		return fmt.Sprintf("its bytes do not match the version's code: %v", err), ""
	}
	return "", ""
}

// fromLambda downloads a version's code from its GetFunction code location (a presigned URL,
// valid for minutes), checked against the version's CodeSha256.
func (k *artifactKit) fromLambda(ctx context.Context, version, codeSha256 string) ([]byte, error) {
	fn, q, _ := strings.Cut(version, ":")
	gf, err := k.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn), Qualifier: aws.String(q)})
	if err != nil {
		return nil, fmt.Errorf("GetFunction %s: %w", version, err)
	}
	if gf.Code == nil || aws.ToString(gf.Code.Location) == "" {
		return nil, fmt.Errorf("GetFunction %s gave no code location", version)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, aws.ToString(gf.Code.Location), nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download the code of %s: %w", version, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download the code of %s: HTTP %d", version, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("download the code of %s: %w", version, err)
	}
	if err := verify(b, codeSha256); err != nil {
		return nil, fmt.Errorf("the code of %s: %w", version, err)
	}
	return b, nil
}

func verify(b []byte, codeSha256 string) error {
	sum := sha256.Sum256(b)
	if got := base64.StdEncoding.EncodeToString(sum[:]); got != codeSha256 {
		return fmt.Errorf("its SHA-256 is %s, not %s", got, codeSha256)
	}
	return nil
}

func okOr(s string) string {
	if s == "" {
		return "ok"
	}
	return s
}

// needsText names each need once: functions built from the same bytes share an artifact, and
// one release names it for each of them.
func needsText(ns []retention.Need) string {
	var parts []string
	seen := map[string]bool{}
	for _, n := range ns {
		if s := n.String(); !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

func (c *doctorCmd) Run(e *env) error {
	m, err := c.load()
	if err != nil {
		return err
	}
	envm, err := m.Environment(c.Env)
	if err != nil {
		return usageError{err}
	}
	progress := io.Writer(e.stderr)
	if e.quiet {
		progress = io.Discard
	}
	if c.rate() <= 0 {
		return badInput("--api-rate must be above 0")
	}
	cfg, err := c.config(e.ctx, envm.Region)
	if err != nil {
		return err
	}
	clients := lambdafleet.NewClients(cfg, lambdafleet.Options{Rate: c.rate()})
	kit := newArtifactKit(clients, m)
	st, err := c.storeFlags.openExisting(e.ctx, m, "doctor checks what releases need and knows them only from the store; nothing was changed")
	if err != nil {
		return err
	}
	defer st.Close()

	out := &doctorOutput{Service: m.Service, Environment: envm.Name, Bucket: m.Artifacts.Bucket, Prefix: m.Artifacts.Prefix, Findings: []finding{}, Artifacts: []artifactOutput{}}
	add := func(f finding) { out.Findings = append(out.Findings, f) }
	restoreFix := fmt.Sprintf("aviary doctor -e %s --restore", envm.Name)

	// The bucket first: an unreadable one is bad input, before anything else is read.
	versioning, err := inventory.Versioning(e.ctx, clients.S3, kit.bucket)
	if err != nil {
		return usageError{fmt.Errorf("the artifact bucket %s cannot be read: %w", kit.bucket, err)}
	}
	rules, err := inventory.Lifecycle(e.ctx, clients.S3, kit.bucket)
	if err != nil {
		return usageError{fmt.Errorf("the artifact bucket %s cannot be read: %w", kit.bucket, err)}
	}

	fmt.Fprintf(progress, "Reading %s of %s in %s\n", plural(len(m.Functions), "function", "functions"), m.Service, envm.Name)
	rels, err := st.ListReleases(e.ctx, store.Filter{Service: m.Service, Environment: envm.Name})
	if err != nil {
		return err
	}
	fns, err := readFunctions(e.ctx, clients.Lambda, functionNames(m, envm))
	if err != nil {
		return err
	}
	for _, fn := range fns {
		if fn.Missing {
			add(finding{Severity: retention.Info, Check: "function", Subject: fn.Name, Message: "does not exist: nothing to roll back"})
		}
	}
	wanted, gone, err := retention.RollbackNeeds(m.Artifacts.Prefix, fns, retention.ReleaseNeeds(retention.Retained(rels, envm.Retain.Releases)))
	if err != nil {
		return err
	}
	for _, g := range gone {
		add(finding{Severity: retention.Blocking, Check: "version", Subject: g.Function + ":" + g.Version,
			Message: fmt.Sprintf("no longer exists, but %s needs it: a rollback to it cannot run", needsText(g.Needs)),
			Fix:     "point what needs it at a version that exists (aviary deploy the code again, or roll back further)"})
	}

	if needed := retention.ImageNeeds(fns, retention.ReleaseNeeds(retention.Retained(rels, envm.Retain.Releases))); len(needed) > 0 {
		fmt.Fprintf(progress, "Checking %s in ECR\n", plural(len(needed), "image version", "image versions"))
		if err := checkImages(e.ctx, clients.Lambda, clients.ECR, needed, time.Now(), add); err != nil {
			return err
		}
	}
	fmt.Fprintf(progress, "Checking %s in s3://%s and the cache %s\n", plural(len(wanted), "artifact", "artifacts"), kit.bucket, kit.cache.Dir)
	states, err := kit.check(e.ctx, wanted, true, true)
	if err != nil {
		return err
	}
	if c.Restore {
		for i := range states {
			if states[i].S3 != "" || states[i].Cache != "" {
				fmt.Fprintf(progress, "Restoring %s\n", states[i].Key)
				kit.restore(e.ctx, &states[i], true)
			}
		}
	}
	var sizes []int64
	for _, s := range states {
		sizes = append(sizes, s.CodeSize)
		loc := fmt.Sprintf("s3://%s/%s", kit.bucket, s.Key)
		who := strings.Join(s.Versions, ", ") + " (" + needsText(s.Needs) + ")"
		switch {
		case s.S3 != "" && s.Restored != "":
			add(finding{Severity: retention.Info, Check: "artifact", Subject: loc, Message: fmt.Sprintf("was %s; restored from %s, verified against its SHA-256", s.S3, s.Restored)})
		case s.S3 != "":
			f := finding{Severity: retention.Blocking, Check: "artifact", Subject: loc, Message: fmt.Sprintf("%s: needed by %s", s.S3, who), Fix: restoreFix}
			if s.RestoreError != "" {
				f.Message += "; the restore failed: " + s.RestoreError
				f.Fix = "build that code again and upload it under the same key, or move what needs it to another version"
			}
			add(f)
		case s.Unverified != "":
			add(finding{Severity: retention.Warning, Check: "artifact", Subject: loc, Message: "digest unverified: " + s.Unverified + "; needed by " + who,
				Fix: "upload artifacts with a SHA-256 checksum (aviary deploy does), or compare the object's SHA-256 by hand"})
		}
		switch {
		case s.Cache != "" && s.CacheRestored != "":
			add(finding{Severity: retention.Info, Check: "cache", Subject: s.Key, Message: "was not in the local cache; refilled from " + s.CacheRestored})
		case s.Cache != "":
			// The S3 copy is what a rollback reads; the cache is the copy of last resort.
			add(finding{Severity: retention.Warning, Check: "cache", Subject: s.Key, Message: s.Cache + ": needed by " + who, Fix: restoreFix})
		}
		out.Artifacts = append(out.Artifacts, artifactOutput{Key: s.Key, CodeSha256: s.CodeSha256, Versions: s.Versions, Needs: s.Needs,
			S3: okOr(s.S3), Cache: okOr(s.Cache), Restored: s.Restored, CacheRestored: s.CacheRestored, RestoreError: s.RestoreError, Unverified: s.Unverified})
	}

	versioned := versioning != ""
	for _, r := range retention.LifecycleRisks(rules, m.Artifacts.Prefix, versioned, sizes) {
		add(finding{Severity: r.Severity, Check: "lifecycle", Subject: "rule " + r.Rule, Message: r.Does,
			Fix: fmt.Sprintf("exclude the prefix %q from rule %s (or disable it); aviary gc deletes only what nothing needs", strings.Trim(m.Artifacts.Prefix, "/")+"/", r.Rule)})
	}
	switch versioning {
	case "Enabled":
		add(finding{Severity: retention.Info, Check: "versioning", Subject: kit.bucket, Message: "versioning is on: a deleted artifact stays recoverable as a noncurrent version"})
	case "Suspended":
		add(finding{Severity: retention.Warning, Check: "versioning", Subject: kit.bucket, Message: "versioning is suspended: an artifact deleted from now on cannot be recovered from S3",
			Fix: fmt.Sprintf("aws s3api put-bucket-versioning --bucket %s --versioning-configuration Status=Enabled", kit.bucket)})
	default:
		add(finding{Severity: retention.Warning, Check: "versioning", Subject: kit.bucket, Message: "versioning is off: a deleted artifact cannot be recovered from S3 (only from the local cache or the deployed code, see --restore)",
			Fix: fmt.Sprintf("aws s3api put-bucket-versioning --bucket %s --versioning-configuration Status=Enabled", kit.bucket)})
	}
	if cs, err := inventory.AccountCodeStorage(e.ctx, clients.Lambda); err != nil {
		add(finding{Severity: retention.Warning, Check: "code-storage", Subject: cfg.Region, Message: "could not be read: " + err.Error()})
	} else {
		sev, text := retention.CodeStorageProblem(cs)
		f := finding{Severity: sev, Check: "code-storage", Subject: cfg.Region, Message: text}
		if sev != retention.Info {
			f.Fix = fmt.Sprintf("aviary prune -e %s deletes the versions nothing needs; or ask AWS for a higher quota", envm.Name)
		}
		add(f)
	}

	out.Ready = true
	for _, f := range out.Findings {
		if f.Severity == retention.Blocking {
			out.Ready = false
		}
	}
	if c.json() {
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		printDoctor(e.stdout, out, len(wanted))
	}
	if !out.Ready {
		return exitError{ExitNotReady, fmt.Errorf("a rollback of %s would fail: see the errors above", envm.Name)}
	}
	return nil
}

func printDoctor(w io.Writer, out *doctorOutput, n int) {
	fmt.Fprintf(w, "Rollback readiness of %s in %s (%s in s3://%s/%s)\n", safe(out.Service), safe(out.Environment), plural(n, "artifact", "artifacts"), safe(out.Bucket), safe(strings.Trim(out.Prefix, "/")))
	for _, f := range out.Findings {
		line := fmt.Sprintf("%-7s %-12s %s: %s", f.Severity, f.Check, safe(f.Subject), safe(f.Message))
		if f.Fix != "" {
			line += ". Fix: " + safe(f.Fix)
		}
		fmt.Fprintln(w, line)
	}
	if out.Ready {
		fmt.Fprintf(w, "Ready: every rollback of %s can run.\n", safe(out.Environment))
	} else {
		fmt.Fprintf(w, "NOT READY: a rollback of %s would fail.\n", safe(out.Environment))
	}
}

// functionNames are the Lambda names of an environment's functions, in the manifest's order.
func functionNames(m *manifest.Manifest, env *manifest.Environment) []string {
	var out []string
	for _, fn := range m.Functions {
		out = append(out, m.FunctionName(env, fn.Name))
	}
	return out
}

// readFunctions reads functions' versions and aliases, several at a time (the limiter paces them).
func readFunctions(ctx context.Context, c inventory.LambdaAPI, names []string) ([]inventory.Function, error) {
	out := make([]inventory.Function, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = inventory.ReadFunction(ctx, c, n)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// checkRollbackArtifacts is doctor's artifact part for a deploy, before its first write: the
// artifact of every version the release would roll back to (each changed function's current
// alias version) must be in S3 — a rollback moves the alias back to that version, and anything
// that redeploys it (a CloudFormation or Terraform rollback, a recreated function) reads it from
// S3. A missing one is restored (from the cache or the deployed code, verified); one that cannot
// be restored stops the deploy before it changes anything, unless allow. The local cache is not
// required here: a CI runner's cache is often fresh, and the S3 copy is what a rollback reads.
func checkRollbackArtifacts(ctx context.Context, p *prepared, log io.Writer, allow bool) error {
	kit := &artifactKit{s3: p.fleet.S3, lambda: p.fleet.Lambda, bucket: p.m.Artifacts.Bucket, prefix: p.m.Artifacts.Prefix,
		cache: artifact.Cache{Dir: p.m.Artifacts.Cache}, http: http.DefaultClient}
	byKey := map[string]*retention.Wanted{}
	var keys []string
	for _, r := range p.rows {
		cur := r.Current
		if !r.Change || !cur.AliasExists || cur.AliasVersion == "" || cur.AliasCodeSha256 == "" {
			continue
		}
		if cur.PackageType == "Image" {
			continue // its code is an image in ECR, not an artifact in S3 (see aviary doctor)
		}
		key, err := retention.KeyOf(p.m.Artifacts.Prefix, cur.AliasCodeSha256)
		if err != nil {
			return fmt.Errorf("%s version %s: %w", r.FunctionName, cur.AliasVersion, err)
		}
		w := byKey[key]
		if w == nil {
			w = &retention.Wanted{Key: key, CodeSha256: cur.AliasCodeSha256}
			byKey[key] = w
			keys = append(keys, key)
		}
		w.Versions = append(w.Versions, r.FunctionName+":"+cur.AliasVersion)
	}
	wanted := make([]retention.Wanted, 0, len(keys))
	for _, k := range keys {
		wanted = append(wanted, *byKey[k])
	}
	states, err := kit.check(ctx, wanted, false, false)
	if err != nil {
		return fmt.Errorf("nothing was changed: checking the artifacts a rollback needs: %w", err)
	}
	var broken []string
	for i := range states {
		s := &states[i]
		if s.S3 == "" {
			continue
		}
		fmt.Fprintf(log, "The artifact a rollback to %s needs, s3://%s/%s, is %s: restoring it\n", strings.Join(s.Versions, ", "), kit.bucket, s.Key, s.S3)
		kit.restore(ctx, s, false)
		if s.Restored != "" {
			fmt.Fprintf(log, "Restored s3://%s/%s from %s, verified against its SHA-256\n", kit.bucket, s.Key, s.Restored)
			continue
		}
		broken = append(broken, fmt.Sprintf("s3://%s/%s (for %s) is %s and cannot be restored: %s", kit.bucket, s.Key, strings.Join(s.Versions, ", "), s.S3, s.RestoreError))
	}
	if len(broken) == 0 {
		return nil
	}
	if allow {
		fmt.Fprintf(log, "Deploying anyway (--allow-unrestorable), although a rollback of this release could not redeploy: %s\n", strings.Join(broken, "; "))
		return nil
	}
	return usageError{fmt.Errorf("nothing was changed: a rollback of this release could not run: %s. Rebuild and upload that code, or deploy with --allow-unrestorable", strings.Join(broken, "; "))}
}
