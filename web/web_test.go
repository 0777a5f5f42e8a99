package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/links"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/sqlite"
	"github.com/aviary-deploy/aviary/web"
)

const secret = "test-secret-0123456789abcdef0123"

type fixture struct {
	st     store.Store
	signer *links.Signer
	srv    *httptest.Server
	now    time.Time
}

func setup(t *testing.T, cfg web.Config) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	signer, err := links.NewSigner([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Signer = st, signer
	h, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	fx := &fixture{st: st, signer: signer, srv: srv, now: time.Now()}
	return fx
}

// waiting stores a release waiting at its gate after its first step (of two).
func (fx *fixture) waiting(t *testing.T, id string) *release.Release {
	t.Helper()
	now := time.Now()
	r := &release.Release{ID: id, Service: "shop", Environment: "production", Alias: "live", Strategy: "canary",
		Steps: []release.Step{{Weight: 0.1, Bake: time.Minute}, {Weight: 0.5, Bake: time.Minute}},
		Functions: []release.Function{
			{Name: "api", FunctionName: "shop-api-production", Previous: "7", New: "8", Weight: 0.1},
			{Name: "orders", FunctionName: "shop-orders-production", Previous: "3", New: "4", Weight: 0.1},
		},
		Phase: release.AwaitingApproval, Awaiting: "the environment requires approval after step 1 of 2 (10% on the new versions)",
		Approval: &release.Approval{AtStep: 1, OnTimeout: "rollback"},
		Gates:    []release.Gate{{Step: 1, Kind: release.GateApproval, Opened: now, Why: "the environment requires approval after step 1 of 2"}},
		Health: release.HealthRecord{Steps: []release.StepRecord{{Step: 0, Weight: 0.1, Shifted: now.Add(-2 * time.Minute), Started: now.Add(-2 * time.Minute), Ended: now.Add(-time.Minute),
			Verdict: &release.Verdict{Result: release.Pass, Reason: "no regression: canary 0 errors in 212 invocations", Check: "errors", Functions: map[string]map[string]float64{"shop-api-production": {"canaryInvocations": 212, "canaryErrors": 0}}}}}},
		Checks:    &release.Checks{Alpha: 0.01},
		CreatedBy: "ci@runner", CreatedAt: now.Add(-3 * time.Minute), UpdatedAt: now,
	}
	if err := fx.st.CreateRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func (fx *fixture) link(id string, a release.DecisionAction, expires time.Time) string {
	return fx.signer.URL(fx.srv.URL, id, 1, a, expires)
}

func (fx *fixture) get(t *testing.T, id string) *release.Release {
	t.Helper()
	r, err := fx.st.GetRelease(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (fx *fixture) events(t *testing.T, id string) []release.Event {
	t.Helper()
	evs, err := fx.st.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// browser is an HTTP client with cookies, as a browser is.
func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

func read(t *testing.T) func(*http.Response, error) (int, string) {
	return func(resp *http.Response, err error) (int, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
}

var hidden = regexp.MustCompile(`name="(t|csrf)" value="([^"]*)"`)

// form reads a page's hidden fields.
func form(t *testing.T, body string) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hidden.FindAllStringSubmatch(body, -1) {
		v.Set(m[1], htmlUnescape(m[2]))
	}
	if v.Get("csrf") == "" {
		t.Fatalf("no form on the page:\n%s", body)
	}
	return v
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#43;", "+", "&amp;", "&", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

func TestLinkOpensAConfirmationThatChangesNothing(t *testing.T) {
	fx := setup(t, web.Config{})
	before := fx.waiting(t, "rel-1")
	c := browser(t)
	link := fx.link("rel-1", release.Approve, time.Now().Add(time.Hour))
	for range 3 { // an unfurler, a scanner and the person
		code, body := read(t)(c.Get(link))
		if code != 200 {
			t.Fatalf("GET %d:\n%s", code, body)
		}
		for _, want := range []string{"Approve release rel-1?", "shop-orders-production", "The release goes on to step 2 of 2: 50% of traffic", "no regression: canary 0 errors in 212 invocations", `name="name"`, "only this button decides"} {
			if !strings.Contains(body, want) {
				t.Errorf("the confirmation page lacks %q", want)
			}
		}
	}
	code, _ := read(t)(http.Head(link))
	if code != 200 {
		t.Errorf("HEAD %d", code)
	}
	after := fx.get(t, "rel-1")
	if after.Revision != before.Revision || after.LastGate().Decision != nil || len(fx.events(t, "rel-1")) != 0 {
		t.Fatalf("a GET changed the release: revision %d → %d, decision %+v", before.Revision, after.Revision, after.LastGate().Decision)
	}
}

func TestBadLinksShowAnErrorAndChangeNothing(t *testing.T) {
	fx := setup(t, web.Config{})
	fx.waiting(t, "rel-1")
	good := fx.link("rel-1", release.Approve, time.Now().Add(time.Hour))
	u, _ := url.Parse(good)
	tok := u.Query().Get("t")
	tampered := []byte(tok)
	tampered[5] ^= 1
	other, _ := links.NewSigner([]byte("some other secret, long enough.."))
	for name, tc := range map[string]struct {
		url, heading string
	}{
		"tampered":     {fx.srv.URL + "/gate/approve?t=" + url.QueryEscape(string(tampered)), "This link is not valid"},
		"expired":      {fx.link("rel-1", release.Approve, time.Now().Add(-time.Second)), "This link has expired"},
		"wrong action": {fx.srv.URL + "/gate/rollback?t=" + url.QueryEscape(tok), "This link is for another action"},
		"unsigned":     {fx.srv.URL + "/gate/approve?t=" + strings.Split(tok, ".")[0], "This link is not valid"},
		"no token":     {fx.srv.URL + "/gate/approve", "This link is not valid"},
		"other secret": {other.URL(fx.srv.URL, "rel-1", 1, release.Approve, time.Now().Add(time.Hour)), "This link is not valid"},
	} {
		t.Run(name, func(t *testing.T) {
			c := browser(t)
			code, body := read(t)(c.Get(tc.url))
			if code != http.StatusForbidden || !strings.Contains(body, tc.heading) || !strings.Contains(body, "Nothing was changed") {
				t.Fatalf("GET: %d\n%s", code, body)
			}
			// Posting it (with a CSRF token for a good link of this browser) decides nothing either.
			_, page := read(t)(c.Get(good))
			f := form(t, page)
			q, _ := url.Parse(tc.url)
			f.Set("t", q.Query().Get("t"))
			f.Set("name", "mallory")
			code, body = read(t)(c.PostForm(fx.srv.URL+q.Path, f))
			if code != http.StatusForbidden {
				t.Fatalf("POST: %d\n%s", code, body)
			}
			if r := fx.get(t, "rel-1"); r.LastGate().Decision != nil {
				t.Fatalf("decided by a bad link: %+v", r.LastGate().Decision)
			}
		})
	}
}

func TestOnlyThePagesPostDecides(t *testing.T) {
	fx := setup(t, web.Config{})
	fx.waiting(t, "rel-1")
	link := fx.link("rel-1", release.DecideRollback, time.Now().Add(time.Hour))
	c := browser(t)
	_, page := read(t)(c.Get(link))
	f := form(t, page)
	post := fx.srv.URL + "/gate/rollback"

	// Without the page's token, from another browser, from another site, without a name: refused.
	noToken := url.Values{"t": {f.Get("t")}, "name": {"eve"}}
	if code, _ := read(t)(c.PostForm(post, noToken)); code != http.StatusForbidden {
		t.Errorf("no CSRF token: %d", code)
	}
	withName := url.Values{"t": {f.Get("t")}, "csrf": {f.Get("csrf")}, "name": {"eve"}}
	if code, _ := read(t)(browser(t).PostForm(post, withName)); code != http.StatusForbidden {
		t.Errorf("another browser (no cookie): %d", code)
	}
	req, _ := http.NewRequest("POST", post, strings.NewReader(withName.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if code, _ := read(t)(c.Do(req)); code != http.StatusForbidden {
		t.Errorf("cross-site: %d", code)
	}
	req, _ = http.NewRequest("POST", post, strings.NewReader(withName.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if code, _ := read(t)(c.Do(req)); code != http.StatusForbidden {
		t.Errorf("another origin: %d", code)
	}
	noName := url.Values{"t": {f.Get("t")}, "csrf": {f.Get("csrf")}, "name": {"  "}}
	if code, body := read(t)(c.PostForm(post, noName)); code != http.StatusBadRequest || !strings.Contains(body, "Say who you are") {
		t.Errorf("no name: %d", code)
	}
	if r := fx.get(t, "rel-1"); r.LastGate().Decision != nil {
		t.Fatalf("decided by a refused POST: %+v", r.LastGate().Decision)
	}

	// The page's own POST decides, and says who, from where, with what.
	f.Set("name", "Dana Scully")
	f.Set("reason", "p99 doubled on orders")
	req, _ = http.NewRequest("POST", post, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TestBrowser/1.0")
	req.Header.Set("Origin", fx.srv.URL)
	code, body := read(t)(c.Do(req))
	if code != 200 || !strings.Contains(body, "Rollback decided") {
		t.Fatalf("decide: %d\n%s", code, body)
	}
	d := fx.get(t, "rel-1").LastGate().Decision
	if d == nil || d.Action != release.DecideRollback || d.By != "Dana Scully" || d.Via != release.ViaLink || d.Source != "127.0.0.1" || d.UserAgent != "TestBrowser/1.0" || d.Reason != "p99 doubled on orders" {
		t.Fatalf("decision %+v", d)
	}
	evs := fx.events(t, "rel-1")
	if len(evs) != 1 || evs[0].Kind != release.EventDecision || evs[0].Actor != "Dana Scully" || evs[0].Data["userAgent"] != "TestBrowser/1.0" {
		t.Fatalf("audit %+v", evs)
	}

	// Replaying the same POST changes nothing: it is recorded as too late.
	rev := fx.get(t, "rel-1").Revision
	code, body = read(t)(c.PostForm(post, f))
	if code != http.StatusConflict || !strings.Contains(body, "Too late") {
		t.Fatalf("replay: %d\n%s", code, body)
	}
	if fx.get(t, "rel-1").Revision != rev {
		t.Error("a replay changed the release")
	}
	if evs := fx.events(t, "rel-1"); len(evs) != 2 || evs[1].Data["tooLate"] != true {
		t.Errorf("the replay is not recorded as too late: %+v", evs)
	}
	// Opening the link again now shows that it was decided, with no form.
	_, page = read(t)(c.Get(link))
	if !strings.Contains(page, "already decided: rollback by Dana Scully") || strings.Contains(page, `name="csrf"`) {
		t.Errorf("a used link's page:\n%s", page)
	}
}

func TestFirstDecisionWinsAcrossConcurrentPosts(t *testing.T) {
	fx := setup(t, web.Config{})
	fx.waiting(t, "rel-1")
	const n = 16
	type ready struct {
		c    *http.Client
		path string
		f    url.Values
	}
	var rs []ready
	for i := range n {
		a := release.Approve
		if i%2 == 1 {
			a = release.DecideRollback
		}
		c := browser(t)
		_, page := read(t)(c.Get(fx.link("rel-1", a, time.Now().Add(time.Hour))))
		f := form(t, page)
		f.Set("name", fmt.Sprintf("person %d", i))
		rs = append(rs, ready{c, "/gate/" + string(a), f})
	}
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := r.c.PostForm(fx.srv.URL+r.path, r.f)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	won, late := 0, 0
	for _, c := range codes {
		switch c {
		case 200:
			won++
		case http.StatusConflict:
			late++
		}
	}
	if won != 1 || late != n-1 {
		t.Fatalf("codes %v: %d decided, %d too late", codes, won, late)
	}
	applied := 0
	for _, e := range fx.events(t, "rel-1") {
		if e.Kind == release.EventDecision && e.Data["tooLate"] != true {
			applied++
		}
	}
	if applied != 1 {
		t.Errorf("%d applied decisions in the trail", applied)
	}
}

func TestProxyUserSaysWhoDecided(t *testing.T) {
	fx := setup(t, web.Config{UserHeader: "X-Forwarded-User"})
	fx.waiting(t, "rel-1")
	c := browser(t)
	get, _ := http.NewRequest("GET", fx.link("rel-1", release.Approve, time.Now().Add(time.Hour)), nil)
	get.Header.Set("X-Forwarded-User", "alice@example.com")
	_, page := read(t)(c.Do(get))
	if !strings.Contains(page, "signed in as <strong>alice@example.com</strong>") || strings.Contains(page, `name="name"`) {
		t.Fatalf("page:\n%s", page)
	}
	f := form(t, page)
	post, _ := http.NewRequest("POST", fx.srv.URL+"/gate/approve", strings.NewReader(f.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.Header.Set("X-Forwarded-User", "alice@example.com")
	post.Header.Set("X-Forwarded-For", "198.51.100.66, 203.0.113.9") // the first is the client's to write; the proxy appended the last
	if code, body := read(t)(c.Do(post)); code != 200 {
		t.Fatalf("%d\n%s", code, body)
	}
	d := fx.get(t, "rel-1").LastGate().Decision
	if d.By != "alice@example.com" || d.Source != "203.0.113.9" {
		t.Errorf("decision %+v", d)
	}
}

func TestAdminButtons(t *testing.T) {
	fx := setup(t, web.Config{AdminToken: "let-me-in"})
	fx.waiting(t, "rel-1")
	c := browser(t)
	// Without a session, the page has no buttons and a POST is refused.
	_, page := read(t)(c.Get(fx.srv.URL + "/releases/rel-1"))
	if strings.Contains(page, `action="/releases/rel-1/approve"`) {
		t.Fatal("buttons without a session")
	}
	if code, _ := read(t)(c.PostForm(fx.srv.URL+"/releases/rel-1/approve", url.Values{})); code != http.StatusForbidden {
		t.Errorf("POST without a session: %d", code)
	}
	// A wrong token is refused.
	_, login := read(t)(c.Get(fx.srv.URL + "/login?next=/releases/rel-1"))
	lf := form(t, login)
	lf.Set("name", "Ops Olga")
	lf.Set("next", "/releases/rel-1")
	lf.Set("token", "guess")
	if code, _ := read(t)(c.PostForm(fx.srv.URL+"/login", lf)); code != http.StatusForbidden {
		t.Errorf("wrong token: %d", code)
	}
	lf.Set("token", "let-me-in")
	code, page := read(t)(c.PostForm(fx.srv.URL+"/login", lf))
	if code != 200 || !strings.Contains(page, "Signed in as Ops Olga") || !strings.Contains(page, `action="/releases/rel-1/approve"`) {
		t.Fatalf("after login %d:\n%s", code, page)
	}
	bf := form(t, page)
	// The button's token is bound to the session: a form from another session does not work.
	other := browser(t)
	read(t)(other.Get(fx.srv.URL + "/releases/rel-1"))
	if code, _ := read(t)(other.PostForm(fx.srv.URL+"/releases/rel-1/approve", bf)); code != http.StatusForbidden {
		t.Errorf("another browser's POST: %d", code)
	}
	code, body := read(t)(c.PostForm(fx.srv.URL+"/releases/rel-1/approve", bf))
	if code != 200 || !strings.Contains(body, "Approved") {
		t.Fatalf("approve: %d\n%s", code, body)
	}
	if d := fx.get(t, "rel-1").LastGate().Decision; d == nil || d.By != "Ops Olga" || d.Via != release.ViaDashboard {
		t.Fatalf("decision %+v", d)
	}
	// Away from a gate, the rollback button asks the release's driver to roll back.
	r := fx.get(t, "rel-1")
	r.Phase, r.Step, r.Awaiting = release.Shifting, 1, ""
	if err := fx.st.UpdateRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	_, page = read(t)(c.Get(fx.srv.URL + "/releases/rel-1"))
	code, page = read(t)(c.PostForm(fx.srv.URL+"/releases/rel-1/rollback", form(t, page)))
	if code != 200 {
		t.Fatalf("rollback: %d\n%s", code, page)
	}
	if req := fx.get(t, "rel-1").Request; req == nil || req.Action != release.RequestRollback || req.By != "Ops Olga" {
		t.Fatalf("request %+v", req)
	}
}

func TestDashboardPages(t *testing.T) {
	fx := setup(t, web.Config{})
	fx.waiting(t, "rel-1")
	done := &release.Release{ID: "rel-0", Service: "billing", Environment: "staging", Phase: release.Promoted, CreatedAt: time.Now().Add(-time.Hour), EndedAt: time.Now().Add(-50 * time.Minute)}
	if err := fx.st.CreateRelease(context.Background(), done); err != nil {
		t.Fatal(err)
	}
	code, page := read(t)(http.Get(fx.srv.URL + "/"))
	if code != 200 || !strings.Contains(page, "rel-1") || !strings.Contains(page, "rel-0") || !strings.Contains(page, `http-equiv="refresh"`) {
		t.Fatalf("list %d:\n%s", code, page)
	}
	_, page = read(t)(http.Get(fx.srv.URL + "/?service=billing"))
	if strings.Contains(page, "rel-1") || !strings.Contains(page, "rel-0") {
		t.Errorf("filtered list:\n%s", page)
	}
	_, page = read(t)(http.Get(fx.srv.URL + "/?phase=promoted&environment=staging"))
	if strings.Contains(page, ">rel-1<") || !strings.Contains(page, ">rel-0<") {
		t.Errorf("filtered by phase:\n%s", page)
	}
	_, page = read(t)(http.Get(fx.srv.URL + "/releases/rel-1"))
	for _, want := range []string{"Waiting for a decision", "shop-api-production", "canaryInvocations", "212", "aviary approve rel-1"} {
		if !strings.Contains(page, want) {
			t.Errorf("release page lacks %q", want)
		}
	}
	if code, _ := read(t)(http.Get(fx.srv.URL + "/releases/nope")); code != 404 {
		t.Errorf("missing release: %d", code)
	}
	code, body := read(t)(http.Get(fx.srv.URL + "/healthz"))
	if code != 200 || body != "ok\n" {
		t.Errorf("healthz %d %q", code, body)
	}
	code, body = read(t)(http.Get(fx.srv.URL + "/metrics"))
	for _, want := range []string{
		`aviary_releases_total{environment="staging",outcome="promoted",service="billing"} 1`,
		`aviary_releases_started_total{environment="production",service="shop"} 1`,
		`aviary_releases_live{environment="production",phase="awaiting-approval",service="shop"} 1`,
		`aviary_step_duration_seconds_bucket{environment="production",result="pass",service="shop",le="60"} 1`,
		`aviary_release_duration_seconds_count{environment="staging",outcome="promoted",service="billing"} 1`,
		"# TYPE aviary_releases_total counter",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if code, _ := read(t)(http.Get(fx.srv.URL + "/static/style.css")); code != 200 {
		t.Errorf("style %d", code)
	}
}

// A gate whose deadline passed is decided by the server too (its driver may have died), through
// the same path, as its approval says; one still in time is left alone.
func TestServerClosesExpiredGates(t *testing.T) {
	fx := setup(t, web.Config{})
	past := fx.waiting(t, "rel-late")
	past.Gates[0].Deadline = time.Now().Add(-time.Second)
	past.Approval.OnTimeout = "approve"
	if err := fx.st.UpdateRelease(context.Background(), past); err != nil {
		t.Fatal(err)
	}
	future := fx.waiting(t, "rel-early")
	future.Gates[0].Deadline = time.Now().Add(time.Hour)
	if err := fx.st.UpdateRelease(context.Background(), future); err != nil {
		t.Fatal(err)
	}
	signer, _ := links.NewSigner([]byte(secret))
	h, err := web.New(web.Config{Store: fx.st, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	n, err := h.CloseExpiredGates(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("closed %d: %v", n, err)
	}
	if d := fx.get(t, "rel-late").LastGate().Decision; d == nil || d.Action != release.Approve || d.Via != release.ViaTimeout {
		t.Errorf("the expired gate: %+v", d)
	}
	if d := fx.get(t, "rel-early").LastGate().Decision; d != nil {
		t.Errorf("a gate in time was decided: %+v", d)
	}
	if n, _ := h.CloseExpiredGates(context.Background()); n != 0 {
		t.Errorf("closed %d again", n)
	}
}

// Guessing the admin token is cut short: after five wrong tokens from an address, it must wait,
// even with the right one.
func TestWrongAdminTokensAreLimited(t *testing.T) {
	fx := setup(t, web.Config{AdminToken: "the-right-token"})
	c := browser(t)
	_, login := read(t)(c.Get(fx.srv.URL + "/login"))
	lf := form(t, login)
	lf.Set("name", "guesser")
	for i := range 5 {
		lf.Set("token", fmt.Sprintf("guess-%d", i))
		if code, _ := read(t)(c.PostForm(fx.srv.URL+"/login", lf)); code != http.StatusForbidden {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	lf.Set("token", "the-right-token")
	code, body := read(t)(c.PostForm(fx.srv.URL+"/login", lf))
	if code != http.StatusTooManyRequests || !strings.Contains(body, "Too many wrong tokens") {
		t.Fatalf("after five guesses: %d\n%s", code, body)
	}
}

// A link made for one gate cannot decide a later one: its page says the gate was decided, and
// its POST is too late.
func TestLinkForAnEarlierGate(t *testing.T) {
	fx := setup(t, web.Config{})
	fx.waiting(t, "rel-1")
	c := browser(t)
	_, page := read(t)(c.Get(fx.link("rel-1", release.Approve, time.Now().Add(time.Hour))))
	f := form(t, page)
	f.Set("name", "first")
	if code, _ := read(t)(c.PostForm(fx.srv.URL+"/gate/approve", f)); code != 200 {
		t.Fatalf("the first decision: %d", code)
	}
	// The release moves on to a second gate.
	r := fx.get(t, "rel-1")
	r.Gates = append(r.Gates, release.Gate{Step: 2, Kind: release.GateApproval, Opened: time.Now(), Why: "after step 2"})
	if err := fx.st.UpdateRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	_, page = read(t)(c.Get(fx.link("rel-1", release.Approve, time.Now().Add(time.Hour))))
	if !strings.Contains(page, "The gate this link was made for was already decided") || strings.Contains(page, `name="csrf"`) {
		t.Errorf("an old gate's link:\n%s", page)
	}
	f.Set("name", "replayer")
	if code, body := read(t)(c.PostForm(fx.srv.URL+"/gate/approve", f)); code != http.StatusConflict || !strings.Contains(body, "Too late") {
		t.Fatalf("the old form posted again: %d\n%s", code, body)
	}
	if d := fx.get(t, "rel-1").Gates[1].Decision; d != nil {
		t.Fatalf("an old link decided the second gate: %+v", d)
	}
}

func TestHardening(t *testing.T) {
	fx := setup(t, web.Config{AdminToken: "let-me-in-please", PublicURL: "https://gate.example.com"})
	fx.waiting(t, "rel-1")
	c := browser(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// A redirect after login stays on this server.
	_, login := read(t)(c.Get(fx.srv.URL + "/login"))
	lf := form(t, login)
	lf.Set("name", "olga")
	lf.Set("token", "let-me-in-please")
	for _, next := range []string{"/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example/", "/%0a/evil"} {
		lf.Set("next", next)
		resp, err := c.PostForm(fx.srv.URL+"/login", lf)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || (loc != "/" && loc != "/%0a/evil") {
			t.Errorf("next=%q: %d to %q", next, resp.StatusCode, loc)
		}
	}
	// A form posted from the public address (a proxy's domain) is this server's own.
	c2 := browser(t)
	_, page := read(t)(c2.Get(fx.link("rel-1", release.Approve, time.Now().Add(time.Hour))))
	f := form(t, page)
	f.Set("name", "bad\x1bname")
	req, _ := http.NewRequest("POST", fx.srv.URL+"/gate/approve", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://gate.example.com")
	if code, body := read(t)(c2.Do(req)); code != http.StatusBadRequest || !strings.Contains(body, "Say who you are") {
		t.Errorf("a name with a control character: %d", code)
	}
	f.Set("name", "Proxy Patty")
	req, _ = http.NewRequest("POST", fx.srv.URL+"/gate/approve", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://gate.example.com")
	if code, body := read(t)(c2.Do(req)); code != 200 {
		t.Errorf("from the public address: %d\n%s", code, body)
	}
}
