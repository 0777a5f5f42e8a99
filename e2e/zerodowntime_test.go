package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/sandbox"
)

// zdStrategy is the fleet's canary in the zero-downtime runs: two judged steps, then the gate
// (pre-approved unless AVIARY_PRE_APPROVE=false), then promotion.
const zdStrategy = "      canary:\n        - weight: 20%\n          bake: 2s\n        - weight: 50%\n          bake: 2s"

// zdEnvironment is the rest of production's block: health checks on 1-second metrics that judge
// each step (a step too quiet to judge is promoted after max_bake), and an approval gate.
const zdEnvironment = `    checks:
      errors: {alpha: 1%, detect: 10}
      metrics: {period: 1s}
      max_bake: 4s
      on_inconclusive: promote
    pre_approve: true
    approval: {}
`

// TestZeroDowntime sends steady traffic through every alias of a fleet while releases go
// through every path the machinery has — a canary promoted, a faulty canary rolled back by the
// health checks, rollbacks requested while publishing, mid-shift, mid-bake and at the gate, a
// promotion skipping the bake, a deploy killed mid-shift and resumed, and a prune — and counts
// every invocation by what came of it. No invocation may fail because of the machinery, no good
// version may fail, and the faulty canary's errors are the only errors.
func TestZeroDowntime(t *testing.T) {
	z := newZeroDowntime(t, 4, 25)
	defer z.printOnFailure()
	z.sequence()
	r := z.finish()
	var out strings.Builder
	r.print(&out)
	t.Logf("\n%s", out.String())
	z.check(r)
}

// BenchmarkZeroDowntime is TestZeroDowntime at scale: the release sequence repeats until
// AVIARY_ZD_INVOCATIONS invocations (default 1,000,000) went through AVIARY_ZD_FUNCTIONS aliases
// (default 5) at AVIARY_ZD_RATE invocations per second in all (default 500). It prints the
// invocations, the failures by cause, and p50/p99 by phase and by version.
//
//	go test ./e2e -run '^$' -bench ZeroDowntime -benchtime 1x -timeout 2h
func BenchmarkZeroDowntime(b *testing.B) {
	n := zdEnvInt(b, "AVIARY_ZD_FUNCTIONS", 5)
	rate := zdEnvFloat(b, "AVIARY_ZD_RATE", 500)
	total := int(zdEnvFloat(b, "AVIARY_ZD_INVOCATIONS", 1e6))
	z := newZeroDowntime(b, n, rate/float64(n))
	defer z.printOnFailure()
	b.ResetTimer()
	rounds := 0
	for z.tr.total() < total {
		z.sequence()
		rounds++
		fmt.Fprintf(os.Stderr, "round %d: %d invocations so far\n", rounds, z.tr.total())
	}
	r := z.finish()
	b.StopTimer()
	fmt.Fprintf(os.Stdout, "\n%d functions at %.0f invocations/s in all, %d rounds of the release sequence (%d releases; %d faulty canaries rolled back unjudged)\n", n, rate, rounds, z.releases, z.unjudged)
	r.print(os.Stdout)
	b.ReportMetric(float64(r.Invocations), "invocations")
	b.ReportMetric(float64(r.MachineryFailures()), "machinery-failures")
	z.check(r)
}

func zdEnvInt(tb testing.TB, name string, def int) int {
	return int(zdEnvFloat(tb, name, float64(def)))
}

func zdEnvFloat(tb testing.TB, name string, def float64) float64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		tb.Fatalf("%s=%q: want a positive number", name, s)
	}
	return v
}

// zeroDowntime is a fleet under steady traffic and the releases sent through it.
type zeroDowntime struct {
	t     testing.TB
	f     *fleet
	tr    *zdTraffic
	stamp int
	// releases counts the releases made under traffic.
	releases int
	// mustServe are the "fn:version"s that traffic must have reached: each new version that was
	// given a weight.
	mustServe map[string]bool
	// want is each function's version once the last promoted release is in place.
	want map[string]string
	// pruned is how many versions prune deleted.
	pruned int
	// printed says the report was printed (the run got to its end).
	printed bool
	// unjudged counts faulty canaries rolled back for too little traffic rather than caught.
	unjudged int
	// deploying is the running deploy process, closing exited when it has.
	deploying *exec.Cmd
	exited    chan struct{}
}

