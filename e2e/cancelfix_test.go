package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
)

// TestDetachWithoutTheControllerFunction: `controller:` is configured but its function was never
// installed: --detach exits 2 saying how to install it, and records nothing.
func TestDetachWithoutTheControllerFunction(t *testing.T) {
	f := canaryFleet(t, 2, "    controller: true\n")
	before := f.latest()
	f.stampAll("2")
	code, out, errs := f.aviary("deploy", "-e", "production", "--detach", "--api-rate", "200")
	if code != cli.ExitBadInput || !strings.Contains(errs, "aviary controller install -e production") {
		t.Fatalf("deploy --detach without the controller's function: exit %d, want %d saying to install it\n%s\n%s", code, cli.ExitBadInput, out, errs)
	}
	if r := f.latest(); r.ID != before.ID {
		t.Errorf("release %s was recorded (%s)", r.ID, r.Describe())
	}
}

// TestCancelWithoutTheControllerFunction: SIGINT mid-canary with `controller:` configured but no
// controller function: the release is not handed to no one; on_cancel (rollback) decides, and
// the deploy says why.
func TestCancelWithoutTheControllerFunction(t *testing.T) {
	f := canaryFleet(t, 3, "    controller: true\n")
	_, exited, stderr, r := f.startDeployAndSignal(t, "2", syscall.SIGINT, 0)
	code, took := exitCode(t, exited, time.Now())
	t.Logf("exit %d, %s after SIGINT\n%s", code, took, stderr)
	if code != cli.ExitRolledBack {
		t.Errorf("exit %d, want %d (rolled back)", code, cli.ExitRolledBack)
	}
	if !strings.Contains(stderr.String(), "aviary controller install -e production") {
		t.Errorf("stderr does not say the controller is missing and how to install it:\n%s", stderr)
	}
	f.rolledBackConsistently(t, r.ID)
}

// TestCancelHandsOverBeforeUploading: SIGINT while the new versions' artifacts are being put in
// S3, so slowly that the rest cannot be put there within the grace: the release is handed to the
// controller first (exit 8), and the deploy says loudly that the controller's publish will fail
// on the missing artifact and roll it back.
func TestCancelHandsOverBeforeUploading(t *testing.T) {
	f := canaryFleet(t, 3, "    controller: true\n")
	f.createController(t)
	// Each upload takes 10 s: not one fits the 9 s grace.
	if err := f.srv.SetFaults(sandbox.Faults{Latency: sandbox.Duration(10 * time.Second), Operations: []string{"PutObject"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.srv.SetFaults(sandbox.Faults{}) })
	cmd, exited, stderr, r := f.startDeployUntil("2", "publishing", func(r *release.Release) bool { return r.Phase == release.Publishing })
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, took := exitCode(t, exited, start)
	t.Logf("exit %d, %s after SIGINT\n%s", code, took, stderr)
	f.srv.SetFaults(sandbox.Faults{})
	if code != cli.ExitHandedOff {
		t.Errorf("exit %d, want %d (handed to the controller)", code, cli.ExitHandedOff)
	}
	f.handedOff(t, r.ID, "deploy cancelled: SIGINT")
	if !strings.Contains(stderr.String(), "are not all in S3") || !strings.Contains(stderr.String(), "roll the release back") {
		t.Errorf("stderr does not say that artifacts are missing and what the controller will do:\n%s", stderr)
	}
}
