package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/aviary-deploy/aviary/links"
	"github.com/aviary-deploy/aviary/manifest"
)

// Warnings for choices that are surely wrong, though not wrong enough to refuse: printed to
// stderr (stdout may carry JSON), and never with --quiet's silence, since they explain a surprise
// that comes later.

// inCI says whether this process runs in CI: CI=true (or 1), which GitHub Actions, GitLab CI,
// CircleCI and most others set.
func inCI() bool {
	ok, _ := strconv.ParseBool(os.Getenv("CI"))
	return ok
}

// warnEphemeralStore warns, in a command that writes releases, when the store is SQLite and the
// process runs in CI: an ephemeral runner starts each job with an empty file, so the history is
// lost and a lock held by one job is invisible to the next.
func warnEphemeralStore(w io.Writer, storeURL string) {
	if !inCI() || !strings.HasPrefix(storeURL, "sqlite:") {
		return
	}
	fmt.Fprintf(w, "aviary: warning: CI=true and the store is %s: an ephemeral CI runner loses that file after the job, and with it the release history and the locks that keep two jobs from releasing one environment at once; use a DynamoDB store (store: dynamodb://TABLE in the manifest, or AVIARY_STORE; aviary store init creates the table)\n", storeURL)
}

// warnGateWithoutLinks warns, at plan and deploy time, when env waits for approval and no link
// secret is configured: no approval links can be signed, so the release waits for
// `aviary approve` or the dashboard's buttons.
func warnGateWithoutLinks(w io.Writer, env *manifest.Environment) {
	a, err := approvalOf(env)
	if err != nil || a == nil || a.PreApprove {
		return
	}
	if secret, err := links.SecretFromEnv(); err != nil || secret != nil {
		return
	}
	fmt.Fprintf(w, "aviary: warning: %s waits for approval, and no link secret is configured (AVIARY_LINK_SECRET or AVIARY_LINK_SECRET_FILE): no approval links can be signed, so its releases wait for `aviary approve` or the dashboard's buttons (aviary serve with AVIARY_ADMIN_TOKEN)\n", env.Name)
}
