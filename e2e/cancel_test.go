package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
	"github.com/aviary-deploy/aviary/store"
)

// A cancelled CI job sends the deploy SIGINT, then SIGTERM 7.5 s later, then kills it 2.5 s after
// that (GitHub Actions). These tests send a real `aviary deploy` the signals mid-canary and check
// what each environment's setting makes of the fleet: rolled back and consistent, left at its
// weight, or handed to the controller. How long each took is logged, not asserted: the machine
// may be busy.

// canaryFleet is a fleet of n functions promoted once (stamp "1"), whose canary bakes long
// enough to be interrupted mid-step; extra is added to the production environment (on_cancel,
// controller).
func canaryFleet(t *testing.T, n int, extra string) *fleet {
	t.Helper()
	f := newFleet(t, n, quick, "      canary:\n        - weight: 10%\n          bake: 2m\n        - weight: 50%\n          bake: 2m")
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatalf("first release: %d\n%s\n%s", code, out, errs)
	}
	f.lastPromotedStamp = "1"
	f.setManifest(extra)
	return f
}

// setManifest appends extra to the production environment, the manifest's last block.
func (f *fleet) setManifest(extra string) {
	f.t.Helper()
	path := filepath.Join(f.dir, "aviary.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		f.t.Fatal(err)
	}
	s := strings.TrimRight(string(b), "\n") + "\n" + extra
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// startDeploy starts a real `aviary deploy` of stamp, and waits until its release bakes step 1.
func (f *fleet) startDeploy(stamp string) (*exec.Cmd, <-chan error, *bytes.Buffer, *release.Release) {
	f.t.Helper()
	return f.startDeployUntil(stamp, "the canary's first bake", func(r *release.Release) bool { return r.Baking() && r.Step == 0 })
}

// startDeployUntil starts a real `aviary deploy` of stamp, and waits until its release is as ok
// says.
func (f *fleet) startDeployUntil(stamp, what string, ok func(*release.Release) bool) (*exec.Cmd, <-chan error, *bytes.Buffer, *release.Release) {
	f.t.Helper()
	before := f.latest()
	f.stampAll(stamp)
	var stderr bytes.Buffer
	cmd := exec.Command(built.aviary, "deploy", "-e", "production", "--api-rate", "200")
	cmd.Dir, cmd.Env, cmd.Stderr = f.dir, os.Environ(), &stderr
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	f.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	r := f.waitFor(what, func(r *release.Release) bool { return r.ID != before.ID && ok(r) })
	return cmd, exited, &stderr, r
}

// exitCode waits for the process and returns its exit code and how long it took after since.
func exitCode(t *testing.T, exited <-chan error, since time.Time) (int, time.Duration) {
	t.Helper()
	select {
	case err := <-exited:
		took := time.Since(since)
		if err == nil {
			return 0, took
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), took
		}
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatal("the deploy did not exit within a minute of the signal")
	}
	return 0, 0
}

