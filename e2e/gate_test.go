package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// receiver captures the generic webhook's notices.
type receiver struct {
	mu    sync.Mutex
	kinds []string
	last  map[string]map[string]any
	srv   *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{last: map[string]map[string]any{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("a notice that is not JSON: %s", b)
		}
		kind, _ := m["kind"].(string)
		rc.mu.Lock()
		rc.kinds = append(rc.kinds, kind)
		rc.last[kind] = m
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() (kinds []string, last map[string]map[string]any) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.kinds...), rc.last
}

// background starts `aviary ARGS` as its own process in the fleet's directory.
func (f *fleet) background(env []string, args ...string) (wait func() (int, string)) {
	f.t.Helper()
	cmd := exec.Command(built.aviary, args...)
	cmd.Dir, cmd.Env = f.dir, append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	return func() (int, string) {
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return code, out.String()
	}
}

func decisionEvents(t *testing.T, st store.Store, id string) (applied, late []release.Event) {
	t.Helper()
	evs, err := st.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Kind == release.EventDecision {
			if e.Data["tooLate"] == true {
				late = append(late, e)
			} else {
				applied = append(applied, e)
			}
		}
	}
	return applied, late
}

// Lower environments are pre-approved and go through the same machinery: the release
// waits at its gate, the system decides "approve", and the audit trail says so.
func TestPreApprovedStagingPassesTheGate(t *testing.T) {
	f := newFleet(t, 2, quick, "      canary:\n        - weight: 10%\n          bake: 1s")
	f.appendManifest("    approval: {}\n  staging:\n    function_name: \"{service}-{function}-prod\"\n    strategy:\n      canary:\n        - weight: 10%\n          bake: 1s\n    pre_approve: true\n    approval: {}\n")
	f.stampAll("1")
	code, out, errs := f.aviary("deploy", "-e", "staging")
	if code != 0 {
		t.Fatalf("deploy: %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "pre-approved by the manifest") {
		t.Errorf("the log does not say the gate was pre-approved:\n%s", out)
	}
	st := f.openStore()
	rs, err := st.ListReleases(context.Background(), store.Filter{Service: "shop", Environment: "staging", Limit: 1})
	if err != nil || len(rs) != 1 {
		t.Fatalf("%v %v", rs, err)
	}
	r := rs[0]
	if r.Phase != release.Promoted || len(r.Gates) != 1 || r.Gates[0].Decision == nil {
		t.Fatalf("release %s, gates %+v", r.Describe(), r.Gates)
	}
	d := r.Gates[0].Decision
	if d.Action != release.Approve || d.Via != release.ViaPreApprove || !strings.Contains(d.By, "pre-approved by the manifest") {
		t.Errorf("decision %+v", d)
	}
	applied, _ := decisionEvents(t, st, r.ID)
	if len(applied) != 1 || applied[0].Data["via"] != "pre-approve" || !strings.Contains(applied[0].Message, "approved by aviary (pre-approved by the manifest") {
		t.Fatalf("audit decisions %+v", applied)
	}
	auditChain(t, st, r)

	// AVIARY_PRE_APPROVE=false makes the same environment wait for a person.
	f.stampAll("2")
	wait := f.background([]string{"AVIARY_PRE_APPROVE=false"}, "deploy", "-e", "staging", "--api-rate", "200")
	var waiting *release.Release
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && waiting == nil; time.Sleep(20 * time.Millisecond) {
		rs, err := st.ListReleases(context.Background(), store.Filter{Service: "shop", Environment: "staging", Limit: 1})
		if err == nil && len(rs) == 1 && rs[0].ID != r.ID && rs[0].OpenGate() != nil {
			waiting = rs[0]
		}
	}
	if waiting == nil {
		code, out := wait()
		t.Fatalf("the release never waited at its gate: %d\n%s", code, out)
	}
	code, out, errs = f.aviary("approve", waiting.ID, "--reason", "checked the canary")
	if code != 0 {
		t.Fatalf("approve: %d\n%s\n%s", code, out, errs)
	}
	if code, out := wait(); code != 0 || !strings.Contains(out, "waiting for a decision") || !strings.Contains(out, "approved at the gate by e2e-test via cli: checked the canary") {
		t.Fatalf("the deploy: %d\n%s", code, out)
	}
}

// A production gate decided from the CLI: links printed and sent, the first decision wins, a
// later one is too late (exit 5); a rollback at the gate rolls the fleet back; notices go out.
func TestGateDecidedFromTheCLI(t *testing.T) {
	rc := newReceiver(t)
	f := newFleet(t, 2, quick, "      canary:\n        - weight: 20%\n          bake: 1s")
	f.replaceInManifest("service: shop\n", "service: shop\ndashboard: https://gate.example.com/\n")
	f.appendManifest("    approval:\n      timeout: 10m\n    notify:\n      webhook: " + rc.srv.URL + "/aviary\n")
	secret := "AVIARY_LINK_SECRET=e2e-secret-0123456789abcdef"
	t.Setenv("AVIARY_PRE_APPROVE", "true") // the first release: nothing to compare with
	t.Setenv("AVIARY_LINK_SECRET", "e2e-secret-0123456789abcdef")
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		t.Fatalf("first deploy: %d\n%s\n%s", code, out, errs)
	}
	t.Setenv("AVIARY_PRE_APPROVE", "")

	f.stampAll("2")
	wait := f.background([]string{secret}, "deploy", "-e", "production", "--api-rate", "200")
	r := f.waitFor("the gate", func(r *release.Release) bool { return r.OpenGate() != nil })
	for _, fn := range f.names {
		if v, w := f.alias(fn); len(w) != 1 || v == "" {
			t.Errorf("%s at the gate: %s %v, want the canary kept", fn, v, w)
		}
	}
	code, out, _ := f.aviary("status", r.ID)
	if code != 0 || !strings.Contains(out, "awaiting  a decision") || !strings.Contains(out, "decides itself at") {
		t.Errorf("status:\n%s", out)
	}
	code, out, errs := f.aviary("link", r.ID)
	if code != 0 || !strings.Contains(out, "https://gate.example.com/gate/approve?t=") || !strings.Contains(out, "https://gate.example.com/gate/rollback?t=") {
		t.Errorf("link: %d\n%s\n%s", code, out, errs)
	}
	// The webhook heard that the release waits, with its links.
	var awaiting map[string]any
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && awaiting == nil; time.Sleep(20 * time.Millisecond) {
		_, last := rc.got()
		awaiting = last["awaiting"]
	}
	if u, _ := awaiting["approveUrl"].(string); !strings.HasPrefix(u, "https://gate.example.com/gate/approve?t=") {
		t.Errorf("the awaiting notice: %v", awaiting)
	}

	code, out, errs = f.aviary("approve", r.ID)
	if code != 0 || !strings.Contains(out, "promoted") {
		t.Fatalf("approve: %d\n%s\n%s", code, out, errs)
	}
	if code, out := wait(); code != 0 || !strings.Contains(out, "approve:   https://gate.example.com/gate/approve?t=") {
		t.Fatalf("the deploy: %d\n%s", code, out)
	}
	code, _, errs = f.aviary("approve", r.ID)
	if code != 5 || !strings.Contains(errs, "too late") {
		t.Errorf("a second approval: %d %s", code, errs)
	}
	applied, late := decisionEvents(t, f.openStore(), r.ID)
	if len(applied) != 1 || len(late) != 1 || applied[0].Actor != "e2e-test" || late[0].Actor != "e2e-test" {
		t.Errorf("decisions %+v, late %+v", applied, late)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, last := rc.got(); last["promoted"] != nil {
			break
		}
	}
	kinds, _ := rc.got()
	if got := strings.Join(kinds, " "); !strings.Contains(got, "started") || !strings.Contains(got, "step") || !strings.Contains(got, "awaiting") || !strings.Contains(got, "promoted") {
		t.Errorf("notices %q", got)
	}

	// A rollback at the gate is the gate's decision, and the fleet goes back.
	f.stampAll("3")
	wait = f.background([]string{secret}, "deploy", "-e", "production", "--api-rate", "200")
	r3 := f.waitFor("the next gate", func(x *release.Release) bool { return x.ID != r.ID && x.OpenGate() != nil })
	code, out, errs = f.aviary("rollback", r3.ID, "--reason", "not today")
	if code != 0 {
		t.Fatalf("rollback: %d\n%s\n%s", code, out, errs)
	}
	if code, out := wait(); code != 3 {
		t.Fatalf("the deploy: %d (want 3, rolled back)\n%s", code, out)
	}
	final, err := f.openStore().GetRelease(context.Background(), r3.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := final.LastGate().Decision; final.Phase != release.RolledBack || d == nil || d.Action != release.DecideRollback || d.Reason != "not today" {
		t.Fatalf("release %s, decision %+v", final.Describe(), final.LastGate().Decision)
	}
	for _, fn := range f.names {
		if got := f.served(fn); got != "2" {
			t.Errorf("%s serves %q after the rollback, want 2", fn, got)
		}
	}
}

// Gate settings that cannot work are bad input, refused before anything changes: links that
// cannot be signed, a notice URL naming an unset variable, AVIARY_PRE_APPROVE that is not a bool.
func TestGateSettingsCheckedFirst(t *testing.T) {
	f := newFleet(t, 1, quick, "      canary:\n        - weight: 20%\n          bake: 1s")
	f.replaceInManifest("service: shop\n", "service: shop\ndashboard: https://gate.example.com\n")
	f.appendManifest("    approval: {}\n")
	f.stampAll("1")
	t.Setenv("AVIARY_LINK_SECRET", "")
	t.Setenv("AVIARY_PRE_APPROVE", "")
	code, _, errs := f.aviary("deploy", "-e", "production")
	if code != 2 || !strings.Contains(errs, "approval links cannot be signed: set AVIARY_LINK_SECRET") {
		t.Errorf("no secret: %d %s", code, errs)
	}
	t.Setenv("AVIARY_PRE_APPROVE", "maybe")
	code, _, errs = f.aviary("deploy", "-e", "production")
	if code != 2 || !strings.Contains(errs, `AVIARY_PRE_APPROVE="maybe": use true or false`) {
		t.Errorf("a bad AVIARY_PRE_APPROVE: %d %s", code, errs)
	}
	t.Setenv("AVIARY_PRE_APPROVE", "true")
	f.appendManifest("    notify:\n      slack: https://hooks.slack.example/services/${AVIARY_TEST_UNSET}\n")
	code, _, errs = f.aviary("deploy", "-e", "production")
	if code != 2 || !strings.Contains(errs, "set AVIARY_TEST_UNSET") {
		t.Errorf("an unset notice variable: %d %s", code, errs)
	}
	if n := countReleases(t, f); n != 0 {
		t.Errorf("%d releases recorded", n)
	}
	for _, name := range f.names {
		if v, _ := f.alias(name); v != "" {
			t.Errorf("%s has an alias: %s", name, v)
		}
	}
}
