package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/notify"
	"github.com/aviary-deploy/aviary/release"
)

// sample is a release at its second step, the first having passed.
func sample() release.Release {
	return release.Release{
		ID: "r-42", Service: "shop", Environment: "prod", Alias: "live", Phase: release.Shifting, Step: 1,
		Steps: []release.Step{{Weight: 0.1}, {Weight: 0.5}},
		Functions: []release.Function{
			{Name: "orders", FunctionName: "shop-prod-orders", Previous: "7", New: "8", Weight: 0.5},
			{Name: "web", FunctionName: "shop-prod-web", New: "3", Weight: 0.5},
		},
		Health: release.HealthRecord{Steps: []release.StepRecord{
			{Step: 0, Weight: 0.1, Verdict: &release.Verdict{Result: release.Pass, Reason: "no regression so far"}},
			{Step: 1, Weight: 0.5},
		}},
	}
}

// failing is sample rolled back after its second step failed on the errors of orders.
func failing() release.Release {
	r := sample()
	r.Phase = release.RolledBack
	r.Reason = "every function is back on its previous version (step 2 failed its health check: shop-prod-orders: the canary's errors are out of proportion)"
	r.Functions[0].Weight, r.Functions[0].RolledBack = 0, true
	r.Functions[1].Weight, r.Functions[1].RolledBack = 0, true
	r.Health.Steps[1].Verdict = &release.Verdict{
		Result: release.Fail, Check: "errors", Function: "shop-prod-orders",
		Reason: "shop-prod-orders: the canary's errors are out of proportion",
		Functions: map[string]map[string]float64{
			"shop-prod-orders": {"canaryInvocations": 20, "canaryErrors": 8, "baselineInvocations": 100, "baselineErrors": 1},
			"shop-prod-web":    {"canaryInvocations": 30, "canaryErrors": 0},
		},
	}
	return r
}

// awaiting is sample waiting at its gate after the last step.
func awaiting() release.Release {
	r := sample()
	r.Phase = release.AwaitingApproval
	r.Awaiting = "production needs a person's approval after the last step"
	r.Approval = &release.Approval{AtStep: 2, Timeout: time.Hour, OnTimeout: "rollback"}
	opened := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r.Gates = []release.Gate{{Step: 2, Kind: release.GateApproval, Opened: opened, Deadline: opened.Add(time.Hour), Why: r.Awaiting}}
	return r
}

const (
	approveURL  = "https://aviary.example/link/approve?r=r-42&exp=1&sig=abc"
	rollbackURL = "https://aviary.example/link/rollback?r=r-42&exp=1&sig=def"
	releaseURL  = "https://aviary.example/releases/r-42?tab=audit&x=1"
)

// Block Kit as the tests read it back.
type (
	slackPayload struct {
		Text   string  `json:"text"`
		Blocks []block `json:"blocks"`
	}
	block struct {
		Type     string    `json:"type"`
		Text     *textObj  `json:"text"`
		Fields   []textObj `json:"fields"`
		Elements []element `json:"elements"`
	}
	textObj struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	element struct {
		Type     string          `json:"type"` // button, or a text object in a context block
		Text     json.RawMessage `json:"text"`
		ActionID string          `json:"action_id"`
		Style    string          `json:"style"`
		URL      string          `json:"url"`
	}
)

// slack encodes a notice's Slack payload, reads it back and checks it is valid Block Kit.
func slack(t *testing.T, n notify.Notice) slackPayload {
	t.Helper()
	b, err := json.Marshal(notify.SlackMessage(n))
	if err != nil {
		t.Fatal(err)
	}
	var p slackPayload
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	checkBlockKit(t, p)
	return p
}

func checkText(t *testing.T, where string, o *textObj, limit int, types ...string) {
	t.Helper()
	if o == nil {
		t.Fatalf("%s has no text", where)
	}
	ok := false
	for _, ty := range types {
		ok = ok || o.Type == ty
	}
	if !ok || o.Text == "" || len(o.Text) > limit {
		t.Fatalf("%s: text object %+v: want type %v, 1 to %d characters", where, o, types, limit)
	}
}