// rolledBackConsistently checks that release id ended rolled back with every alias wholly on its
// previous version, serving the last promoted code, the lock free and the audit trail whole.
func (f *fleet) rolledBackConsistently(t *testing.T, id string) {
	t.Helper()
	st := f.openStore()
	r, err := st.GetRelease(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.RolledBack {
		t.Fatalf("release %s is %s, want rolled back", id, r.Describe())
	}
	for i, n := range f.names {
		v, w := f.alias(n)
		if fn := r.Functions[i]; v != fn.Previous || w != nil {
			t.Errorf("%s: alias on %s with weights %v, want version %s alone", n, v, w, fn.Previous)
		}
		if got := f.served(n); got != f.lastPromotedStamp {
			t.Errorf("%s serves stamp %q, want %q", n, got, f.lastPromotedStamp)
		}
	}
	if l, _ := st.GetLock(context.Background(), "shop/production"); l != nil {
		t.Errorf("the lock is still held: %+v", l)
	}
	auditChain(t, st, r)
}

// TestCancelRollsBack: SIGINT mid-canary, with no controller and the default on_cancel
// (rollback): the deploy rolls the fleet back itself, says so, and exits 3.
func TestCancelRollsBack(t *testing.T) {
	f := canaryFleet(t, 3, "")
	_, exited, stderr, r := f.startDeployAndSignal(t, "2", syscall.SIGINT, 0)
	code, took := exitCode(t, exited, time.Now())
	t.Logf("exit %d, %s after SIGINT\n%s", code, took, stderr)
	if code != cli.ExitRolledBack {
		t.Errorf("exit %d, want %d (rolled back)", code, cli.ExitRolledBack)
	}
	if !strings.Contains(stderr.String(), "SIGINT: rolling release "+r.ID+" back") {
		t.Errorf("stderr does not say the rollback started:\n%s", stderr)
	}
	f.rolledBackConsistently(t, r.ID)
}

// startDeployAndSignal starts a deploy of stamp, sends sig mid-bake of step 1 and, after
// then (when not zero), SIGTERM.
func (f *fleet) startDeployAndSignal(t *testing.T, stamp string, sig syscall.Signal, then time.Duration) (*exec.Cmd, <-chan error, *bytes.Buffer, *release.Release) {
	cmd, exited, stderr, r := f.startDeploy(stamp)
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if then > 0 {
		time.Sleep(then)
		cmd.Process.Signal(syscall.SIGTERM) // may have exited already: that is fine
	}
	return cmd, exited, stderr, r
}

// TestCancelSecondSignalDoesNotStopTheRollback: SIGINT, then SIGTERM a second later while the
// rollback's alias updates are slow: the second signal is reported and ignored, and the fleet
// still ends rolled back and consistent.
func TestCancelSecondSignalDoesNotStopTheRollback(t *testing.T) {
	f := canaryFleet(t, 3, "")
	cmd, exited, stderr, r := f.startDeploy("2")
	// Every alias update of the rollback now takes 2 s: the SIGTERM lands in the middle of it.
	if err := f.srv.SetFaults(sandbox.Faults{Latency: sandbox.Duration(2 * time.Second), Operations: []string{"UpdateAlias"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.srv.SetFaults(sandbox.Faults{}) })
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	termErr := cmd.Process.Signal(syscall.SIGTERM)
	code, took := exitCode(t, exited, start)
	t.Logf("exit %d, %s after SIGINT (SIGTERM sent 1 s after it: %v)\n%s", code, took, termErr, stderr)
	f.srv.SetFaults(sandbox.Faults{})
	if code != cli.ExitRolledBack {
		t.Errorf("exit %d, want %d (rolled back)", code, cli.ExitRolledBack)
	}
	if termErr == nil && !strings.Contains(stderr.String(), "SIGTERM received during the rollback of "+r.ID+": ignored") {
		t.Errorf("stderr does not say the SIGTERM was ignored:\n%s", stderr)
	}
	f.rolledBackConsistently(t, r.ID)
}

// TestCancelMidway: SIGINT while the new versions are being published (nothing moved yet) and
// while the aliases are being moved to a step's weight (their updates in flight): either way the
// rollback puts every alias wholly back on its previous version.
func TestCancelMidway(t *testing.T) {
	for _, tc := range []struct {
		name, slow string
		at         func(*release.Release) bool
	}{
		{"publishing", "UpdateFunctionCode", func(r *release.Release) bool { return r.Phase == release.Publishing }},
		// While the step's alias updates are in flight: Lambda may have applied some that the
		// record does not show yet. (Waiting for a record with some moved and some not caught a
		// window of a few store writes, which a busy machine's polling missed.)
		{"mid-shift", "UpdateAlias", func(r *release.Release) bool { return r.Phase == release.Shifting && !r.Baking() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := canaryFleet(t, 3, "")
			// Each call of the phase takes 700 ms, so that the signal lands within it.
			if err := f.srv.SetFaults(sandbox.Faults{Latency: sandbox.Duration(700 * time.Millisecond), Operations: []string{tc.slow}}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.srv.SetFaults(sandbox.Faults{}) })
			cmd, exited, stderr, r := f.startDeployUntil("2", tc.name, tc.at)
			t.Logf("signalled at %s", r.Describe())
			start := time.Now()
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			code, took := exitCode(t, exited, start)
			t.Logf("exit %d, %s after SIGINT\n%s", code, took, stderr)
			if code != cli.ExitRolledBack {
				t.Errorf("exit %d, want %d (rolled back)", code, cli.ExitRolledBack)
			}
			f.srv.SetFaults(sandbox.Faults{})
			f.rolledBackConsistently(t, r.ID)
		})
	}
}

// TestCancelLeaves: with on_cancel: leave the release stays at its step's weight, its lock
// free, and another process can take it up (here: promote --now).
func TestCancelLeaves(t *testing.T) {
	f := canaryFleet(t, 3, "    on_cancel: leave\n")
	_, exited, stderr, r := f.startDeployAndSignal(t, "2", syscall.SIGINT, 0)
	code, took := exitCode(t, exited, time.Now())
	t.Logf("exit %d, %s after SIGINT\n%s", code, took, stderr)
	if code != cli.ExitLeft {
		t.Errorf("exit %d, want %d (left)", code, cli.ExitLeft)
	}
	if want := "aviary resume " + r.ID; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr)
	}
	st := f.openStore()
	left, err := st.GetRelease(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if left.Phase != release.Shifting || left.Step != 0 {
		t.Fatalf("left at %s, want step 1 of the canary", left.Describe())
	}
	for i, n := range f.names {
		v, w := f.alias(n)
		if fn := left.Functions[i]; v != fn.Previous || w[fn.New] != 0.1 {
			t.Errorf("%s: alias on %s with weights %v, want %s with 10%% on %s", n, v, w, fn.Previous, fn.New)
		}
	}
	heldButFree(t, st, r.ID)
	if code, out, errs := f.aviary("promote", r.ID, "--now", "--api-rate", "200"); code != 0 {
		t.Fatalf("promote --now of the left release: exit %d\n%s\n%s", code, out, errs)
	}
	for _, n := range f.names {
		if got := f.served(n); got != "2" {
			t.Errorf("%s serves %q after the promotion, want 2", n, got)
		}
	}
}

