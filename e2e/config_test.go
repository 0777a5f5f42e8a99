package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/iampolicy"
	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// The secrets of this story: one in SSM as a SecureString, one in the deploying process's
// environment. Neither may reach the store, the plan or the release's record.
const (
	ssmSecret = "s3cr3t-from-ssm-7f1c"
	envSecret = "s3cr3t-from-env-92ad"
)

// configSmoke makes every new version answer a business request as the good flavour: a
// configuration that turns the function bad (HELLO_FLAVOR=bad) fails before any traffic moves.
const configSmoke = `
    checks:
      smoke:
        - payload: {}
          expect: {"$.flavor": "good"}
`

// A configuration is released like code: a changed environment variable publishes a new version
// that canaries (its invocations see the new value, the baseline's the old), a configuration that
// breaks the function is rolled back and the alias keeps serving the old one, nothing changed is
// no write, secrets never reach the store, bad input changes nothing, and a code change in one
// function and a configuration change in another move as one release.
func TestConfigurationReleases(t *testing.T) {
	f := newFleet(t, 2, quick, "      canary:\n        - weight: 50%\n          bake: 1h")
	f.appendManifest(configSmoke)
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	params := ssm.NewFromConfig(cfg)
	if _, err := params.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/shop/db/password"),
		Value: aws.String(ssmSecret), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHOP_API_TOKEN", envSecret)
	f.setEnvironment("fn00", "GREETING: one")

	// The first release sets the configuration and creates the aliases.
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		t.Fatalf("first deploy: exit %d\n%s\n%s", code, out, errs)
	}
	if got := f.env("fn00", "live"); got["GREETING"] != "one" || got["DB_PASSWORD"] != ssmSecret || got["API_TOKEN"] != envSecret {
		t.Fatalf("fn00's alias runs with %v", got)
	}

	t.Run("unchanged code and configuration write nothing", func(t *testing.T) {
		f.srv.ResetRequests()
		code, out, errs := f.aviary("deploy", "-e", "production")
		if code != 0 || !strings.Contains(out, "Nothing to deploy") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		if w := writes(f.srv.Requests()); len(w) != 0 {
			t.Errorf("an unchanged redeploy wrote: %v", w)
		}
	})

	t.Run("a configuration-only change canaries", func(t *testing.T) {
		f.setEnvironment("fn00", "GREETING: two")
		code, out, errs := f.aviary("plan", "-e", "production")
		if code != 0 || !strings.Contains(out, `environment.GREETING: "one" → "two"`) || !strings.Contains(out, "1 function change") {
			t.Fatalf("plan: exit %d\n%s\n%s", code, out, errs)
		}
		code, out, _ = f.aviary("plan", "-e", "production", "-o", "json")
		var plan struct {
			Functions []struct {
				Function      string
				Change        bool
				Configuration []release.FieldChange
			}
		}
		if err := json.Unmarshal([]byte(out), &plan); err != nil || code != 0 || len(plan.Functions) != 2 || len(plan.Functions[0].Configuration) != 1 || plan.Functions[1].Change {
			t.Errorf("plan -o json: exit %d, %v\n%s", code, err, out)
		}
		done := make(chan int)
		go func() { code, _, _ := f.aviary("deploy", "-e", "production"); done <- code }()
		r := f.waitFor("the canary step to bake", func(r *release.Release) bool {
			return r.Phase == release.Shifting && !r.StepStarted.IsZero()
		})
		if len(r.Functions) != 1 || r.Functions[0].Name != "fn00" {
			t.Fatalf("the release moves %+v, want fn00 alone", r.Functions)
		}
		fn := r.Functions[0]
		if got := f.env("fn00", fn.Previous)["GREETING"]; got != "one" {
			t.Errorf("the baseline (version %s) sees GREETING=%q, want one", fn.Previous, got)
		}
		if got := f.env("fn00", fn.New)["GREETING"]; got != "two" {
			t.Errorf("the canary (version %s) sees GREETING=%q, want two", fn.New, got)
		}
		seen := map[string]int{}
		for range 60 {
			seen[f.env("fn00", "live")["GREETING"]]++
		}
		if seen["one"] == 0 || seen["two"] == 0 || len(seen) != 2 {
			t.Errorf("60 invocations of the alias at 50%% saw %v, want both one and two", seen)
		}
		if f.codeSha("fn00", fn.Previous) != f.codeSha("fn00", fn.New) {
			t.Error("a configuration-only release changed the code")
		}
		if code, out, errs := f.aviary("promote", r.ID, "--now"); code != 0 {
			t.Fatalf("promote: exit %d\n%s\n%s", code, out, errs)
		}
		if code := <-done; code != 0 {
			t.Fatalf("deploy exited %d", code)
		}
		if got := f.env("fn00", "live")["GREETING"]; got != "two" {
			t.Errorf("after promotion the alias sees GREETING=%q", got)
		}
	})

	t.Run("a faulty configuration is rolled back", func(t *testing.T) {
		f.setEnvironment("fn00", "GREETING: three\n        HELLO_FLAVOR: bad")
		f.srv.ResetRequests()
		code, out, errs := f.aviary("deploy", "-e", "production")
		if code != cli.ExitRolledBack {
			t.Fatalf("exit %d, want %d (rolled back)\n%s\n%s", code, cli.ExitRolledBack, out, errs)
		}
		if got := writes(f.srv.Requests()); got["UpdateFunctionConfiguration"] != 1 || got["UpdateFunctionCode"] != 0 {
			t.Errorf("writes: %v, want one configuration update and no code update", got)
		}
		r := f.latest()
		v, w := f.alias("fn00")
		if v != r.Functions[0].Previous || w != nil {
			t.Errorf("the alias is at %s %v, want version %s alone", v, w, r.Functions[0].Previous)
		}
		// The previous version kept its configuration: the alias serves it.
		if got := f.env("fn00", "live"); got["GREETING"] != "two" || got["HELLO_FLAVOR"] != "" {
			t.Errorf("after rollback the alias runs with %v", got)
		}
		if got := f.env("fn00", r.Functions[0].New); got["HELLO_FLAVOR"] != "bad" {
			t.Errorf("the rolled-back version %s runs with %v", r.Functions[0].New, got)
		}
	})

	t.Run("secrets never reach the store", func(t *testing.T) {
		st := f.openStore()
		rs, err := st.ListReleases(context.Background(), store.Filter{Service: "shop", Environment: "production"})
		if err != nil || len(rs) < 3 {
			t.Fatalf("%d releases, %v", len(rs), err)
		}
		recorded, _ := json.Marshal(rs)
		if !bytes.Contains(recorded, []byte("{{ssm:/shop/db/password}}")) || !bytes.Contains(recorded, []byte("${SHOP_API_TOKEN}")) {
			t.Errorf("the releases do not record the configuration's template:\n%s", recorded)
		}
		files, _ := filepath.Glob(f.store + "*") // the database and its WAL
		files = append(files, filepath.Join(f.dir, ".aviary"))
		for _, secret := range []string{ssmSecret, envSecret} {
			if bytes.Contains(recorded, []byte(secret)) {
				t.Errorf("a release record holds %q", secret)
			}
			for _, file := range files {
				if b, err := os.ReadFile(file); err == nil && bytes.Contains(b, []byte(secret)) {
					t.Errorf("%s holds %q", file, secret)
				}
			}
		}
		_, out, _ := f.aviary("plan", "-e", "production", "-o", "json")
		_, text, _ := f.aviary("plan", "-e", "production")
		for _, secret := range []string{ssmSecret, envSecret} {
			if strings.Contains(out+text, secret) {
				t.Errorf("the plan shows %q", secret)
			}
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		f.setEnvironment("fn00", "GREETING: two")
		good, _ := os.ReadFile(filepath.Join(f.dir, "aviary.yaml"))
		for _, tc := range []struct{ name, from, to, want string }{
			{"unknown key", "      environment:", "      environmnet:", `functions.fn00.configuration.environmnet: unknown field "environmnet" (did you mean "environment"?)`},
			{"memory 50", "      environment:", "      memory: 50\n      environment:", "functions.fn00.configuration.memory: 50 is outside what Lambda accepts"},
			{"missing SSM parameter", "/shop/db/password", "/shop/db/nope", "functions.fn00.configuration.environment.DB_PASSWORD: SSM parameter /shop/db/nope does not exist"},
			{"missing variable", "${SHOP_API_TOKEN}", "${SHOP_UNSET_TOKEN}", "functions.fn00.configuration.environment.API_TOKEN: ${SHOP_UNSET_TOKEN} is not set"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				os.WriteFile(filepath.Join(f.dir, "aviary.yaml"), []byte(strings.Replace(string(good), tc.from, tc.to, 1)), 0o644)
				defer os.WriteFile(filepath.Join(f.dir, "aviary.yaml"), good, 0o644)
				before := len(f.releases())
				f.srv.ResetRequests()
				code, _, errs := f.aviary("deploy", "-e", "production")
				if code != cli.ExitBadInput || !strings.Contains(errs, tc.want) {
					t.Errorf("exit %d, want %d with %q; stderr:\n%s", code, cli.ExitBadInput, tc.want, errs)
				}
				if w := writes(f.srv.Requests()); len(w) != 0 {
					t.Errorf("writes: %v", w)
				}
				if after := len(f.releases()); after != before {
					t.Errorf("%d releases recorded, want %d", after, before)
				}
			})
		}
	})

	t.Run("a code change and a configuration change move as one release", func(t *testing.T) {
		f.setEnvironment("fn00", "GREETING: four")
		f.stamp("fn01", "2")
		done := make(chan int)
		go func() { code, _, _ := f.aviary("deploy", "-e", "production"); done <- code }()
		r := f.waitFor("the canary step to bake", func(r *release.Release) bool {
			return r.Phase == release.Shifting && !r.StepStarted.IsZero() && len(r.Functions) == 2
		})
		for _, n := range f.names {
			if _, w := f.alias(n); len(w) != 1 {
				t.Errorf("%s mid-step: weights %v, want the canary's", n, w)
			}
		}
		if code, out, errs := f.aviary("promote", r.ID, "--now"); code != 0 {
			t.Fatalf("promote: exit %d\n%s\n%s", code, out, errs)
		}
		if code := <-done; code != 0 {
			t.Fatalf("deploy exited %d", code)
		}
		r = f.latest()
		if len(r.Functions) != 2 || r.Phase != release.Promoted {
			t.Fatalf("release %s: %s with %d functions", r.ID, r.Phase, len(r.Functions))
		}
		if r.Functions[0].Configuration == nil || r.Functions[1].Configuration != nil {
			t.Errorf("fn00 should carry a configuration, fn01 none: %+v", r.Functions)
		}
		if got := f.env("fn00", "live")["GREETING"]; got != "four" {
			t.Errorf("fn00 sees GREETING=%q", got)
		}
		if got := f.served("fn01"); got != "2" {
			t.Errorf("fn01 serves stamp %q", got)
		}
	})
}

