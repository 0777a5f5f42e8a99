package release_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

// A release whose artifact is in neither the bucket nor the engine's source (the controller has
// no local cache: an interrupted deploy that could not upload every artifact in its grace) is
// rolled back when its publish fails, having moved no alias: what `deploy` tells the user the
// controller will do.
func TestPublishWithAMissingArtifactRollsBack(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: time.Minute}, release.Step{Weight: 1})
	fx.fleet.fail = func(call, key string) error {
		if call == "Upload" && key == "k/shop-orders" {
			return errors.New("s3://b/k/shop-orders is missing and the local cache cannot supply it")
		}
		return nil
	}
	r, err := fx.engine(nil).Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.RolledBack || !strings.Contains(r.Reason, "k/shop-orders") {
		t.Fatalf("release at %s (%s), want rolled back for the missing artifact", r.Describe(), r.Reason)
	}
	for _, fn := range r.Functions {
		if fn.Weight != 0 {
			t.Errorf("%s was moved to %v", fn.FunctionName, fn.Weight)
		}
	}
}