// createController creates a stand-in for the controller's function, so that the trigger's
// asynchronous Invoke has a function to reach (the controller itself is tested apart).
func (f *fleet) createController(t *testing.T) {
	t.Helper()
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = lambda.NewFromConfig(cfg).CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String("aviary-controller"), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("arn:aws:iam::000000000000:role/aviary-controller"), Code: &lambdatypes.FunctionCode{ZipFile: f.zip(f.names[0])},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// triggered reports whether the controller's function was invoked asynchronously.
func (f *fleet) triggered() bool {
	for _, r := range f.srv.Requests() {
		if r.Operation == "Invoke" && strings.Contains(r.Path, "aviary-controller") && r.Status == 202 {
			return true
		}
	}
	return false
}

// handedOff checks that release id is the controller's, with its audit entry saying why, and
// that no process holds its lock.
func (f *fleet) handedOff(t *testing.T, id, why string) *release.Release {
	t.Helper()
	st := f.openStore()
	r, err := st.GetRelease(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Controller {
		t.Errorf("release %s is not the controller's", id)
	}
	evs, err := st.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		found = found || ev.Kind == release.EventHandOff && strings.Contains(ev.Message, why)
	}
	if !found {
		t.Errorf("no hand-off entry saying %q in the audit trail of %s: %+v", why, id, evs)
	}
	heldButFree(t, st, id)
	return r
}

// heldButFree checks that a live release nobody drives still holds its environment (no other
// release may start) while its lease is over, so that any process may take it over at once.
func heldButFree(t *testing.T, st store.Store, id string) {
	t.Helper()
	l, err := st.GetLock(context.Background(), "shop/production")
	if err != nil || l == nil || l.Holder != id || l.ExpiresAt.After(time.Now()) {
		t.Errorf("lock of the live release %s: %+v, %v; want it held by the release with its lease over", id, l, err)
	}
}

// TestCancelHandsToTheController: with a controller configured, SIGINT hands the release over
// (Controller set, its audit entry), triggers a tick and exits 8 at once; the release stays
// where it was for the controller to drive.
func TestCancelHandsToTheController(t *testing.T) {
	f := canaryFleet(t, 3, "    controller: true\n")
	f.createController(t)
	f.srv.ResetRequests()
	_, exited, stderr, r := f.startDeployAndSignal(t, "2", syscall.SIGINT, 0)
	code, took := exitCode(t, exited, time.Now())
	t.Logf("exit %d, %s after SIGINT\n%s", code, took, stderr)
	if code != cli.ExitHandedOff {
		t.Errorf("exit %d, want %d (handed to the controller)", code, cli.ExitHandedOff)
	}
	if want := "aviary status " + r.ID + " --watch"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr)
	}
	h := f.handedOff(t, r.ID, "deploy cancelled: SIGINT")
	if h.Phase != release.Shifting {
		t.Errorf("handed over at %s, want still shifting", h.Describe())
	}
	if !f.triggered() {
		t.Error("the controller was not asked for a tick")
	}
}