// setEnvironment gives a function a configuration block with the given variables besides the
// story's two secrets.
func (f *fleet) setEnvironment(name, vars string) {
	path := filepath.Join(f.dir, "aviary.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		f.t.Fatal(err)
	}
	s := string(b)
	head := "  " + name + ":\n    dir: functions/" + name + "\n"
	i := strings.Index(s, head)
	if i < 0 {
		f.t.Fatalf("no %s in the manifest", name)
	}
	rest := s[i+len(head):]
	if strings.HasPrefix(rest, "    configuration:\n") { // drop the old block
		j := strings.Index(rest, "\n  fn")
		if k := strings.Index(rest, "\nenvironments:"); j < 0 || (k >= 0 && k < j) {
			j = k
		}
		rest = rest[j+1:]
	}
	block := "    configuration:\n      environment:\n        " + vars + "\n" +
		"        DB_PASSWORD: \"{{ssm:/shop/db/password}}\"\n        API_TOKEN: \"${SHOP_API_TOKEN}\"\n"
	if err := os.WriteFile(path, []byte(s[:i]+head+block+rest), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// env invokes a function at a qualifier and returns the environment variables the story uses.
func (f *fleet) env(name, qualifier string) map[string]string {
	f.t.Helper()
	out, err := f.lambda.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(f.fn(name)), Qualifier: aws.String(qualifier),
		Payload: []byte(`{"action":"env","text":"GREETING,DB_PASSWORD,API_TOKEN,HELLO_FLAVOR"}`)})
	if err != nil {
		f.t.Fatal(err)
	}
	if out.FunctionError != nil {
		f.t.Fatalf("%s:%s: %s", name, qualifier, out.Payload)
	}
	var r struct{ Env map[string]string }
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		f.t.Fatal(err)
	}
	return r.Env
}