// checkBlockKit checks the limits and shapes of Block Kit that Slack refuses a payload for.
func checkBlockKit(t *testing.T, p slackPayload) {
	t.Helper()
	if p.Text == "" || len(p.Blocks) == 0 || len(p.Blocks) > 50 {
		t.Fatalf("payload: text %q and %d blocks", p.Text, len(p.Blocks))
	}
	for i, b := range p.Blocks {
		where := fmt.Sprintf("block %d (%s)", i, b.Type)
		switch b.Type {
		case "header":
			checkText(t, where, b.Text, 150, "plain_text")
		case "section":
			if b.Text == nil && len(b.Fields) == 0 {
				t.Fatalf("%s has neither text nor fields", where)
			}
			if b.Text != nil {
				checkText(t, where, b.Text, 3000, "mrkdwn", "plain_text")
			}
			if len(b.Fields) > 10 {
				t.Fatalf("%s has %d fields", where, len(b.Fields))
			}
			for j := range b.Fields {
				checkText(t, fmt.Sprintf("%s field %d", where, j), &b.Fields[j], 2000, "mrkdwn", "plain_text")
			}
		case "actions":
			if len(b.Elements) == 0 || len(b.Elements) > 25 {
				t.Fatalf("%s has %d elements", where, len(b.Elements))
			}
			for _, e := range b.Elements {
				var txt textObj
				if err := json.Unmarshal(e.Text, &txt); err != nil {
					t.Fatalf("%s: button text: %v", where, err)
				}
				checkText(t, where+" button", &txt, 75, "plain_text")
				if e.Type != "button" || e.URL == "" || e.ActionID == "" || (e.Style != "primary" && e.Style != "danger") {
					t.Fatalf("%s: button %+v", where, e)
				}
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > 10 {
				t.Fatalf("%s has %d elements", where, len(b.Elements))
			}
			for _, e := range b.Elements {
				checkText(t, where+" element", &textObj{Type: e.Type, Text: unquote(t, e.Text)}, 3000, "mrkdwn", "plain_text")
			}
		default:
			t.Fatalf("%s: unexpected block type", where)
		}
	}
}

func unquote(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return s
}

// blocksOf are the payload's blocks of one type.
func blocksOf(p slackPayload, typ string) []block {
	var out []block
	for _, b := range p.Blocks {
		if b.Type == typ {
			out = append(out, b)
		}
	}
	return out
}

// allText is every text of the payload, one per line.
func allText(p slackPayload) string {
	var s []string
	for _, b := range p.Blocks {
		if b.Text != nil {
			s = append(s, b.Text.Text)
		}
		for _, f := range b.Fields {
			s = append(s, f.Text)
		}
		for _, e := range b.Elements {
			var txt string
			if e.Type != "button" && json.Unmarshal(e.Text, &txt) == nil {
				s = append(s, txt)
			}
		}
	}
	return strings.Join(s, "\n")
}

func TestSlackMessageEveryKind(t *testing.T) {
	step := sample()
	promoted := sample()
	promoted.Phase = release.Promoted
	for i := range promoted.Functions {
		promoted.Functions[i].Weight, promoted.Functions[i].Promoted = 1, true
	}
	promoted.Gates = awaiting().Gates
	promoted.Gates[0].Decision = &release.Decision{Action: release.Approve, By: "alice", Via: release.ViaLink, At: time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC)}
	failed := failing()
	failed.Phase, failed.Reason = release.Failed, "step 2 failed its health check; rollback could not finish: alias live of shop-prod-web: AccessDenied"
	started := sample()
	started.Phase, started.Step, started.Health = release.Publishing, 0, release.HealthRecord{}

	cases := []struct {
		kind     notify.Kind
		r        release.Release
		headline string
		want     []string // in the payload's texts
	}{
		{notify.Started, started, "shop → prod: release r-42 started", []string{"*orders*: 7 → 8, 50% on 8", "*web*: none → 3, 50% on 3"}},
		{notify.Step, step, "shop → prod: release r-42 is at step 2 of 2 (50% on the new versions)", []string{"*orders*: 7 → 8, 50% on 8"}},
		{notify.Awaiting, awaiting(), "shop → prod: release r-42 waits for a decision", []string{
			"*Why a person must decide:* production needs a person's approval after the last step",
			"If nobody decides by <!date^1772370000^{date_short_pretty} at {time}|2026-03-01 13:00 UTC>, the release will be rolled back.",
		}},
		{notify.Promoted, promoted, "shop → prod: release r-42 was promoted", []string{"*orders*: 7 → 8, all traffic on 8", "Approved by alice via link on <!date^"}},
		{notify.RolledBack, failing(), "shop → prod: release r-42 was rolled back", []string{
			"*Reason:* every function is back on its previous version",
			"*Step 2: the errors check on orders failed:* canary 8 errors in 20 invocations (40%) against the baseline's 1 in 100 (1%).",
			"*orders*: 7 → 8, back on 7", "*web*: none → 3, removed",
		}},
		{notify.Failed, failed, "shop → prod: release r-42 failed", []string{
			"*Reason:* step 2 failed its health check; rollback could not finish",
			"canary 8 errors in 20 invocations (40%)",
		}},
	}
	for _, c := range cases {
		t.Run(string(c.kind), func(t *testing.T) {
			n := notify.Notice{Kind: c.kind, Release: c.r, Message: "something happened", ReleaseURL: releaseURL}
			if c.kind == notify.Awaiting {
				n.ApproveURL, n.RollbackURL = approveURL, rollbackURL
			}
			p := slack(t, n)
			if got := p.Blocks[0]; got.Type != "header" || got.Text.Text != c.headline {
				t.Fatalf("first block %s %+v, want the header %q", got.Type, got.Text, c.headline)
			}
			if got, want := p.Blocks[1].Text.Text, "something happened"; got != want {
				t.Fatalf("second block says %q, want the message %q", got, want)
			}
			if !strings.HasPrefix(p.Text, c.headline) {
				t.Fatalf("fallback text %q does not start with the headline", p.Text)
			}
			text := allText(p)
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("payload lacks %q:\n%s", w, text)
				}
			}
			if fields := blocksOf(p, "section"); len(fields) == 0 || len(fields[len(fields)-1].Fields) != 2 {
				t.Errorf("no section with a field for each of the 2 functions")
			}
			ctx := blocksOf(p, "context")
			if len(ctx) != 1 || !strings.Contains(allText(slackPayload{Blocks: ctx}), "<https://aviary.example/releases/r-42?tab=audit&amp;x=1|Open release r-42 in the dashboard>") {
				t.Errorf("context blocks %+v, want one linking to the release page", ctx)
			}
			actions := blocksOf(p, "actions")
			if c.kind != notify.Awaiting {
				if len(actions) != 0 {
					t.Fatalf("a %s notice has buttons: %+v", c.kind, actions)
				}
				if c.kind != notify.RolledBack && c.kind != notify.Failed && strings.Contains(text, "check on") {
					t.Errorf("a %s notice shows health numbers:\n%s", c.kind, text)
				}
				return
			}
			if len(actions) != 1 || len(actions[0].Elements) != 2 {
				t.Fatalf("actions %+v, want one block of two buttons", actions)
			}
			approve, rollback := actions[0].Elements[0], actions[0].Elements[1]
			if approve.Style != "primary" || approve.URL != approveURL {
				t.Errorf("approve button %+v", approve)
			}
			if !strings.Contains(string(approve.Text), `"Approve"`) || !strings.Contains(string(rollback.Text), `"Roll back"`) {
				t.Errorf("buttons say %s and %s", approve.Text, rollback.Text)
			}
			if rollback.Style != "danger" || rollback.URL != rollbackURL {
				t.Errorf("rollback button %+v", rollback)
			}
		})
	}
}

