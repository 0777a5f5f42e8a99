package manifest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/manifest"
)

const gated = `service: shop
dashboard: https://aviary.example.com/
artifacts:
  bucket: shop-artifacts
functions:
  api:
    dir: static
environments:
  staging:
    strategy: all-at-once
    pre_approve: true
    approval: {}
  production:
    strategy:
      canary:
        - weight: 10%
          bake: 5m
        - weight: 50
          bake: 10m
    approval:
      at_step: 1
      timeout: 4h
      on_timeout: approve
    notify:
      slack: https://hooks.slack.example/services/${SLACK_PATH}
      webhook:
        - https://ops.example.com/aviary
        - http://127.0.0.1:9/x
  qa:
    strategy: Canary10Percent15Minutes
    approval:
      required: false
`

func TestApprovalAndNotify(t *testing.T) {
	m, err := manifest.Load(write(t, gated))
	if err != nil {
		t.Fatal(err)
	}
	if m.Dashboard != "https://aviary.example.com" {
		t.Errorf("dashboard %q", m.Dashboard)
	}
	st := m.Environments["staging"]
	if st.Approval == nil || st.Approval.AtStep != 0 || st.Approval.OnTimeout != "rollback" || st.Approval.Timeout != 0 || !st.PreApprove {
		t.Errorf("staging approval %+v (pre_approve %v): want the default gate, before traffic for all-at-once", st.Approval, st.PreApprove)
	}
	pr := m.Environments["production"]
	if a := pr.Approval; a == nil || a.AtStep != 1 || a.Timeout != 4*time.Hour || a.OnTimeout != "approve" {
		t.Errorf("production approval %+v", a)
	}
	if m.Environments["qa"].Approval != nil {
		t.Error("required: false keeps a gate")
	}
	if got := len(pr.Notify.Slack) + len(pr.Notify.Webhook); got != 3 {
		t.Errorf("%d notice targets, want 3", got)
	}
	if _, err := pr.Notify.Targets(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "SLACK_PATH") {
		t.Errorf("an unset variable: %v, want an error naming SLACK_PATH", err)
	}
	ts, err := pr.Notify.Targets(func(k string) string { return map[string]string{"SLACK_PATH": "T0/B0/secret"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if ts[0].Kind != "slack" || ts[0].URL != "https://hooks.slack.example/services/T0/B0/secret" || ts[2].Kind != "webhook" {
		t.Errorf("targets %+v", ts)
	}
}

func TestBadApproval(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"at_step past the steps", "at_step: 1", "at_step: 3", "environments.production.approval.at_step: 3: the strategy has 2 step(s)"},
		{"at_step not a number", "at_step: 1", "at_step: last", "environments.production.approval.at_step: must be a step number"},
		{"on_timeout", "on_timeout: approve", "on_timeout: wait", `environments.production.approval.on_timeout: "wait": use rollback or approve`},
		{"timeout", "timeout: 4h", "timeout: forever", `environments.production.approval.timeout: "forever" is not a duration`},
		{"unknown field", "at_step: 1", "at_stpe: 1", `environments.production.approval.at_stpe: unknown field "at_stpe" (did you mean "at_step"?)`},
		{"notify not a URL", "- https://ops.example.com/aviary", "- ops.example.com/aviary", `environments.production.notify.webhook[0]: "ops.example.…" is not an http(s) URL`},
		{"notify unknown", "webhook:\n", "teams:\n", `environments.production.notify.teams: unknown field`},
		{"dashboard", "https://aviary.example.com/", "aviary.example.com", `dashboard: "aviary.example.com" is not an http(s) URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(gated, tc.from, tc.to, 1)
			if body == gated {
				t.Fatalf("%q is not in the manifest", tc.from)
			}
			_, err := manifest.Load(write(t, body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
