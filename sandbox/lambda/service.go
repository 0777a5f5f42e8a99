// Package lambda is the sandbox's AWS Lambda: the REST-JSON control plane (functions, versions,
// aliases with weighted routing, concurrency, provisioned concurrency, event source mappings) and Invoke, which runs a function's bootstrap from its
// zip through the Lambda Runtime API and writes each invocation's log (START, the function's output,
// END, REPORT, or their JSON-format records) to its execution environment's log stream.
//
// The rule it keeps: where a deploy tool could tell the difference, it behaves as AWS documents
// (error types and statuses, RevisionId and CodeSha256 preconditions, update states, PublishVersion
// returning the existing version when nothing changed, routing validation, pagination).
package lambda

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/internal/atomicfile"
)

// Config sets up a Service.
type Config struct {
	Region  string
	Account string
	// BaseURL is the sandbox's own URL: functions get it as AWS_ENDPOINT_URL, and GetFunction's
	// code location points into it.
	BaseURL string
	// DataDir keeps functions and code across restarts; empty keeps them in memory.
	DataDir string
	// UpdateDelay is how long a new function stays Pending and an update InProgress.
	UpdateDelay time.Duration
	// AccountConcurrency is the account's concurrency limit: invocations in flight across every
	// function and version (AWS's default: 1,000). Functions' reserved concurrency comes out of it.
	AccountConcurrency int
	// ScaleBurst new execution environments per ScaleWindow is each function's scaling rate
	// (AWS: 1,000 every 10 seconds, refilled continuously).
	ScaleBurst  int
	ScaleWindow time.Duration
	// MaxStarts bounds the execution environments starting at once on this machine (default:
	// runtime.NumCPU()); an invocation waits for a slot or a freed environment. No AWS client sees
	// it but as latency.
	MaxStarts int
	// IdleTimeout is how long an idle execution environment is kept warm.
	IdleTimeout time.Duration
	Objects     ObjectSource
	Metrics     MetricsSink
	// Logs receives each invocation's log events; nil discards them.
	Logs LogSink
	// Replicas says which versions CloudFront replicates (Lambda@Edge); DeleteFunction refuses
	// to delete one. Nil means none is.
	Replicas Replicas
	// Trail receives every control-plane call, as CloudTrail records it; nil records nothing.
	Trail TrailSink
	// Images is the registry image functions' code comes from; nil: CreateFunction refuses
	// PackageType Image as naming no image.
	Images ImageSource
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultAccountConcurrency is AWS's default account concurrency limit.
const DefaultAccountConcurrency = 1000

// Replicas is CloudFront as Lambda sees it: whether it holds replicas of a version of the
// function that an unqualified ARN names.
type Replicas interface {
	Replicated(functionARN, version string) bool
}

// ObjectSource is where CreateFunction and UpdateFunctionCode fetch S3Bucket/S3Key code from.
type ObjectSource interface {
	GetObject(bucket, key, versionID string) ([]byte, error)
}

// ObjectError is an S3 error answered by an ObjectSource; Lambda quotes it to its caller.
type ObjectError struct {
	Code    string
	Message string
}

func (e *ObjectError) Error() string { return e.Code + ": " + e.Message }

// MetricsSink receives the AWS/Lambda metrics of each invocation.
type MetricsSink interface {
	RecordInvocation(Invocation)
}

// Invocation is what one Invoke call leaves behind for metrics.
type Invocation struct {
	Time            time.Time
	FunctionName    string
	Resource        string // "name", "name:alias" or "name:version", as invoked
	ExecutedVersion string
	ThroughAlias    bool
	Throttled       bool
	Error           bool
	Duration        time.Duration
}

// Service is the sandbox's Lambda.
type Service struct {
	cfg     Config
	mu      sync.Mutex
	fns     map[string]*function
	esms    map[string]*eventSourceMapping // by UUID
	code    *codeStore
	exec    *executor
	closing chan struct{}
	async   sync.WaitGroup // Event invocations under way
}

// New starts a Service; Close stops its execution environments.
func New(cfg Config) (*Service, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AccountConcurrency <= 0 {
		cfg.AccountConcurrency = DefaultAccountConcurrency
	}
	if cfg.ScaleBurst <= 0 {
		cfg.ScaleBurst = 1000
	}
	if cfg.ScaleWindow <= 0 {
		cfg.ScaleWindow = 10 * time.Second
	}
	if cfg.MaxStarts <= 0 {
		cfg.MaxStarts = runtime.NumCPU()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	code, err := newCodeStore(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, fns: map[string]*function{}, esms: map[string]*eventSourceMapping{}, code: code, closing: make(chan struct{})}
	if err := s.load(); err != nil {
		code.close()
		return nil, err
	}
	s.exec = newExecutor(s)
	return s, nil
}

// Close kills every execution environment and removes unpacked code that is not persisted.
func (s *Service) Close() error {
	select {
	case <-s.closing:
		return nil
	default:
		close(s.closing)
	}
	s.exec.close()
	s.async.Wait()
	return s.code.close()
}

// codeStore keeps zips by the hex SHA-256 of their bytes, and unpacks each once for execution.
type codeStore struct {
	dir       string // "" keeps zips in memory
	tasks     string // where zips are unpacked
	tempTask  bool
	mu        sync.Mutex
	zips      map[string][]byte
	unpacked  map[string]string
	unpacking map[string]chan struct{} // closed when the key's unpacking ends
}

func newCodeStore(dataDir string) (*codeStore, error) {
	c := &codeStore{zips: map[string][]byte{}, unpacked: map[string]string{}, unpacking: map[string]chan struct{}{}}
	if dataDir != "" {
		c.dir = filepath.Join(dataDir, "lambda", "code")
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return nil, err
		}
	}
	tasks, err := os.MkdirTemp("", "aviary-sandbox-tasks-")
	if err != nil {
		return nil, err
	}
	c.tasks, c.tempTask = tasks, true
	return c, nil
}

func (c *codeStore) close() error {
	if c.tempTask {
		return os.RemoveAll(c.tasks)
	}
	return nil
}

// put stores a zip and returns its hex key and the base64 CodeSha256 AWS reports.
func (c *codeStore) put(zipBytes []byte) (key, codeSha256 string, err error) {
	sum := sha256.Sum256(zipBytes)
	key = hex.EncodeToString(sum[:])
	codeSha256 = base64.StdEncoding.EncodeToString(sum[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir == "" {
		c.zips[key] = zipBytes
		return key, codeSha256, nil
	}
	path := filepath.Join(c.dir, key+".zip")
	if _, err := os.Stat(path); err == nil {
		return key, codeSha256, nil
	}
	return key, codeSha256, atomicfile.Write(path, zipBytes)
}

func (c *codeStore) get(key string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir == "" {
		b, ok := c.zips[key]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return b, nil
	}
	return os.ReadFile(filepath.Join(c.dir, key+".zip"))
}

// unpack returns the directory holding the zip's files, unpacking it on first use. Environments
// starting together wait for one unpacking rather than each unpacking the zip.
func (c *codeStore) unpack(key string) (string, error) {
	c.mu.Lock()
	for {
		if dir, ok := c.unpacked[key]; ok {
			c.mu.Unlock()
			return dir, nil
		}
		busy, ok := c.unpacking[key]
		if !ok {
			break
		}
		c.mu.Unlock()
		<-busy
		c.mu.Lock()
	}
	done := make(chan struct{})
	c.unpacking[key] = done
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.unpacking, key)
		c.mu.Unlock()
		close(done)
	}()
	b, err := c.get(key)
	if err != nil {
		return "", fmt.Errorf("code %s: %w", key, err)
	}
	dir := filepath.Join(c.tasks, key)
	tmp, err := os.MkdirTemp(c.tasks, key+".tmp-")
	if err != nil {
		return "", err
	}
	if err := unzipTo(b, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if existing, ok := c.unpacked[key]; ok {
		os.RemoveAll(tmp)
		return existing, nil
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	c.unpacked[key] = dir
	return dir, nil
}

func unzipTo(b []byte, dir string) error {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return err
	}
	for _, f := range zr.File {
		name := filepath.FromSlash(f.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("zip entry %q escapes the task root", f.Name)
		}
		path := filepath.Join(dir, name)
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		// Lambda keeps the zip's permission bits: a bootstrap zipped without its execute bit
		// fails to start there too.
		mode := f.Mode().Perm()
		if mode == 0 {
			mode = 0o644
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		data := new(bytes.Buffer)
		_, err = data.ReadFrom(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if err := writeTaskFile(path, data.Bytes(), mode); err != nil {
			return err
		}
	}
	return nil
}

// checkZip is CreateFunction's and UpdateFunctionCode's validation of uploaded code.
func checkZip(b []byte) *APIError {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return invalidParam("Could not unzip uploaded file. Please check your file, then try to upload again.")
	}
	var unzipped uint64
	for _, f := range zr.File {
		unzipped += f.UncompressedSize64
	}
	if unzipped > 262144000 {
		return invalidParam("Unzipped size must be smaller than 262144000 bytes")
	}
	return nil
}

type persisted struct {
	Functions map[string]*function
	Mappings  map[string]*eventSourceMapping
}

func (s *Service) statePath() string {
	return filepath.Join(s.cfg.DataDir, "lambda", "state.json")
}

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
	for name, f := range p.Functions {
		if f.Versions == nil {
			f.Versions = map[string]*version{}
		}
		if f.Aliases == nil {
			f.Aliases = map[string]*alias{}
		}
		s.fns[name] = f
	}
	maps.Copy(s.esms, p.Mappings)
	return nil
}

// save persists the functions; the caller holds s.mu.
func (s *Service) save() {
	if s.cfg.DataDir == "" {
		return
	}
	b, err := json.Marshal(persisted{Functions: s.fns, Mappings: s.esms})
	if err == nil {
		err = atomicfile.Write(s.statePath(), b)
	}
	if err != nil {
		s.cfg.Logger.Error("persist lambda state", "err", err)
	}
}
