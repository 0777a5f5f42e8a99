package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/links"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/sqlite"
	"github.com/aviary-deploy/aviary/web/lambdaurl/lambdaurltest"
)

const (
	pkg        = "./cmd/aviary-gate"
	secret     = "gate-test-secret-0123456789abcdef"
	adminToken = "gate-admin-token-0123456789"
)

// waiting stores a release waiting at its gate after its first step (of two).
func waiting(t *testing.T, st store.Store, id string) {
	t.Helper()
	now := time.Now()
	r := &release.Release{ID: id, Service: "shop", Environment: "production", Alias: "live", Strategy: "canary",
		Steps: []release.Step{{Weight: 0.1, Bake: time.Minute}, {Weight: 0.5, Bake: time.Minute}},
		Functions: []release.Function{
			{Name: "api", FunctionName: "shop-api-production", Previous: "7", New: "8", Weight: 0.1},
		},
		Phase: release.AwaitingApproval, Awaiting: "the environment requires approval after step 1 of 2 (10% on the new versions)",
		Approval:  &release.Approval{AtStep: 1, OnTimeout: "rollback"},
		Gates:     []release.Gate{{Step: 1, Kind: release.GateApproval, Opened: now, Why: "the environment requires approval after step 1 of 2"}},
		Checks:    &release.Checks{Alpha: 0.01},
		CreatedBy: "ci@runner", CreatedAt: now.Add(-3 * time.Minute), UpdatedAt: now,
	}
	if err := st.CreateRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// send does one request and returns the status and body.
func send(t *testing.T, c *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, c, req)
}

// post sends a form as a browser does from a page of origin.
func post(t *testing.T, c *http.Client, origin, u string, form url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("User-Agent", "aviary-gate-test/1")
	return send(t, c, req)
}

var hidden = regexp.MustCompile(`name="(t|csrf|next)" value="([^"]*)"`)

// form reads a page's hidden fields.
func form(t *testing.T, page string) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hidden.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], strings.NewReplacer("&#43;", "+", "&amp;", "&", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(m[2]))
	}
	if v.Get("csrf") == "" {
		t.Fatalf("no form on the page:\n%s", page)
	}
	return v
}