func newZeroDowntime(tb testing.TB, n int, ratePerAlias float64) *zeroDowntime {
	opts := judged
	f := newFleet(tb, n, opts, zdStrategy)
	f.appendManifest(zdEnvironment)
	z := &zeroDowntime{t: tb, f: f, stamp: 1, mustServe: map[string]bool{}, want: map[string]string{}}
	// The first release creates the aliases: there is no traffic to keep until it has.
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		tb.Fatalf("first release: exit %d\n%s\n%s", code, out, errs)
	}
	z.promoted(f.latest())
	z.tr = startZDTraffic(f, ratePerAlias)
	tb.Cleanup(func() { z.tr.stop() })
	z.tr.warmUp(ratePerAlias * float64(n))
	return z
}

// sequence is one round of releases, each a path through the machinery.
func (z *zeroDowntime) sequence() {
	defer z.step("sequence")()
	z.goodCanary()
	z.faultyCanary()
	z.rollbackWhilePublishing()
	z.rollbackMidShift()
	z.rollbackMidBake()
	z.promoteNow()
	z.rollbackAtGate()
	z.approveAtGate()
	z.killMidShiftThenResume()
	z.prune()
}

func (z *zeroDowntime) finish() *zdReport {
	// Traffic must reach what the last release promoted before the count ends.
	z.waitServed(z.want)
	z.tr.stop()
	z.printed = true
	return z.tr.report()
}

// printOnFailure prints the counts so far when the run stopped part way.
func (z *zeroDowntime) printOnFailure() {
	if !z.t.Failed() || z.tr == nil || z.printed {
		return
	}
	var out strings.Builder
	z.tr.report().print(&out)
	fmt.Fprintf(os.Stderr, "zero-downtime: the counts when the run stopped:\n%s", out.String())
}

// check asserts the run's outcome.
func (z *zeroDowntime) check(r *zdReport) {
	t := z.t
	t.Helper()
	if n := r.MachineryFailures(); n != 0 {
		t.Errorf("%d invocations failed because of the release machinery: %v", n, r.Machinery)
	}
	if n := r.ByCause[causeGoodError]; n != 0 {
		t.Errorf("%d function errors from good versions", n)
	}
	if n := r.ByCause[causeTransport]; n != 0 {
		t.Errorf("%d invocations got no answer (transport errors)", n)
	}
	if n := r.ByCause[causeNoReport]; n != 0 {
		t.Errorf("%d answers had no REPORT line in their tail log", n)
	}
	if n := r.Throttled(); n != 0 {
		// The release makes no call that throttles invocations; these are the sandbox's
		// execution environments not keeping up with a new version's cold starts.
		t.Errorf("%d invocations throttled by the sandbox at %d/s (see the table for the phases)", n, int(float64(r.Invocations)/r.Took.Seconds()))
	}
	if r.ByCause[causeFaulty] == 0 {
		t.Errorf("the faulty canary failed no invocation: did traffic reach it?")
	}
	for v := range z.mustServe {
		if r.Served[v] == 0 {
			t.Errorf("no traffic reached %s, which a release gave weight", v)
		}
	}
	for _, name := range z.f.names {
		if v, w := z.f.alias(name); v != z.want[name] || w != nil {
			t.Errorf("%s at the end: alias at %s with weights %v, want %s alone", name, v, w, z.want[name])
		}
	}
	if z.pruned == 0 {
		t.Errorf("prune deleted no version: the run did not show versions deleted under traffic")
	}
}

// promoted records a promoted release's versions as where the aliases must end.
func (z *zeroDowntime) promoted(r *release.Release) {
	if r.Phase != release.Promoted {
		z.t.Fatalf("release %s", r.Describe())
	}
	for _, fn := range r.Functions {
		z.want[fn.Name] = fn.New
	}
}