func TestSlackMessageEscapes(t *testing.T) {
	r := sample()
	r.Functions[0].Name = "a<b>&c"
	p := slack(t, notify.Notice{Kind: notify.RolledBack, Release: r, Message: "p99 > 2s & <!channel> rising"})
	if got, want := p.Blocks[1].Text.Text, "p99 &gt; 2s &amp; &lt;!channel&gt; rising"; got != want {
		t.Fatalf("message section %q, want %q", got, want)
	}
	if !strings.Contains(p.Text, "p99 &gt; 2s &amp; &lt;!channel&gt; rising") {
		t.Fatalf("fallback text %q is not escaped", p.Text)
	}
	if text := allText(p); !strings.Contains(text, "*a&lt;b&gt;&amp;c*: 7 → 8") {
		t.Fatalf("function name not escaped:\n%s", text)
	}
	// Plain text is shown as it is: escaping it would show the entities.
	r.Service = "x&y"
	if p := slack(t, notify.Notice{Kind: notify.Started, Release: r}); !strings.HasPrefix(p.Blocks[0].Text.Text, "x&y → prod") {
		t.Fatalf("header %q", p.Blocks[0].Text.Text)
	}
}

func TestSlackMessageSummarisesManyFunctions(t *testing.T) {
	for _, c := range []struct {
		functions int
		fields    int
		last      string
	}{
		{9, 9, "*f9*: 1 → 2, 10% on 2"},
		{10, 10, "*f10*: 1 → 2, 10% on 2"},
		{11, 10, "_and 2 more_"},
		{25, 10, "_and 16 more_"},
	} {
		t.Run(fmt.Sprint(c.functions), func(t *testing.T) {
			r := sample()
			r.Functions = nil
			for i := 1; i <= c.functions; i++ {
				r.Functions = append(r.Functions, release.Function{Name: fmt.Sprintf("f%d", i), Previous: "1", New: "2", Weight: 0.1})
			}
			p := slack(t, notify.Notice{Kind: notify.Step, Release: r})
			var fields []textObj
			for _, b := range blocksOf(p, "section") {
				fields = append(fields, b.Fields...)
			}
			if len(fields) != c.fields || fields[len(fields)-1].Text != c.last {
				t.Fatalf("%d fields, the last %q; want %d, the last %q", len(fields), fields[len(fields)-1].Text, c.fields, c.last)
			}
		})
	}
}

