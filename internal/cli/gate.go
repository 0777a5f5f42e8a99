package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/links"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/notify"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// defaultLinkTTL is how long a signed link is valid when its gate has no deadline.
const defaultLinkTTL = 24 * time.Hour

// approvalOf is a release's gate from the environment: nil when it has none. AVIARY_PRE_APPROVE
// (true or false) overrides the manifest's pre_approve.
func approvalOf(env *manifest.Environment) (*release.Approval, error) {
	pre, by := env.PreApprove, "the manifest (pre_approve: true)"
	if v, ok := os.LookupEnv("AVIARY_PRE_APPROVE"); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, badInput("AVIARY_PRE_APPROVE=%q: use true or false", v)
		}
		pre, by = b, "AVIARY_PRE_APPROVE"
	}
	a := env.Approval
	if a == nil {
		return nil, nil
	}
	out := &release.Approval{AtStep: a.AtStep, Timeout: a.Timeout, OnTimeout: a.OnTimeout, PreApprove: pre}
	if pre {
		out.PreApprovedBy = by
	}
	return out, nil
}

// dashboardURL is where `aviary serve` answers for people: AVIARY_URL, else the manifest's
// dashboard; "" when neither says.
func dashboardURL(m *manifest.Manifest) string {
	if u := os.Getenv("AVIARY_URL"); u != "" {
		return strings.TrimRight(u, "/")
	}
	if m != nil {
		return m.Dashboard
	}
	return ""
}

// gateKit is what a process driving a release needs to tell people about it: the link signer
// and dashboard address (for approval links) and the notice sender.
type gateKit struct {
	signer *links.Signer
	base   string
	sender *notify.Sender
}

// newGateKit checks and sets up links and notices for a release of env. Bad settings are bad
// input, found before anything changes.
func newGateKit(m *manifest.Manifest, env *manifest.Environment, st store.Store, log io.Writer) (*gateKit, error) {
	k := &gateKit{base: dashboardURL(m)}
	if k.base != "" {
		if u, err := url.Parse(k.base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, badInput("AVIARY_URL=%q is not an http(s) URL (the public address of aviary serve)", k.base)
		}
	}
	secret, err := links.SecretFromEnv()
	if err != nil {
		return nil, badInput("%v", err)
	}
	if secret != nil {
		if k.signer, err = links.NewSigner(secret); err != nil {
			return nil, badInput("AVIARY_LINK_SECRET: %v", err)
		}
	}
	var gate *release.Approval
	if env != nil {
		if gate, err = approvalOf(env); err != nil {
			return nil, err
		}
	}
	if gate != nil && !gate.PreApprove && k.base != "" && k.signer == nil {
		return nil, badInput("%s requires approval and the dashboard is at %s, but approval links cannot be signed: set AVIARY_LINK_SECRET (or AVIARY_LINK_SECRET_FILE) to the secret aviary serve uses", env.Name, k.base)
	}
	if env != nil && !env.Notify.Empty() {
		targets, err := env.Notify.Targets(nil)
		if err != nil {
			return nil, badInput("%s: %v", env.Name, err)
		}
		k.sender = &notify.Sender{Log: log, Record: func(ctx context.Context, ev release.Event) error {
			if ev.Key == "" {
				ev.Key = fmt.Sprintf("%s/notice/%d", ev.ReleaseID, time.Now().UnixNano())
			}
			return st.AppendEvent(ctx, &ev)
		}}
		for _, t := range targets {
			k.sender.Targets = append(k.sender.Targets, notify.Target{Kind: t.Kind, URL: t.URL})
		}
	}
	return k, nil
}

// gateKitFor is newGateKit for a release being resumed or decided: its environment as the
// manifest (if any) says.
func gateKitFor(m *manifest.Manifest, r *release.Release, st store.Store, log io.Writer) (*gateKit, error) {
	var env *manifest.Environment
	if m != nil && m.Service == r.Service {
		env = m.Environments[r.Environment]
	}
	return newGateKit(m, env, st, log)
}

// links returns the approve and rollback links of the release's open gate ("" without a
// signer or a dashboard address).
func (k *gateKit) links(r *release.Release) (approve, rollback string, expires time.Time) {
	if k == nil || k.signer == nil || k.base == "" {
		return "", "", time.Time{}
	}
	expires = time.Now().Add(defaultLinkTTL)
	if g := r.OpenGate(); g != nil && !g.Deadline.IsZero() {
		expires = g.Deadline
	}
	n := len(r.Gates)
	return k.signer.URL(k.base, r.ID, n, release.Approve, expires), k.signer.URL(k.base, r.ID, n, release.DecideRollback, expires), expires
}

func (k *gateKit) releaseURL(r *release.Release) string {
	if k == nil || k.base == "" {
		return ""
	}
	return k.base + "/releases/" + url.PathEscape(r.ID)
}

// close waits (a little) for notices still being sent.
func (k *gateKit) close() {
	if k == nil || k.sender == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = k.sender.Close(ctx)
}

// announcer turns a release's progress into notices and, at a gate, prints the links.
type announcer struct {
	kit  *gateKit
	view *view

	mu    sync.Mutex
	gates map[int]bool // gates announced, by index
	last  release.Phase
	step  int
}

func (k *gateKit) announcer(v *view) *announcer {
	return &announcer{kit: k, view: v, gates: map[int]bool{}, step: -1}
}

func (a *announcer) send(kind notify.Kind, r release.Release, msg string) {
	if a.kit == nil || a.kit.sender == nil {
		return
	}
	n := notify.Notice{Kind: kind, Release: r, Message: msg, ReleaseURL: a.kit.releaseURL(&r)}
	if kind == notify.Awaiting {
		n.ApproveURL, n.RollbackURL, _ = a.kit.links(&r)
	}
	a.kit.sender.Send(n)
}

func (a *announcer) observe(p release.Progress) {
	a.view.observe(p)
	a.mu.Lock()
	defer a.mu.Unlock()
	r := p.Release
	switch p.Kind {
	case release.ProgressPhase:
		if r.Phase == a.last && !(r.Phase == release.Shifting && r.Step != a.step) {
			return
		}
		a.last = r.Phase
		switch r.Phase {
		case release.Publishing:
			a.send(notify.Started, r, p.Message)
		case release.Shifting:
			a.step = r.Step
			a.send(notify.Step, r, p.Message)
		case release.Promoted:
			a.send(notify.Promoted, r, p.Message)
		case release.RolledBack:
			a.send(notify.RolledBack, r, p.Message)
		case release.Failed:
			a.send(notify.Failed, r, p.Message)
		}
	case release.ProgressAwaiting:
		g := r.OpenGate()
		if g == nil || a.gates[len(r.Gates)] {
			return
		}
		a.gates[len(r.Gates)] = true
		approve, rollback, expires := a.kit.links(&r)
		if approve != "" {
			a.view.logf("          approve:   %s\n          roll back: %s\n          (links valid until %s; opening one shows what it will do, only its button decides)",
				approve, rollback, expires.Local().Format(time.DateTime))
		}
		a.send(notify.Awaiting, r, p.Message)
	}
}
