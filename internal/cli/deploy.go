package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

type deployCmd struct {
	manifestFlags
	storeFlags
	awsFlags
	outputFlags
	Env   string `short:"e" required:"" placeholder:"ENV" help:"The environment to deploy to."`
	Force bool   `help:"Take over aliases that already carry extra weights (another release mid-way)."`
	// AllowUnrestorable is not --force: --force takes over aliases another release left weighted,
	// a different risk, and one should never imply the other.
	AllowUnrestorable bool   `name:"allow-unrestorable" help:"Deploy even when the artifact of a version this release would roll back to is missing from S3 and cannot be restored (see aviary doctor)."`
	Weight            string `env:"AVIARY_NEW_VERSION_WEIGHT" placeholder:"PERCENT" help:"Override the first step's weight on the new versions, such as 10 or 10%; an all-at-once strategy gains a first step at that weight."`
	Detach            bool   `help:"Record the release, put its artifacts in S3 and hand it to the environment's controller (controller: in aviary.yaml), then exit 0 with its id; aviary status RELEASE --watch follows it."`
	// CancelGrace bounds what an interrupted deploy does before it exits (see cancel.go).
	CancelGrace time.Duration `name:"cancel-grace" default:"9s" placeholder:"D" help:"On SIGINT or SIGTERM, how long from the signal the deploy has to roll its release back (on_cancel: rollback) or hand it to the controller; GitHub Actions kills a cancelled step 10s after its SIGINT."`
}

func (c *deployCmd) Run(e *env) error {
	in := watchInterrupts()
	defer in.stop()
	log := logWriter(e, c.outputFlags)
	m, err := c.manifestFlags.load()
	if err != nil {
		return err
	}
	if env, err := m.Environment(c.Env); err == nil && c.Detach && env.Controller == nil {
		return noController(c.Env)
	}
	if c.CancelGrace <= 0 {
		return badInput("--cancel-grace must be above 0")
	}
	warnEphemeralStore(e.stderr, c.storeFlags.url(m))
	st, err := c.storeFlags.open(e.ctx, m)
	if err != nil {
		return err
	}
	defer st.Close()
	// The lock first: a busy environment is reported as locked (naming its holder), whatever
	// phase its release is in, before the plan reads aliases that release may be moving.
	eng := newEngine(st, nil, nil, owner(), nil)
	if err := eng.CheckLock(e.ctx, m.Service, c.Env); err != nil {
		return lockedError(err)
	}
	p, err := prepare(e.ctx, c.manifestFlags, c.awsFlags, c.Env, c.Force, true, log)
	if err != nil {
		if lerr := eng.CheckLock(e.ctx, m.Service, c.Env); lerr != nil {
			return lockedError(lerr) // another release started meanwhile: that is why
		}
		if p != nil && !c.json() {
			printPlan(log, p)
		}
		return err
	}
	warnGateWithoutLinks(e.stderr, p.env)
	strategy := p.env.Strategy
	if c.Weight != "" {
		w, err := manifest.ParseWeight(c.Weight)
		if err != nil {
			return badInput("--weight (or AVIARY_NEW_VERSION_WEIGHT): %v", err)
		}
		strategy = strategy.Override(w)
	}
	fns := release.FunctionsOf(p.rows)
	if len(fns) == 0 {
		if c.json() {
			fmt.Fprintf(log, "Nothing to deploy: every alias %s of %s in %s already serves its artifact.\n", p.m.Alias, p.m.Service, p.env.Name)
			return writeJSON(e.stdout, &resultOutput{Outcome: "unchanged", Service: p.m.Service, Environment: p.env.Name, Functions: []functionOutput{}})
		}
		// The final result: printed even with --quiet.
		fmt.Fprintf(e.stdout, "Nothing to deploy: every alias %s of %s in %s already serves its artifact.\n", p.m.Alias, p.m.Service, p.env.Name)
		return nil
	}

	// Before the first write: every version this release would roll back to can be redeployed.
	if err := checkRollbackArtifacts(e.ctx, p, log, c.AllowUnrestorable); err != nil {
		return err
	}
	approval, err := approvalOf(p.env)
	if err != nil {
		return err
	}
	kit, err := newGateKit(p.m, p.env, st, log)
	if err != nil {
		return err
	}
	defer kit.close()
	r := &release.Release{
		Service: p.m.Service, Environment: p.env.Name,
		Alias: p.m.Alias, Region: p.region, Strategy: strategy.Name, Functions: fns,
		Artifacts: release.Artifacts{Bucket: p.m.Artifacts.Bucket, Prefix: p.m.Artifacts.Prefix},
		Force:     c.Force, Checks: p.checks, Approval: approval,
	}
	if p.env.Controller != nil && !p.env.Notify.Empty() {
		// The controller, which has no manifest, sends the notices of a release handed to it.
		r.Notify = &release.Notify{Slack: p.env.Notify.Slack, Webhook: p.env.Notify.Webhook, Dashboard: kit.base}
	}
	for _, s := range strategy.Steps {
		r.Steps = append(r.Steps, release.Step{Weight: s.Weight, Bake: s.Bake})
	}
	// prepare built every zip into the cache; the upload streams them from there.
	cache := artifact.Cache{Dir: p.m.Artifacts.Cache}
	eng.Fleet, eng.Artifacts, eng.Health = p.fleet, cache, p.health
	if c.Detach {
		return c.detach(e, eng, p, r, log)
	}
	if r, err = start(e.ctx, eng, r); err != nil {
		return lockedError(err)
	}
	fmt.Fprintf(log, "Release %s: %s to %s, %s\n", safe(r.ID), plural(len(fns), "function", "functions"), r.Environment, describeSteps(r.Steps))
	v := newView(log, e.color)
	eng.Observe = kit.announcer(v).observe
	final, err := eng.Run(e.ctx, r.ID)
	v.close()
	return c.ran(e, log, final, err, func() error { return c.interrupted(e, eng, p, r.ID, in) })
}