func getRelease(t *testing.T, st store.Store, id string) (*release.Release, []release.Event) {
	t.Helper()
	r, err := st.GetRelease(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := st.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r, evs
}

// TestGateThroughFunctionURL builds the bootstrap, runs it as a provided.al2023 function in the
// sandbox over a SQLite store and, as a browser would through the function URL, approves a
// release from a signed link, refuses a tampered one, logs an admin in, and reads /metrics.
func TestGateThroughFunctionURL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and starts the sandbox")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	waiting(t, st, "rel-1")
	waiting(t, st, "rel-2")
	signer, err := links.NewSigner([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}

	fn := lambdaurltest.Deploy(t, pkg, lambdaurltest.Options{Name: "aviary-gate", Env: map[string]string{
		"AVIARY_STORE":       "sqlite://" + path,
		"AVIARY_LINK_SECRET": secret,
		"AVIARY_ADMIN_TOKEN": adminToken,
	}})
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := *fn.Client
	browser.Jar = jar
	c := &browser

	t.Run("healthz", func(t *testing.T) {
		if code, body := get(t, c, fn.URL+"/healthz"); code != 200 || body != "ok\n" {
			t.Fatalf("GET /healthz: %d %q", code, body)
		}
	})

	t.Run("a signed link approves", func(t *testing.T) {
		link := signer.URL(fn.URL, "rel-1", 1, release.Approve, time.Now().Add(time.Hour))
		code, page := get(t, c, link)
		if code != 200 {
			t.Fatalf("GET the link: %d\n%s", code, page)
		}
		for _, want := range []string{"Approve release rel-1?", "shop-api-production", `name="name"`} {
			if !strings.Contains(page, want) {
				t.Errorf("the confirmation page lacks %q", want)
			}
		}
		if r, evs := getRelease(t, st, "rel-1"); r.LastGate().Decision != nil || len(evs) != 0 {
			t.Fatalf("opening the link changed the release: %+v, %d audit entries", r.LastGate().Decision, len(evs))
		}
		f := form(t, page)
		f.Set("name", "Ada Lovelace")
		code, body := post(t, c, fn.URL, fn.URL+"/gate/approve", f)
		if code != 200 || !strings.Contains(body, "Approved") || !strings.Contains(body, "Ada Lovelace") {
			t.Fatalf("POST the confirmation: %d\n%s", code, body)
		}

		r, evs := getRelease(t, st, "rel-1")
		d := r.LastGate().Decision
		if d == nil || d.Action != release.Approve || d.By != "Ada Lovelace" || d.Via != release.ViaLink ||
			d.Source != lambdaurltest.SourceIP || d.UserAgent != "aviary-gate-test/1" {
			t.Fatalf("decision = %+v, want approve by Ada Lovelace via link from %s", d, lambdaurltest.SourceIP)
		}
		var audit *release.Event
		for i := range evs {
			if evs[i].Kind == release.EventDecision {
				audit = &evs[i]
			}
		}
		if audit == nil || audit.Actor != "Ada Lovelace" || audit.Data["via"] != release.ViaLink || audit.Data["source"] != lambdaurltest.SourceIP {
			t.Fatalf("audit trail = %+v, want the decision by Ada Lovelace via link", evs)
		}

		// The release's page shows it.
		if code, body := get(t, c, fn.URL+"/releases/rel-1"); code != 200 || !strings.Contains(body, "Ada Lovelace") {
			t.Errorf("GET /releases/rel-1: %d\n%s", code, body)
		}
	})

	t.Run("a tampered link is refused and changes nothing", func(t *testing.T) {
		before, _ := getRelease(t, st, "rel-2")
		good := signer.URL(fn.URL, "rel-2", 1, release.Approve, time.Now().Add(time.Hour))
		u, err := url.Parse(good)
		if err != nil {
			t.Fatal(err)
		}
		tok := []byte(u.Query().Get("t"))
		tok[5] ^= 1
		tampered := fn.URL + "/gate/approve?t=" + url.QueryEscape(string(tok))
		code, body := get(t, c, tampered)
		if code != http.StatusForbidden || !strings.Contains(body, "This link is not valid") || !strings.Contains(body, "Nothing was changed") {
			t.Fatalf("GET a tampered link: %d\n%s", code, body)
		}
		// Its POST, even with this browser's CSRF token for the good link, decides nothing.
		_, page := get(t, c, good)
		f := form(t, page)
		f.Set("t", string(tok))
		f.Set("name", "Mallory")
		if code, body := post(t, c, fn.URL, fn.URL+"/gate/approve", f); code != http.StatusForbidden {
			t.Fatalf("POST a tampered link: %d\n%s", code, body)
		}
		after, evs := getRelease(t, st, "rel-2")
		if after.Revision != before.Revision || after.LastGate().Decision != nil || len(evs) != 0 || after.Phase != release.AwaitingApproval {
			t.Fatalf("a tampered link changed the release: revision %d → %d, decision %+v, %d audit entries", before.Revision, after.Revision, after.LastGate().Decision, len(evs))
		}
	})

	t.Run("an admin logs in", func(t *testing.T) {
		code, page := get(t, c, fn.URL+"/login?next=/releases/rel-2")
		if code != 200 {
			t.Fatalf("GET /login: %d\n%s", code, page)
		}
		f := form(t, page)
		f.Set("name", "Grace Hopper")
		f.Set("token", adminToken)
		code, body := post(t, c, fn.URL, fn.URL+"/login", f)
		// The client followed the 303 to the release, with the session cookie.
		if code != 200 || !strings.Contains(body, `action="/releases/rel-2/approve"`) {
			t.Fatalf("after logging in: %d\n%s", code, body)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		code, body := get(t, c, fn.URL+"/metrics")
		want := `aviary_releases_live{environment="production",phase="awaiting-approval",service="shop"}`
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("GET /metrics: %d\n%s", code, body)
		}
	})

	// The session ends in the store: a cookie captured before logging out no longer works, on
	// whichever instance of the function answers.
	t.Run("logging out ends the session", func(t *testing.T) {
		u, err := url.Parse(fn.URL)
		if err != nil {
			t.Fatal(err)
		}
		captured := c.Jar.Cookies(u)
		_, page := get(t, c, fn.URL+"/releases/rel-2")
		if code, body := post(t, c, fn.URL, fn.URL+"/logout", form(t, page)); code != 200 || strings.Contains(body, "Signed in as") {
			t.Fatalf("POST /logout: %d\n%s", code, body)
		}
		tjar, _ := cookiejar.New(nil)
		tjar.SetCookies(u, captured)
		thief := *fn.Client
		thief.Jar = tjar
		if _, body := get(t, &thief, fn.URL+"/releases/rel-2"); strings.Contains(body, `action="/releases/rel-2/approve"`) {
			t.Fatalf("the cookie captured before logging out still shows the buttons:\n%s", body)
		}
	})
}

// TestConfigErrorsFailInit: a gate that is not configured fails its initialisation with a
// message that says what to set. The Invoke API returns it as the function error; the function
// URL answers 502.
func TestConfigErrorsFailInit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and starts the sandbox")
	}
	sb := lambdaurltest.StartSandbox(t)
	db := "sqlite://" + filepath.Join(t.TempDir(), "state.db")
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no-store", map[string]string{"AVIARY_LINK_SECRET": secret}, "AVIARY_STORE is not set"},
		{"bad-store", map[string]string{"AVIARY_STORE": "postgres://db/aviary", "AVIARY_LINK_SECRET": secret}, `AVIARY_STORE="postgres://db/aviary" is not a store URL`},
		{"no-secret", map[string]string{"AVIARY_STORE": db}, "no link secret: set AVIARY_LINK_SECRET"},
		{"short-secret", map[string]string{"AVIARY_STORE": db, "AVIARY_LINK_SECRET": "short"}, "AVIARY_LINK_SECRET: the link secret is 5 bytes"},
		{"short-admin-token", map[string]string{"AVIARY_STORE": db, "AVIARY_LINK_SECRET": secret, "AVIARY_ADMIN_TOKEN": "abc"}, "AVIARY_ADMIN_TOKEN is 3 characters"},
		{"bad-trusted-proxies", map[string]string{"AVIARY_STORE": db, "AVIARY_LINK_SECRET": secret, "AVIARY_TRUSTED_PROXIES": "10.0.0.0/8,proxy.internal"}, `AVIARY_TRUSTED_PROXIES: trusted proxy "proxy.internal" is neither`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := lambdaurltest.Deploy(t, pkg, lambdaurltest.Options{Sandbox: sb, Name: "aviary-gate-" + tc.name, Env: tc.env})
			ev := fn.Event(t, "GET", "/healthz", "", nil, nil, "")
			payload, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := fn.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn.Name), Payload: payload})
			if err != nil {
				t.Fatal(err)
			}
			var fe struct{ ErrorMessage, ErrorType string }
			if err := json.Unmarshal(out.Payload, &fe); err != nil {
				t.Fatalf("payload %s: %v", out.Payload, err)
			}
			if aws.ToString(out.FunctionError) != "Unhandled" || fe.ErrorType != "ConfigError" || !strings.HasPrefix(fe.ErrorMessage, "aviary-gate: ") || !strings.Contains(fe.ErrorMessage, tc.want) {
				t.Fatalf("function error %q, payload %s; want a ConfigError saying %q", aws.ToString(out.FunctionError), out.Payload, tc.want)
			}
			// Through the function URL: a 502, every time (a failed init is not kept).
			for range 2 {
				if code, body := get(t, fn.Client, fn.URL+"/healthz"); code != http.StatusBadGateway {
					t.Fatalf("GET /healthz: %d %s, want 502", code, body)
				}
			}
		})
	}
}

