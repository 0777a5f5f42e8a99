package manifest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/aviary-deploy/aviary/manifest"
)

const good = `service: shop
alias: live
artifacts:
  bucket: shop-artifacts
  prefix: /releases/shop/
functions:
  api:
    build: go build -o $AVIARY_OUT/bootstrap ./cmd/api
  worker:
    build:
      command: make worker
      dir: worker
  static:
    dir: static
environments:
  staging:
    strategy: all-at-once
    pre_approve: true
  production:
    function_name: "{service}-{function}-prod"
    region: eu-west-1
    strategy:
      canary:
        - weight: 10%
          bake: 5m
        - weight: 50
          bake: 10m
  qa:
    strategy: Canary10Percent15Minutes
  perf:
    strategy: CodeDeployDefault.LambdaLinear10PercentEvery2Minutes
  lab:
    strategy:
      linear:
        step: 25%
        interval: 30s
`

func write(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "static"), 0o755)
	os.WriteFile(filepath.Join(dir, "built.zip"), []byte("zip"), 0o644)
	path := filepath.Join(dir, "aviary.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGoodManifest(t *testing.T) {
	m, err := manifest.Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if m.Service != "shop" || m.Alias != "live" || m.Artifacts.Bucket != "shop-artifacts" || m.Artifacts.Prefix != "releases/shop" {
		t.Errorf("manifest: %+v", m)
	}
	if len(m.Functions) != 3 || m.Functions[0].Name != "api" || m.Functions[1].Dir == "" || m.Functions[2].Build.Command != "make worker" ||
		!strings.HasSuffix(m.Functions[2].Build.Dir, "/worker") || m.Functions[0].Build.Command != "go build -o $AVIARY_OUT/bootstrap ./cmd/api" {
		t.Errorf("functions: %+v", m.Functions)
	}
	prod, _ := m.Environment("production")
	if got := m.FunctionName(prod, "api"); got != "shop-api-prod" {
		t.Errorf("production name = %s", got)
	}
	staging, _ := m.Environment("staging")
	if got := m.FunctionName(staging, "api"); got != "shop-api-staging" || !staging.PreApprove || len(staging.Strategy.Steps) != 0 {
		t.Errorf("staging: %s %+v", got, staging)
	}
	if staging.Retain.Releases != manifest.DefaultRetainReleases {
		t.Errorf("staging retains %d releases, want the default %d", staging.Retain.Releases, manifest.DefaultRetainReleases)
	}
	r, err := manifest.Load(write(t, strings.Replace(good, "    pre_approve: true\n", "    pre_approve: true\n    retain: {releases: 7}\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := r.Environment("staging"); e.Retain.Releases != 7 {
		t.Errorf("retain: {releases: 7} gives %d", e.Retain.Releases)
	}
	if staging.Controller != nil || staging.OnCancel != manifest.OnCancelRollback {
		t.Errorf("staging without controller or on_cancel: controller %+v, on_cancel %q", staging.Controller, staging.OnCancel)
	}
	for body, want := range map[string]manifest.Environment{
		"    controller: true\n": {Controller: &manifest.Controller{Function: manifest.DefaultControllerFunction}, OnCancel: "rollback"},
		"    controller: {function: ctl-prod}\n    on_cancel: leave\n": {Controller: &manifest.Controller{Function: "ctl-prod"}, OnCancel: "leave"},
		"    controller: false\n    on_cancel: rollback\n":             {OnCancel: "rollback"},
	} {
		r, err := manifest.Load(write(t, strings.Replace(good, "    pre_approve: true\n", "    pre_approve: true\n"+body, 1)))
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		e, _ := r.Environment("staging")
		if e.OnCancel != want.OnCancel || (e.Controller == nil) != (want.Controller == nil) || e.Controller != nil && *e.Controller != *want.Controller {
			t.Errorf("%q: controller %+v, on_cancel %q; want %+v, %q", body, e.Controller, e.OnCancel, want.Controller, want.OnCancel)
		}
	}
	for env, want := range map[string][]manifest.Step{
		"production": {{Weight: 0.1, Bake: 5 * time.Minute}, {Weight: 0.5, Bake: 10 * time.Minute}},
		"qa":         {{Weight: 0.1, Bake: 15 * time.Minute}},
		"perf": {{0.1, 2 * time.Minute}, {0.2, 2 * time.Minute}, {0.3, 2 * time.Minute}, {0.4, 2 * time.Minute}, {0.5, 2 * time.Minute},
			{0.6, 2 * time.Minute}, {0.7, 2 * time.Minute}, {0.8, 2 * time.Minute}, {0.9, 2 * time.Minute}},
		"lab": {{0.25, 30 * time.Second}, {0.5, 30 * time.Second}, {0.75, 30 * time.Second}},
	} {
		e, err := m.Environment(env)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Strategy.Steps) != len(want) {
			t.Errorf("%s: steps %+v, want %+v", env, e.Strategy.Steps, want)
			continue
		}
		for i := range want {
			if d := e.Strategy.Steps[i].Weight - want[i].Weight; d > 1e-9 || d < -1e-9 || e.Strategy.Steps[i].Bake != want[i].Bake {
				t.Errorf("%s step %d: %+v, want %+v", env, i, e.Strategy.Steps[i], want[i])
			}
		}
	}
	if _, err := m.Environment("prod"); err == nil || !strings.Contains(err.Error(), "lab, perf, production, qa, staging") {
		t.Errorf("unknown environment: %v", err)
	}
	// The first step's weight can be overridden (seed 001's NEW_VERSION_WEIGHTAGE).
	if s := prod.Strategy.Override(0.25); s.Steps[0].Weight != 0.25 || s.Steps[1].Weight != 0.5 || prod.Strategy.Steps[0].Weight != 0.1 {
		t.Errorf("override: %+v (original %+v)", s, prod.Strategy)
	}
	if s := staging.Strategy.Override(1); len(s.Steps) != 1 || s.Steps[0].Weight != 1 {
		t.Errorf("override of all-at-once: %+v", s)
	}
}

// Bad manifests fail with every problem, each at its line and field.
func TestBadManifests(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want []string // "line: field: text" fragments
	}{
		{"not yaml", "service: [shop\n", []string{"aviary.yaml:1:0: not valid YAML"}},
		{"empty", "", []string{"the manifest is empty"}},
		{"missing everything", "alias: live\n", []string{
			"1:1: service: is required", "1:1: artifacts: is required", "1:1: functions: is required", "1:1: environments: is required"}},
		{"typo and unknown", strings.Replace(good, "alias: live", "alais: live\ncolour: blue", 1), []string{
			`2:1: alais: unknown field "alais" (did you mean "alias"?)`, `3:1: colour: unknown field "colour" (known: service, alias, store, dashboard, artifacts, functions, environments)`}},
		{"bad bucket", strings.Replace(good, "bucket: shop-artifacts", "bucket: Shop_Artifacts", 1), []string{
			`4:11: artifacts.bucket: "Shop_Artifacts" is not an S3 bucket name`}},
		{"function with two sources", strings.Replace(good, "    dir: static", "    dir: static\n    zip: built.zip", 1), []string{
			"14:5: functions.static: needs exactly one of zip"}},
		{"missing zip", strings.Replace(good, "    dir: static", "    zip: nowhere.zip", 1), []string{
			"14:10: functions.static.zip: nowhere.zip is not a file"}},
		{"weight out of range", strings.Replace(good, "weight: 50", "weight: 150", 1), []string{
			"production.strategy.canary[1].weight: 150 is outside 0–100%"}},
		{"bad bake", strings.Replace(good, "bake: 10m", "bake: ten minutes", 1), []string{
			`27:17: environments.production.strategy.canary[1].bake: "ten minutes" is not a duration`}},
		{"unknown preset", strings.Replace(good, "Canary10Percent15Minutes", "Canary10PercentSometimes", 1), []string{
			`29:15: environments.qa.strategy: unknown strategy "Canary10PercentSometimes"`}},
		{"missing strategy", strings.Replace(good, "    strategy: all-at-once\n", "", 1), []string{
			"17:5: environments.staging.strategy: is required"}},
		{"bad placeholder and name", strings.Replace(good, `"{service}-{function}-prod"`, `"{svc}-{function}-prod!"`, 1), []string{
			"environments.production.function_name: unknown placeholder {svc}",
			`environments.production.function_name: gives function api the name "{svc}-api-prod!", which Lambda does not accept`}},
		{"linear without interval", strings.Replace(good, "        interval: 30s\n", "", 1), []string{
			"environments.lab.strategy.linear.interval: is required"}},
		{"pre_approve not a bool", strings.Replace(good, "pre_approve: true", "pre_approve: maybe", 1), []string{
			`18:18: environments.staging.pre_approve: must be true or false, not the value "maybe"`}},
		{"canary going down", strings.Replace(good, "weight: 10%", "weight: 60%", 1), []string{
			"26:19: environments.production.strategy.canary[1].weight: 50% after 60%: each step must put more traffic on the new version"}},
		{"canary step at 100%", strings.Replace(good, "weight: 50", "weight: 100", 1), []string{
			"26:19: environments.production.strategy.canary[1].weight: 100% is not a canary step"}},
		{"canary preset at 100%", strings.Replace(good, "Canary10Percent15Minutes", "Canary100Percent15Minutes", 1), []string{
			"29:15: environments.qa.strategy: Canary100Percent15Minutes: the canary weight must be between 1 and 99 percent"}},
		{"retain zero", strings.Replace(good, "    pre_approve: true\n", "    pre_approve: true\n    retain: {releases: 0}\n", 1), []string{
			"environments.staging.retain.releases: must be at least 1"}},
		{"retain not a number", strings.Replace(good, "    pre_approve: true\n", "    pre_approve: true\n    retain: {releases: few}\n", 1), []string{
			`environments.staging.retain.releases: "few" is not a whole number`}},
		{"image with configuration", strings.Replace(good, "    dir: static\n", "    image: shop/static:v1\n    configuration: {memory: 256}\n", 1), []string{
			"functions.static.configuration: is not supported yet on an image function"}},
		{"on_cancel unknown", strings.Replace(good, "    pre_approve: true\n", "    pre_approve: true\n    on_cancel: ignore\n", 1), []string{
			`environments.staging.on_cancel: "ignore" is neither rollback`}},
		{"controller bad name", strings.Replace(good, "    pre_approve: true\n", "    pre_approve: true\n    controller: {function: a b}\n", 1), []string{
			`environments.staging.controller.function: "a b" is not a Lambda function name`}},
		{"retain typo", strings.Replace(good, "    pre_approve: true\n", "    pre_approve: true\n    retain: {release: 2}\n", 1), []string{
			"environments.staging.retain.release"}},
		{"second document", good + "---\nservice: other\n", []string{
			"aviary.yaml:37:1: a second YAML document (after ---)"}},
		{"second document not YAML", good + "---\nservice: [other\n", []string{
			"aviary.yaml:37:0: not valid YAML: line 37"}},
		{"dir outside", strings.Replace(good, "    dir: static", "    dir: ../../..", 1), []string{
			"14:10: functions.static.dir: ../../.. is outside the manifest's directory"}},
		{"alias in itself", strings.Replace(good, "alias: live", "alias: live\ncolour: &c [*c]", 1), []string{
			"3:13: the alias *c is inside the node it names"}},
		{"duplicate function", strings.Replace(good, "  static:\n    dir: static", "  static:\n    dir: static\n  api:\n    dir: static", 1), []string{
			"functions.api: appears twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write(t, tc.body)
			_, err := manifest.Load(path)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := strings.ReplaceAll(err.Error(), path, "aviary.yaml")
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("problems lack %q:\n%s", w, msg)
				}
			}
			var me *manifest.Error
			if tc.name != "empty" && (!asError(err, &me) || len(me.Problems) < len(tc.want)) {
				t.Errorf("want at least %d problems, got %v", len(tc.want), err)
			}
		})
	}
}

