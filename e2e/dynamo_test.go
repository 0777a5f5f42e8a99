package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/internal/dynalite"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/dynamo"
)

var tableSeq atomic.Int64

// teamStore points the fleet at a fresh DynamoDB table on dynalite, created by `aviary store init`,
// as a team would (AWS_ENDPOINT_URL_DYNAMODB sends the store to dynalite while the rest goes to
// the sandbox).
func (f *fleet) teamStore(t testing.TB) store.Store {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", dynalite.Endpoint(t))
	table := fmt.Sprintf("aviary-e2e-%d", tableSeq.Add(1))
	t.Setenv("AVIARY_STORE", "dynamodb://"+table)
	code, out, errs := f.aviary("store", "init")
	if code != 0 || !strings.Contains(out, "Table "+table+" is active") {
		t.Fatalf("store init: %d\n%s\n%s", code, out, errs)
	}
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return dynamo.Open(dynamodb.NewFromConfig(cfg), table)
}

// Two `aviary deploy` processes race for one environment: exactly one proceeds; the other exits
// with "release R holds the lock since T" and changes nothing.
func TestTwoDeploysOneProceeds(t *testing.T) {
	f := newFleet(t, 2, quick, "      canary:\n        - weight: 10%\n          bake: 2s")
	st := f.teamStore(t)
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatalf("first release: %d\n%s\n%s", code, out, errs)
	}
	f.stampAll("2")
	type result struct {
		code   int
		stderr string
	}
	results := make([]result, 2)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(built.aviary, "deploy", "-e", "production", "--api-rate", "200")
			cmd.Dir, cmd.Env = f.dir, os.Environ()
			var errb bytes.Buffer
			cmd.Stderr = &errb
			<-start
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			results[i] = result{code, errb.String()}
		}()
	}
	close(start)
	wg.Wait()
	codes := []int{results[0].code, results[1].code}
	if !(codes[0] == 0 && codes[1] == cli.ExitLocked || codes[1] == 0 && codes[0] == cli.ExitLocked) {
		t.Fatalf("exit codes %v, want one 0 and one %d:\n%s\n%s", codes, cli.ExitLocked, results[0].stderr, results[1].stderr)
	}
	loser := results[0]
	if codes[0] == 0 {
		loser = results[1]
	}
	if !strings.Contains(loser.stderr, "holds the lock on shop/production since") {
		t.Errorf("the locked-out deploy said:\n%s", loser.stderr)
	}
	rs, err := st.ListReleases(context.Background(), store.Filter{Service: "shop", Environment: "production"})
	if err != nil || len(rs) != 2 || rs[0].Phase != release.Promoted {
		t.Errorf("releases after the race: %v %d", err, len(rs))
	}
	auditChain(t, st, rs[0])
}

// A deploy killed on one host holds the environment until its lease runs out; then a person on
// another host takes the release over (here, promoting it now) — not before.
func TestKilledHolderTakenOverAfterLease(t *testing.T) {
	f := newFleet(t, 2, quick, "      canary:\n        - weight: 10%\n          bake: 1h")
	st := f.teamStore(t)
	// A first release goes straight to promotion: the second has a canary to be killed in.
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatalf("first release: %d\n%s\n%s", code, out, errs)
	}
	f.stampAll("2")
	cmd := exec.Command(built.aviary, "deploy", "-e", "production", "--api-rate", "200")
	cmd.Dir = f.dir
	cmd.Env = append(os.Environ(), "AVIARY_HOST=ci-runner-a", "AVIARY_LOCK_LEASE=3s")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var r *release.Release
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		rs, err := st.ListReleases(context.Background(), store.Filter{Service: "shop", Environment: "production", Limit: 1})
		if err == nil && len(rs) == 1 && rs[0].Phase == release.Shifting && !rs[0].StepStarted.IsZero() {
			r = rs[0]
			break
		}
	}
	if r == nil {
		cmd.Process.Kill()
		t.Fatal("the deploy never reached its canary")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	lock, err := st.GetLock(context.Background(), "shop/production")
	if err != nil || lock == nil || lock.Holder != r.ID {
		t.Fatalf("lock after the kill: %+v %v", lock, err)
	}

	t.Setenv("AVIARY_HOST", "laptop-b")
	t.Setenv("AVIARY_ACTOR", "operator-b")
	code, out, errs := f.aviary("promote", r.ID, "--now", "--reason", "canary looks fine")
	if code != 0 || !strings.Contains(out, "lease until") || !strings.Contains(out, "Took over release "+r.ID) {
		t.Fatalf("promote from another host: %d\n%s\n%s", code, out, errs)
	}
	final, err := st.GetRelease(context.Background(), r.ID)
	if err != nil || final.Phase != release.Promoted {
		t.Fatalf("release after the takeover: %v %+v", err, final)
	}
	evs, err := st.Events(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Kind == release.EventTransition && e.Actor == "operator-b" && e.Time.Before(lock.ExpiresAt) {
			t.Errorf("operator-b acted at %s, before the dead owner's lease ended at %s: %s", e.Time, lock.ExpiresAt, e.Message)
		}
	}
	for _, n := range f.names {
		if _, w := f.alias(n); w != nil || f.served(n) != "2" {
			t.Errorf("%s after the takeover: weights %v, serving %q", n, w, f.served(n))
		}
	}
	auditChain(t, st, final)
}