// deploy stamps every function with new code and starts `aviary deploy` as its own process; it
// returns the release once recorded, and a wait for the process's exit.
func (z *zeroDowntime) deploy(env []string, faulty string) (*release.Release, func() (int, string)) {
	z.t.Helper()
	z.stamp++
	z.releases++
	before := z.f.latest().ID
	z.tr.building(before)
	z.f.stampAll(strconv.Itoa(z.stamp))
	if faulty != "" {
		z.f.stampBad(faulty, strconv.Itoa(z.stamp))
	}
	cmd := exec.Command(built.aviary, "deploy", "-e", "production", "--api-rate", "200")
	cmd.Dir, cmd.Env = z.f.dir, append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		z.t.Fatal(err)
	}
	z.deploying = cmd
	exited := make(chan struct{})
	var code int
	go func() {
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		close(exited)
	}()
	z.exited = exited
	wait := func() (int, string) {
		select {
		case <-exited:
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
			<-exited
		}
		return code, out.String()
	}
	z.t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	r := z.poll("the release to be recorded", func(r *release.Release) bool { return r.ID != before }, wait)
	return r, wait
}

// waitRelease polls release id, the newest, until ok says so; it fails with the deploy's output
// if the release ends first.
func (z *zeroDowntime) waitRelease(id, what string, ok func(*release.Release) bool, wait func() (int, string)) *release.Release {
	z.t.Helper()
	return z.poll(what, func(r *release.Release) bool {
		if r.ID != id {
			z.t.Fatalf("waiting for %s of %s: the newest release is %s", what, id, r.ID)
		}
		if ok(r) {
			return true
		}
		if r.Phase.Final() {
			code, out := wait()
			z.t.Fatalf("waiting for %s: the release ended %s (deploy exit %d)\n%s", what, r.Describe(), code, out)
		}
		return false
	}, wait)
}

func (z *zeroDowntime) poll(what string, ok func(*release.Release) bool, wait func() (int, string)) *release.Release {
	z.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := z.f.newest(); err == nil && r != nil && ok(r) {
			return r
		}
		select {
		case <-z.exited:
			code, out := wait()
			z.t.Fatalf("waiting for %s: the deploy exited %d\n%s", what, code, out)
		case <-time.After(10 * time.Millisecond):
		}
	}
	z.deploying.Process.Kill()
	_, out := wait()
	z.t.Fatalf("timed out waiting for %s; the deploy said:\n%s", what, out)
	return nil
}

// ended waits for the deploy to exit with code and returns its release as it ended.
func (z *zeroDowntime) ended(id string, wait func() (int, string), want int) *release.Release {
	z.t.Helper()
	code, out := wait()
	if code != want {
		z.t.Fatalf("deploy of %s exited %d, want %d\n%s", id, code, want, out)
	}
	r := z.f.latest()
	if r.ID != id {
		z.t.Fatalf("the newest release is %s, not %s", r.ID, id)
	}
	return r
}

// gaveWeight records that traffic must reach each function's new version.
func (z *zeroDowntime) gaveWeight(r *release.Release) {
	for _, fn := range r.Functions {
		z.mustServe[fn.Name+":"+fn.New] = true
	}
}

// waitServed waits until traffic has reached each function's version in want.
func (z *zeroDowntime) waitServed(want map[string]string) {
	z.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		missing := ""
		for fn, v := range want {
			if z.tr.servedCount(fn, v) == 0 {
				missing = fn + ":" + v
			}
		}
		if missing == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	z.t.Fatalf("traffic never reached %v", want)
}

func newVersions(r *release.Release) map[string]string {
	m := map[string]string{}
	for _, fn := range r.Functions {
		m[fn.Name] = fn.New
	}
	return m
}

