package web_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/web"
)

// postWith posts a form with extra headers.
func postWith(t *testing.T, c *http.Client, u string, f url.Values, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(f.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return read(t)(c.Do(req))
}

// confirmForm opens a link in a fresh browser and returns the browser and its form.
func (fx *fixture) confirmForm(t *testing.T, id string, a release.DecisionAction) (*http.Client, url.Values) {
	t.Helper()
	c := browser(t)
	_, page := read(t)(c.Get(fx.link(id, a, time.Now().Add(time.Hour))))
	return c, form(t, page)
}

// login logs a browser in as name and returns the release page it lands on.
func (fx *fixture) login(t *testing.T, c *http.Client, name, token string) string {
	t.Helper()
	_, page := read(t)(c.Get(fx.srv.URL + "/login"))
	lf := form(t, page)
	lf.Set("name", name)
	lf.Set("token", token)
	lf.Set("next", "/releases/rel-1")
	code, page := read(t)(c.PostForm(fx.srv.URL+"/login", lf))
	if code != 200 || !strings.Contains(page, "Signed in as "+name) {
		t.Fatalf("login: %d\n%s", code, page)
	}
	return page
}

// A reason reaches terminals (aviary status, a running deploy) and CI logs: one with control or
// format characters is refused, and a long one is cut on a character boundary.
func TestReasonsAreTextAndCutWhole(t *testing.T) {
	fx := setup(t, web.Config{})
	fx.waiting(t, "rel-1")
	for _, bad := range []string{"\x1b]0;pwned\x07\x1b[2J", "ok\r\ngate: approved by the CTO", "bell\a", "right\u202eleft"} {
		c, f := fx.confirmForm(t, "rel-1", release.Approve)
		f.Set("name", "Eve")
		f.Set("reason", bad)
		if code, body := read(t)(c.PostForm(fx.srv.URL+"/gate/approve", f)); code != http.StatusBadRequest || !strings.Contains(body, "The reason cannot be recorded") {
			t.Errorf("reason %q: %d", bad, code)
		}
	}
	if d := fx.get(t, "rel-1").LastGate().Decision; d != nil || len(fx.events(t, "rel-1")) != 0 {
		t.Fatalf("a refused reason decided: %+v", d)
	}
	long := strings.Repeat("a", 299) + "é and more" // é spans bytes 300 and 301
	c, f := fx.confirmForm(t, "rel-1", release.Approve)
	f.Set("name", "Dana")
	f.Set("reason", long)
	if code, body := read(t)(c.PostForm(fx.srv.URL+"/gate/approve", f)); code != 200 {
		t.Fatalf("a long reason: %d\n%s", code, body)
	}
	d := fx.get(t, "rel-1").LastGate().Decision
	if got, want := d.Reason, strings.Repeat("a", 299); got != want || !utf8.ValidString(got) {
		t.Fatalf("reason = %q (%d bytes), want 299 a's", got, len(got))
	}
}

// Names say who decided: a right-to-left override or a zero-width space could disguise one, so
// they are refused, typed or from the proxy.
func TestNamesWithFormatCharactersAreRefused(t *testing.T) {
	fx := setup(t, web.Config{})
	fx.waiting(t, "rel-1")
	for _, bad := range []string{"ad\u202enimda", "ali\u200bce", "\u2066bob\u2069"} {
		c, f := fx.confirmForm(t, "rel-1", release.Approve)
		f.Set("name", bad)
		if code, body := read(t)(c.PostForm(fx.srv.URL+"/gate/approve", f)); code != http.StatusBadRequest || !strings.Contains(body, "Say who you are") {
			t.Errorf("name %q: %d", bad, code)
		}
	}
	px := setup(t, web.Config{UserHeader: "X-Forwarded-User"})
	px.waiting(t, "rel-1")
	c := browser(t)
	get, _ := http.NewRequest("GET", px.link("rel-1", release.Approve, time.Now().Add(time.Hour)), nil)
	get.Header.Set("X-Forwarded-User", "root\u202e")
	_, page := read(t)(c.Do(get))
	if code, _ := postWith(t, c, px.srv.URL+"/gate/approve", form(t, page), "X-Forwarded-User", "root\u202e"); code != http.StatusBadRequest {
		t.Errorf("a proxy user with an override: %d", code)
	}
	for _, f := range []*fixture{fx, px} {
		if d := f.get(t, "rel-1").LastGate().Decision; d != nil {
			t.Fatalf("a disguised name decided: %+v", d)
		}
	}
}

// After logging out, a session cookie captured before no longer works, on this server or on
// another sharing the store (a second gate Lambda).
func TestLogoutEndsTheSessionEverywhere(t *testing.T) {
	const token = "let-me-in-please"
	fx := setup(t, web.Config{AdminToken: token})
	fx.waiting(t, "rel-1")
	other, err := web.New(web.Config{Store: fx.st, Signer: fx.signer, AdminToken: token})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(other)
	t.Cleanup(srv2.Close)

	c := browser(t)
	page := fx.login(t, c, "Olga", token)
	u, _ := url.Parse(fx.srv.URL)
	captured := c.Jar.Cookies(u) // the session and CSRF cookies, as a thief would copy them
	thief := func(base string) *http.Client {
		jar, _ := cookiejar.New(nil)
		bu, _ := url.Parse(base)
		jar.SetCookies(bu, captured)
		return &http.Client{Jar: jar}
	}
	buttons := `action="/releases/rel-1/approve"`
	for _, base := range []string{fx.srv.URL, srv2.URL} {
		if _, p := read(t)(thief(base).Get(base + "/releases/rel-1")); !strings.Contains(p, buttons) {
			t.Fatalf("the captured cookie does not work at %s before logging out", base)
		}
	}
	bf := form(t, page)
	if code, body := read(t)(c.PostForm(fx.srv.URL+"/logout", bf)); code != 200 || strings.Contains(body, "Signed in as") {
		t.Fatalf("logout: %d\n%s", code, body)
	}
	for _, base := range []string{fx.srv.URL, srv2.URL} {
		th := thief(base)
		if _, p := read(t)(th.Get(base + "/releases/rel-1")); strings.Contains(p, buttons) || strings.Contains(p, "Signed in as") {
			t.Errorf("the captured cookie still shows the buttons at %s after logging out", base)
		}
		if code, _ := read(t)(th.PostForm(base+"/releases/rel-1/approve", bf)); code != http.StatusForbidden {
			t.Errorf("the captured cookie's POST at %s: %d", base, code)
		}
	}
	if d := fx.get(t, "rel-1").LastGate().Decision; d != nil {
		t.Fatalf("decided with an ended session: %+v", d)
	}
}

// Another site cannot log a person out: POST /logout needs the page's token.
func TestLogoutNeedsThePagesToken(t *testing.T) {
	const token = "let-me-in-please"
	fx := setup(t, web.Config{AdminToken: token})
	fx.waiting(t, "rel-1")
	c := browser(t)
	page := fx.login(t, c, "Olga", token)
	noRedirect := *c
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if code, _ := postWith(t, &noRedirect, fx.srv.URL+"/logout", url.Values{}); code != http.StatusForbidden {
		t.Errorf("logout without the token: %d", code)
	}
	if code, _ := postWith(t, &noRedirect, fx.srv.URL+"/logout", form(t, page), "Sec-Fetch-Site", "cross-site"); code != http.StatusForbidden {
		t.Errorf("logout from another site: %d", code)
	}
	if _, p := read(t)(c.Get(fx.srv.URL + "/releases/rel-1")); !strings.Contains(p, "Signed in as Olga") {
		t.Fatal("a refused logout ended the session")
	}
}

// A used link's form, posted again and again, adds one "too late" entry per decider, and a few
// at most however many names are typed.
func TestUsedLinksAddBoundedLateEntries(t *testing.T) {
	fx := setup(t, web.Config{})
	fx.waiting(t, "rel-1")
	c, f := fx.confirmForm(t, "rel-1", release.Approve)
	c2, f2 := fx.confirmForm(t, "rel-1", release.DecideRollback) // opened before the decision
	f.Set("name", "Dana")
	if code, _ := read(t)(c.PostForm(fx.srv.URL+"/gate/approve", f)); code != 200 {
		t.Fatalf("the decision: %d", code)
	}
	late := func() int {
		n := 0
		for _, e := range fx.events(t, "rel-1") {
			if e.Data["tooLate"] == true {
				n++
			}
		}
		return n
	}
	for range 10 {
		if code, body := read(t)(c.PostForm(fx.srv.URL+"/gate/approve", f)); code != http.StatusConflict || !strings.Contains(body, "Too late") {
			t.Fatalf("a replay: %d\n%s", code, body)
		}
	}
	if got, want := late(), 1; got != want {
		t.Fatalf("%d late entries after 10 replays by one decider, want %d", got, want)
	}
	for i := range 20 {
		f.Set("name", fmt.Sprintf("name %d", i))
		if code, _ := read(t)(c.PostForm(fx.srv.URL+"/gate/approve", f)); code != http.StatusConflict {
			t.Fatalf("a replay as name %d: %d", i, code)
		}
	}
	if got, max := late(), 5; got > max {
		t.Fatalf("%d late entries after replays under 20 names, want at most %d", got, max)
	}
	// Another link is another origin: its late decision is recorded.
	f2.Set("name", "Fox")
	read(t)(c2.PostForm(fx.srv.URL+"/gate/rollback", f2))
	found := false
	for _, e := range fx.events(t, "rel-1") {
		found = found || e.Data["tooLate"] == true && e.Actor == "Fox"
	}
	if !found {
		t.Error("another link's late decision is not in the audit trail")
	}
}

// syncBuffer is a log sink tests can read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// With a user header, the server says at startup that it believes X-Forwarded-For from anyone,
// unless it is given its proxies; then only they are believed, and the client is the nearest
// address they did not add.
func TestTrustedProxies(t *testing.T) {
	var logs syncBuffer
	setup(t, web.Config{UserHeader: "X-Forwarded-User", Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "believed from any client") {
		t.Errorf("no warning at startup:\n%s", logs.String())
	}
	if _, err := web.ParseProxies([]string{"10.0.0.0/8", "not-an-address"}); err == nil {
		t.Error("ParseProxies accepted a bad entry")
	}

	// The test's client connects from 127.0.0.1, which is not a trusted proxy here.
	far, _ := web.ParseProxies([]string{"10.0.0.0/8"})
	var quiet syncBuffer
	fx := setup(t, web.Config{UserHeader: "X-Forwarded-User", TrustedProxies: far, Log: slog.New(slog.NewTextHandler(&quiet, nil))})
	if strings.Contains(quiet.String(), "believed from any client") {
		t.Errorf("a warning with trusted proxies:\n%s", quiet.String())
	}
	fx.waiting(t, "rel-1")
	c := browser(t)
	get, _ := http.NewRequest("GET", fx.link("rel-1", release.Approve, time.Now().Add(time.Hour)), nil)
	get.Header.Set("X-Forwarded-User", "ceo@example.com")
	_, page := read(t)(c.Do(get))
	if strings.Contains(page, "ceo@example.com") || !strings.Contains(page, `name="name"`) {
		t.Fatalf("a user header from an untrusted client was believed:\n%s", page)
	}
	f := form(t, page)
	f.Set("name", "Walter")
	if code, body := postWith(t, c, fx.srv.URL+"/gate/approve", f, "X-Forwarded-User", "ceo@example.com", "X-Forwarded-For", "203.0.113.9"); code != 200 {
		t.Fatalf("%d\n%s", code, body)
	}
	if d := fx.get(t, "rel-1").LastGate().Decision; d.By != "Walter" || d.Source != "127.0.0.1" {
		t.Errorf("decision from an untrusted client = %+v, want Walter from 127.0.0.1", d)
	}

	// Behind two trusted proxies (127.0.0.1 connects; 127.0.0.5 is the one before it).
	near := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	fx = setup(t, web.Config{UserHeader: "X-Forwarded-User", TrustedProxies: near})
	fx.waiting(t, "rel-1")
	c = browser(t)
	get, _ = http.NewRequest("GET", fx.link("rel-1", release.Approve, time.Now().Add(time.Hour)), nil)
	get.Header.Set("X-Forwarded-User", "alice@example.com")
	_, page = read(t)(c.Do(get))
	f = form(t, page)
	if code, body := postWith(t, c, fx.srv.URL+"/gate/approve", f, "X-Forwarded-User", "alice@example.com", "X-Forwarded-For", "198.51.100.66, 203.0.113.9, 127.0.0.5"); code != 200 {
		t.Fatalf("%d\n%s", code, body)
	}
	if d := fx.get(t, "rel-1").LastGate().Decision; d.By != "alice@example.com" || d.Source != "203.0.113.9" {
		t.Errorf("decision through trusted proxies = %+v, want alice@example.com from 203.0.113.9", d)
	}
}

// A guesser with many addresses (or a forged X-Forwarded-For) meets a ceiling on wrong tokens
// from all addresses together.
func TestWrongAdminTokensHaveAGlobalCeiling(t *testing.T) {
	fx := setup(t, web.Config{AdminToken: "the-right-token", UserHeader: "X-Forwarded-User"})
	c := browser(t)
	_, login := read(t)(c.Get(fx.srv.URL + "/login"))
	lf := form(t, login)
	lf.Set("name", "guesser")
	for i := range 50 {
		lf.Set("token", fmt.Sprintf("guess-%d", i))
		addr := fmt.Sprintf("198.51.100.%d", i/4) // four from each: under the per-address limit
		if code, _ := postWith(t, c, fx.srv.URL+"/login", lf, "X-Forwarded-For", addr); code != http.StatusForbidden {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	lf.Set("token", "the-right-token")
	code, body := postWith(t, c, fx.srv.URL+"/login", lf, "X-Forwarded-For", "203.0.113.200")
	if code != http.StatusTooManyRequests || !strings.Contains(body, "closed for everyone") {
		t.Fatalf("after 50 guesses from 13 addresses, a fresh address: %d\n%s", code, body)
	}
}

// The rollback button for a release that does not exist says so, as the approve button does.
func TestAdminRollbackOfAMissingRelease(t *testing.T) {
	const token = "let-me-in-please"
	fx := setup(t, web.Config{AdminToken: token})
	fx.waiting(t, "rel-1")
	c := browser(t)
	bf := form(t, fx.login(t, c, "Olga", token))
	for _, action := range []string{"approve", "rollback"} {
		if code, body := read(t)(c.PostForm(fx.srv.URL+"/releases/nope/"+action, bf)); code != http.StatusNotFound || !strings.Contains(body, "No such release") {
			t.Errorf("%s of a missing release: %d\n%s", action, code, body)
		}
	}
}

// scrape reads /metrics into sample values by series.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, fam := range fams {
		for _, m := range fam.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			key := name + "{" + strings.Join(ls, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key+"_count"] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// Counters never fall: not when a release is reopened after it ended (a promoted release rolled
// back with `aviary rollback`), and a counter is counted from the whole store, so a second
// server on the same store (another gate Lambda) reports the same.
func TestMetricsCountersNeverFall(t *testing.T) {
	fx := setup(t, web.Config{})
	now := time.Now()
	for i := range 3 {
		r := &release.Release{ID: fmt.Sprintf("rel-%d", i), Service: "shop", Environment: "production", Phase: release.Promoted,
			CreatedAt: now.Add(-time.Hour), EndedAt: now.Add(-50 * time.Minute)}
		if err := fx.st.CreateRelease(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	const promoted = `aviary_releases_total{environment=production,outcome=promoted,service=shop}`
	const rolledBack = `aviary_releases_total{environment=production,outcome=rolled-back,service=shop}`
	const started = `aviary_releases_started_total{environment=production,service=shop}`
	before := scrape(t, fx.srv.URL)
	if got, want := before[promoted], 3.0; got != want {
		t.Fatalf("%s = %v, want %v", promoted, got, want)
	}
	// rel-0 is reopened and rolled back, as release.Engine.RequestRollback records it: its
	// earlier end is kept.
	r := fx.get(t, "rel-0")
	r.Earlier = append(r.Earlier, release.Ending{Phase: r.Phase, At: r.EndedAt})
	r.Phase, r.EndedAt = release.RolledBack, now
	if err := fx.st.UpdateRelease(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, fx.srv.URL)
	for k, v := range before {
		if strings.HasPrefix(k, "aviary_releases_live") {
			continue // a gauge
		}
		if after[k] < v {
			t.Errorf("%s fell from %v to %v", k, v, after[k])
		}
	}
	if got, want := after[rolledBack], 1.0; got != want {
		t.Errorf("%s = %v, want %v", rolledBack, got, want)
	}
	// A second server over the same store counts the same releases.
	other, err := web.New(web.Config{Store: fx.st, Signer: fx.signer})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(other)
	t.Cleanup(srv2.Close)
	// A second server over the same store, started after the reopening, reports the same
	// numbers: behind one address, Prometheus sees no counter fall whichever instance answers.
	fresh := scrape(t, srv2.URL)
	for _, k := range []string{started, promoted, rolledBack} {
		if got, want := fresh[k], after[k]; got != want {
			t.Errorf("another server: %s = %v, want %v", k, got, want)
		}
	}
}

// unreadableSessions is a store whose revocation list cannot be read while down is set.
type unreadableSessions struct {
	store.Store
	down atomic.Bool
}

func (s *unreadableSessions) SessionRevoked(ctx context.Context, id string) (bool, error) {
	if s.down.Load() {
		return false, errors.New("the store is unreachable")
	}
	return s.Store.SessionRevoked(ctx, id)
}

// A log out while the store cannot say whether the session was revoked still revokes it: the
// cookie's signature says there is a session to end, so its copies die with it.
func TestLogoutWhileSessionsCannotBeRead(t *testing.T) {
	const token = "let-me-in-please"
	fx := setup(t, web.Config{AdminToken: token})
	fx.waiting(t, "rel-1")
	st := &unreadableSessions{Store: fx.st}
	h, err := web.New(web.Config{Store: st, Signer: fx.signer, AdminToken: token, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	fx2 := *fx
	fx2.srv = httptest.NewServer(h)
	t.Cleanup(fx2.srv.Close)

	c := browser(t)
	page := fx2.login(t, c, "Olga", token)
	u, _ := url.Parse(fx2.srv.URL)
	captured := c.Jar.Cookies(u)
	st.down.Store(true)
	read(t)(c.PostForm(fx2.srv.URL+"/logout", form(t, page)))
	st.down.Store(false)

	jar, _ := cookiejar.New(nil)
	jar.SetCookies(u, captured)
	thief := &http.Client{Jar: jar}
	if _, p := read(t)(thief.Get(fx2.srv.URL + "/releases/rel-1")); strings.Contains(p, "Signed in as") {
		t.Fatal("a cookie copied before a log out made while the store could not be read still works")
	}
}
