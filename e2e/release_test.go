package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
	"github.com/aviary-deploy/aviary/store"
)

const canary = `      canary:
        - weight: 10%
          bake: 1s
        - weight: 50%
          bake: 1s`

var quick = sandbox.Options{UpdateDelay: 100 * time.Millisecond, ControlRate: -1}

// The story of seeds 001 and 002: a fleet whose aliases move together — created by the first
// release, shifted step by step by the next, promoted early, rolled back mid-step, and left alone
// when nothing changed.
func TestFleetReleases(t *testing.T) {
	f := newFleet(t, 3, quick, canary)

	// The first release creates every alias, at the new version.
	f.stampAll("1")
	code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200")
	if code != 0 {
		t.Fatalf("first deploy: exit %d\n%s\n%s", code, out, errs)
	}
	first := f.latest()
	for _, n := range f.names {
		if v, w := f.alias(n); v == "" || w != nil || f.served(n) != "1" {
			t.Errorf("%s after the first release: alias at %q %v, serving %q", n, v, w, f.served(n))
		}
	}
	auditChain(t, f.openStore(), first)

	// The second release is observed at every step: every alias at each configured weight.
	f.stampAll("2")
	var mu sync.Mutex
	observed := map[string][]string{}
	stop := make(chan struct{})
	look := func() {
		for _, n := range f.names {
			v, w := f.alias(n)
			state := v
			for extra, weight := range w {
				state += fmt.Sprintf("+%s@%g", extra, weight)
			}
			mu.Lock()
			if s := observed[n]; len(s) == 0 || s[len(s)-1] != state {
				observed[n] = append(s, state)
			}
			mu.Unlock()
		}
	}
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for {
			look()
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
		}
	}()
	code, out, errs = f.aviary("deploy", "-e", "production", "--api-rate", "200")
	close(stop)
	<-watching
	look()
	if code != 0 {
		t.Fatalf("second deploy: exit %d\n%s\n%s", code, out, errs)
	}
	second := f.latest()
	for i, n := range f.names {
		fn := second.Functions[i]
		want := []string{fn.Previous, fn.Previous + "+" + fn.New + "@0.1", fn.Previous + "+" + fn.New + "@0.5", fn.New}
		if got := observed[n]; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s went through %v, want %v", n, got, want)
		}
		if f.served(n) != "2" {
			t.Errorf("%s serves %q after promotion", n, f.served(n))
		}
	}
	auditChain(t, f.openStore(), second)

	// Promote --now skips a long bake and the remaining steps.
	f.stampAll("3")
	f.setBake("1h")
	done := make(chan int)
	go func() { code, _, _ := f.aviary("deploy", "-e", "production", "--api-rate", "200"); done <- code }()
	r := f.waitFor("the first step to bake", func(r *release.Release) bool {
		return r.Phase == release.Shifting && !r.StepStarted.IsZero() && r.Functions[0].CodeSha256 != second.Functions[0].CodeSha256
	})
	if code, out, errs := f.aviary("promote", r.ID, "--now", "--reason", "looks good"); code != 0 {
		t.Fatalf("promote: exit %d\n%s\n%s", code, out, errs)
	}
	if code := <-done; code != 0 {
		t.Fatalf("the promoted deploy exited %d", code)
	}
	for _, n := range f.names {
		if v, w := f.alias(n); w != nil || f.served(n) != "3" {
			t.Errorf("%s after promote --now: %s %v", n, v, w)
		}
	}

	// A rollback from mid-step restores every alias, and the deploy exits "rolled back".
	f.stampAll("4")
	go func() {
		code, _, _ := f.aviary("deploy", "-e", "production", "--api-rate", "200", "--weight", "25")
		done <- code
	}()
	r = f.waitFor("the first step to bake", func(r *release.Release) bool {
		return r.Phase == release.Shifting && !r.StepStarted.IsZero() && r.Steps[0].Weight == 0.25
	})
	for _, n := range f.names {
		if _, w := f.alias(n); len(w) != 1 {
			t.Fatalf("%s mid-step: weights %v", n, w)
		}
	}
	if code, out, errs := f.aviary("rollback", "-e", "production", "--reason", "error budget"); code != 0 {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, out, errs)
	}
	if code := <-done; code != cli.ExitRolledBack {
		t.Errorf("the rolled-back deploy exited %d, want %d", code, cli.ExitRolledBack)
	}
	rolled := f.latest()
	if rolled.Phase != release.RolledBack || !strings.Contains(rolled.Reason, "error budget") {
		t.Errorf("release %s: %s", rolled.ID, rolled.Describe())
	}
	for i, n := range f.names {
		if v, w := f.alias(n); v != rolled.Functions[i].Previous || w != nil || f.served(n) != "3" {
			t.Errorf("%s after rollback: alias at %s %v serving %q, want version %s", n, v, w, f.served(n), rolled.Functions[i].Previous)
		}
	}
	auditChain(t, f.openStore(), rolled)

	// Nothing changed since the last promoted release: no write at all.
	f.stampAll("3")
	f.srv.ResetRequests()
	code, out, errs = f.aviary("deploy", "-e", "production", "--api-rate", "200")
	if code != 0 || !strings.Contains(out, "Nothing to deploy") {
		t.Fatalf("unchanged deploy: exit %d\n%s\n%s", code, out, errs)
	}
	if w := writes(f.srv.Requests()); len(w) != 0 {
		t.Errorf("an unchanged redeploy wrote: %v", w)
	}

	// One function changed: only it is touched.
	f.stamp(f.names[1], "5")
	f.setBake("0s")
	f.srv.ResetRequests()
	code, out, errs = f.aviary("deploy", "-e", "production", "--api-rate", "200", "-o", "json")
	if code != 0 {
		t.Fatalf("one-function deploy: exit %d\n%s\n%s", code, out, errs)
	}
	var result struct {
		Outcome   string
		Functions []release.Function
	}
	if err := json.Unmarshal([]byte(out), &result); err != nil || result.Outcome != "promoted" || len(result.Functions) != 1 || result.Functions[0].Name != f.names[1] {
		t.Errorf("json result: %v %s", err, out)
	}
	// One code update, one alias update per step, one to promote.
	if got := writes(f.srv.Requests()); got["UpdateFunctionCode"] != 1 || got["UpdateAlias"] != 3 || len(got) != 2 {
		t.Errorf("writes for one changed function: %v", got)
	}

	// Status and history tell the story.
	code, out, _ = f.aviary("history", "-e", "production")
	if code != 0 || strings.Count(out, "shop-production-") != 5 || !strings.Contains(out, "rolled-back: rollback requested by e2e-test: error budget") {
		t.Errorf("history: exit %d\n%s", code, out)
	}
	code, out, _ = f.aviary("status", rolled.ID, "--events", "0")
	for _, want := range []string{"phase     rolled-back", "rolling-back → rolled-back", "rollback requested by e2e-test: error budget", "shifting → rolling-back"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// setBake rewrites the manifest's bake times.
func (f *fleet) setBake(d string) {
	path := filepath.Join(f.dir, "aviary.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		f.t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "bake:") {
			lines[i] = l[:strings.Index(l, "bake:")] + "bake: " + d
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// Bad input changes nothing: a bad manifest is refused before any AWS call; a plan problem (a
// missing function, an alias mid-way through another release, a held lock) before any write.
func TestBadInputChangesNothing(t *testing.T) {
	f := newFleet(t, 2, quick, "      canary:\n        - weight: 10%\n          bake: 0s")
	good, _ := os.ReadFile(filepath.Join(f.dir, "aviary.yaml"))
	for _, tc := range []struct{ name, from, to, want string }{
		{"typo", "strategy:", "stratgy:", `unknown field "stratgy" (did you mean "strategy"?)`},
		{"weight", "weight: 10%", "weight: 110%", "is outside 0–100%"},
		{"missing dir", "dir: functions/fn01", "dir: functions/nope", "functions/nope is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(f.dir, "aviary.yaml"), []byte(strings.Replace(string(good), tc.from, tc.to, 1)), 0o644)
			defer os.WriteFile(filepath.Join(f.dir, "aviary.yaml"), good, 0o644)
			f.srv.ResetRequests()
			code, _, errs := f.aviary("deploy", "-e", "production")
			if code != cli.ExitBadInput || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "aviary.yaml:") {
				t.Errorf("exit %d, stderr:\n%s", code, errs)
			}
			if n := len(f.srv.Requests()); n != 0 {
				t.Errorf("%d AWS calls for a bad manifest", n)
			}
			code, _, errs = f.aviary("validate")
			if code != cli.ExitBadInput || !strings.Contains(errs, tc.want) {
				t.Errorf("validate: exit %d, %s", code, errs)
			}
		})
	}
	if _, err := os.Stat(f.store); err == nil {
		t.Error("a bad manifest created the store")
	}

	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatalf("deploy: %d\n%s\n%s", code, out, errs)
	}
	f.stampAll("2")

	// An alias routing extra weight (another release mid-way, or a hand-made canary) is refused
	// unless --force.
	ctx := context.Background()
	v, _ := f.alias(f.names[0])
	pv, err := f.lambda.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(f.fn(f.names[0])), Description: aws.String("by hand")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(pv.Version) == v {
		// $LATEST has the same code as the alias: change it so a new version exists.
		f.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(f.fn(f.names[0])), Description: aws.String("x")})
		time.Sleep(300 * time.Millisecond)
		pv, _ = f.lambda.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(f.fn(f.names[0]))})
	}
	if _, err := f.lambda.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String(f.fn(f.names[0])), Name: aws.String("live"),
		RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{aws.ToString(pv.Version): 0.2}}}); err != nil {
		t.Fatal(err)
	}
	f.srv.ResetRequests()
	code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200")
	if code != cli.ExitBadInput || !strings.Contains(errs, "already routes 20% on version "+aws.ToString(pv.Version)) || !strings.Contains(errs, "--force") {
		t.Errorf("deploy over a foreign canary: exit %d\n%s\n%s", code, out, errs)
	}
	if w := writes(f.srv.Requests()); len(w) != 0 {
		t.Errorf("refused deploy wrote %v", w)
	}
	before := countReleases(t, f)

	// A held lock is reported with its holder and since when.
	st := f.openStore()
	if _, err := st.AcquireLock(ctx, store.Lock{Key: "shop/production", Holder: "shop-production-other", Owner: "elsewhere/1/x", ExpiresAt: time.Now().Add(time.Hour)}, time.Now(), ""); err != nil {
		t.Fatal(err)
	}
	code, _, errs = f.aviary("deploy", "-e", "production", "--api-rate", "200", "--force")
	if code != cli.ExitLocked || !strings.Contains(errs, "release shop-production-other holds the lock on shop/production since") {
		t.Errorf("deploy with the lock held: exit %d\n%s", code, errs)
	}
	if countReleases(t, f) != before {
		t.Error("a locked-out deploy created a release")
	}
	st.ReleaseLock(ctx, "shop/production", "elsewhere/1/x")

	// --force takes the foreign canary over.
	code, out, errs = f.aviary("deploy", "-e", "production", "--api-rate", "200", "--force")
	if code != 0 {
		t.Fatalf("deploy --force: %d\n%s\n%s", code, out, errs)
	}
	for _, n := range f.names {
		if _, w := f.alias(n); w != nil || f.served(n) != "2" {
			t.Errorf("%s after --force: %v, %q", n, w, f.served(n))
		}
	}

	// A function that does not exist stops the deploy before any write.
	if _, err := f.lambda.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(f.fn(f.names[1]))}); err != nil {
		t.Fatal(err)
	}
	f.stampAll("3")
	f.srv.ResetRequests()
	code, _, errs = f.aviary("deploy", "-e", "production", "--api-rate", "200")
	if code != cli.ExitBadInput || !strings.Contains(errs, "function shop-fn01-prod does not exist") {
		t.Errorf("deploy with a missing function: exit %d\n%s", code, errs)
	}
	if w := writes(f.srv.Requests()); len(w) != 0 {
		t.Errorf("refused deploy wrote %v", w)
	}
}