func (f *fleet) codeSha(name, qualifier string) string {
	out, err := f.lambda.GetFunctionConfiguration(context.Background(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(f.fn(name)), Qualifier: aws.String(qualifier)})
	if err != nil {
		f.t.Fatal(err)
	}
	return aws.ToString(out.CodeSha256)
}

func (f *fleet) releases() []*release.Release {
	st := f.openStore()
	rs, err := st.ListReleases(context.Background(), store.Filter{Service: "shop", Environment: "production"})
	if err != nil {
		f.t.Fatal(err)
	}
	return rs
}

// The policy `aviary iam-policy` prints allows every call a configuration release made: the
// configuration update on the configured function and the SSM reads of its parameter; a
// manifest without configuration grants neither.
func TestIAMPolicyCoversConfiguration(t *testing.T) {
	f := newFleet(t, 2, quick, "      all-at-once")
	code, out, errs := f.aviary("iam-policy", "-e", "production")
	if code != 0 || strings.Contains(out, "UpdateFunctionConfiguration") || strings.Contains(out, "ssm:") {
		t.Errorf("a manifest without configuration: exit %d, %s\n%s", code, errs, out)
	}
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ssm.NewFromConfig(cfg).PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/shop/db/password"),
		Value: aws.String(ssmSecret), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHOP_API_TOKEN", envSecret)
	f.setEnvironment("fn00", "GREETING: one")
	f.stampAll("1")
	f.srv.ResetRequests()
	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		t.Fatalf("deploy: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = f.aviary("iam-policy", "-e", "production")
	if code != 0 || !strings.Contains(errs, "kms:Decrypt") {
		t.Fatalf("iam-policy: exit %d, stderr %s", code, errs)
	}
	var p iampolicy.Policy
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, req := range f.srv.Requests() {
		if !strings.Contains(req.UserAgent, "app/aviary") || (req.Service != "ssm" && req.Operation != "UpdateFunctionConfiguration") {
			continue
		}
		action := iampolicy.Action(req.Service, req.Operation)
		resource := "arn:aws:lambda:us-east-1:000000000000:function:" + req.Resource
		if req.Service == "ssm" {
			resource = iampolicy.ParameterARN("aws", "us-east-1", "000000000000", req.Resource)
		}
		used[action] = true
		if !p.Allows(action, resource) {
			t.Errorf("the policy does not allow %s on %s", action, resource)
		}
		if p.Allows(action, "arn:aws:lambda:us-east-1:000000000000:function:"+f.fn("fn01")) {
			t.Errorf("the policy allows %s on fn01, which has no configuration", action)
		}
	}
	if !used["lambda:UpdateFunctionConfiguration"] || !used["ssm:GetParameter"] {
		t.Errorf("the release made %v; want UpdateFunctionConfiguration and ssm:GetParameter", used)
	}
}
