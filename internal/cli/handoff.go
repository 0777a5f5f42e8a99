package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

// Handing a release to the environment's controller (`deploy --detach`, an interrupted deploy):
// the controller's function must exist (GetFunction: a detach without one exits 2 before
// anything is recorded; a cancel does what on_cancel says instead); the release's artifacts
// must be in S3, since the controller runs on Lambda without this machine's artifact cache (its
// engine's Upload only finds what the bucket holds); the release is marked as the controller's
// (release.Engine.HandOff, with its audit entry), this process lets go of its lock, and the
// controller is asked for a tick at once. The schedule ticks anyway: a trigger that fails costs
// at most one period, and is a warning.
//
// A detach uploads first (nothing is recorded if that fails); a cancel hands over first, within
// its grace, and uploads with the time left: a release handed to no one is worse than one whose
// publish fails on a missing artifact, which the controller's engine rolls back.

// tickRequest is the payload of the controller's immediate tick: an asynchronous Invoke
// (InvocationType Event) of its function. The controller drives every release it owns at each
// tick; the payload says which one made this tick worth running now, and why ("detach", "cancel").
type tickRequest struct {
	Environment string `json:"environment"`
	Release     string `json:"release"`
	Reason      string `json:"reason"`
}

// Reasons for an immediate tick.
const (
	tickDetach = "detach"
	tickCancel = "cancel"
)

// invoker is the part of *lambda.Client the trigger uses.
type invoker interface {
	Invoke(context.Context, *lambda.InvokeInput, ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// controllerAPI is the part of *lambda.Client a hand-off uses: whether the controller exists,
// and its trigger.
type controllerAPI interface {
	invoker
	GetFunction(context.Context, *lambda.GetFunctionInput, ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error)
}

var _ controllerAPI = (*lambda.Client)(nil)

// errNoControllerFunction says that the controller's function does not exist.
var errNoControllerFunction = errors.New("the controller's function does not exist")

// checkController reads the controller's function: errNoControllerFunction (wrapped) if it does
// not exist, another error if it could not be read (CI roles may lack lambda:GetFunction: the
// caller warns and goes on).
func checkController(ctx context.Context, api controllerAPI, function string) error {
	_, err := api.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(function)})
	var nf *lambdatypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("%w: no function %s", errNoControllerFunction, function)
	case err != nil:
		return fmt.Errorf("read the controller's function %s: %w", function, err)
	}
	return nil
}

// triggerTick asks the controller's function for a tick now, without waiting for it to run.
func triggerTick(ctx context.Context, inv invoker, function string, req tickRequest) error {
	payload, err := json.Marshal(req)
	if err != nil {
		return err
	}
	_, err = inv.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String(function), InvocationType: lambdatypes.InvocationTypeEvent, Payload: payload,
	})
	if err != nil {
		return fmt.Errorf("invoke the controller %s: %w", function, err)
	}
	return nil
}

// controllerInvoker builds the Lambda client that checks and triggers the controller, in region.
func (a awsFlags) controllerInvoker(ctx context.Context, region string) (controllerAPI, error) {
	cfg, err := a.config(ctx, region)
	if err != nil {
		return nil, err
	}
	return lambda.NewFromConfig(cfg), nil
}

// uploadAll makes sure every artifact of the release's functions is in the bucket, uploading it
// from the local cache when it is not.
func uploadAll(ctx context.Context, fleet release.Fleet, arts release.Artifacts, fns []release.Function, cache release.ArtifactSource) error {
	seen := map[string]bool{}
	for _, fn := range fns {
		if fn.New != "" || seen[fn.ArtifactKey] {
			continue // published already: the function has its code
		}
		if fn.ImageUri != "" {
			continue // an image function's code is in ECR: there is no artifact to upload
		}
		seen[fn.ArtifactKey] = true
		if err := fleet.Upload(ctx, arts, fn.ArtifactKey, cache); err != nil {
			return fmt.Errorf("upload %s: %w", fn.ArtifactKey, err)
		}
	}
	return nil
}

// handOff gives release id to the environment's controller for why, frees this process's lock
// if it holds it, and triggers a tick (a failure of which is a warning on warn). It returns the
// release as handed over.
func handOff(ctx context.Context, eng *release.Engine, inv invoker, ctl *manifest.Controller, id, why, reason string, warn io.Writer) (*release.Release, error) {
	r, err := handOver(ctx, eng, id, why)
	if err != nil {
		return r, err
	}
	trigger(ctx, inv, ctl, r, reason, warn)
	return r, nil
}

// handOver gives release id to the environment's controller for why, and frees this process's
// lock if it holds it. It returns the release as handed over.
func handOver(ctx context.Context, eng *release.Engine, id, why string) (*release.Release, error) {
	r, err := eng.HandOff(ctx, id, why)
	if err != nil {
		return nil, err
	}
	// Held by this process after Start (a detached deploy); already free after Run (a cancel).
	if err := eng.LetGo(ctx, r); err != nil {
		return r, fmt.Errorf("free the lock of %s/%s for the controller: %w", r.Service, r.Environment, err)
	}
	return r, nil
}

// trigger asks the controller for a tick for release r now; a failure (or no client: inv nil) is
// a warning on warn.
func trigger(ctx context.Context, inv invoker, ctl *manifest.Controller, r *release.Release, reason string, warn io.Writer) {
	if inv == nil {
		fmt.Fprintf(warn, "Warning: the controller %s was not asked for a tick now; its schedule picks release %s up at its next tick.\n", safe(ctl.Function), safe(r.ID))
		return
	}
	if err := triggerTick(ctx, inv, ctl.Function, tickRequest{Environment: r.Environment, Release: r.ID, Reason: reason}); err != nil {
		fmt.Fprintf(warn, "Warning: %s; its schedule picks release %s up at its next tick (`aviary controller status -e %s` shows its ticks).\n",
			safe(err.Error()), safe(r.ID), safe(r.Environment))
	}
}

// noController is why an environment without `controller:` cannot take a detached release.
func noController(envName string) error {
	return badInput("environment %s has no controller: a detached release needs one to drive it. Add `controller: true` "+
		"(or `controller: {function: NAME}`) to environments.%s in aviary.yaml and install it with `aviary controller install -e %s`; "+
		"or deploy without --detach, which drives the release from this process", envName, envName, envName)
}
