package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"
)

const (
	workflowFile = "../examples/github-actions/aviary.yml"
	actionFile   = "../.github/actions/setup-aviary/action.yml"
)

// lint runs actionlint on files of a project (shellcheck too, when it is installed).
func lint(t *testing.T, root string, files ...string) []*actionlint.Error {
	t.Helper()
	var out bytes.Buffer
	opts := &actionlint.LinterOptions{WorkingDir: root}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = sc
	}
	l, err := actionlint.NewLinter(&out, opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := actionlint.NewProject(root)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.LintFiles(files, p)
	if err != nil {
		t.Fatal(err)
	}
	return errs
}

func TestWorkflowActionlintClean(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range lint(t, root, filepath.Join(root, "examples", "github-actions", "aviary.yml")) {
		t.Errorf("%s:%d:%d: %s [%s]", e.Filepath, e.Line, e.Column, e.Message, e.Kind)
	}
}

// The composite action, used as a workflow uses it: actionlint reads its metadata (inputs),
// and a use that leaves out the required version is caught.
func TestWorkflowSetupActionActionlintClean(t *testing.T) {
	src, err := os.ReadFile(actionFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		with  string
		clean bool
	}{
		{"        with:\n          version: v1.2.3\n", true},
		{"", false},
	} {
		dir := t.TempDir()
		for _, d := range []string{".github/workflows", ".github/actions/setup-aviary", ".git"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, ".github/actions/setup-aviary/action.yml"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		wf := filepath.Join(dir, ".github/workflows/use.yml")
		body := "on: push\njobs:\n  use:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: ./.github/actions/setup-aviary\n" + tc.with + "      - run: aviary version\n"
		if err := os.WriteFile(wf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		errs := lint(t, dir, wf)
		if tc.clean {
			for _, e := range errs {
				t.Errorf("%s:%d:%d: %s [%s]", e.Filepath, e.Line, e.Column, e.Message, e.Kind)
			}
		} else if len(errs) == 0 || !strings.Contains(errs[0].Message, "version") {
			t.Errorf("a use without version was not caught: %v", errs)
		}
	}
}

// workflow is the parts of a workflow file the tests read.
type workflow struct {
	Env  map[string]string `yaml:"env"`
	Jobs map[string]struct {
		If          string            `yaml:"if"`
		Environment string            `yaml:"environment"`
		Timeout     int               `yaml:"timeout-minutes"`
		Env         map[string]string `yaml:"env"`
		Concurrency struct {
			Group            string `yaml:"group"`
			CancelInProgress bool   `yaml:"cancel-in-progress"`
		} `yaml:"concurrency"`
		Steps []struct {
			Uses string `yaml:"uses"`
			Run  string `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

var pinned = regexp.MustCompile(`@[0-9a-f]{40}$`)

// What the workflow promises: the DynamoDB store, deploys never cancelled for a newer push and
// bounded in time, third-party actions pinned to commits, plans in the step summary.
func TestWorkflowShape(t *testing.T) {
	src, err := os.ReadFile(workflowFile)
	if err != nil {
		t.Fatal(err)
	}
	var wf workflow
	if err := yaml.Unmarshal(src, &wf); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(wf.Env["AVIARY_STORE"], "dynamodb://") {
		t.Errorf("the store is %q: CI needs the DynamoDB store", wf.Env["AVIARY_STORE"])
	}
	deploy, plan := wf.Jobs["deploy"], wf.Jobs["plan"]
	if deploy.Concurrency.Group == "" || deploy.Concurrency.CancelInProgress || deploy.Timeout == 0 || deploy.Environment == "" {
		t.Errorf("deploy: concurrency %+v, timeout %d, environment %q", deploy.Concurrency, deploy.Timeout, deploy.Environment)
	}
	if plan.Timeout == 0 {
		t.Error("plan has no timeout-minutes")
	}
	summary := false
	for _, job := range wf.Jobs {
		for _, s := range job.Steps {
			if s.Uses != "" && !strings.HasPrefix(s.Uses, "aviary-deploy/aviary/") && !pinned.MatchString(s.Uses) {
				t.Errorf("%s is not pinned to a commit", s.Uses)
			}
			if strings.Contains(s.Run, "${{") {
				t.Errorf("a run script interpolates an expression (pass it through env): %s", s.Run)
			}
			if strings.Contains(s.Run, "aviary plan") && strings.Contains(s.Run, "-o markdown >> \"$GITHUB_STEP_SUMMARY\"") {
				summary = true
			}
		}
	}
	if !summary {
		t.Error("no plan goes to the step summary")
	}
}