func TestSlackMessageKeepsToLimits(t *testing.T) {
	r := failing()
	r.Service = strings.Repeat("s", 200)
	r.Reason = strings.Repeat("é&", 2000)
	p := slack(t, notify.Notice{Kind: notify.RolledBack, Release: r, Message: strings.Repeat("<x>", 2000)})
	if h := p.Blocks[0].Text.Text; !strings.HasSuffix(h, "…") {
		t.Fatalf("long header %q not cut", h)
	}
	for _, b := range blocksOf(p, "section") {
		if b.Text == nil {
			continue
		}
		s := strings.TrimSuffix(b.Text.Text, "…")
		if i := strings.LastIndexByte(s, '&'); i >= 0 && !strings.Contains(s[i:], ";") {
			t.Fatalf("cut inside an entity: …%q", s[max(0, len(s)-20):])
		}
	}
}

func TestWebhookMessage(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n := notify.Notice{Kind: notify.RolledBack, Release: failing(), Message: "rolled back", ReleaseURL: releaseURL, Time: at}
	b, err := json.Marshal(notify.WebhookMessage(n))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Kind, Service, Environment, Release, Phase, Message, Reason string
		ApproveURL, RollbackURL, ReleaseURL                         string
		Step, Steps                                                 int
		Time                                                        string
		Functions                                                   []struct {
			Name, FunctionName, Previous, New string
			Weight                            float64
			RolledBack                        bool
		}
		Health *struct {
			Stage, Result, Check, Function, Reason string
			Numbers                                map[string]float64
		}
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != "rolled-back" || got.Service != "shop" || got.Environment != "prod" || got.Release != "r-42" || got.Phase != "rolled-back" ||
		got.Step != 2 || got.Steps != 2 || got.Message != "rolled back" || !strings.HasPrefix(got.Reason, "every function is back") ||
		got.ReleaseURL != releaseURL || got.ApproveURL != "" || got.Time != "2026-03-01T12:00:00Z" {
		t.Fatalf("webhook payload: %s", b)
	}
	if len(got.Functions) != 2 || got.Functions[0].Name != "orders" || got.Functions[0].FunctionName != "shop-prod-orders" ||
		got.Functions[0].Previous != "7" || got.Functions[0].New != "8" || got.Functions[0].Weight != 0 || !got.Functions[0].RolledBack {
		t.Fatalf("functions: %+v", got.Functions)
	}
	if h := got.Health; h == nil || h.Stage != "step 2" || h.Result != "fail" || h.Check != "errors" || h.Function != "shop-prod-orders" ||
		h.Numbers["canaryErrors"] != 8 || h.Numbers["baselineInvocations"] != 100 {
		t.Fatalf("health: %+v", got.Health)
	}
	// Every key is there even when it does not apply.
	keys := map[string]any{}
	b, _ = json.Marshal(notify.WebhookMessage(notify.Notice{Kind: notify.Started, Release: release.Release{ID: "r-1"}}))
	_ = json.Unmarshal(b, &keys)
	for _, k := range []string{"kind", "service", "environment", "release", "phase", "step", "message", "reason", "functions", "approveUrl", "rollbackUrl", "releaseUrl", "health", "time"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("no %q in %s", k, b)
		}
	}
	b, _ = json.Marshal(notify.WebhookMessage(notify.Notice{Kind: notify.Awaiting, Release: awaiting(), ApproveURL: approveURL, RollbackURL: rollbackURL}))
	keys = map[string]any{}
	_ = json.Unmarshal(b, &keys)
	if keys["approveUrl"] != approveURL || keys["rollbackUrl"] != rollbackURL || keys["deadline"] != "2026-03-01T13:00:00Z" || !strings.Contains(fmt.Sprint(keys["awaiting"]), "approval") {
		t.Fatalf("awaiting payload: %s", b)
	}
}

