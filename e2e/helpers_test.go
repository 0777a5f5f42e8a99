package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/internal/dynalite"
	"github.com/aviary-deploy/aviary/internal/examplefn"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/sqlite"
)

var built struct {
	aviary    string // the aviary binary, for tests that kill it
	bootstrap []byte // examples/hello, built once
	bad       []byte // its bad flavour, failing 30% of business requests
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "aviary-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := examplefn.Root(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	built.aviary = filepath.Join(dir, "aviary")
	cmd := exec.Command("go", "build", "-o", built.aviary, "./cmd/aviary")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build aviary: %v\n%s", err, out)
		return 1
	}
	zip, err := examplefn.Build(context.Background(), root, "./examples/hello", "good")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if built.bootstrap, err = unzipBootstrap(zip); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bad, err := examplefn.BuildWith(context.Background(), root, "./examples/hello", map[string]string{"flavor": "bad", "badRate": "0.3"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if built.bad, err = unzipBootstrap(bad); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox", "AWS_REGION": "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AVIARY_ACTOR": "e2e-test",
	} {
		os.Setenv(k, v)
	}
	os.Unsetenv("AWS_PROFILE")
	os.Unsetenv("AVIARY_STORE")
	os.Unsetenv("AVIARY_NEW_VERSION_WEIGHT")
	defer dynalite.Stop()
	return m.Run()
}

// fleet is a service of functions on a sandbox, described by a manifest in a temp dir.
type fleet struct {
	t      testing.TB
	srv    *sandbox.Server
	dir    string
	names  []string // logical
	lambda *lambda.Client
	store  string
	// lastPromotedStamp is what the aliases serve after the last promoted release.
	lastPromotedStamp string
}

// newFleet starts a sandbox and creates the Lambda functions of an n-function service (the
// infrastructure a team's Terraform would own), each running stamp "0" with no alias yet.
func newFleet(t testing.TB, n int, opts sandbox.Options, strategy string) *fleet {
	t.Helper()
	srv, err := sandbox.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, srv: srv, dir: t.TempDir(), lambda: lambda.NewFromConfig(cfg)}
	f.store = filepath.Join(f.dir, ".aviary", "state.db")
	ctx := context.Background()
	if _, err := s3.NewFromConfig(cfg).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("shop-artifacts")}); err != nil {
		t.Fatal(err)
	}
	var fns strings.Builder
	for i := range n {
		name := fmt.Sprintf("fn%02d", i)
		f.names = append(f.names, name)
		fmt.Fprintf(&fns, "  %s:\n    dir: functions/%s\n", name, name)
		f.stamp(name, "0")
	}
	manifest := fmt.Sprintf(`service: shop
artifacts:
  bucket: shop-artifacts
functions:
%senvironments:
  production:
    function_name: "{service}-{function}-prod"
    strategy:
%s
`, fns.String(), strategy)
	if err := os.WriteFile(filepath.Join(f.dir, "aviary.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	// Create the functions, many at a time, as the infrastructure would.
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for _, name := range f.names {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			zip := f.zip(name)
			_, err := f.lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
				FunctionName: aws.String(f.fn(name)), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
				Role: aws.String("arn:aws:iam::000000000000:role/shop"), Code: &lambdatypes.FunctionCode{ZipFile: zip},
			})
			errs <- err
		}()
	}
	for range f.names {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fleet) fn(name string) string { return "shop-" + name + "-prod" }

// stamp sets what a function's next zip holds: the example bootstrap and a stamp.txt.
func (f *fleet) stamp(name, value string) {
	dir := filepath.Join(f.dir, "functions", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), built.bootstrap, 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stamp.txt"), []byte(value), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) stampAll(value string) {
	for _, n := range f.names {
		f.stamp(n, value)
	}
}

func (f *fleet) zip(name string) []byte {
	files, err := artifact.Collect(filepath.Join(f.dir, "functions", name))
	if err != nil {
		f.t.Fatal(err)
	}
	z, err := artifact.Zip(files)
	if err != nil {
		f.t.Fatal(err)
	}
	return z
}

