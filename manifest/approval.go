package manifest

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Approval is an environment's human gate (`approval:`).
type Approval struct {
	// Required turns the gate on.
	Required bool
	// AtStep is the step (1-based) after whose bake the release waits; 0: before any traffic
	// moves. Default: after the last step.
	AtStep int
	// Timeout is how long the gate waits (0: no limit); then OnTimeout decides.
	Timeout   time.Duration
	OnTimeout string
}

// Notify says where an environment's notices go (`notify:`): Slack incoming webhooks (Block
// Kit) and generic JSON webhooks. A URL may name environment variables as ${NAME}, so that
// secrets stay out of the manifest; they are filled in by Targets.
type Notify struct {
	Slack   []string
	Webhook []string
}

// Empty reports whether no notice goes anywhere.
func (n *Notify) Empty() bool { return n == nil || len(n.Slack)+len(n.Webhook) == 0 }

var envRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Target is one place notices go, with its URL filled in.
type Target struct {
	Kind string // slack or webhook
	URL  string
}

// Targets fills in the URLs' ${NAME} references from the environment (getenv: os.Getenv when
// nil). An unset or empty variable is an error naming it, so that a release does not start
// with notices that cannot go anywhere.
func (n *Notify) Targets(getenv func(string) string) ([]Target, error) {
	if n == nil {
		return nil, nil
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	var out []Target
	var missing []string
	add := func(kind string, raw []string) {
		for _, u := range raw {
			filled := envRefRE.ReplaceAllStringFunc(u, func(ref string) string {
				name := envRefRE.FindStringSubmatch(ref)[1]
				v := getenv(name)
				if v == "" {
					missing = append(missing, name)
				}
				return v
			})
			out = append(out, Target{Kind: kind, URL: filled})
		}
	}
	add("slack", n.Slack)
	add("webhook", n.Webhook)
	if len(missing) > 0 {
		return nil, fmt.Errorf("notify: set %s (named in the notice URLs), or remove those notices from the manifest", strings.Join(missing, ", "))
	}
	for _, t := range out {
		if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("notify: %s URL %q is not an http(s) URL", t.Kind, redact(t.URL))
		}
	}
	return out, nil
}

// redact hides a webhook URL's path, which is its secret.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host + "/…"
	}
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

func (p *parser) approval(n *yaml.Node, field string, env *Environment) *Approval {
	a := &Approval{Required: true, AtStep: len(env.Strategy.Steps), OnTimeout: "rollback"}
	f := p.fields(n, field, "required", "at_step", "timeout", "on_timeout")
	if r := f["required"]; r != nil {
		a.Required = p.boolean(r, field+".required")
	}
	if s := f["at_step"]; s != nil {
		k, err := strconv.Atoi(s.Value)
		steps := len(env.Strategy.Steps)
		switch {
		case s.Kind != yaml.ScalarNode || err != nil:
			p.problem(s, field+".at_step", "must be a step number (1 for after the first step's bake; 0 for before any traffic moves), not %s", kindName(s))
		case k < 0 || k > steps:
			p.problem(s, field+".at_step", "%d: the strategy has %d step(s); use 0 (before any traffic moves) to %d (after the last step)", k, steps, steps)
		default:
			a.AtStep = k
		}
	}
	if t := f["timeout"]; t != nil {
		a.Timeout = p.duration(t, field+".timeout")
	}
	if o, ok := p.str(f["on_timeout"], field+".on_timeout"); ok {
		if o != "rollback" && o != "approve" {
			p.problem(f["on_timeout"], field+".on_timeout", "%q: use rollback or approve (what the gate decides when nobody did within its timeout)", o)
		}
		a.OnTimeout = o
	}
	if !a.Required {
		return nil
	}
	return a
}

func (p *parser) notify(n *yaml.Node, field string) *Notify {
	out := &Notify{}
	f := p.fields(n, field, "slack", "webhook")
	for _, k := range []string{"slack", "webhook"} {
		v := f[k]
		if v == nil {
			continue
		}
		var list []*yaml.Node
		switch v.Kind {
		case yaml.ScalarNode:
			list = []*yaml.Node{v}
		case yaml.SequenceNode:
			list = v.Content
		default:
			p.problem(v, field+"."+k, "must be a URL or a list of URLs, not %s", kindName(v))
		}
		for i, item := range list {
			at := field + "." + k
			if v.Kind == yaml.SequenceNode {
				at = fmt.Sprintf("%s[%d]", at, i)
			}
			s, ok := p.str(item, at)
			if !ok {
				continue
			}
			probe := envRefRE.ReplaceAllString(s, "x")
			if u, err := url.Parse(probe); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				p.problem(item, at, "%q is not an http(s) URL (write the secret part as ${VARIABLE} to keep it out of the manifest)", redact(s))
				continue
			}
			if k == "slack" {
				out.Slack = append(out.Slack, s)
			} else {
				out.Webhook = append(out.Webhook, s)
			}
		}
	}
	return out
}