// recorder is a Record that hands every audit entry to the test.
type recorder chan release.Event

func (r recorder) Record(_ context.Context, e release.Event) error {
	r <- e
	return nil
}

// next is the next audit entry.
func (r recorder) next(t *testing.T) release.Event {
	t.Helper()
	select {
	case e := <-r:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no audit entry recorded")
		return release.Event{}
	}
}

// logBuffer is a Log the test may read while the sender writes it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// answers is a receiver answering each request with the next status (200 once they run out),
// handing the request's body to the test.
func answers(t *testing.T, got chan<- []byte, statuses ...int) *httptest.Server {
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b // before answering: once the sender has its answer, the test may count
		mu.Lock()
		status := http.StatusOK
		if len(statuses) > 0 {
			status, statuses = statuses[0], statuses[1:]
		}
		mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(status)
		if status == http.StatusOK {
			io.WriteString(w, "ok")
		} else {
			io.WriteString(w, "no_service")
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newSender(target notify.Target, rec recorder, log io.Writer) *notify.Sender {
	return &notify.Sender{Targets: []notify.Target{target}, Backoff: time.Millisecond, Record: rec.Record, Log: log}
}

func closeSender(t *testing.T, s *notify.Sender) {
	t.Helper()
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestRetriesUntilDelivered(t *testing.T) {
	got := make(chan []byte, 10)
	srv := answers(t, got, 503, 503)
	rec := make(recorder, 10)
	s := newSender(notify.Target{Kind: notify.TargetSlack, URL: srv.URL + "/services/T0/B0/secret"}, rec, nil)
	s.Send(notify.Notice{Kind: notify.Awaiting, Release: awaiting(), ApproveURL: approveURL, RollbackURL: rollbackURL})
	closeSender(t, s)
	if n := len(got); n != 3 {
		t.Fatalf("%d requests, want 3 (two 503s, then delivered once)", n)
	}
	var p slackPayload
	for range 3 {
		if err := json.Unmarshal(<-got, &p); err != nil {
			t.Fatal(err)
		}
	}
	if len(blocksOf(p, "actions")) != 1 {
		t.Fatalf("the payload delivered has no buttons: %+v", p)
	}
	e := rec.next(t)
	if e.Kind != release.EventNotice || e.ReleaseID != "r-42" || e.Phase != release.AwaitingApproval || e.Message != `slack notice "awaiting" sent on attempt 3` ||
		e.Data["attempts"] != 3 || e.Data["ok"] != true || e.Data["status"] != 200 || e.Data["target"] != "slack" || e.Data["notice"] != "awaiting" {
		t.Fatalf("audit entry %+v", e)
	}
	if len(rec) != 0 {
		t.Fatalf("more than one audit entry: %+v", <-rec)
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	got := make(chan []byte, 10)
	srv := answers(t, got, 429)
	rec := make(recorder, 10)
	s := newSender(notify.Target{Kind: notify.TargetWebhook, URL: srv.URL}, rec, nil)
	s.Send(notify.Notice{Kind: notify.Started, Release: sample()})
	<-got
	first := time.Now()
	<-got
	// A lower bound only: without Retry-After the 1 ms backoff would have retried at once.
	if waited := time.Since(first); waited < 900*time.Millisecond {
		t.Fatalf("retried after %s, before the second Retry-After asked for", waited)
	}
	closeSender(t, s)
	if e := rec.next(t); e.Data["attempts"] != 2 || e.Data["ok"] != true {
		t.Fatalf("audit entry %+v", e)
	}
}

func TestClientErrorIsNotRetried(t *testing.T) {
	got := make(chan []byte, 10)
	srv := answers(t, got, 400, 400)
	rec := make(recorder, 10)
	var log logBuffer
	s := newSender(notify.Target{Kind: notify.TargetSlack, URL: srv.URL}, rec, &log)
	s.Send(notify.Notice{Kind: notify.Promoted, Release: sample()})
	closeSender(t, s)
	if n := len(got); n != 1 {
		t.Fatalf("%d requests, want 1: a 400 is not tried again", n)
	}
	e := rec.next(t)
	if e.Data["ok"] != false || e.Data["attempts"] != 1 || e.Data["status"] != 400 ||
		e.Message != `slack notice "promoted" failed after 1 attempt: the receiver answered 400 Bad Request: no_service` {
		t.Fatalf("audit entry %+v", e)
	}
	if !strings.Contains(log.String(), "failed after 1 attempt") {
		t.Fatalf("log: %s", log.String())
	}
}

// hanging is a receiver that answers nothing until the test lets it: arrived hears of each
// request as it comes in.
func hanging(t *testing.T) (srv *httptest.Server, arrived chan []byte, letGo func()) {
	arrived = make(chan []byte, 100)
	release := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		arrived <- b
		<-release
	}))
	var once sync.Once
	letGo = func() { once.Do(func() { close(release) }) }
	t.Cleanup(func() {
		letGo()
		srv.Close()
	})
	return srv, arrived, letGo
}

func TestHangingReceiverNeverBlocksSend(t *testing.T) {
	srv, arrived, letGo := hanging(t)
	rec := make(recorder, 10)
	var log logBuffer
	s := &notify.Sender{
		Targets: []notify.Target{{Kind: notify.TargetWebhook, URL: srv.URL}},
		Client:  &http.Client{Timeout: 100 * time.Millisecond}, Attempts: 2, Backoff: time.Millisecond,
		Record: rec.Record, Log: &log,
	}
	s.Send(notify.Notice{Kind: notify.Step, Release: sample(), Message: "one"})
	<-arrived // the receiver holds the first notice and will not answer

	sent := make(chan struct{})
	go func() {
		s.Send(notify.Notice{Kind: notify.Step, Release: sample(), Message: "two"})
		close(sent)
	}()
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatal("Send blocked while the receiver hangs")
	}
	// The receiver has not been let go: Send returned while it still held the first notice.

	for _, msg := range []string{"one", "two"} {
		e := rec.next(t)
		if e.Data["ok"] != false || e.Data["attempts"] != 2 || !strings.Contains(e.Message, `webhook notice "step" failed after 2 attempts: post: `) ||
			!strings.Contains(fmt.Sprint(e.Data["error"]), "Client.Timeout exceeded") {
			t.Fatalf("audit entry for %q: %+v", msg, e)
		}
	}
	letGo()
	closeSender(t, s)
	if strings.Count(log.String(), "failed after 2 attempts") != 2 {
		t.Fatalf("log: %s", log.String())
	}
}

