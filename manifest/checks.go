package manifest

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Check defaults.
const (
	DefaultAlpha         = 0.01
	DefaultDetect        = 5.0
	DefaultLatencyDetect = 3.0
	DefaultCeiling       = 0.5
	DefaultHookTimeout   = time.Minute

	// DefaultMinRate floors the baseline's error rate where the judge asks whether a bake had
	// the traffic to see a regression: a clean baseline is taken to fail 1 in 1000, so the
	// smallest regression a clean function's release promises to see is a canary failing 1 in 200
	// (detect × floor). Lower floors cost traffic in proportion (0.01% needs ten times the bake);
	// higher ones let a canary failing 1 in 20 pass unseen.
	DefaultMinRate = 0.001
)

var (
	jsonPathRE   = regexp.MustCompile(`^\$((\.[A-Za-z_][A-Za-z0-9_-]*)|(\[[0-9]+\])|(\["[^"]*"\]))*$`)
	alarmNameRE  = regexp.MustCompile(`^[^\x00-\x1f]{1,255}$`)
	hookTargetRE = regexp.MustCompile(`^(arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[a-zA-Z0-9_-]{1,64}(:[a-zA-Z0-9_$-]+)?$`)
)

// checks reads an environment's `checks:`. The whole plan of how health is judged is validated
// here, before anything changes.
func (p *parser) checks(n *yaml.Node, field string, m *Manifest, env *Environment) *Checks {
	c := &Checks{
		Alpha: DefaultAlpha, Detect: DefaultDetect, MaxErrorRate: DefaultCeiling, MaxThrottleRate: DefaultCeiling,
		Metrics: true, MetricsPeriod: time.Minute, Logs: true, HookTimeout: DefaultHookTimeout, OnInconclusive: "auto", MinRate: DefaultMinRate,
	}
	f := p.fields(n, field, "errors", "latency", "ceilings", "metrics", "logs", "alarms", "block_on_firing_alarms", "smoke", "hooks", "max_bake", "on_inconclusive")
	if e := f["errors"]; e != nil {
		ef := p.fields(e, field+".errors", "alpha", "detect", "min_rate")
		if a := ef["alpha"]; a != nil {
			c.Alpha = p.fraction(a, field+".errors.alpha", 0.2)
		}
		if d := ef["detect"]; d != nil {
			c.Detect = p.ratio(d, field+".errors.detect")
		}
		if v := ef["min_rate"]; v != nil {
			c.MinRate = p.fraction(v, field+".errors.min_rate", 0.1)
		}
	}
	if l := f["latency"]; l != nil {
		lf := p.fields(l, field+".latency", "percentile", "detect")
		c.Latency, c.LatencyDetect = "p95", DefaultLatencyDetect
		if s, ok := p.str(lf["percentile"], field+".latency.percentile"); ok {
			if s != "p95" && s != "p99" && s != "p90" {
				p.problem(lf["percentile"], field+".latency.percentile", "%q: use p90, p95 or p99 (the baseline's percentile slow invocations are counted against)", s)
			}
			c.Latency = s
		}
		if d := lf["detect"]; d != nil {
			c.LatencyDetect = p.ratio(d, field+".latency.detect")
			// About 1 − percentile of the baseline's invocations are slower than its percentile:
			// the canary's share cannot rise past all of them.
			var q float64
			if _, err := fmt.Sscanf(c.Latency, "p%g", &q); err == nil && q < 100 && c.LatencyDetect > 100/(100-q) {
				p.problem(d, field+".latency.detect", "%g: about %g%% of the baseline's invocations are slower than its %s, so the canary's share cannot rise %g-fold (use at most %g)",
					c.LatencyDetect, 100-q, c.Latency, c.LatencyDetect, 100/(100-q))
			}
		}
	}
	if cl := f["ceilings"]; cl != nil {
		cf := p.fields(cl, field+".ceilings", "error_rate", "throttle_rate")
		if v := cf["error_rate"]; v != nil {
			c.MaxErrorRate = p.fraction(v, field+".ceilings.error_rate", 1)
		}
		if v := cf["throttle_rate"]; v != nil {
			c.MaxThrottleRate = p.fraction(v, field+".ceilings.throttle_rate", 1)
		}
	}
	delaySet := false
	if mt := f["metrics"]; mt != nil {
		if mt.Kind == yaml.ScalarNode && (mt.Value == "off" || mt.Value == "false") {
			c.Metrics = false
		} else {
			mf := p.fields(mt, field+".metrics", "period", "delay")
			if v := mf["period"]; v != nil {
				c.MetricsPeriod = p.duration(v, field+".metrics.period")
				if d := c.MetricsPeriod; d != 0 && d != time.Second && d != 5*time.Second && d != 10*time.Second && d != 30*time.Second && d%time.Minute != 0 {
					p.problem(v, field+".metrics.period", "%s is not a CloudWatch period: use 1s, 5s, 10s, 30s (high resolution) or a multiple of 1m", d)
				}
			}
			if v := mf["delay"]; v != nil {
				c.MetricsDelay, delaySet = p.duration(v, field+".metrics.delay"), true
			}
		}
	}
	if c.MetricsPeriod <= 0 {
		c.MetricsPeriod = time.Minute
	}
	if !delaySet {
		// AWS's Lambda metrics arrive within about a minute of their period.
		c.MetricsDelay = min(time.Minute, 2*c.MetricsPeriod)
	}
	if l := f["logs"]; l != nil {
		if s, ok := p.str(l, field+".logs"); ok {
			switch s {
			case "auto", "on", "true":
			case "off", "false":
				c.Logs = false
			default:
				p.problem(l, field+".logs", "%q: use auto (read each version's log streams where readable) or off", s)
			}
		}
	}
	if !c.Metrics && !c.Logs {
		p.problem(n, field, "turns off both metrics and logs: the canary could not be judged (keep one)")
	}
	if a := f["alarms"]; a != nil {
		c.Alarms = p.alarms(a, field+".alarms", m, env)
	}
	c.BlockPreexisting = p.boolean(f["block_on_firing_alarms"], field+".block_on_firing_alarms")
	if s := f["smoke"]; s != nil {
		c.Smoke = p.smoke(s, field+".smoke", m)
	}
	if h := f["hooks"]; h != nil {
		hf := p.fields(h, field+".hooks", "pre_traffic", "post_traffic", "timeout")
		hook := func(k string) string {
			s, ok := p.str(hf[k], field+".hooks."+k)
			if !ok {
				return ""
			}
			name := strings.NewReplacer("{service}", m.Service, "{env}", env.Name).Replace(s)
			if !hookTargetRE.MatchString(name) {
				p.problem(hf[k], field+".hooks."+k, "%q is not a Lambda function name or ARN (placeholders: {service}, {env})", s)
			}
			return name
		}
		c.PreTraffic, c.PostTraffic = hook("pre_traffic"), hook("post_traffic")
		if v := hf["timeout"]; v != nil {
			c.HookTimeout = p.duration(v, field+".hooks.timeout")
			if c.HookTimeout <= 0 || c.HookTimeout > 15*time.Minute {
				p.problem(v, field+".hooks.timeout", "must be between 1s and 15m (Lambda's longest timeout)")
			}
		}
	}
	longest := time.Duration(0)
	for _, st := range env.Strategy.Steps {
		longest = max(longest, st.Bake)
	}
	c.MaxBake = max(3*longest, time.Minute)
	if v := f["max_bake"]; v != nil {
		c.MaxBake = p.duration(v, field+".max_bake")
		if c.MaxBake < longest {
			p.problem(v, field+".max_bake", "%s is shorter than the longest step's bake (%s): it is how long a step may bake when too little traffic came to judge it", c.MaxBake, longest)
		}
	}
	if s, ok := p.str(f["on_inconclusive"], field+".on_inconclusive"); ok {
		switch s {
		case "auto", "rollback", "gate", "promote":
			c.OnInconclusive = s
		default:
			p.problem(f["on_inconclusive"], field+".on_inconclusive", "%q: use auto (gate where the environment has an approval gate, else promote, recorded as unjudged), rollback, gate (a person decides with aviary promote or rollback) or promote (recorded as unjudged)", s)
		}
	}
	return c
}

