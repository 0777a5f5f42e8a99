// Package cloudfront is the sandbox's Amazon CloudFront: distributions over REST-XML
// (CreateDistribution, GetDistribution, GetDistributionConfig, UpdateDistribution,
// DeleteDistribution, ListDistributions), so that a release tool can associate Lambda@Edge versions
// with a distribution, and the replication that couples CloudFront to Lambda. A Lambda version that
// any distribution associates (in its default cache behavior or any other) is replicated; it stays
// replicated until ReplicationDelay after the last association naming it was removed, and Lambda
// refuses to delete a replicated version, as AWS does while the edge replicas still exist.
//
// The rule it keeps: a distribution's config is what the client sent, byte for byte (unknown
// members survive a Get); what AWS validates that a deploy tool can trip over — Lambda@Edge ARNs
// naming published versions, Quantity matching Items, CallerReference, the If-Match ETag, deleting
// only a disabled and deployed distribution — is validated with AWS's error codes.
package cloudfront

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/internal/atomicfile"
)

//go:generate go run ../protocol/errorsgen -model cloudfront/2020-05-31 -o model_gen.go

// Config sets up a Service.
type Config struct {
	Account string
	// Functions says whether an associated Lambda version exists.
	Functions Functions
	// DataDir keeps distributions (and replicas awaiting release) across restarts; empty keeps
	// them in memory.
	DataDir string
	// DeployDelay is how long a created or updated distribution stays InProgress before it is
	// Deployed; zero deploys at once (the create or update response itself still says
	// InProgress, as AWS's does).
	DeployDelay time.Duration
	// ReplicationDelay is how long a Lambda version stays replicated after the last association
	// naming it was removed (AWS: typically a few hours); zero or negative releases it at once.
	ReplicationDelay time.Duration
	Now              func() time.Time
	Logger           *slog.Logger
}

// Functions is what CloudFront asks Lambda: whether the function that an unqualified ARN names
// (arn:aws:lambda:REGION:ACCOUNT:function:NAME) has the published version.
type Functions interface {
	HasVersion(functionARN, version string) bool
}

// Service is the sandbox's CloudFront.
type Service struct {
	cfg      Config
	mu       sync.Mutex // guards dists; taken before Functions is asked (never the reverse)
	dists    map[string]*distribution
	replicas *replicas
}

// distribution is one distribution. Exported fields are what --data persists.
type distribution struct {
	ID              string
	ARN             string
	DomainName      string
	ETag            string
	CallerReference string
	// Config is the inner XML of the DistributionConfig the client sent.
	Config       string
	Enabled      bool
	LastModified time.Time
	DeployedAt   time.Time // when InProgress becomes Deployed
	// Associations are the qualified Lambda version ARNs the config associates.
	Associations []string
}

func (d *distribution) status(now time.Time) string {
	if now.Before(d.DeployedAt) {
		return "InProgress"
	}
	return "Deployed"
}

// New returns a Service, loading its state from cfg.DataDir.
func New(cfg Config) (*Service, error) {
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.DeployDelay = max(cfg.DeployDelay, 0)
	cfg.ReplicationDelay = max(cfg.ReplicationDelay, 0)
	s := &Service{cfg: cfg, dists: map[string]*distribution{}, replicas: newReplicas(cfg.ReplicationDelay, cfg.Now)}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Replicated reports whether CloudFront holds replicas of the version of the function that the
// unqualified ARN names: a distribution associates it, or its last association went less than
// ReplicationDelay ago. Lambda asks it before deleting a version.
func (s *Service) Replicated(functionARN, version string) bool {
	return s.replicas.replicated(functionARN + ":" + version)
}

// replicas tracks which Lambda versions are replicated. Its lock is a leaf: Lambda takes it while
// holding its own, so nothing here calls out.
type replicas struct {
	delay time.Duration
	now   func() time.Time

	mu sync.Mutex
	// held maps a qualified version ARN to the distributions that associate it.
	held map[string]map[string]bool
	// released maps a qualified version ARN no distribution associates any more to when its last
	// association went.
	released map[string]time.Time
}

func newReplicas(delay time.Duration, now func() time.Time) *replicas {
	return &replicas{delay: delay, now: now, held: map[string]map[string]bool{}, released: map[string]time.Time{}}
}

func (r *replicas) replicated(arn string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.held[arn]) > 0 {
		return true
	}
	at, ok := r.released[arn]
	return ok && r.now().Before(at.Add(r.delay))
}

// add makes the distribution hold the versions, keeping what it held.
func (r *replicas) add(dist string, arns []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range arns {
		if r.held[a] == nil {
			r.held[a] = map[string]bool{}
		}
		r.held[a][dist] = true
	}
}

// set makes the distribution hold exactly the versions. A version it no longer holds that no
// other distribution holds is released now when release is true (its association was removed);
// false drops it without a grace period (it was only held while a request was validated).
func (r *replicas) set(dist string, arns []string, release bool) {
	keep := map[string]bool{}
	for _, a := range arns {
		keep[a] = true
	}
	r.mu.Lock()
	for a, holders := range r.held {
		if !holders[dist] || keep[a] {
			continue
		}
		delete(holders, dist)
		if len(holders) == 0 {
			delete(r.held, a)
			if release {
				r.released[a] = r.now()
			}
		}
	}
	r.mu.Unlock()
	r.add(dist, arns)
}

// pending returns the released versions still within the delay, for persistence.
func (r *replicas) pending() map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]time.Time{}
	for a, at := range r.released {
		if r.now().Before(at.Add(r.delay)) {
			out[a] = at
		} else {
			delete(r.released, a)
		}
	}
	return out
}

type persisted struct {
	Distributions map[string]*distribution
	Released      map[string]time.Time
}

func (s *Service) statePath() string { return filepath.Join(s.cfg.DataDir, "cloudfront", "state.json") }

func (s *Service) load() error {
	if s.cfg.DataDir == "" {
		return nil
	}
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var p persisted
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("read %s: %w", s.statePath(), err)
	}
	for id, d := range p.Distributions {
		s.dists[id] = d
		s.replicas.add(id, d.Associations)
	}
	for a, at := range p.Released {
		s.replicas.released[a] = at
	}
	return nil
}

// save persists the distributions and the replicas awaiting release; the caller holds s.mu.
func (s *Service) save() {
	if s.cfg.DataDir == "" {
		return
	}
	b, err := json.Marshal(persisted{Distributions: s.dists, Released: s.replicas.pending()})
	if err == nil {
		err = os.MkdirAll(filepath.Dir(s.statePath()), 0o755)
	}
	if err == nil {
		err = atomicfile.Write(s.statePath(), b)
	}
	if err != nil {
		s.cfg.Logger.Error("persist cloudfront state", "err", err)
	}
}

// randomID is n characters of alphabet, as CloudFront's ids and ETags are made of.
func randomID(alphabet string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

const (
	upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// newID is a distribution id, e.g. E1U5RQF7T870K0.
func newID() string { return "E" + randomID(upperAlnum, 13) }

// newETag is a version of a distribution's config, e.g. E2QWRUHAPOMQZL.
func newETag() string { return "E" + randomID(upperAlnum, 13) }

// newDomainName is a distribution's domain, e.g. d111111abcdef8.cloudfront.net.
func newDomainName() string { return "d" + randomID(lowerAlnum, 13) + ".cloudfront.net" }
