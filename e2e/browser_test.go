package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/internal/examplefn"
	"github.com/aviary-deploy/aviary/links"
	"github.com/aviary-deploy/aviary/release"
)

// The proof in a real browser: a production release waits at its gate; the Slack notice's
// approve button is opened in headless Chromium, which sees the confirmation page, types a name
// and presses approve, and the release is promoted; a tampered link shows the error page and
// changes nothing. The release page's screenshot goes to $AVIARY_SCREENSHOT when set.
func TestBrowserApprovesFromTheSlackLink(t *testing.T) {
	root, err := examplefn.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	browser := os.Getenv("CHROMIUM")
	if browser == "" {
		browser, err = exec.LookPath("chromium")
		if err != nil {
			t.Skip("no chromium on PATH: ./test.sh installs Debian's chromium and playwright-core")
		}
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "playwright-core", "package.json")); err != nil {
		t.Skip("no node_modules/playwright-core: ./test.sh installs it (npm ci), with Debian's chromium")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node: ./test.sh installs nodejs, chromium and playwright-core")
	}
	began := time.Now()
	const secret = "browser-test-link-secret-0123456789"
	t.Setenv("AVIARY_LINK_SECRET", secret)
	signer, err := links.NewSigner([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	slack := newSlackReceiver(t)

	f := newFleet(t, 2, quick, "      canary:\n        - weight: 20%\n          bake: 1s")
	// The first release has nothing to compare with and goes out before the gate is configured.
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		t.Fatalf("first release: exit %d\n%s\n%s", code, out, errs)
	}
	first := f.latest()

	dashboard, serveLog := startServe(t, f)
	f.replaceInManifest("service: shop\n", "service: shop\ndashboard: "+dashboard+"\n")
	f.appendManifest("    approval:\n      timeout: 10m\n    notify:\n      slack: " + slack.url + "/services/T000/B000/XXXX\n")

	// The second release waits at its gate, after its last step, in a process of its own.
	f.stampAll("2")
	var deployOut syncBuffer
	deploy := exec.Command(built.aviary, "deploy", "-e", "production")
	deploy.Dir, deploy.Stdout, deploy.Stderr = f.dir, &deployOut, &deployOut
	if err := deploy.Start(); err != nil {
		t.Fatal(err)
	}
	deployDone := make(chan struct{})
	var deployErr error
	go func() { deployErr = deploy.Wait(); close(deployDone) }()
	t.Cleanup(func() {
		select {
		case <-deployDone:
		default:
			deploy.Process.Kill()
			<-deployDone
		}
	})

	// Slack hears that it waits, with the two buttons.
	var waiting slackPayload
	deadline := time.Now().Add(90 * time.Second)
	for {
		if p, ok := slack.find(func(p slackPayload) bool { return p.buttons() != nil && p.release() != first.ID }); ok {
			waiting = p
			break
		}
		select {
		case <-deployDone:
			t.Fatalf("the deploy ended (%v) before Slack heard it waits:\n%s", deployErr, deployOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no awaiting notice in Slack after 90s; received %d payloads; deploy output:\n%s", len(slack.all()), deployOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := f.latest()
	if r.Phase != release.AwaitingApproval || r.ID == first.ID {
		t.Fatalf("latest release %s is %s, want the second, awaiting approval", r.ID, r.Describe())
	}
	if !strings.Contains(waiting.header(), "release "+r.ID+" waits for a decision") {
		t.Errorf("awaiting notice's header %q does not name release %s", waiting.header(), r.ID)
	}
	buttons := waiting.buttons()
	approve, rollback := buttons["approve"], buttons["rollback"]
	for action, link := range map[release.DecisionAction]string{release.Approve: approve, release.DecideRollback: rollback} {
		if !strings.HasPrefix(link, dashboard+"/gate/"+string(action)+"?t=") {
			t.Fatalf("the %s button's URL %q does not point at the dashboard's %s page (%s)", action, link, action, dashboard)
		}
		c, err := signer.Verify(token(t, link), action, time.Now())
		if err != nil || c.Release != r.ID {
			t.Fatalf("the %s button's link is not signed for release %s: %+v, %v", action, r.ID, c, err)
		}
	}
	tampered := tamper(t, rollback)
	if _, err := signer.Verify(token(t, tampered), release.DecideRollback, time.Now()); !errors.Is(err, links.ErrSignature) {
		t.Fatalf("the tampered link %s verifies with %v, want a bad signature", tampered, err)
	}

	shot := os.Getenv("AVIARY_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "release-page.png")
	} else if shot, err = filepath.Abs(shot); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	node := exec.CommandContext(ctx, "node", filepath.Join("e2e", "browser", "gate.mjs"))
	node.Dir = root
	node.Env = append(withoutEnv(os.Environ(), "AVIARY_SCREENSHOT", "CHROMIUM"),
		"CHROMIUM="+browser,
		"AVIARY_APPROVE_LINK="+approve,
		"AVIARY_TAMPERED_LINK="+tampered,
		"AVIARY_RELEASE_PAGE="+dashboard+"/releases/"+url.PathEscape(r.ID),
		"AVIARY_RELEASE_ID="+r.ID,
		"AVIARY_SCREENSHOT="+shot,
	)
	var nodeErr bytes.Buffer
	node.Stderr = &nodeErr
	browsed := time.Now()
	out, err := node.Output()
	if err != nil {
		t.Fatalf("gate.mjs: %v\n%s\nstdout: %s\ndeploy output:\n%s", err, nodeErr.String(), out, deployOut.String())
	}
	t.Logf("browser (%s): %s", time.Since(browsed).Round(time.Millisecond), bytes.TrimSpace(out))
	if n := strings.Count(serveLog.String(), "refused a rollback link"); n != 2 {
		t.Errorf("aviary serve logged %d refused rollback links, want 2 (the tampered link, opened twice):\n%s", n, serveLog.String())
	}

	select {
	case <-deployDone:
		if deployErr != nil {
			t.Fatalf("deploy: %v\n%s", deployErr, deployOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the deploy did not end within 60s of the approval:\n%s", deployOut.String())
	}
	r = f.latest()
	if r.Phase != release.Promoted {
		t.Fatalf("release %s is %s, want promoted\n%s", r.ID, r.Describe(), deployOut.String())
	}
	for _, name := range f.names {
		fn := fnOf(r, name)
		if ver, w := f.alias(name); ver != fn.New || w != nil {
			t.Errorf("%s: alias at %s %v, want %s alone", name, ver, w, fn.New)
		}
		if got := f.served(name); got != "2" {
			t.Errorf("%s serves stamp %q, want 2", name, got)
		}
	}
	g := r.LastGate()
	if g == nil || g.Decision == nil {
		t.Fatalf("release %s has no gate decision: %+v", r.ID, r.Gates)
	}
	d := g.Decision
	if d.Action != release.Approve || d.By != "Browser Tester" || d.Via != release.ViaLink || !strings.Contains(d.UserAgent, "Chrome") || d.Source == "" {
		t.Errorf("gate decision %+v: want approve by Browser Tester via link from a Chrome user agent", d)
	}

	// The audit trail has the one decision; the tampered link left nothing, not even a too-late entry.
	st := f.openStore()
	evs, err := st.Events(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var decisions []release.Event
	for _, ev := range evs {
		if ev.Kind == release.EventDecision {
			decisions = append(decisions, ev)
		}
	}
	if len(decisions) != 1 || decisions[0].Actor != "Browser Tester" || decisions[0].Data["tooLate"] == true {
		t.Errorf("decision entries in the audit trail: %+v, want exactly one, by Browser Tester", decisions)
	} else if !strings.Contains(decisions[0].Message, "approve") {
		t.Errorf("decision entry %q does not say approve", decisions[0].Message)
	}
	auditChain(t, st, r)

	// Slack heard the release start, wait and be promoted, and the promotion says who approved.
	kinds := map[string]slackPayload{}
	for _, p := range slack.all() {
		if p.release() != r.ID {
			continue
		}
		for _, k := range []struct{ kind, says string }{{"started", " started"}, {"awaiting", " waits for a decision"}, {"promoted", " was promoted"}} {
			if strings.HasSuffix(p.header(), "release "+r.ID+k.says) {
				kinds[k.kind] = p
			}
		}
	}
	for _, k := range []string{"started", "awaiting", "promoted"} {
		if _, ok := kinds[k]; !ok {
			t.Errorf("Slack did not hear release %s %s; headers: %q", r.ID, k, slack.headers())
		}
	}
	if p, ok := kinds["promoted"]; ok && !strings.Contains(string(p.raw), "Approved by Browser Tester via link") {
		t.Errorf("the promoted notice does not say who approved: %s", p.raw)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Errorf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("release %s promoted from the Slack link in a browser; screenshot of its page: %s (whole test %s)", r.ID, shot, time.Since(began).Round(time.Millisecond))
}

// startServe runs `aviary serve` over the fleet's store and returns its address once /healthz
// answers, and its log.
func startServe(t *testing.T, f *fleet) (string, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(built.aviary, "serve", "--addr", "127.0.0.1:0")
	cmd.Dir = f.dir
	var stdout syncBuffer
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("aviary serve's output:\n%s%s", stdout.String(), stderr.String())
		}
	})
	var base string
	for wait := time.Now().Add(30 * time.Second); base == ""; time.Sleep(20 * time.Millisecond) {
		for line := range strings.Lines(stdout.String()) {
			if rest, ok := strings.CutPrefix(line, "Aviary dashboard on "); ok {
				base, _, _ = strings.Cut(rest, " ")
			}
		}
		if base == "" && time.Now().After(wait) {
			t.Fatalf("aviary serve did not say where it listens:\n%s%s", stdout.String(), stderr.String())
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			err = errors.New(resp.Status + ": " + string(body))
		}
		if time.Now().After(deadline) {
			t.Fatalf("aviary serve at %s is not healthy: %v\n%s", base, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return base, stderr
}

// token is a link's t parameter.
func token(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("t")
}

// tamper changes one character in the middle of a link's signature, keeping it URL-safe base64.
func tamper(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	tok := []byte(q.Get("t"))
	dot := bytes.IndexByte(tok, '.')
	if dot < 0 || len(tok)-dot < 8 {
		t.Fatalf("link token %q has no signature part", tok)
	}
	i := dot + (len(tok)-dot)/2
	if tok[i] == 'A' {
		tok[i] = 'B'
	} else {
		tok[i] = 'A'
	}
	q.Set("t", string(tok))
	u.RawQuery = q.Encode()
	return u.String()
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || name == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// slackReceiver is a Slack incoming webhook that keeps what it is sent.
type slackReceiver struct {
	url      string
	mu       sync.Mutex
	payloads []slackPayload
}

func newSlackReceiver(t *testing.T) *slackReceiver {
	s := &slackReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p slackPayload
		if r.Method != http.MethodPost || json.Unmarshal(body, &p) != nil {
			t.Errorf("Slack receiver: %s %s with %q", r.Method, r.URL, body)
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		p.raw = body
		s.mu.Lock()
		s.payloads = append(s.payloads, p)
		s.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *slackReceiver) all() []slackPayload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]slackPayload(nil), s.payloads...)
}

func (s *slackReceiver) find(ok func(slackPayload) bool) (slackPayload, bool) {
	for _, p := range s.all() {
		if ok(p) {
			return p, true
		}
	}
	return slackPayload{}, false
}

func (s *slackReceiver) headers() []string {
	var out []string
	for _, p := range s.all() {
		out = append(out, p.header())
	}
	return out
}

// slackPayload is the part of a Block Kit message the test reads.
type slackPayload struct {
	Text   string `json:"text"`
	Blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Text string `json:"text"`
		} `json:"text"`
		Elements []struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
			URL      string `json:"url"`
		} `json:"elements"`
	} `json:"blocks"`
	raw []byte
}

func (p slackPayload) header() string {
	for _, b := range p.Blocks {
		if b.Type == "header" && b.Text != nil {
			return b.Text.Text
		}
	}
	return ""
}

// release is the id in the header "shop → production: release ID ...".
func (p slackPayload) release() string {
	_, rest, ok := strings.Cut(p.header(), ": release ")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, " ")
	return id
}

// buttons are the actions block's link buttons by action id; nil without one.
func (p slackPayload) buttons() map[string]string {
	var out map[string]string
	for _, b := range p.Blocks {
		if b.Type != "actions" {
			continue
		}
		for _, e := range b.Elements {
			if e.Type == "button" && e.URL != "" {
				if out == nil {
					out = map[string]string{}
				}
				out[e.ActionID] = e.URL
			}
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for a process's writes and the test's reads.
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