// fraction reads a share written as a percentage (1%) or a fraction (0.01), above 0 and at most
// most.
func (p *parser) fraction(n *yaml.Node, field string, most float64) float64 {
	if n.Kind != yaml.ScalarNode {
		p.problem(n, field, "must be a percentage such as 1%%, not %s", kindName(n))
		return 0
	}
	s := strings.TrimSpace(n.Value)
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
	if err != nil {
		p.problem(n, field, "%q is not a percentage (write 1%% or 0.01)", n.Value)
		return 0
	}
	if pct {
		v /= 100
	}
	if v <= 0 || v > most {
		p.problem(n, field, "%s is outside (0, %s]", n.Value, Percent(most))
		return 0
	}
	return v
}

// ratio reads a ratio of rates above 1: 5 or 5x.
func (p *parser) ratio(n *yaml.Node, field string) float64 {
	if n.Kind != yaml.ScalarNode {
		p.problem(n, field, "must be a ratio such as 5 (a five-fold rise), not %s", kindName(n))
		return 0
	}
	s := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(n.Value), "x"), "×")
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v <= 1 || v > 100 {
		p.problem(n, field, "%q: write the regression to detect as a ratio of rates between 1 and 100, such as 5 (a five-fold rise)", n.Value)
		return 0
	}
	return v
}