func TestOrderPerTargetAndCloseWaits(t *testing.T) {
	slackGot, hookGot := make(chan []byte, 100), make(chan []byte, 100)
	// The webhook fails every third notice once, so that retries would reorder notices if
	// anything did.
	var flaky []int
	for i := range 30 {
		if i%3 == 0 {
			flaky = append(flaky, 502)
		}
		flaky = append(flaky, 200)
	}
	slackSrv, hookSrv := answers(t, slackGot), answers(t, hookGot, flaky...)
	rec := make(recorder, 100)
	s := &notify.Sender{
		Targets: []notify.Target{{Kind: notify.TargetSlack, URL: slackSrv.URL}, {Kind: notify.TargetWebhook, URL: hookSrv.URL}},
		Backoff: time.Millisecond, Record: rec.Record,
	}
	for i := range 30 {
		s.Send(notify.Notice{Kind: notify.Step, Release: sample(), Message: fmt.Sprintf("notice %d", i)})
	}
	closeSender(t, s)
	// Close returned: everything is delivered, without waiting any longer.
	if len(slackGot) != 30 || len(hookGot) != 30+10 || len(rec) != 60 {
		t.Fatalf("after Close: %d slack requests, %d webhook requests, %d audit entries; want 30, 40, 60", len(slackGot), len(hookGot), len(rec))
	}
	for i := range 30 {
		var p slackPayload
		_ = json.Unmarshal(<-slackGot, &p)
		if got, want := p.Blocks[1].Text.Text, fmt.Sprintf("notice %d", i); got != want {
			t.Fatalf("slack notice %d says %q, want %q", i, got, want)
		}
	}
	for i := range 30 {
		tries := 1
		if i%3 == 0 {
			tries = 2 // the failed attempt, then the one delivered
		}
		for range tries {
			var m struct{ Message string }
			_ = json.Unmarshal(<-hookGot, &m)
			if got, want := m.Message, fmt.Sprintf("notice %d", i); got != want {
				t.Fatalf("webhook request says %q, want %q", got, want)
			}
		}
	}
}

