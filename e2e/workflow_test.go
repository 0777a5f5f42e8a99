package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// The example workflow's own shell steps, run with bash as a runner runs them, against the
// sandbox and a DynamoDB store on dynalite. The `uses:` steps are stood in for by the test:
// checkout by the fleet's directory, setup-aviary by the built binary on PATH,
// configure-aws-credentials by the sandbox's endpoint and credentials.

type ghWorkflow struct {
	Env  map[string]string `yaml:"env"`
	Jobs map[string]ghJob  `yaml:"jobs"`
}

type ghJob struct {
	Env   map[string]string `yaml:"env"`
	Steps []ghStep          `yaml:"steps"`
}

type ghStep struct {
	Name string            `yaml:"name"`
	If   string            `yaml:"if"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	Env  map[string]string `yaml:"env"`
}

func readWorkflow(t *testing.T) ghWorkflow {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "examples", "github-actions", "aviary.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf ghWorkflow
	if err := yaml.Unmarshal(src, &wf); err != nil {
		t.Fatal(err)
	}
	return wf
}

// ghContext is what the test's run knows of the github context.
var ghContext = map[string]string{
	"github.actor": "octocat", "github.run_id": "4242", "github.run_attempt": "1", "github.repository": "example/shop",
}

var expr = regexp.MustCompile(`\$\{\{\s*([a-z_.]+)\s*\}\}`)

// runner runs a job's steps as a GitHub runner would, in the fleet's directory.
type runner struct {
	t         *testing.T
	f         *fleet
	wf        ghWorkflow
	job       string
	summary   string // $GITHUB_STEP_SUMMARY
	ghEnv     string // $GITHUB_ENV
	failed    bool
	cancelled bool
}

func newRunner(t *testing.T, f *fleet, job string) *runner {
	dir := t.TempDir()
	r := &runner{t: t, f: f, wf: readWorkflow(t), job: job, summary: filepath.Join(dir, "summary.md"), ghEnv: filepath.Join(dir, "env")}
	if _, ok := r.wf.Jobs[job]; !ok {
		t.Fatalf("the workflow has no job %s", job)
	}
	for _, p := range []string{r.summary, r.ghEnv} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := exec.LookPath("jq"); err != nil {
		t.Fatal("the workflow's steps use jq, as GitHub's runners have it: install jq")
	}
	return r
}

// env is a step's environment: the process's (the sandbox's endpoint, credentials and region,
// the test's table), the workflow's, the job's and the step's env, what earlier steps wrote to
// $GITHUB_ENV, and the runner's own variables.
func (r *runner) env(s ghStep) []string {
	r.t.Helper()
	vars := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	keep := map[string]string{"AVIARY_STORE": os.Getenv("AVIARY_STORE"), "AWS_REGION": os.Getenv("AWS_REGION")}
	for _, m := range []map[string]string{r.wf.Env, r.wf.Jobs[r.job].Env, s.Env} {
		for k, v := range m {
			vars[k] = r.eval(v)
		}
	}
	if !strings.HasPrefix(vars["AVIARY_STORE"], "dynamodb://") {
		r.t.Fatalf("the workflow's store is %q, not DynamoDB", vars["AVIARY_STORE"])
	}
	// The workflow's table and region are the user's; the test's stand in for them (what
	// configure-aws-credentials would set comes from the sandbox).
	for k, v := range keep {
		vars[k] = v
	}
	if b, err := os.ReadFile(r.ghEnv); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				vars[k] = v
			}
		}
	}
	vars["PATH"] = filepath.Dir(built.aviary) + string(os.PathListSeparator) + os.Getenv("PATH")
	vars["GITHUB_STEP_SUMMARY"], vars["GITHUB_ENV"] = r.summary, r.ghEnv
	vars["GITHUB_RUN_ID"], vars["GITHUB_ACTIONS"], vars["CI"] = ghContext["github.run_id"], "true", "true"
	var out []string
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

// eval replaces the github context's expressions the workflow's env uses.
func (r *runner) eval(v string) string {
	r.t.Helper()
	return expr.ReplaceAllStringFunc(v, func(m string) string {
		name := expr.FindStringSubmatch(m)[1]
		val, ok := ghContext[name]
		if !ok {
			r.t.Fatalf("the test does not know %s", m)
		}
		return val
	})
}

// command is a step's script as the runner starts it (shell: bash).
func (r *runner) command(s ghStep) *exec.Cmd {
	script := filepath.Join(r.t.TempDir(), "step.sh")
	if err := os.WriteFile(script, []byte(s.Run), 0o644); err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
	cmd.Dir, cmd.Env = r.f.dir, r.env(s)
	return cmd
}

// runs says whether a step runs, given how the job went so far (if: as GitHub reads it, for
// the conditions the workflow uses).
func (r *runner) runs(s ghStep) bool {
	switch strings.TrimSpace(s.If) {
	case "":
		return !r.failed && !r.cancelled
	case "always()":
		return true
	}
	r.t.Fatalf("the test does not know the condition %q", s.If)
	return false
}

// steps runs the job's run steps from the one named from (all when ""), and returns their
// output.
func (r *runner) steps(from string) string {
	r.t.Helper()
	var log bytes.Buffer
	started := from == ""
	for _, s := range r.wf.Jobs[r.job].Steps {
		if s.Name == from {
			started = true
		}
		if !started || s.Run == "" || !r.runs(s) {
			continue
		}
		cmd := r.command(s)
		cmd.Stdout, cmd.Stderr = &log, &log
		fmt.Fprintf(&log, "::group::%s\n", s.Name)
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(&log, "step %q: %v\n", s.Name, err)
			r.failed = true
		}
	}
	return log.String()
}

func (r *runner) step(name string) ghStep {
	for _, s := range r.wf.Jobs[r.job].Steps {
		if s.Name == name {
			return s
		}
	}
	r.t.Fatalf("job %s has no step %q", r.job, name)
	return ghStep{}
}

func (r *runner) readSummary() string {
	b, err := os.ReadFile(r.summary)
	if err != nil {
		r.t.Fatal(err)
	}
	return string(b)
}

// newestIn is the newest release of production in the store.
func newestIn(t *testing.T, st store.Store) *release.Release {
	t.Helper()
	rs, err := st.ListReleases(context.Background(), store.Filter{Service: "shop", Environment: "production", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		return nil
	}
	return rs[0]
}

// A pull request's plan lands in the step summary; a push to main releases through the same
// steps, and the summary says where the release ended.
func TestWorkflowPlanAndDeploy(t *testing.T) {
	f := newFleet(t, 2, quick, "      canary:\n        - weight: 10%\n          bake: 1s")
	st := f.teamStore(t)
	f.stampAll("1")

	plan := newRunner(t, f, "plan")
	out := plan.steps("")
	if plan.failed {
		t.Fatalf("the plan job failed:\n%s", out)
	}
	summary := plan.readSummary()
	for _, want := range []string{"### Aviary plan: shop → production", "**2 functions change**", "| fn00 | `shop-fn00-prod` |"} {
		if !strings.Contains(summary, want) {
			t.Errorf("the plan's summary has no %q:\n%s", want, summary)
		}
	}
	if r := newestIn(t, st); r != nil {
		t.Fatalf("the plan made a release: %s", r.ID)
	}

	deploy := newRunner(t, f, "deploy")
	out = deploy.steps("")
	if deploy.failed {
		t.Fatalf("the deploy job failed:\n%s", out)
	}
	r := newestIn(t, st)
	if r == nil || r.Phase != release.Promoted {
		t.Fatalf("the release is %v, want promoted:\n%s", r, out)
	}
	if got, want := r.CreatedBy, "github:octocat/run-4242-1"; got != want {
		t.Errorf("the release is by %q, want %q", got, want)
	}
	for _, name := range f.names {
		if v, w := f.alias(name); v != r.Functions[0].New && name == r.Functions[0].Name || w != nil {
			t.Errorf("%s's alias: version %s, weights %v", name, v, w)
		}
	}
	summary = deploy.readSummary()
	for _, want := range []string{"### Aviary release `" + r.ID + "`: promoted", "| fn01 | `shop-fn01-prod` |"} {
		if !strings.Contains(summary, want) {
			t.Errorf("the deploy's summary has no %q:\n%s", want, summary)
		}
	}
	if !strings.Contains(out, "Release "+r.ID+" ended: promoted.") {
		t.Errorf("the roll-back step did not see the release ended:\n%s", out)
	}
}

// A cancelled run: the runner sends SIGINT to the deploy step's process (aviary itself, through
// exec). With the default on_cancel: rollback, aviary rolls its release back before the runner's
// SIGTERM and exits 3, and the job's always() steps find the release ended; with on_cancel:
// leave, aviary exits 9 with its canary in place and the lock free, and the job's roll-back step
// rolls the release back. Either way no canary is left behind.
func TestWorkflowCancelledDeployLeavesNoCanary(t *testing.T) {
	for _, tc := range []struct {
		name, onCancel string
		code           int
		said, stepSaid string
	}{
		{"on_cancel rollback", "", cli.ExitRolledBack, "SIGINT: rolling release %s back", "Release %s ended: rolled-back."},
		{"on_cancel leave", "    on_cancel: leave\n", cli.ExitLeft, "release %s is left at shifting", "Release %s was left at shifting: rolling it back."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, 2, quick, "      canary:\n        - weight: 10%\n          bake: 10m")
			st := f.teamStore(t)
			f.setManifest(tc.onCancel)
			// A first release, so that the cancelled one has versions to go back to.
			f.stampAll("1")
			first := newRunner(t, f, "deploy")
			f.setCanary(t, "0s")
			if out := first.steps(""); first.failed {
				t.Fatalf("the first release failed:\n%s", out)
			}
			before := map[string]string{}
			for _, name := range f.names {
				before[name], _ = f.alias(name)
			}
			f.setCanary(t, "10m")
			f.stampAll("2")

			run := newRunner(t, f, "deploy")
			cmd := run.command(run.step("Deploy"))
			var log bytes.Buffer
			cmd.Stdout, cmd.Stderr = &log, &log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(2 * time.Minute)
			for {
				r := newestIn(t, st)
				if r != nil && r.CreatedBy == "github:octocat/run-4242-1" && r.Phase == release.Shifting && r.Functions[0].Weight > 0 && r.Functions[1].Weight > 0 {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("the canary never took traffic:\n%s", log.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if _, w := f.alias(f.names[0]); w == nil {
				t.Fatalf("no canary weight before the cancel: the test shows nothing")
			}
			// The runner's cancel: SIGINT to the step's entry process.
			signalled := time.Now()
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			t.Logf("the deploy step exited (%v) %s after SIGINT", err, time.Since(signalled))
			if code := cmd.ProcessState.ExitCode(); code != tc.code {
				t.Errorf("the cancelled deploy step exited %d, want %d:\n%s", code, tc.code, log.String())
			}
			r := newestIn(t, st)
			if !strings.Contains(log.String(), fmt.Sprintf(tc.said, r.ID)) {
				t.Errorf("aviary did not say %q:\n%s", fmt.Sprintf(tc.said, r.ID), log.String())
			}

			run.cancelled = true
			out := run.steps("Summary")
			r = newestIn(t, st)
			if r.Phase != release.RolledBack {
				t.Fatalf("after the job's always() steps, the release is %s, want rolled-back:\n%s", r.Phase, out)
			}
			for _, name := range f.names {
				v, w := f.alias(name)
				if v != before[name] || w != nil {
					t.Errorf("%s's alias serves %s with weights %v, want %s alone", name, v, w, before[name])
				}
			}
			if !strings.Contains(out, fmt.Sprintf(tc.stepSaid, r.ID)) {
				t.Errorf("the roll-back step did not say %q:\n%s", fmt.Sprintf(tc.stepSaid, r.ID), out)
			}
			if s := run.readSummary(); !strings.Contains(s, "`"+r.ID+"`") {
				t.Errorf("the summary does not name the release:\n%s", s)
			}
			if b, _ := json.Marshal(r.Reason); !strings.Contains(string(b), "run-4242") {
				t.Errorf("the rollback's reason is %s", b)
			}
		})
	}
}

// setCanary sets the canary step's bake in the fleet's manifest.
func (f *fleet) setCanary(t *testing.T, bake string) {
	t.Helper()
	p := filepath.Join(f.dir, "aviary.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b = regexp.MustCompile(`bake: \S+`).ReplaceAll(b, []byte("bake: "+bake))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
