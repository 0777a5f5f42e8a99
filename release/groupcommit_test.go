package release_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

// Results are saved by group commit, yet each is in the store before its worker frees its place:
// with one function at a time, every publish finds the function before it recorded, and the
// audit trail holds one entry per function.
func TestEachResultStoredBeforeTheNextFunction(t *testing.T) {
	fx := setup(t, release.Step{Weight: 0.1, Bake: 10 * time.Millisecond})
	published := map[string]bool{}
	fx.fleet.fail = func(call, fn string) error {
		if call != "Publish" {
			return nil
		}
		r, err := fx.st.GetRelease(context.Background(), "rel-1")
		if err != nil {
			return err
		}
		for _, f := range r.Functions {
			if published[f.FunctionName] && f.New == "" {
				return fmt.Errorf("%s was published before %s but its version is not in the store", f.FunctionName, fn)
			}
		}
		published[fn] = true
		return nil
	}
	e := fx.engine(nil)
	e.Parallelism = 1
	r, err := e.Run(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != release.Promoted || len(published) != len(fns) {
		t.Fatalf("phase %s (%s); published %v", r.Phase, r.Reason, published)
	}
	evs, err := fx.st.Events(context.Background(), "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	perFunction := map[string]int{}
	for _, ev := range evs {
		if ev.Kind == release.EventFunction {
			perFunction[fmt.Sprint(ev.Data["function"])]++
		}
	}
	for _, fn := range fns {
		// publish, the step, the promotion
		if got, want := perFunction[fn], 3; got != want {
			t.Errorf("%s: %d entries in the trail, want %d", fn, got, want)
		}
	}
}
