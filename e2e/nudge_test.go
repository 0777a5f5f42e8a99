package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/dynalite"
	"github.com/aviary-deploy/aviary/internal/examplefn"
	"github.com/aviary-deploy/aviary/release"
)

// Issue 15's "a decision can trigger a tick at once", and `aviary controller install` without
// --role on a sandbox that has IAM. The controller is installed without a role: the install
// creates aviary-controller, trusting Lambda and EventBridge Scheduler, with `aviary iam-policy
// --controller` inline, and leaves it alone when run again. The scheduler's clock is frozen:
// its schedule never comes due, so whatever moves the release is a nudge. A detached release
// waits at its gate; `aviary approve --detach` records the decision and nudges the controller,
// which takes the release past its gate; then the schedule, its clock moved on, finishes it.
func TestControllerNudgedByADecision(t *testing.T) {
	opts := quick
	frozen := time.Now()
	opts.SchedulerClock = func() time.Time { return frozen }
	f := newFleet(t, 2, opts, "      canary:\n        - weight: 10%\n          bake: 1s\n        - weight: 50%\n          bake: 1s")
	f.appendManifest("    approval:\n      at_step: 0\n    controller: true\n")
	st := f.teamStore(t)
	ctx := context.Background()
	t.Setenv("AVIARY_PRE_APPROVE", "true")
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatalf("first release: %d\n%s\n%s", code, out, errs)
	}
	t.Setenv("AVIARY_PRE_APPROVE", "")
	arch := "x86_64"
	if runtime.GOARCH == "arm64" {
		arch = "arm64"
	}
	root, err := examplefn.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	install := []string{"controller", "install", "-e", "production", "--arch", arch, "--source", root,
		"--function-env", "AWS_ENDPOINT_URL_DYNAMODB=" + dynalite.Endpoint(t), "--function-env", "AVIARY_LOCK_LEASE=3s", "-o", "json"}
	type step struct{ Resource, Name, Action string }
	var doc struct {
		Role  string
		Steps []step
	}
	code, out, errs := f.aviary(install...)
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("install without --role: %d\n%s\n%s", code, out, errs)
	}
	if got, want := doc.Steps[0], (step{"role", "aviary-controller", "created"}); got != want {
		t.Errorf("install's first step: %+v, want %+v", got, want)
	}

	// The role: its trust, and its inline policy exactly `aviary iam-policy --controller`'s.
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ic := iam.NewFromConfig(cfg)
	role, err := ic.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("aviary-controller")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(role.Role.Arn) != doc.Role {
		t.Errorf("the role is %s, install says %s", aws.ToString(role.Role.Arn), doc.Role)
	}
	trust := decodePolicy(t, aws.ToString(role.Role.AssumeRolePolicyDocument))
	var services []any
	for _, s := range trust["Statement"].([]any) {
		st := s.(map[string]any)
		if st["Action"] == "sts:AssumeRole" && st["Effect"] == "Allow" {
			services = append(services, st["Principal"].(map[string]any)["Service"].([]any)...)
		}
	}
	if !reflect.DeepEqual(services, []any{"lambda.amazonaws.com", "scheduler.amazonaws.com"}) {
		t.Errorf("the role trusts %v", services)
	}
	inline, err := ic.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("aviary-controller"), PolicyName: aws.String("aviary-shop-production")})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs = f.aviary("iam-policy", "--controller", "-e", "production", "--account", "000000000000", "--region", "us-east-1")
	if code != 0 {
		t.Fatalf("iam-policy --controller: %s", errs)
	}
	if got, want := decodePolicy(t, aws.ToString(inline.PolicyDocument)), decodePolicy(t, out); !reflect.DeepEqual(got, want) {
		t.Errorf("the role's inline policy:\n%v\nwant iam-policy --controller's:\n%v", got, want)
	}

	// Run again: nothing changes.
	code, out, errs = f.aviary(install...)
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("install again: %d\n%s\n%s", code, out, errs)
	}
	for _, s := range doc.Steps {
		if s.Action != "unchanged" {
			t.Errorf("installed again, the %s %s was %s", s.Resource, s.Name, s.Action)
		}
	}

	// A detached release: the tick --detach asks for takes it to its gate (the schedule's clock
	// is frozen, so nothing else ticks).
	f.stampAll("2")
	if code, out, errs = f.aviary("deploy", "-e", "production", "--detach", "--api-rate", "200"); code != 0 {
		t.Fatalf("deploy --detach: %d\n%s\n%s", code, out, errs)
	}
	rs, err := st.ListReleases(ctx, release.Filter{Service: "shop", Environment: "production", Limit: 1})
	if err != nil || len(rs) != 1 || !rs[0].Controller {
		t.Fatalf("the detached release: %+v %v", rs, err)
	}
	id := rs[0].ID
	r := waitRelease(t, st, id, "the gate", func(r *release.Release) bool { return r.OpenGate() != nil })

	// Approved, detached: the approval's nudge alone takes it past the gate.
	if code, out, errs = f.aviary("approve", id, "--detach"); code != 0 || strings.Contains(errs, "Warning") {
		t.Fatalf("approve --detach: %d\n%s\n%s", code, out, errs)
	}
	r = waitRelease(t, st, id, "the nudged tick past the gate", func(r *release.Release) bool {
		return r.Phase == release.Shifting || r.Phase.Final()
	})
	if rep := f.srv.Scheduler.Tick(ctx); len(rep.Invoked) != 0 {
		t.Fatalf("the frozen schedule fired: %+v", rep)
	}
	if len(r.Gates) == 0 || r.Gates[0].Decision == nil || r.Gates[0].Decision.Action != release.Approve {
		t.Errorf("the gate: %+v", r.Gates)
	}

	// The schedule, its clock moved on, drives it to its end.
	for i := 0; i < 200 && !r.Phase.Final(); i++ {
		if _, err := f.srv.Scheduler.Advance(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the invocation is asynchronous
		if r, err = st.GetRelease(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if r.Phase != release.Promoted {
		t.Fatalf("the release ended %s: %s", r.Describe(), r.Reason)
	}
}

// waitRelease reads release id until ok says it is where it should be (the controller's
// invocations are asynchronous), or a minute has passed.
func waitRelease(t *testing.T, st interface {
	GetRelease(context.Context, string) (*release.Release, error)
}, id, what string, ok func(*release.Release) bool) *release.Release {
	t.Helper()
	var r *release.Release
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var err error
		if r, err = st.GetRelease(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		if ok(r) {
			return r
		}
	}
	t.Fatalf("no %s within a minute: release %s is %s", what, id, r.Describe())
	return nil
}

// decodePolicy reads a policy document, URL-encoded as IAM returns it, or not.
func decodePolicy(t *testing.T, doc string) map[string]any {
	t.Helper()
	if u, err := url.QueryUnescape(doc); err == nil {
		doc = u
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("a policy document: %v\n%s", err, doc)
	}
	return m
}
