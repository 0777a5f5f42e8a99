package cli

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/controller"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

// Nudges: a decision or a request recorded on a release that the environment's controller
// drives (Release.Controller) is acted on at the controller's next tick; so that it need not
// wait for the schedule, whoever records it asks the controller's function for a tick at once
// (controller.Nudge: an asynchronous Invoke naming the release). The CLI knows the function from
// the manifest (`controller: {function: NAME}`); `aviary serve` from --controller-function
// (AVIARY_CONTROLLER_FUNCTION), else the manifest. A nudge that fails is a warning: the schedule
// ticks anyway.

// Reasons for a nudge, in the controller's log.
const (
	nudgeDecision = "decision"
	nudgeRollback = "rollback requested"
	nudgePromote  = "promotion requested"
)

// nudge asks the controller of r's environment for a tick now, when the controller drives r;
// a failure is a warning on warn.
func nudge(ctx context.Context, cf clientFlags, m *manifest.Manifest, r *release.Release, reason string, warn io.Writer) {
	if r == nil || !r.Controller || r.Phase.Final() {
		return
	}
	var envm *manifest.Environment
	if m != nil {
		envm, _ = m.Environment(r.Environment)
	}
	fn := controllerFunction(envm)
	cfg, err := cf.config(ctx, r.Region)
	if err == nil {
		err = controller.Nudge(ctx, lambda.NewFromConfig(cfg), fn, controller.Event{Service: r.Service, Environment: r.Environment, Release: r.ID, Reason: reason})
	}
	if err != nil {
		fmt.Fprintf(warn, "Warning: the controller was not asked for a tick now (%s); its schedule picks release %s up at its next tick.\n", safe(err.Error()), safe(r.ID))
	}
}

// serveNudger is the dashboard's nudge (web.Config.Nudge): the function is --controller-function
// when given, else the manifest's for the release's environment (nil: no manifest names one, and
// no flag: no nudges). One Lambda client per region.
func serveNudger(cf clientFlags, m *manifest.Manifest, function string) func(context.Context, *release.Release, string) error {
	if function == "" && (m == nil || !anyController(m)) {
		return nil
	}
	var mu sync.Mutex
	clients := map[string]*lambda.Client{}
	return func(ctx context.Context, r *release.Release, reason string) error {
		fn := function
		if fn == "" {
			envm, err := m.Environment(r.Environment)
			if err != nil || envm.Controller == nil {
				return nil // not an environment of this manifest, or without a controller
			}
			fn = controllerFunction(envm)
		}
		mu.Lock()
		lc, ok := clients[r.Region]
		if !ok {
			cfg, err := cf.config(ctx, r.Region)
			if err != nil {
				mu.Unlock()
				return err
			}
			lc = lambda.NewFromConfig(cfg)
			clients[r.Region] = lc
		}
		mu.Unlock()
		return controller.Nudge(ctx, lc, fn, controller.Event{Service: r.Service, Environment: r.Environment, Release: r.ID, Reason: reason})
	}
}

// anyController says whether an environment of m has a controller.
func anyController(m *manifest.Manifest) bool {
	for _, e := range m.Environments {
		if e.Controller != nil {
			return true
		}
	}
	return false
}
