package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/sqlite"
)

// exitOf is the exit code Main gives err.
func exitOf(err error) int {
	var silent silentExit
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &silent):
		return int(silent)
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return ExitBadInput
	}
	return ExitFailed
}

// TestSignalAfterTheEnd: a signal that comes as the release ends (Run returns it ended, with
// the context's error) is no failure: the deploy exits as the release ended, and is not treated
// as interrupted.
func TestSignalAfterTheEnd(t *testing.T) {
	for _, tc := range []struct {
		phase release.Phase
		want  int
	}{{release.Promoted, ExitOK}, {release.RolledBack, ExitRolledBack}} {
		t.Run(string(tc.phase), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var out, errs bytes.Buffer
			e := &env{ctx: ctx, stdout: &out, stderr: &errs}
			r := sample()
			r.Phase = tc.phase
			c := &deployCmd{outputFlags: outputFlags{Output: "text"}}
			err := c.ran(e, &errs, r, context.Canceled, func() error {
				t.Error("an ended release was taken as interrupted")
				return nil
			})
			if got := exitOf(err); got != tc.want {
				t.Errorf("exit %d (%v), want %d", got, err, tc.want)
			}
		})
	}
}

// goneStore has no release: it was deleted while --watch followed it.
type goneStore struct{ store.Store }

func (goneStore) Events(context.Context, string) ([]release.Event, error) { return nil, nil }
func (goneStore) GetRelease(context.Context, string) (*release.Release, error) {
	return nil, store.ErrNotFound
}

// TestWatchOfAReleaseThatIsGone: `status --watch` of a release that is no longer in the store
// exits 2, not 1 (which says the release failed).
func TestWatchOfAReleaseThatIsGone(t *testing.T) {
	var out, errs bytes.Buffer
	e := &env{ctx: t.Context(), stdout: &out, stderr: &errs}
	r := sample()
	r.Phase, r.Controller, r.Outbox = release.Shifting, true, nil
	c := &statusCmd{reportFlags: reportFlags{Output: "text"}}
	err := c.watch(e, goneStore{}, r)
	if got := exitOf(err); got != ExitBadInput {
		t.Errorf("exit %d (%v), want %d", got, err, ExitBadInput)
	}
}

// TestInterruptCause: the signal and its time come with the context's end, whether or not the
// command's own record of the signals has caught up: the grace is measured from the signal.
func TestInterruptCause(t *testing.T) {
	at := time.Now().Add(-3 * time.Second)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(&Interrupt{Signal: syscall.SIGTERM, At: at})
	in := &interrupts{} // has not seen the signal yet
	sig, got := in.cause(ctx)
	if sig != "SIGTERM" || !got.Equal(at) {
		t.Errorf("cause: %s at %s, want SIGTERM at %s", sig, got, at)
	}
}

// TestNotifyContext: a real SIGINT ends the context with its *Interrupt.
func TestNotifyContext(t *testing.T) {
	ctx, stop := NotifyContext(context.Background())
	defer stop()
	before := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the context did not end at SIGINT")
	}
	var i *Interrupt
	if !errors.As(context.Cause(ctx), &i) || i.Signal != os.Interrupt || i.At.Before(before) {
		t.Errorf("cause %v, want SIGINT's *Interrupt", context.Cause(ctx))
	}
}

// TestWatchSaysTheControllerMayNotRun: a controller's release that has not changed for three
// ticks' time gets one warning naming `aviary controller status`; one that moves does not.
func TestWatchSaysTheControllerMayNotRun(t *testing.T) {
	var log bytes.Buffer
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	w := watcher{log: &log, now: func() time.Time { return now }}
	r := sample()
	r.Phase, r.Controller, r.UpdatedAt = release.Shifting, true, now.Add(-time.Hour)
	for range 4 { // moves every minute
		w.stale(r)
		now = now.Add(time.Minute)
		r.UpdatedAt = r.UpdatedAt.Add(time.Second)
	}
	if log.Len() != 0 {
		t.Fatalf("a release that moves: %s", log.String())
	}
	for range 5 { // then stands still
		w.stale(r)
		now = now.Add(time.Minute)
	}
	if got := strings.Count(log.String(), "aviary controller status -e production"); got != 1 {
		t.Errorf("%d warnings, want 1:\n%s", got, log.String())
	}
}

type fakeController struct {
	fakeInvoker
	getErr error
}

func (f *fakeController) GetFunction(context.Context, *lambda.GetFunctionInput, ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error) {
	return &lambda.GetFunctionOutput{}, f.getErr
}

// TestCheckController: a missing controller function is errNoControllerFunction; a denied read
// is another error (the caller warns and goes on).
func TestCheckController(t *testing.T) {
	ctx := context.Background()
	if err := checkController(ctx, &fakeController{}, "aviary-controller"); err != nil {
		t.Errorf("an existing controller: %v", err)
	}
	missing := &fakeController{getErr: &lambdatypes.ResourceNotFoundException{Message: aws.String("Function not found")}}
	if err := checkController(ctx, missing, "aviary-controller"); !errors.Is(err, errNoControllerFunction) {
		t.Errorf("a missing controller: %v, want errNoControllerFunction", err)
	}
	denied := &fakeController{getErr: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}}
	if err := checkController(ctx, denied, "aviary-controller"); err == nil || errors.Is(err, errNoControllerFunction) {
		t.Errorf("a denied read: %v, want an error other than errNoControllerFunction", err)
	}
}

// savedThenCancelled saves a release, and then the signal comes: the client sees only the
// context's error.
type savedThenCancelled struct {
	store.Store
	cancel context.CancelFunc
}

func (s savedThenCancelled) CreateRelease(ctx context.Context, r *release.Release) error {
	if err := s.Store.CreateRelease(context.WithoutCancel(ctx), r); err != nil {
		return err
	}
	s.cancel()
	return ctx.Err()
}

// TestStartSavedDespiteTheSignal: a release CreateRelease saved as the signal came is found and
// returned, for the interrupted path (which rolls it back or hands it over), not left behind.
func TestStartSavedDespiteTheSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eng := newEngine(savedThenCancelled{Store: db, cancel: cancel}, nil, nil, "me", nil)
	r := &release.Release{Service: "shop", Environment: "production", Alias: "live", Steps: []release.Step{{Weight: 1}}}
	got, err := start(ctx, eng, r)
	if err != nil {
		t.Fatalf("start: %v, want the saved release", err)
	}
	if got == nil || got.ID != r.ID || got.Phase != release.Planned {
		t.Fatalf("start returned %+v, want release %s planned", got, r.ID)
	}
}