// start is eng.Start, which a signal may interrupt after CreateRelease saved the release but
// before its answer came: the client then sees the context's error alone. So, on a context
// error, the release is looked for (on a context that has not ended): recorded, it is returned
// for the caller to go the interrupted way (its context has ended); not recorded, the lock
// Start took is freed and nothing was changed.
func start(ctx context.Context, eng *release.Engine, r *release.Release) (*release.Release, error) {
	started, err := eng.Start(ctx, r)
	if err == nil || ctx.Err() == nil || r.ID == "" {
		return started, err
	}
	bg := context.WithoutCancel(ctx)
	if saved, gerr := eng.Store.GetRelease(bg, r.ID); gerr == nil {
		return saved, nil
	}
	_ = eng.Store.ReleaseLock(bg, release.LockKey(r.Service, r.Environment), eng.Owner)
	return nil, fmt.Errorf("interrupted before release %s was recorded: nothing was changed (%w)", r.ID, err)
}

// ran reports what Run made of the release. One that ended is reported as it ended (promoted:
// 0, rolled back: 3), whatever error came with it: a signal just after the end, or a lock that
// could not be freed (its lease runs out), changes nothing of the outcome. Interrupted before
// the end, Run stopped driving and freed the lock (nil final: the signal came before it could
// read the release, holding the lock Start took): interrupted does what the environment says.
func (c *deployCmd) ran(e *env, log io.Writer, final *release.Release, err error, interrupted func() error) error {
	if final != nil && final.Phase.Final() {
		if err != nil && e.ctx.Err() == nil {
			fmt.Fprintf(e.stderr, "Warning: release %s %s, but: %s\n", safe(final.ID), ended(final), safe(err.Error()))
		}
		return finish(e, c.outputFlags, log, final, nil)
	}
	if err != nil && e.ctx.Err() != nil {
		return interrupted()
	}
	return finish(e, c.outputFlags, log, final, err)
}

