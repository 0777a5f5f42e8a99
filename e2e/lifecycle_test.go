package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// While one deploy shifts traffic, a second deploy of the environment is locked out (exit 4,
// naming the holder) rather than told to pass --force, and changes nothing; a rollback from
// another shell is carried out by the running deploy, and says so.
func TestBusyEnvironmentIsLockedAndRollbackSaysWhoRolledBack(t *testing.T) {
	f := newFleet(t, 2, quick, "      canary:\n        - weight: 10%\n          bake: 1h")
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatalf("first release: %d\n%s\n%s", code, out, errs)
	}
	f.stampAll("2")
	cmd := exec.Command(built.aviary, "deploy", "-e", "production", "--api-rate", "200")
	cmd.Dir, cmd.Env = f.dir, os.Environ()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	st := f.openStore()
	var r *release.Release
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && r == nil; time.Sleep(50 * time.Millisecond) {
		rs, err := st.ListReleases(context.Background(), store.Filter{Service: "shop", Environment: "production", Limit: 1})
		if err == nil && len(rs) == 1 && rs[0].Baking() {
			r = rs[0]
		}
	}
	if r == nil {
		t.Fatalf("the deploy never reached its canary:\n%s", out.String())
	}

	f.stampAll("3")
	f.srv.ResetRequests()
	before := countReleases(t, f)
	code, stdout, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200")
	if code != cli.ExitLocked || !strings.Contains(errs, "release "+r.ID+" holds the lock on shop/production since") || strings.Contains(errs, "--force") {
		t.Errorf("a deploy while another shifts: exit %d\n%s\n%s", code, stdout, errs)
	}
	if w := writes(f.srv.Requests()); len(w) != 0 {
		t.Errorf("the locked-out deploy wrote %v", w)
	}
	if countReleases(t, f) != before {
		t.Error("the locked-out deploy created a release")
	}

	code, stdout, errs = f.aviary("rollback", r.ID, "--reason", "wrong build")
	if code != 0 || strings.Contains(stdout, "Took over") || !strings.Contains(stdout, "is driven by") || !strings.Contains(stdout, "rollback requested, it rolled back at") {
		t.Errorf("rollback from another shell: exit %d\n%s\n%s", code, stdout, errs)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != cli.ExitRolledBack {
		t.Errorf("the running deploy: %v\n%s", err, out.String())
	}
}
