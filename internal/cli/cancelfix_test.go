package cli

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/aviary-deploy/aviary/release"
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
