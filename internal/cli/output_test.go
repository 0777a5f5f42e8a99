package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/aviary-deploy/aviary/health"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/retention"
	"github.com/aviary-deploy/aviary/store"
)

var update = flag.Bool("update", false, "rewrite the golden JSON in testdata/json")

var t0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

// sample is a release rolled back at its gate, with everything status shows, and the store's own
// fields (revision, outbox, moving, base revisions) set so that the test sees they stay out.
func sample() *release.Release {
	return &release.Release{
		ID: "shop-production-20250304-100000-ab12", Service: "shop", Environment: "production", Alias: "live",
		Region: "eu-west-1", Strategy: "canary",
		Steps: []release.Step{{Weight: 0.1, Bake: 5 * time.Minute}, {Weight: 0.5, Bake: 10 * time.Minute}},
		Functions: []release.Function{{
			Name: "api", FunctionName: "shop-api-prod", Previous: "7", New: "8", ArtifactKey: "releases/shop/abc.zip",
			CodeSha256: "q1w2e3", BaseRevision: "rev-internal", AliasRevision: "alias-rev-internal", Weight: 0.1, RolledBack: true,
		}},
		Phase: release.RolledBack, Step: 1, Reason: "rolled back at the gate by ana: \x1b]0;pwned\x07error budget",
		Gates: []release.Gate{{Step: 1, Opened: t0.Add(5 * time.Minute), Kind: release.GateApproval, Why: "production requires approval",
			Decision: &release.Decision{Action: release.DecideRollback, By: "ana\u202e", Via: release.ViaLink, Source: "203.0.113.9", UserAgent: "curl/8\r\nforged", Reason: "error budget\x1b[2J", At: t0.Add(6 * time.Minute)}}},
		Request:   &release.Request{Action: release.RequestRollback, By: "ana", Reason: "error budget", At: t0.Add(6 * time.Minute)},
		Moving:    true,
		Outbox:    []release.Event{{ReleaseID: "x", Key: "internal"}},
		CreatedBy: "ci@runner", CreatedAt: t0, UpdatedAt: t0.Add(7 * time.Minute), EndedAt: t0.Add(7 * time.Minute),
		Revision: 42,
	}
}

func sampleEvents() []release.Event {
	return []release.Event{
		{ReleaseID: "shop-production-20250304-100000-ab12", Seq: 1, Key: "k1", Time: t0, Actor: "ci@runner", Source: "cli on runner", Kind: release.EventCreated, Phase: release.Planned, Message: "release of shop to production"},
		{ReleaseID: "shop-production-20250304-100000-ab12", Seq: 2, Key: "k2", Time: t0.Add(7 * time.Minute), Actor: "ana\x1b[31m", Kind: release.EventTransition, Phase: release.RolledBack, Message: "rolling-back → rolled-back\nforged line", Data: map[string]any{"from": "rolling-back", "to": "rolled-back"}},
	}
}

func samplePlan() *prepared {
	env := &manifest.Environment{Name: "production", Strategy: manifest.Strategy{Name: "canary", Steps: []manifest.Step{{Weight: 0.1, Bake: 5 * time.Minute}}}}
	return &prepared{
		m:   &manifest.Manifest{Service: "shop", Alias: "live", Environments: map[string]*manifest.Environment{"production": env}},
		env: env,
		rows: []release.PlanRow{
			{Target: release.Target{Name: "api", FunctionName: "shop-api-prod", ArtifactKey: "releases/shop/new.zip", CodeSha256: "new"},
				Current: release.Current{Exists: true, AliasExists: true, AliasVersion: "7", AliasCodeSha256: "old", AliasRevision: "internal"}, Change: true,
				ConfigChanges: []release.FieldChange{{Field: "environment.DB_PASSWORD", Old: "***", New: "***", Masked: true}, {Field: "environment.GREETING", Old: "one", New: "two"}, {Field: "memory", Old: "128", New: "256"}}},
			{Target: release.Target{Name: "orders", FunctionName: "shop-orders-prod", ArtifactKey: "releases/shop/same.zip", CodeSha256: "same"},
				Current: release.Current{Exists: true, AliasExists: true, AliasVersion: "3", AliasCodeSha256: "same"}},
		},
		checks: &release.Checks{Alpha: 0.01, Detect: 5, MinRate: 0.001, MaxErrorRate: 0.5, MaxThrottleRate: 0.5, Metrics: true, MetricsPeriod: time.Minute,
			MaxBake: 15 * time.Minute, OnInconclusive: release.OnInconclusiveAuto},
		// The function: 20 requests/s, no errors, in the last hour; a quieter day.
		traffic: []fnTraffic{{name: "api", functionName: "shop-api-prod", windows: []health.Traffic{
			{Window: time.Hour, Span: time.Hour, Invocations: 72000},
			{Window: 24 * time.Hour, Span: 24 * time.Hour, Invocations: 864000, Errors: 864},
		}}},
	}
}

