package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
)

// Handing a release to the environment's controller (`deploy --detach`, an interrupted deploy):
// its artifacts are put in S3 first, since the controller runs on Lambda without this machine's
// artifact cache (its engine's Upload only finds what the bucket holds); then the release is
// marked as the controller's (release.Engine.HandOff, with its audit entry), this process lets go
// of its lock, and the controller is asked for a tick at once. The schedule ticks anyway: a
// trigger that fails costs at most one period, and is a warning.

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

var _ invoker = (*lambda.Client)(nil)

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

// controllerInvoker builds the Lambda client that triggers the controller, in region.
func (a awsFlags) controllerInvoker(ctx context.Context, region string) (invoker, error) {
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
	r, err := eng.HandOff(ctx, id, why)
	if err != nil {
		return nil, err
	}
	// Held by this process after Start (a detached deploy); already free after Run (a cancel).
	if err := eng.LetGo(ctx, r); err != nil {
		return r, fmt.Errorf("free the lock of %s/%s for the controller: %w", r.Service, r.Environment, err)
	}
	if inv == nil {
		fmt.Fprintf(warn, "Warning: the controller %s was not asked for a tick now; its schedule picks release %s up at its next tick.\n", safe(ctl.Function), safe(id))
		return r, nil
	}
	if err := triggerTick(ctx, inv, ctl.Function, tickRequest{Environment: r.Environment, Release: r.ID, Reason: reason}); err != nil {
		fmt.Fprintf(warn, "Warning: %s; its schedule picks release %s up at its next tick (`aviary controller status` shows its ticks).\n", safe(err.Error()), safe(id))
	}
	return r, nil
}

// noController is why an environment without `controller:` cannot take a detached release.
func noController(envName string) error {
	return badInput("environment %s has no controller: a detached release needs one to drive it. Add `controller: true` "+
		"(or `controller: {function: NAME}`) to environments.%s in aviary.yaml and install it with `aviary controller install -e %s`; "+
		"or deploy without --detach, which drives the release from this process", envName, envName, envName)
}
