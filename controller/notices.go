package controller

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/notify"
	"github.com/aviary-deploy/aviary/release"
)

// Notices: the controller tells people what it does to a release as the attached deploy would
// have (notify: Slack, webhook), from the targets the release's record carries
// (release.Release.Notify), their ${NAME} references filled in from the controller's own
// environment. Each tick sends the notices of what it did itself: a transition it made (started,
// a step, a gate opened, promoted, rolled back, failed); one a tick killed between the
// transition and its notice did not get to send is not sent again (a notice never holds a
// release up). A tick waits, within its
// budget, for its notices to be delivered before it returns, since Lambda freezes the function
// once it has.

// noticeSender is the notices of one release's tick; nil when the release has none.
type noticeSender struct {
	sender *notify.Sender
	base   string

	mu sync.Mutex
}

// notices sets up the notices of r's tick, or says why none can be sent.
func (c *Controller) notices(r *release.Release) (*noticeSender, error) {
	n := r.Notify
	if n == nil || len(n.Slack)+len(n.Webhook) == 0 {
		return nil, nil
	}
	targets, err := (&manifest.Notify{Slack: n.Slack, Webhook: n.Webhook}).Targets(c.Getenv)
	if err != nil {
		return nil, fmt.Errorf("no notices for %s: %w in the controller's function's environment", r.ID, err)
	}
	ns := &noticeSender{base: n.Dashboard, sender: &notify.Sender{Log: c.NoticeLog, Record: func(ctx context.Context, ev release.Event) error {
		if ev.Key == "" {
			ev.Key = fmt.Sprintf("%s/notice/%d", ev.ReleaseID, time.Now().UnixNano())
		}
		return c.Store.AppendEvent(ctx, &ev)
	}}}
	for _, t := range targets {
		ns.sender.Targets = append(ns.sender.Targets, notify.Target{Kind: t.Kind, URL: t.URL})
	}
	return ns, nil
}

// observe turns the engine's progress into notices, as the attached deploy's announcer does.
func (ns *noticeSender) observe(p release.Progress) {
	r := p.Release
	ns.mu.Lock()
	defer ns.mu.Unlock()
	switch p.Kind {
	case release.ProgressPhase:
		switch r.Phase {
		case release.Publishing:
			ns.send(notify.Started, r, p.Message)
		case release.Shifting:
			ns.send(notify.Step, r, p.Message)
		case release.AwaitingApproval:
			// Said by the tick that opened the gate, at once (not when it first waits there, which
			// a tick stopped at its budget may not get to); every later tick looks at it again
			// without a word. A pre-approved gate is decided at once: nobody is asked.
			if g := r.OpenGate(); g != nil && !(g.Kind == release.GateApproval && r.Approval != nil && r.Approval.PreApprove) {
				ns.send(notify.Awaiting, r, r.Awaiting)
			}
		case release.Promoted:
			ns.send(notify.Promoted, r, p.Message)
		case release.RolledBack:
			ns.send(notify.RolledBack, r, p.Message)
		case release.Failed:
			ns.send(notify.Failed, r, p.Message)
		}
	}
}

func (ns *noticeSender) send(kind notify.Kind, r release.Release, msg string) {
	n := notify.Notice{Kind: kind, Release: r, Message: msg}
	if ns.base != "" {
		n.ReleaseURL = ns.base + "/releases/" + url.PathEscape(r.ID)
	}
	ns.sender.Send(n)
}

// close waits for the notices to be delivered, until ctx ends.
func (ns *noticeSender) close(ctx context.Context) error {
	return ns.sender.Close(ctx)
}