// samplePrune is a prune of two functions: one with every fate, one that could not be read.
func samplePrune() *pruneOutput {
	r := sample()
	r.Phase = release.Promoted
	return pruneOf("shop", "production", 2, false, []*release.Release{r},
		[]manifest.Function{{Name: "api"}, {Name: "orders"}},
		[]pruned{
			{name: "shop-api-prod", deleted: []string{"1", "2", "4"},
				deferred: []deferredVersion{{"3", errors.New("Lambda was unable to delete arn:aws:lambda:eu-west-1:123456789012:function:shop-api-prod:3 because it is a replicated function.")}},
				kept: []retention.Verdict{
					{Version: "5", Needs: []retention.Need{{Kind: retention.ByInUse, By: "Lambda refused: Unable to delete version because the following aliases reference it: [live]"}}},
					{Version: "7", Needs: []retention.Need{{Kind: retention.ByAlias, By: "live"}, {Kind: retention.ByRelease, By: "shop-production-20250304-100000-ab12 (promoted, previous)"}}},
					{Version: "8", Needs: []retention.Need{{Kind: retention.ByRelease, By: "shop-production-20250304-100000-ab12 (promoted, new)"}, {Kind: retention.ByNewest}}},
				},
				failed: []failedVersion{{"6", errors.New("operation error Lambda: DeleteFunction, ServiceException: boom")}},
			},
			{name: "shop-orders-prod", err: errors.New("list the versions of shop-orders-prod: AccessDeniedException")},
		})
}

func sampleDoctor() *doctorOutput {
	needs := []retention.Need{{Kind: retention.ByAlias, By: "live"}, {Kind: retention.ByRelease, By: "shop-production-20250304-100000-ab12 (promoted, previous)"}}
	return &doctorOutput{Service: "shop", Environment: "production", Bucket: "shop-artifacts", Prefix: "releases/shop", Ready: false,
		Findings: []finding{
			{Severity: retention.Blocking, Check: "artifact", Subject: "s3://shop-artifacts/releases/shop/abc.zip", Message: "missing: needed by shop-api-prod:7 (alias live)", Fix: "aviary doctor -e production --restore"},
			{Severity: retention.Blocking, Check: "lifecycle", Subject: "rule expire-old", Message: "expires (deletes) artifacts 30 days after their upload", Fix: "exclude the prefix"},
			{Severity: retention.Warning, Check: "versioning", Subject: "shop-artifacts", Message: "versioning is off"},
			{Severity: retention.Info, Check: "code-storage", Subject: "eu-west-1", Message: "1.0 GiB of 75.0 GiB Lambda code storage used (1%)"},
		},
		Artifacts: []artifactOutput{{Key: "releases/shop/abc.zip", CodeSha256: "q1w2e3", Versions: []string{"shop-api-prod:7"}, Needs: needs, S3: "missing", Cache: "ok"},
			{Key: "releases/shop/def.zip", CodeSha256: "r4t5y6", Versions: []string{"shop-api-prod:8"}, Needs: needs[:1], S3: "ok", Cache: "ok", Restored: "the local cache"}}}
}

func sampleGC() *gcOutput {
	return &gcOutput{Service: "shop", Environment: "production", Bucket: "shop-artifacts", Prefix: "releases/shop", Grace: "168h0m0s", Versioned: true,
		Deleted: []gcObjectOutput{{Key: "releases/shop/old.zip", Size: 1024, LastModified: t0}}, Bytes: 1024,
		Kept: []gcObjectOutput{{Key: "releases/shop/abc.zip", Size: 2048, LastModified: t0, Needs: []retention.Need{{Kind: "version", By: "shop-api-prod:7"}}},
			{Key: "releases/shop/new.zip", Size: 10, LastModified: t0, Needs: []retention.Need{{Kind: retention.ByGrace, By: "uploaded 1h0m0s ago, grace 168h0m0s"}}}},
		Foreign: []string{"releases/shop/NOTES.txt"}}
}

// TestJSONOutputGolden holds the aviary/v1 documents to golden files: a change to what scripts
// read shows up here, to be made on purpose (go test ./internal/cli -run Golden -update).
func TestJSONOutputGolden(t *testing.T) {
	t.Setenv("AVIARY_PRE_APPROVE", "")
	lock := &store.Lock{Key: "shop/production", Holder: "shop-production-20250304-100000-ab12", Owner: "host@pid/123/secret-owner", AcquiredAt: t0, ExpiresAt: t0.Add(30 * time.Second)}
	docs := map[string]document{
		"status":        statusOf(sample(), sampleEvents(), lock, t0),
		"history":       historyOf([]*release.Release{sample()}),
		"history-empty": historyOf(nil),
		"deploy-result": resultOf(sample()),
		"deploy-detached": func() document {
			r := sample()
			r.Phase, r.Reason, r.Request, r.Gates, r.Controller = release.Planned, "", nil, nil, true
			r.Functions[0].New, r.Functions[0].Weight, r.Functions[0].RolledBack = "", 0, false
			out := resultOf(r)
			out.Outcome = "detached"
			return out
		}(),
		"plan":   planOf(samplePlan()),
		"prune":  samplePrune(),
		"doctor": sampleDoctor(),
		"gc":     sampleGC(),
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeJSON(&b, doc); err != nil {
				t.Fatal(err)
			}
			got := b.Bytes()
			if !bytes.HasPrefix(got, []byte("{\n  \"schema\": \"aviary/v1\",")) {
				t.Errorf("the document does not begin with its schema:\n%s", got)
			}
			for _, internal := range []string{"revision", "outbox", "moving", "owner", "baseRevision", "aliasRevision", "secret-owner", "userAgent"} {
				if bytes.Contains(bytes.ToLower(got), []byte(strings.ToLower(internal))) {
					t.Errorf("the document shows the store's %q:\n%s", internal, got)
				}
			}
			path := filepath.Join("testdata", "json", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (run with -update if the change is meant):\n%s", name, path, got)
			}
			if !json.Valid(got) {
				t.Errorf("not JSON: %s", got)
			}
		})
	}
}