func TestCloseWithExpiredContextReportsWhatWasNotSent(t *testing.T) {
	srv, arrived, letGo := hanging(t)
	rec := make(recorder, 10)
	var log logBuffer
	s := newSender(notify.Target{Kind: notify.TargetSlack, URL: srv.URL}, rec, &log)
	for i := range 3 {
		s.Send(notify.Notice{Kind: notify.Step, Release: sample(), Message: fmt.Sprint(i)})
	}
	<-arrived // the first is being sent, and hangs
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Close(ctx)
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "3 notices not sent") {
		t.Fatalf("Close: %v, want 3 notices not sent", err)
	}
	if got := strings.Count(log.String(), `slack notice \"step\" of release r-42 not sent`); got != 3 {
		t.Fatalf("%d notices logged as not sent, want 3:\n%s", got, log.String())
	}
	if len(rec) != 0 {
		t.Fatalf("a notice not sent was recorded as sent: %+v", <-rec)
	}
	s.Send(notify.Notice{Kind: notify.Promoted, Release: sample()})
	if !strings.Contains(log.String(), "the sender is closed") {
		t.Fatalf("a notice after Close was not logged:\n%s", log.String())
	}
	letGo()
	if n := len(arrived); n != 0 {
		t.Fatalf("%d more notices were sent after Close gave up", n)
	}
}

func TestFullQueueDropsAndRecords(t *testing.T) {
	srv, arrived, letGo := hanging(t)
	rec := make(recorder, 10)
	var log logBuffer
	s := newSender(notify.Target{Kind: notify.TargetWebhook, URL: srv.URL}, rec, &log)
	s.Queue = 1
	s.Send(notify.Notice{Kind: notify.Step, Release: sample(), Message: "in flight"})
	<-arrived
	s.Send(notify.Notice{Kind: notify.Step, Release: sample(), Message: "queued"})
	s.Send(notify.Notice{Kind: notify.Promoted, Release: sample(), Message: "dropped"})
	e := rec.next(t) // recorded while the receiver still hangs
	if e.Data["ok"] != false || e.Data["attempts"] != 0 || e.Message != `webhook notice "promoted" dropped: 1 notices were already waiting to be sent` {
		t.Fatalf("audit entry %+v", e)
	}
	if !strings.Contains(log.String(), "dropped") {
		t.Fatalf("log: %s", log.String())
	}
	letGo()
	closeSender(t, s)
	for _, want := range []string{"in flight", "queued"} {
		e := rec.next(t)
		if e.Data["ok"] != true || e.Data["notice"] != "step" {
			t.Fatalf("%s: audit entry %+v", want, e)
		}
	}
}

func TestSlackURLIsNeverLogged(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/services/T0/B0/SECRET"
	srv.Close() // nothing listens: every attempt is a network error
	rec := make(recorder, 10)
	var log logBuffer
	s := newSender(notify.Target{Kind: notify.TargetSlack, URL: url}, rec, &log)
	s.Attempts = 2
	s.Send(notify.Notice{Kind: notify.Started, Release: sample()})
	closeSender(t, s)
	e := rec.next(t)
	if e.Data["ok"] != false || e.Data["attempts"] != 2 || !strings.Contains(e.Message, "failed after 2 attempts: post: ") {
		t.Fatalf("audit entry %+v", e)
	}
	if all := fmt.Sprint(e) + log.String(); strings.Contains(all, "SECRET") {
		t.Fatalf("the webhook's URL was written out:\n%s", all)
	}
}

func TestBadTargetFailsWithoutTrying(t *testing.T) {
	rec := make(recorder, 10)
	s := &notify.Sender{Targets: []notify.Target{{Kind: "teams", URL: "https://example.invalid/"}, {Kind: notify.TargetWebhook, URL: "not a url"}}, Record: rec.Record}
	s.Send(notify.Notice{Kind: notify.Started, Release: sample()})
	closeSender(t, s)
	for range 2 {
		if e := rec.next(t); e.Data["ok"] != false || e.Data["attempts"] != 0 {
			t.Fatalf("audit entry %+v", e)
		}
	}
}
