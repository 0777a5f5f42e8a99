package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/health"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/storeurl"
)

// More exit codes CI can branch on.
const (
	ExitRolledBack = 3 // the release was rolled back
	ExitLocked     = 4 // another release holds the environment
	ExitTooLate    = 5 // someone decided the gate first; this decision was recorded, not applied
	ExitNotReady   = 6 // aviary doctor: something would stop a rollback
	// ExitStillLive: `aviary status --watch` stopped (its --timeout, or an interrupt) before the
	// release ended; the release goes on, nothing was changed.
	ExitStillLive = 7
	// ExitHandedOff: an interrupted deploy handed its release to the environment's controller,
	// which drives it on (`aviary status RELEASE --watch` follows it).
	ExitHandedOff = 8
	// ExitLeft: an interrupted deploy left its release where it was (on_cancel: leave); nothing
	// drives it until `aviary resume` or `aviary rollback`.
	ExitLeft = 9
)

// exitError carries an exit code with its message.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// manifestFlags name the manifest: the one -f/--file of every command.
type manifestFlags struct {
	File string `short:"f" default:"aviary.yaml" placeholder:"PATH" help:"The manifest (for commands about a release: its service, store and artifact cache, when it exists)."`
}

func (m manifestFlags) load() (*manifest.Manifest, error) {
	mf, err := manifest.Load(m.File)
	if err != nil {
		return nil, usageError{err}
	}
	return mf, nil
}

// storeFlags say where releases are kept.
type storeFlags struct {
	Store string `env:"AVIARY_STORE" placeholder:"URL" help:"Where releases are kept: sqlite://PATH or dynamodb://TABLE (default: the manifest's store, else sqlite://.aviary/state.db)."`
}

// storeURL picks the store: the flag (or AVIARY_STORE), else the manifest's, else the default.
func (s storeFlags) url(m *manifest.Manifest) string {
	switch {
	case s.Store != "":
		return s.Store
	case m != nil:
		return m.Store
	}
	if mf, err := manifest.Load(manifest.DefaultFile); err == nil {
		return mf.Store
	}
	return "sqlite://" + filepath.Join(".aviary", "state.db")
}

func (s storeFlags) open(ctx context.Context, m *manifest.Manifest) (store.Store, error) {
	st, err := storeurl.Open(ctx, s.url(m), appID)
	if storeurl.IsBadURL(err) {
		return nil, usageError{err}
	}
	return st, err
}

// openExisting opens the store a retention command reads its releases from, refusing a SQLite
// file that is not there: opening it would create an empty store, so no release would be known
// (and what their rollbacks need would look unneeded). why says what the command knows only from
// the store and that nothing was changed; both errors are bad input.
func (s storeFlags) openExisting(ctx context.Context, m *manifest.Manifest, why string) (store.Store, error) {
	if url := s.url(m); strings.HasPrefix(url, "sqlite://") {
		if _, err := os.Stat(strings.TrimPrefix(url, "sqlite://")); err != nil {
			return nil, badInput("the store %s cannot be read (%v): %s", url, err, why)
		}
	}
	st, err := s.open(ctx, m)
	if err != nil {
		return nil, usageError{fmt.Errorf("the store cannot be read: %s: %w", why, err)}
	}
	return st, nil
}

// dynamoClient builds a DynamoDB client for a dynamodb://TABLE URL from the standard chain.
func dynamoClient(ctx context.Context, url string) (*dynamodb.Client, string, error) {
	db, table, err := storeurl.Dynamo(ctx, url, appID)
	if storeurl.IsBadURL(err) {
		return nil, "", usageError{err}
	}
	return db, table, err
}

// appID marks Aviary's requests in their User-Agent (and so in CloudTrail and the sandbox's log).
const appID = "aviary"

// awsFlags configure the AWS clients; everything else comes from the standard chain (profiles,
// environment, AWS_ENDPOINT_URL).
type awsFlags struct {
	clientFlags
	APIRate float64 `name:"api-rate" default:"15" placeholder:"R" help:"Lambda control-plane calls per second; AWS allows 15 per account and region."`
	// OldRate is --rate, what --api-rate was called before --rate came to mean only traffic's
	// invocations; kept working, hidden, and with no environment variable (AVIARY_RATE is traffic's).
	OldRate float64 `name:"rate" hidden:"" env:"-" help:"Deprecated: --api-rate."`
}

// rate is the control-plane rate asked for: --api-rate, or the deprecated --rate when given.
func (a awsFlags) rate() float64 {
	if a.OldRate != 0 {
		return a.OldRate
	}
	return a.APIRate
}

// clientFlags choose the AWS profile and region.
type clientFlags struct {
	Profile string `help:"AWS profile (default: the standard chain)."`
	Region  string `help:"AWS region (default: the environment's, else the standard chain)."`
}

func (a awsFlags) fleet(ctx context.Context, region string) (*lambdafleet.Fleet, *health.Checker, string, error) {
	if a.rate() <= 0 {
		return nil, nil, "", usageError{errors.New("--api-rate must be above 0")}
	}
	cfg, err := a.config(ctx, region)
	if err != nil {
		return nil, nil, "", err
	}
	return lambdafleet.New(cfg, lambdafleet.Options{Rate: a.rate()}), health.New(cfg), cfg.Region, nil
}