func asError(err error, me **manifest.Error) bool {
	e, ok := err.(*manifest.Error)
	*me = e
	return ok
}

// The JSON Schema editors use agrees with the parser: it accepts the good manifest and the
// example fleet, and rejects structurally bad ones.
func TestSchema(t *testing.T) {
	var doc any
	if err := json.Unmarshal(manifest.Schema, &doc); err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("aviary.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("aviary.schema.json")
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	check := func(body string) error {
		var y any
		if err := yaml.Unmarshal([]byte(body), &y); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(y)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return sch.Validate(inst)
	}
	fleet, err := os.ReadFile("../examples/fleet/aviary.yaml")
	if err != nil {
		t.Fatal(err)
	}
	retained := strings.Replace(good, "    pre_approve: true\n", "    pre_approve: true\n    retain: {releases: 5}\n", 1)
	controlled := strings.Replace(good, "    pre_approve: true\n", "    pre_approve: true\n    controller: {function: ctl}\n    on_cancel: leave\n", 1)
	for name, body := range map[string]string{"good": good, "checked": checked, "gated": gated, "retained": retained, "controlled": controlled, "configured": configured, "examples/fleet": string(fleet)} {
		if err := check(body); err != nil {
			t.Errorf("the schema rejects %s: %v", name, err)
		}
	}
	for name, body := range map[string]string{
		"unknown field":      strings.Replace(good, "alias: live", "alais: live", 1),
		"two sources":        strings.Replace(good, "    dir: static", "    dir: static\n    zip: x.zip", 1),
		"weight above 100":   strings.Replace(good, "weight: 50", "weight: 150", 1),
		"canary step at 100": strings.Replace(good, "weight: 50", "weight: 100", 1),
		"canary step 100%":   strings.Replace(good, "weight: 50", `weight: "100%"`, 1),
		"canary preset 100":  strings.Replace(good, "Canary10Percent15Minutes", "Canary100Percent15Minutes", 1),
		"unknown preset":     strings.Replace(good, "Canary10Percent15Minutes", "Canary10PercentSometimes", 1),
		"bad bake":           strings.Replace(good, "bake: 10m", "bake: ten minutes", 1),
		"missing strategy":   strings.Replace(good, "    strategy: all-at-once\n", "", 1),
		"pre_approve string": strings.Replace(good, "pre_approve: true", "pre_approve: maybe", 1),
		"checks typo":        strings.Replace(checked, "max_bake: 10m", "max_bak: 10m", 1),
		"checks policy":      strings.Replace(checked, "on_inconclusive: gate", "on_inconclusive: shrug", 1),
		"on_timeout":         strings.Replace(gated, "on_timeout: approve", "on_timeout: wait", 1),
		"notify typo":        strings.Replace(gated, "webhook:\n", "webhok:\n", 1),
		"retain zero":        strings.Replace(good, "    pre_approve: true\n", "    pre_approve: true\n    retain: {releases: 0}\n", 1),
		"configuration only": strings.Replace(configured, "    dir: static\n", "", 1),
		"memory 50":          strings.Replace(configured, "memory: 512", "memory: 50", 1),
		"configuration typo": strings.Replace(configured, "memory: 512", "memroy: 512", 1),
		"reserved variable":  strings.Replace(configured, "GREETING: hello", "AWS_REGION: x", 1),
		"bad layer":          strings.Replace(configured, "layer:otel:7", "layer:otel", 1),
	} {
		if err := check(body); err == nil {
			t.Errorf("the schema accepts a manifest with %s", name)
		}
	}
}

func TestParseWeight(t *testing.T) {
	for in, want := range map[string]float64{"10": 0.1, "10%": 0.1, "12.5%": 0.125, " 100 % ": 1} {
		if got, err := manifest.ParseWeight(in); err != nil || got != want {
			t.Errorf("ParseWeight(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-5", "101", "ten", ""} {
		if _, err := manifest.ParseWeight(in); err == nil {
			t.Errorf("ParseWeight(%q) accepted", in)
		}
	}
}

// A trailing --- starts an empty document: nothing is ignored, so it is accepted. Anchors and
// aliases that reuse settings are accepted too.
func TestAcceptedShapes(t *testing.T) {
	reuse := strings.Replace(good, "    strategy: Canary10Percent15Minutes", "    strategy: &canary\n      canary: [{weight: 5%, bake: 1m}, {weight: 20%}]", 1)
	reuse = strings.Replace(reuse, "    strategy: CodeDeployDefault.LambdaLinear10PercentEvery2Minutes", "    strategy: *canary", 1)
	for name, body := range map[string]string{"trailing ---": good + "---\n", "leading ---": "---\n" + good, "anchors": reuse} {
		t.Run(name, func(t *testing.T) {
			m, err := manifest.Load(write(t, body))
			if err != nil {
				t.Fatal(err)
			}
			if name == "anchors" {
				perf, _ := m.Environment("perf")
				if got, want := perf.Strategy.Describe(), "5% for 1m0s, 20% for 0s, then 100%"; got != want {
					t.Errorf("perf's strategy through an alias: %s, want %s", got, want)
				}
			}
		})
	}
}

// bomb is a manifest whose aliases nest levels deep, each level nine times the one below: ten
// levels expand to 9^10 (3.5 billion) nodes from under a kilobyte.
func bomb(levels int) string {
	var b strings.Builder
	b.WriteString(good)
	b.WriteString("x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, "x%d: &x%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*x%d, ", i-1), 9), ", "))
	}
	return b.String()
}

// A YAML bomb is refused from its shape, without expanding it: the expansion of ten levels
// would take minutes of CPU, so a parse that expanded it would not finish.
func TestAliasBomb(t *testing.T) {
	body := bomb(10)
	if len(body) > 2000 {
		t.Fatalf("the bomb is %d bytes", len(body))
	}
	path := write(t, body)
	_, err := manifest.Load(path)
	var me *manifest.Error
	if !errors.As(err, &me) {
		t.Fatalf("Load = %v, want a *manifest.Error", err)
	}
	if got, want := strings.ReplaceAll(err.Error(), path, "aviary.yaml"),
		"aviary.yaml:41:15: aliases (*x3 here) expand the manifest by more than 10000 nodes, as a YAML bomb does"; !strings.Contains(got, want) {
		t.Errorf("error %q lacks %q", got, want)
	}
	// Four levels (9^4 = 6561 nodes) are within the budget and reach the field checks.
	_, err = manifest.Load(write(t, bomb(4)))
	if err == nil || strings.Contains(err.Error(), "YAML bomb") || !strings.Contains(err.Error(), `x3: unknown field "x3"`) {
		t.Errorf("four levels: %v", err)
	}
}

// A path a function is packaged from may not lead out of the manifest's directory through a
// symbolic link either.
func TestPackagedPathsStayInside(t *testing.T) {
	path := write(t, strings.Replace(good, "    dir: static", "    dir: escape/static", 1))
	outside := t.TempDir()
	if err := os.Mkdir(filepath.Join(outside, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(filepath.Dir(path), "escape")); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	_, err := manifest.Load(path)
	if err == nil || !strings.Contains(err.Error(), "functions.static.dir: escape/static is outside the manifest's directory") {
		t.Errorf("a dir through a link out: %v", err)
	}
	// A link that stays inside is fine.
	inside := write(t, strings.Replace(good, "    dir: static", "    dir: again", 1))
	if err := os.Symlink("static", filepath.Join(filepath.Dir(inside), "again")); err != nil {
		t.Fatal(err)
	}
	if _, err := manifest.Load(inside); err != nil {
		t.Errorf("a dir through a link inside: %v", err)
	}
}