func countReleases(t *testing.T, f *fleet) int {
	rs, err := f.openStore().ListReleases(context.Background(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(rs)
}

// A common setup: Terraform created the alias on $LATEST. The first release pins it to a
// published version of the code it served before touching $LATEST, so a canary is possible and a
// rollback goes back to that code.
func TestAliasOnLatestIsPinnedFirst(t *testing.T) {
	f := newFleet(t, 2, quick, "      canary:\n        - weight: 10%\n          bake: 1h")
	ctx := context.Background()
	for _, n := range f.names {
		if _, err := f.lambda.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(f.fn(n)), Name: aws.String("live"), FunctionVersion: aws.String("$LATEST")}); err != nil {
			t.Fatal(err)
		}
	}
	f.stampAll("1")
	done := make(chan int)
	go func() { code, _, _ := f.aviary("deploy", "-e", "production", "--api-rate", "200"); done <- code }()
	r := f.waitFor("the canary to bake", func(r *release.Release) bool { return r.Phase == release.Shifting && !r.StepStarted.IsZero() })
	for i, n := range f.names {
		v, w := f.alias(n)
		fn := r.Functions[i]
		if !fn.PinnedFromLatest || v != fn.Previous || v == "$LATEST" || w[fn.New] != 0.1 {
			t.Errorf("%s mid-canary: alias %s %v, release %+v", n, v, w, fn)
		}
	}
	if code, _, errs := f.aviary("rollback", r.ID); code != 0 {
		t.Fatalf("rollback: %s", errs)
	}
	<-done
	for _, n := range f.names {
		if v, w := f.alias(n); v == "$LATEST" || w != nil || f.served(n) != "0" {
			t.Errorf("%s after rollback: %s %v serving %q, want the pinned version of stamp 0", n, v, w, f.served(n))
		}
	}
}