// TestGateNudgesTheController: with AVIARY_CONTROLLER_FUNCTION, a decision through the gate on a
// release the controller drives invokes the controller's function at once (asynchronously);
// a decision on a release a CLI drives does not. The controller here does not exist: the nudge
// fails, and the decision stands all the same (the schedule would tick).
func TestGateNudgesTheController(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and starts the sandbox")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	waiting(t, st, "rel-cli")
	waiting(t, st, "rel-ctl")
	r, err := st.GetRelease(ctx, "rel-ctl")
	if err != nil {
		t.Fatal(err)
	}
	r.Controller = true
	if err := st.UpdateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	signer, err := links.NewSigner([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	srv := lambdaurltest.StartSandbox(t)
	fn := lambdaurltest.Deploy(t, pkg, lambdaurltest.Options{Sandbox: srv, Name: "aviary-gate", Env: map[string]string{
		"AVIARY_STORE":               "sqlite://" + path,
		"AVIARY_LINK_SECRET":         secret,
		"AVIARY_CONTROLLER_FUNCTION": "aviary-controller",
	}})
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := *fn.Client
	browser.Jar = jar
	nudges := func() int {
		n := 0
		for _, req := range srv.Requests() {
			if req.Service == "lambda" && req.Operation == "Invoke" && req.Resource == "aviary-controller" && strings.Contains(req.UserAgent, "app/aviary-gate") {
				n++
			}
		}
		return n
	}
	approve := func(id string) {
		t.Helper()
		code, page := get(t, &browser, signer.URL(fn.URL, id, 1, release.Approve, time.Now().Add(time.Hour)))
		if code != 200 {
			t.Fatalf("GET the link: %d\n%s", code, page)
		}
		f := form(t, page)
		f.Set("name", "Ada Lovelace")
		if code, body := post(t, &browser, fn.URL, fn.URL+"/gate/approve", f); code != 200 || !strings.Contains(body, "Approved") {
			t.Fatalf("POST the confirmation: %d\n%s", code, body)
		}
		if r, _ := getRelease(t, st, id); r.LastGate().Decision == nil {
			t.Fatalf("%s: no decision", id)
		}
	}
	approve("rel-cli")
	if n := nudges(); n != 0 {
		t.Fatalf("a decision on a release a CLI drives nudged the controller %d times", n)
	}
	approve("rel-ctl")
	if n := nudges(); n != 1 {
		t.Fatalf("a decision on a release the controller drives nudged it %d times, want 1", n)
	}
}