// detach records the release for the environment's controller to drive: its artifacts in S3
// first (the controller has no local cache, and nothing is recorded if they cannot be put
// there), then the release, handed over, the lock freed and a tick triggered.
func (c *deployCmd) detach(e *env, eng *release.Engine, p *prepared, r *release.Release, log io.Writer) error {
	ctl := p.env.Controller
	inv, err := c.controllerInvoker(e.ctx, p.region)
	if err != nil {
		return err
	}
	if err := checkController(e.ctx, inv, ctl.Function); errors.Is(err, errNoControllerFunction) {
		return badInput("%v: nothing was recorded. Install the controller with `aviary controller install -e %s`, or deploy without --detach", err, p.env.Name)
	} else if err != nil {
		fmt.Fprintf(e.stderr, "Warning: %s; handing the release to it anyway.\n", safe(err.Error()))
	}
	var bad usageError
	if err := checkControllerEnv(e.ctx, inv, ctl.Function, r.Functions); errors.As(err, &bad) {
		return err
	} else if err != nil {
		fmt.Fprintf(e.stderr, "Warning: %s; handing the release to it anyway (its publish fails if the controller lacks a variable the configuration reads).\n", safe(err.Error()))
	}
	if err := uploadAll(e.ctx, eng.Fleet, r.Artifacts, r.Functions, eng.Artifacts); err != nil {
		return fmt.Errorf("%w; nothing was recorded", err)
	}
	if r, err = start(e.ctx, eng, r); err != nil {
		return lockedError(err)
	}
	fmt.Fprintf(log, "Release %s: %s to %s, %s\n", safe(r.ID), plural(len(r.Functions), "function", "functions"), r.Environment, describeSteps(r.Steps))
	// Handed over even if ctx ended meanwhile: a recorded release nobody drives is worse.
	h, err := handOff(context.WithoutCancel(e.ctx), eng, inv, ctl, r.ID, "deploy --detach", tickDetach, e.stderr)
	if err != nil {
		return fmt.Errorf("release %s is recorded but could not be handed to the controller %s: %w; `aviary resume %s` drives it from here, `aviary rollback %s` ends it", r.ID, ctl.Function, err, r.ID, r.ID)
	}
	if c.json() {
		out := resultOf(h)
		out.Outcome = "detached"
		return writeJSON(e.stdout, out)
	}
	// The final result: printed even with --quiet.
	fmt.Fprintf(e.stdout, "Release %s is handed to the controller %s, which drives it from its next tick.\nFollow it: aviary status %s --watch\n", safe(h.ID), safe(ctl.Function), safe(h.ID))
	return nil
}

// finish reports where a release ended and maps it to the exit code.
func finish(e *env, o outputFlags, log io.Writer, r *release.Release, runErr error) error {
	if runErr != nil {
		var f followed
		if r != nil && !r.Phase.Final() && !errors.As(runErr, &f) {
			if errors.Is(runErr, e.ctx.Err()) || e.ctx.Err() != nil {
				runErr = fmt.Errorf("interrupted with release %s at %s: `aviary resume %s` continues it, `aviary rollback %s` ends it", r.ID, r.Describe(), r.ID, r.ID)
			} else {
				runErr = fmt.Errorf("release %s stopped at %s: %w (`aviary resume %s` continues it, `aviary rollback %s` ends it)", r.ID, r.Describe(), runErr, r.ID, r.ID)
			}
		}
		if o.json() && r != nil {
			_ = writeJSON(e.stdout, resultOf(r))
		}
		return runErr
	}
	if o.json() {
		if err := writeJSON(e.stdout, resultOf(r)); err != nil {
			return err
		}
	} else {
		// The final result: printed even with --quiet.
		color := phaseColor(r.Phase)
		if r.Unjudged != "" {
			color = "33" // promoted, but nobody's checks judged it: not green
		}
		fmt.Fprintf(e.stdout, "\nRelease %s %s\n", safe(r.ID), paint(e.color, e.stdout, color, safe(r.Describe())))
		functionTable(e.stdout, r.Functions)
	}
	return outcome(r)
}