// aviary runs the command in-process, in the fleet's directory.
func (f *fleet) aviary(args ...string) (code int, stdout, stderr string) {
	f.t.Helper()
	var out, errb bytes.Buffer
	if err := fleetDir.enter(f.dir); err != nil {
		f.t.Fatal(err)
	}
	defer fleetDir.leave()
	code = cli.Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// fleetDir keeps the process in a fleet's directory while any command runs there. The working
// directory is the process's: a deploy running in a goroutine while the test runs promote must
// not see it change under it, and whichever command ends last must restore the directory the
// tests started in (saving and restoring around each command left the process in a removed
// temporary directory when two overlapped, failing later tests with "getwd: no such file").
var fleetDir workDir

type workDir struct {
	mu      sync.Mutex
	running int
	dir     string // where the running commands are
	was     string // where the process was before the first of them
}

func (w *workDir) enter(dir string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running > 0 {
		if dir != w.dir {
			return fmt.Errorf("a command runs in %s while another runs in %s", dir, w.dir)
		}
		w.running++
		return nil
	}
	was, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := os.Chdir(dir); err != nil {
		return err
	}
	w.running, w.dir, w.was = 1, dir, was
	return nil
}

func (w *workDir) leave() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running--; w.running == 0 {
		os.Chdir(w.was)
	}
}

// alias reads a function's alias: its version and extra weights ("" if it does not exist).
func (f *fleet) alias(name string) (string, map[string]float64) {
	out, err := f.lambda.GetAlias(context.Background(), &lambda.GetAliasInput{FunctionName: aws.String(f.fn(name)), Name: aws.String("live")})
	if err != nil {
		var nf *lambdatypes.ResourceNotFoundException
		if asErr(err, &nf) {
			return "", nil
		}
		f.t.Fatal(err)
	}
	var w map[string]float64
	if out.RoutingConfig != nil && len(out.RoutingConfig.AdditionalVersionWeights) > 0 {
		w = out.RoutingConfig.AdditionalVersionWeights
	}
	return aws.ToString(out.FunctionVersion), w
}

// served invokes the alias and returns the stamp of the code that ran.
func (f *fleet) served(name string) string {
	out, err := f.lambda.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(f.fn(name) + ":live")})
	if err != nil {
		f.t.Fatal(err)
	}
	var resp struct{ Stamp string }
	json.Unmarshal(out.Payload, &resp)
	return resp.Stamp
}

func (f *fleet) openStore() store.Store {
	st, err := sqlite.Open(context.Background(), f.store)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { st.Close() })
	return st
}

// latest is the newest release of production.
func (f *fleet) latest() *release.Release {
	r, err := f.newest()
	if err != nil || r == nil {
		f.t.Fatalf("no release in the store: %v", err)
	}
	return r
}

// newest reads the newest release of production, nil if there is none. The store is closed
// after each read: tests poll it in tight loops, and stores kept open until the test ended held
// thousands of descriptors.
func (f *fleet) newest() (*release.Release, error) {
	st, err := sqlite.Open(context.Background(), f.store)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rs, err := st.ListReleases(context.Background(), store.Filter{Service: "shop", Environment: "production", Limit: 1})
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return rs[0], nil
}

// waitFor polls the latest release until ok says so.
func (f *fleet) waitFor(what string, ok func(*release.Release) bool) *release.Release {
	f.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := f.newest(); err == nil && r != nil && ok(r) {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("timed out waiting for %s", what)
	return nil
}

// writes counts the control-plane writes in the sandbox's request log.
func writes(reqs []sandbox.Request) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		switch r.Operation {
		case "UpdateFunctionCode", "PublishVersion", "CreateAlias", "UpdateAlias", "DeleteAlias", "UpdateFunctionConfiguration", "CreateFunction", "DeleteFunction":
			if r.Status < 300 {
				out[r.Operation]++
			}
		}
	}
	return out
}

// auditChain checks that a release's audit trail records every transition, from planned to its
// final phase, with no gap.
func auditChain(t *testing.T, st store.Store, r *release.Release) {
	t.Helper()
	evs, err := st.Events(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	phase := "planned"
	var chain []string
	for _, e := range evs {
		if e.Kind != release.EventTransition {
			continue
		}
		from, _ := e.Data["from"].(string)
		to, _ := e.Data["to"].(string)
		if from != phase {
			t.Errorf("audit trail of %s: transition %s → %s follows %s: a transition is missing (chain %v)", r.ID, from, to, phase, chain)
		}
		phase = to
		chain = append(chain, to)
	}
	if phase != string(r.Phase) {
		t.Errorf("audit trail of %s ends at %s, the release at %s (chain %v)", r.ID, phase, r.Phase, chain)
	}
	if len(evs) == 0 || evs[0].Kind != release.EventCreated {
		t.Errorf("audit trail of %s does not start with its creation", r.ID)
	}
}

func unzipBootstrap(zipBytes []byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	if err != nil {
		return nil, err
	}
	for _, f := range zr.File {
		if f.Name == "bootstrap" {
			rc, err := f.Open()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}
	}
	return nil, fmt.Errorf("no bootstrap in the example zip")
}

func asErr[T error](err error, target *T) bool { return errors.As(err, target) }