func (p *parser) alarms(n *yaml.Node, field string, m *Manifest, env *Environment) []string {
	if n.Kind != yaml.SequenceNode {
		p.problem(n, field, "must be a list of CloudWatch alarm names, not %s", kindName(n))
		return nil
	}
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for i, item := range n.Content {
		at := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.str(item, at)
		if !ok {
			continue
		}
		for _, ph := range placeholderRE.FindAllString(s, -1) {
			if ph != "{service}" && ph != "{function}" && ph != "{env}" {
				p.problem(item, at, "unknown placeholder %s (use {service}, {function} and {env})", ph)
			}
		}
		base := strings.NewReplacer("{service}", m.Service, "{env}", env.Name).Replace(s)
		if strings.Contains(base, "{function}") {
			for _, fn := range m.Functions {
				add(strings.ReplaceAll(base, "{function}", fn.Name))
			}
		} else {
			add(base)
		}
		if !alarmNameRE.MatchString(base) {
			p.problem(item, at, "%q is not a CloudWatch alarm name (1–255 characters)", s)
		}
	}
	if len(out) > 100 {
		p.problem(n, field, "names %d alarms; DescribeAlarms reads at most 100 by name", len(out))
	}
	return out
}

func (p *parser) smoke(n *yaml.Node, field string, m *Manifest) []Smoke {
	if n.Kind != yaml.SequenceNode {
		p.problem(n, field, "must be a list of smoke invocations, each with a payload (and optionally function and expect), not %s", kindName(n))
		return nil
	}
	var out []Smoke
	for i, item := range n.Content {
		at := fmt.Sprintf("%s[%d]", field, i)
		f := p.fields(item, at, "function", "payload", "payload_file", "expect")
		sm := Smoke{Payload: "{}"}
		if s, ok := p.str(f["function"], at+".function"); ok {
			found := false
			for _, fn := range m.Functions {
				found = found || fn.Name == s
			}
			if !found {
				p.problem(f["function"], at+".function", "%q is not one of the manifest's functions", s)
			}
			sm.Function = s
		}
		if f["payload"] != nil && f["payload_file"] != nil {
			p.problem(item, at, "has both payload and payload_file: keep one")
		}
		if pl := f["payload"]; pl != nil {
			sm.Payload = p.jsonValue(pl, at+".payload")
		}
		if s, ok := p.str(f["payload_file"], at+".payload_file"); ok {
			b, err := os.ReadFile(p.path(s))
			switch {
			case err != nil:
				p.problem(f["payload_file"], at+".payload_file", "%v", err)
			case !json.Valid(b):
				p.problem(f["payload_file"], at+".payload_file", "%s is not JSON", s)
			default:
				sm.Payload = string(b)
			}
		}
		if ex := f["expect"]; ex != nil {
			if ex.Kind != yaml.MappingNode {
				p.problem(ex, at+".expect", "must map JSON paths to the values expected there, such as {\"$.status\": ok}, not %s", kindName(ex))
			} else {
				sm.Expect = map[string]any{}
				for j := 0; j+1 < len(ex.Content); j += 2 {
					k, v := ex.Content[j], ex.Content[j+1]
					if !jsonPathRE.MatchString(k.Value) {
						p.problem(k, at+".expect", "%q is not a JSON path: write $.field, $.list[0] or $[\"odd key\"]", k.Value)
						continue
					}
					var val any
					if err := v.Decode(&val); err != nil {
						p.problem(v, at+".expect."+k.Value, "%v", err)
						continue
					}
					sm.Expect[k.Value] = normalise(val)
				}
			}
		}
		out = append(out, sm)
	}
	return out
}

// jsonValue reads a payload: a string holding JSON, or YAML turned into JSON.
func (p *parser) jsonValue(n *yaml.Node, field string) string {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		if !json.Valid([]byte(n.Value)) {
			p.problem(n, field, "is not JSON: write it as YAML, or as a JSON string such as '{\"ping\": true}'")
			return "{}"
		}
		return n.Value
	}
	var v any
	if err := n.Decode(&v); err != nil {
		p.problem(n, field, "%v", err)
		return "{}"
	}
	b, err := json.Marshal(normalise(v))
	if err != nil {
		p.problem(n, field, "cannot be written as JSON: %v", err)
		return "{}"
	}
	return string(b)
}

// normalise turns YAML's decoded values into JSON's (maps with string keys, float64 numbers).
func normalise(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(e)
		}
		return x
	case map[any]any:
		out := map[string]any{}
		for k, e := range x {
			out[fmt.Sprint(k)] = normalise(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = normalise(e)
		}
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v
}