// TestHistoryJSONIsAnEmptyListWithoutReleases: no releases is [], never null.
func TestHistoryJSONIsAnEmptyListWithoutReleases(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSON(&b, historyOf(nil)); err != nil {
		t.Fatal(err)
	}
	var doc struct{ Releases json.RawMessage }
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if got, want := string(doc.Releases), "[]"; got != want {
		t.Errorf("releases = %s, want %s", got, want)
	}
}

// TestStatusEscapesTextFromOutside: a reason, a decider, a user agent or an audit entry that
// carries terminal escapes or line breaks prints as visible escapes, on one line, never raw.
func TestStatusEscapesTextFromOutside(t *testing.T) {
	r := sample()
	r.ID += "\x1b[2J"
	r.Functions[0].Name = "api\x1b[8m"
	var b bytes.Buffer
	printStatus(&b, r, sampleEvents(), &store.Lock{Holder: r.ID, Owner: "evil\x1b]0;x\x07", ExpiresAt: t0.Add(time.Minute)}, 0, t0)
	out := b.String()
	for _, raw := range []string{"\x1b", "\x07", "\r", "\u202e", "\nforged"} {
		if strings.Contains(out, raw) {
			t.Errorf("status prints %q raw:\n%s", raw, out)
		}
	}
	for _, shown := range []string{`\x1b]0;pwned\x07error budget`, `ana\u202e`, `error budget\x1b[2J`, `rolled-back\x0aforged line`, `api\x1b[8m`} {
		if !strings.Contains(out, shown) {
			t.Errorf("status does not show %q escaped:\n%s", shown, out)
		}
	}
}

// TestFunctionLineEscapes: function names from AWS print escaped in every table and live view.
func TestFunctionLineEscapes(t *testing.T) {
	line := functionLine(release.Function{Name: "a\x1b[2J", FunctionName: "b\r\nc", Previous: "1", New: "2"})
	if strings.ContainsAny(line, "\x1b\r\n") {
		t.Errorf("functionLine prints raw control characters: %q", line)
	}
}

// TestQuietPrintsOnlyTheResult: with --quiet the narrative goes nowhere and the final result
// still prints.
func TestQuietPrintsOnlyTheResult(t *testing.T) {
	var out, errs bytes.Buffer
	e := &env{ctx: t.Context(), stdout: &out, stderr: &errs, quiet: true}
	log := logWriter(e, outputFlags{Output: "text"})
	fmt.Fprintln(log, "Building 3 functions of shop")
	r := sample()
	r.Phase, r.Reason = release.Promoted, ""
	if err := finish(e, outputFlags{Output: "text"}, log, r, nil); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Contains(got, "Building") || !strings.Contains(got, "Release shop-production-20250304-100000-ab12 promoted") {
		t.Errorf("quiet output:\n%s", got)
	}
	if errs.Len() != 0 {
		t.Errorf("quiet wrote to stderr: %s", errs.String())
	}
}

// TestNoColourOffATerminal: colour only ever reaches a terminal, and never when it is turned off.
func TestNoColourOffATerminal(t *testing.T) {
	var b bytes.Buffer
	if got := paint(true, &b, "32", "promoted"); got != "promoted" {
		t.Errorf("paint to a buffer = %q", got)
	}
	if got := paint(false, os.Stdout, "32", "promoted"); got != "promoted" {
		t.Errorf("paint with colour off = %q", got)
	}
}

// Plan says, per function, window and step, whether the bake can judge at the traffic the alias
// served, the bake it would need, and what happens when it cannot.
func TestPlanSaysWhetherEachBakeCanJudge(t *testing.T) {
	var b bytes.Buffer
	printPlan(&b, samplePlan())
	for _, want := range []string{
		"Traffic through alias live: can each step's bake see a 5× rise in errors (α 1%)?",
		"api, last hour: 20.00 requests/s, 0 errors in 72000 (0%; judged as 0.1%)",
		"step 1 (10% for 5m0s): NO: 600 canary invocations, 2628 needed, a 21m54s bake; inconclusive after max_bake 15m0s, then promote, recorded as UNJUDGED",
		"api, last day: 10.00 requests/s",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plan output lacks %q:\n%s", want, b.String())
		}
	}
}