func (z *zeroDowntime) aviary(args ...string) string {
	z.t.Helper()
	code, out, errs := z.f.aviary(args...)
	if code != 0 {
		z.t.Fatalf("aviary %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// slowAlias holds every alias move (and publish) for d, so that a person or a kill can land
// while the release is moving aliases; 0 lifts it.
func (z *zeroDowntime) slow(d time.Duration, ops ...string) {
	z.t.Helper()
	faults := sandbox.Faults{}
	if d > 0 {
		faults = sandbox.Faults{Latency: sandbox.Duration(d), Services: []string{"lambda"}, Operations: ops}
	}
	if err := z.f.srv.SetFaults(faults); err != nil {
		z.t.Fatal(err)
	}
}

// step logs how long a part of the sequence took, and the traffic so far, to stderr (a
// benchmark's own log shows only at its end).
func (z *zeroDowntime) step(what string) func() {
	began := time.Now()
	return func() {
		if testing.Verbose() {
			fmt.Fprintf(os.Stderr, "zero-downtime: %s took %s, %d invocations so far\n", what, time.Since(began).Round(100*time.Millisecond), z.tr.total())
		}
	}
}

// A good canary goes through both steps, the pre-approved gate, and is promoted.
func (z *zeroDowntime) goodCanary() {
	defer z.step("goodCanary")()
	r, wait := z.deploy(nil, "")
	r = z.ended(r.ID, wait, 0)
	z.gaveWeight(r)
	z.promoted(r)
}

// A canary failing 30% of one function's invocations is caught by the health checks and every
// function rolls back. Only that version's errors are allowed.
func (z *zeroDowntime) faultyCanary() {
	defer z.step("faultyCanary")()
	bad := z.f.names[len(z.f.names)/2]
	// Judged or not, this canary must not be promoted: a step too quiet to judge (canaries
	// still starting on a busy machine) bakes on, then rolls back.
	z.f.replaceInManifest("max_bake: 4s", "max_bake: 30s")
	z.f.replaceInManifest("on_inconclusive: promote", "on_inconclusive: rollback")
	defer z.f.replaceInManifest("on_inconclusive: rollback", "on_inconclusive: promote")
	defer z.f.replaceInManifest("max_bake: 30s", "max_bake: 4s")
	r, wait := z.deploy(nil, bad)
	r = z.waitRelease(r.ID, "the faulty canary to publish", func(r *release.Release) bool { return r.Phase != release.Publishing && r.Phase != release.Planned }, wait)
	z.tr.expectFaulty(bad, fnOf(r, bad).New)
	r = z.ended(r.ID, wait, cli.ExitRolledBack)
	if r.Phase != release.RolledBack {
		z.t.Fatalf("the faulty canary: %s", r.Describe())
	}
	if !strings.Contains(r.Reason, "failed its health check") {
		z.unjudged++
		z.t.Logf("the faulty canary was rolled back unjudged: %s", r.Reason)
	}
	z.mustServe[bad+":"+fnOf(r, bad).New] = true
}

// A rollback requested while the new versions are being published: no alias has moved yet.
func (z *zeroDowntime) rollbackWhilePublishing() {
	defer z.step("rollbackWhilePublishing")()
	z.slow(time.Second, "PublishVersion")
	defer z.slow(0)
	r, wait := z.deploy(nil, "")
	r = z.waitRelease(r.ID, "publishing", func(r *release.Release) bool { return r.Phase == release.Publishing }, wait)
	z.aviary("rollback", r.ID, "--reason", "while publishing")
	z.ended(r.ID, wait, cli.ExitRolledBack)
}

// A rollback requested while the aliases move to the first step's weight.
func (z *zeroDowntime) rollbackMidShift() {
	defer z.step("rollbackMidShift")()
	z.slow(700*time.Millisecond, "UpdateAlias")
	defer z.slow(0)
	r, wait := z.deploy(nil, "")
	r = z.waitRelease(r.ID, "the first shift", func(r *release.Release) bool {
		return r.Phase == release.Shifting && r.StepStarted.IsZero() && r.Moving
	}, wait)
	time.Sleep(200 * time.Millisecond) // some alias moves in flight
	z.aviary("rollback", r.ID, "--reason", "mid-shift")
	z.ended(r.ID, wait, cli.ExitRolledBack)
}

// A rollback requested while the first step bakes, once traffic reached every new version.
func (z *zeroDowntime) rollbackMidBake() {
	defer z.step("rollbackMidBake")()
	z.longBake()
	defer z.shortBake()
	r, wait := z.deploy(nil, "")
	r = z.waitRelease(r.ID, "the first bake", func(r *release.Release) bool {
		return r.Phase == release.Shifting && !r.StepStarted.IsZero()
	}, wait)
	z.gaveWeight(r)
	z.waitServed(newVersions(r))
	z.aviary("rollback", r.ID, "--reason", "mid-bake")
	z.ended(r.ID, wait, cli.ExitRolledBack)
}

// A person promotes a baking release at once, skipping the rest of its steps.
func (z *zeroDowntime) promoteNow() {
	defer z.step("promoteNow")()
	z.longBake()
	defer z.shortBake()
	r, wait := z.deploy(nil, "")
	r = z.waitRelease(r.ID, "the first bake", func(r *release.Release) bool {
		return r.Phase == release.Shifting && !r.StepStarted.IsZero()
	}, wait)
	z.gaveWeight(r)
	z.aviary("promote", r.ID, "--now", "--reason", "looks good")
	z.promoted(z.ended(r.ID, wait, 0))
}

// A release that waits at its gate is rolled back there.
func (z *zeroDowntime) rollbackAtGate() {
	defer z.step("rollbackAtGate")()
	r, wait := z.deploy([]string{"AVIARY_PRE_APPROVE=false"}, "")
	r = z.waitRelease(r.ID, "the gate", func(r *release.Release) bool { return r.Phase == release.AwaitingApproval }, wait)
	z.gaveWeight(r)
	z.aviary("rollback", r.ID, "--reason", "at the gate")
	z.ended(r.ID, wait, cli.ExitRolledBack)
}

// A release that waits at its gate is approved there and promoted.
func (z *zeroDowntime) approveAtGate() {
	defer z.step("approveAtGate")()
	r, wait := z.deploy([]string{"AVIARY_PRE_APPROVE=false"}, "")
	r = z.waitRelease(r.ID, "the gate", func(r *release.Release) bool { return r.Phase == release.AwaitingApproval }, wait)
	z.gaveWeight(r)
	z.aviary("approve", r.ID, "--reason", "canary looks fine")
	z.promoted(z.ended(r.ID, wait, 0))
}

// A deploy SIGKILLed while it moves the aliases to the second step, then resumed to the end.
func (z *zeroDowntime) killMidShiftThenResume() {
	defer z.step("killMidShiftThenResume")()
	z.slow(700*time.Millisecond, "UpdateAlias")
	r, wait := z.deploy(nil, "")
	r = z.waitRelease(r.ID, "the second shift", func(r *release.Release) bool {
		return r.Phase == release.Shifting && r.Step == 1 && r.StepStarted.IsZero()
	}, wait)
	time.Sleep(200 * time.Millisecond) // some alias moves in flight
	if err := z.deploying.Process.Signal(syscall.SIGKILL); err != nil {
		z.t.Fatal(err)
	}
	if code, out := wait(); code != -1 {
		z.t.Fatalf("the deploy ended (exit %d) before it was killed:\n%s", code, out)
	}
	z.slow(0)
	z.gaveWeight(r)
	z.aviary("resume", r.ID)
	r = z.f.latest()
	z.promoted(r)
}

// prune deletes the versions nothing needs (the rolled-back ones, and promoted ones beyond the
// newest) while traffic flows.
func (z *zeroDowntime) prune() {
	defer z.step("prune")()
	out := z.aviary("prune", "-e", "production", "--keep", "1", "-o", "json")
	var doc struct {
		Totals struct{ Deleted int }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		z.t.Fatalf("prune -o json: %v\n%s", err, out)
	}
	z.pruned += doc.Totals.Deleted
}

// longBake makes every step bake an hour, for a person to act during it.
func (z *zeroDowntime) longBake() {
	z.f.setBake("1h")
	z.f.replaceInManifest("max_bake: 4s", "max_bake: 1h")
}

func (z *zeroDowntime) shortBake() {
	z.f.setBake("2s")
	z.f.replaceInManifest("max_bake: 1h", "max_bake: 4s")
}