// config loads the AWS configuration through the standard chain.
func (a clientFlags) config(ctx context.Context, region string) (aws.Config, error) {
	if a.Region != "" {
		region = a.Region
	}
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{Region: region, Profile: a.Profile, AppID: appID})
	if err != nil {
		return cfg, err
	}
	if cfg.Region == "" {
		return cfg, usageError{errors.New("no AWS region: set AWS_REGION, pass --region, or give the environment a region in the manifest")}
	}
	return cfg, nil
}

// outputFlags choose the output.
type outputFlags struct {
	Output string `short:"o" enum:"text,json" default:"text" help:"text, or json for machines (a document whose \"schema\" is \"aviary/v1\")."`
}

func (o outputFlags) json() bool { return o.Output == "json" }

// waitFlags bound how long a command follows a release another process drives. One default for
// every command (rollback, promote, resume, approve): 30 minutes, longer than any bake we expect.
type waitFlags struct {
	Wait time.Duration `default:"30m" placeholder:"D" help:"How long to follow a release that another process drives before giving up (the release goes on)."`
}

// writeJSON writes a versioned JSON document (see output.go).
func writeJSON(w io.Writer, doc document) error {
	doc.stamp()
	return writeRaw(w, doc)
}

// writeRaw writes v as indented JSON, as it is: for documents whose format is someone else's
// (an IAM policy).
func writeRaw(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// actor is who acts: AVIARY_ACTOR, else the user at this host.
func actor() string {
	if a := os.Getenv("AVIARY_ACTOR"); a != "" {
		return a
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// source is where actions come from, for the audit trail.
func source() string {
	host, _ := os.Hostname()
	return "cli on " + host
}

// host names this machine in lock owners: AVIARY_HOST (for hosts whose name says little, such as
// ephemeral CI containers), else the hostname; with the PID namespace, so that processes in two
// containers of one host are never mistaken for each other.
func host() string {
	h := os.Getenv("AVIARY_HOST")
	if h == "" {
		h, _ = os.Hostname()
	}
	if ns, err := os.Readlink("/proc/self/ns/pid"); err == nil {
		h += "@" + strings.TrimSuffix(strings.TrimPrefix(ns, "pid:["), "]")
	}
	// PID namespace numbers repeat across machines (the host's own is the same everywhere), so
	// the boot's id is part of the name too: a process of another machine with the same name
	// and namespace is never taken for a dead one of this machine.
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil && len(b) >= 8 {
		h += "@" + string(b[:8])
	}
	return strings.ReplaceAll(h, "/", "_")
}

// owner identifies this process as a lock's owner: host/pid/nonce.
func owner() string { return release.NewOwner(host()) }

// lockTTL is the lease a running release keeps renewing: AVIARY_LOCK_LEASE, default
// release.DefaultLease. A process that dies holds its environment until then, unless a process
// of the same host sees it is gone.
func lockTTL() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("AVIARY_LOCK_LEASE")); err == nil && d >= time.Second {
		return d
	}
	return release.DefaultLease
}

// lockedError maps a held lock to its exit code.
func lockedError(err error) error {
	var held *release.LockHeldError
	if errors.As(err, &held) {
		return exitError{ExitLocked, err}
	}
	return err
}

// resolveRelease finds a release by id, or the latest of an environment.
func resolveRelease(ctx context.Context, st store.Store, id string, m *manifest.Manifest, env string) (*release.Release, error) {
	if id != "" {
		r, err := st.GetRelease(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, usageError{fmt.Errorf("no release %s in the store", id)}
		}
		return r, err
	}
	if env == "" {
		return nil, usageError{errors.New("name a release, or an environment with -e")}
	}
	service := ""
	if m != nil {
		service = m.Service
	}
	rs, err := st.ListReleases(ctx, store.Filter{Service: service, Environment: env, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, usageError{fmt.Errorf("no release of %s in the store", env)}
	}
	return rs[0], nil
}

// newEngine builds the release's lifecycle for this process; fleet, cache and h may be nil for
// what does not move aliases (requests, settling an ended release).
func newEngine(st store.Store, fleet release.Fleet, cache release.ArtifactSource, me string, h release.Health) *release.Engine {
	return &release.Engine{
		Store: st, Fleet: fleet, Artifacts: cache, Health: h,
		Actor: actor(), Source: source(), Owner: me, Host: host(), LockTTL: lockTTL(),
	}
}

// outcome maps a finished release to the command's exit.
func outcome(r *release.Release) error {
	switch r.Phase {
	case release.Promoted:
		return nil
	case release.RolledBack:
		return exitError{ExitRolledBack, fmt.Errorf("release %s was rolled back: %s", r.ID, r.Reason)}
	case release.Failed:
		return exitError{ExitFailed, fmt.Errorf("release %s failed: %s", r.ID, r.Reason)}
	}
	return fmt.Errorf("release %s stopped at %s", r.ID, r.Describe())
}