// TestDetachAndWatch: `deploy --detach` exits 0 with the release recorded for the controller
// and every artifact in S3; `status --watch` follows it to its end, whoever drives it (here
// `aviary resume` and `aviary rollback` stand in for the controller), and exits as deploy
// would: 0 promoted, 3 rolled back, 7 when its --timeout comes first.
func TestDetachAndWatch(t *testing.T) {
	f := newFleet(t, 3, quick, "      canary:\n        - weight: 10%\n          bake: 300ms\n        - weight: 50%\n          bake: 300ms")
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatalf("first release: %d\n%s\n%s", code, out, errs)
	}

	f.stampAll("2")
	if code, _, errs := f.aviary("deploy", "-e", "production", "--detach"); code != cli.ExitBadInput || !strings.Contains(errs, "controller: true") {
		t.Fatalf("--detach without a controller: exit %d, want %d saying how to configure one\n%s", code, cli.ExitBadInput, errs)
	}
	f.setManifest("    controller: true\n")
	f.createController(t)
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(cfg)

	detach := func(stamp string) *release.Release {
		t.Helper()
		f.stampAll(stamp)
		f.srv.ResetRequests()
		code, out, errs := f.aviary("deploy", "-e", "production", "--detach", "--api-rate", "200")
		if code != 0 {
			t.Fatalf("deploy --detach: exit %d\n%s\n%s", code, out, errs)
		}
		r := f.latest()
		if !strings.Contains(out, r.ID) || !strings.Contains(out, "aviary status "+r.ID+" --watch") {
			t.Errorf("deploy --detach does not print the release and how to follow it:\n%s", out)
		}
		if r.Phase != release.Planned {
			t.Errorf("detached release at %s, want planned (nothing moved)", r.Describe())
		}
		f.handedOff(t, r.ID, "deploy --detach")
		for _, fn := range r.Functions {
			if _, err := s3c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("shop-artifacts"), Key: aws.String(fn.ArtifactKey)}); err != nil {
				t.Errorf("%s: artifact %s is not in S3: %v", fn.Name, fn.ArtifactKey, err)
			}
		}
		if !f.triggered() {
			t.Error("the controller was not asked for a tick")
		}
		return r
	}
	watch := func(id string, args ...string) (<-chan int, *bytes.Buffer) {
		var out bytes.Buffer
		cmd := exec.Command(built.aviary, append([]string{"status", id, "--watch"}, args...)...)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = f.dir, os.Environ(), &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		code := make(chan int, 1)
		go func() {
			cmd.Wait()
			code <- cmd.ProcessState.ExitCode()
		}()
		return code, &out
	}
	wait := func(code <-chan int, out *bytes.Buffer) int {
		t.Helper()
		select {
		case c := <-code:
			t.Logf("status --watch: exit %d\n%s", c, out)
			return c
		case <-time.After(2 * time.Minute):
			t.Fatalf("status --watch did not end\n%s", out)
		}
		return 0
	}

	t.Run("promoted", func(t *testing.T) {
		r := detach("2")
		code, out := watch(r.ID)
		if c, o, errs := f.aviary("resume", r.ID, "--api-rate", "200"); c != 0 {
			t.Fatalf("resume: exit %d\n%s\n%s", c, o, errs)
		}
		if c := wait(code, out); c != 0 {
			t.Errorf("status --watch of a promoted release: exit %d, want 0", c)
		}
		for _, want := range []string{"publishing", "step 2 of 2", "promoted"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("status --watch did not show %q", want)
			}
		}
	})
	t.Run("rolled back", func(t *testing.T) {
		r := detach("3")
		code, out := watch(r.ID, "-o", "json")
		if c, o, errs := f.aviary("rollback", r.ID, "--api-rate", "200"); c != 0 {
			t.Fatalf("rollback: exit %d\n%s\n%s", c, o, errs)
		}
		if c := wait(code, out); c != cli.ExitRolledBack {
			t.Errorf("status --watch of a rolled-back release: exit %d, want %d", c, cli.ExitRolledBack)
		}
		if !strings.Contains(out.String(), `"schema": "aviary/v1"`) || !strings.Contains(out.String(), `"phase": "rolled-back"`) {
			t.Errorf("status --watch -o json does not end with the status document")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		r := detach("4")
		code, out := watch(r.ID, "--timeout", "1s")
		if c := wait(code, out); c != cli.ExitStillLive {
			t.Errorf("status --watch --timeout 1s of a release nobody drives: exit %d, want %d", c, cli.ExitStillLive)
		}
		if !strings.Contains(out.String(), "goes on") {
			t.Errorf("status --watch --timeout does not say the release goes on")
		}
		if c, o, errs := f.aviary("rollback", r.ID, "--api-rate", "200"); c != 0 {
			t.Fatalf("rollback: exit %d\n%s\n%s", c, o, errs)
		}
	})
}
