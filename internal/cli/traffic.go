package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

type trafficCmd struct {
	manifestFlags
	clientFlags
	outputFlags
	Env      string        `short:"e" required:"" placeholder:"ENV" help:"The environment whose aliases to invoke."`
	Rate     float64       `required:"" placeholder:"R" help:"Invocations per second, per function."`
	Duration time.Duration `placeholder:"D" help:"How long to run, such as 2m (default: until Ctrl-C)."`
	Payload  string        `placeholder:"FILE" help:"A JSON file sent as every invocation's event (default: {})."`
	Function []string      `env:"AVIARY_TRAFFIC_FUNCTIONS" placeholder:"NAME" help:"Only these functions (as the manifest names them); repeatable, or comma-separated in the variable. (AVIARY_FUNCTION is what build commands get.)"`
	Every    time.Duration `default:"10s" help:"How often to print the counts so far (0: only at the end)."`
}

func (c *trafficCmd) Help() string {
	return `Invokes every function's alias in the environment at a steady rate, as live traffic would, and
reports what answered by executed version: invocations, function errors, throttles and latency.
Use it to rehearse a release on the sandbox or a staging account: run it in one terminal and
` + "`aviary deploy`" + ` in another, and the health checks judge the canary from this traffic.

  aviary traffic -e production --rate 50 --duration 5m --payload event.json`
}

func (c *trafficCmd) Run(e *env) error {
	if c.Rate <= 0 || c.Rate > 10000 {
		return badInput("--rate must be above 0 and at most 10000 invocations per second per function")
	}
	if c.Duration < 0 {
		return badInput("--duration must not be negative")
	}
	m, err := c.manifestFlags.load()
	if err != nil {
		return err
	}
	env, err := m.Environment(c.Env)
	if err != nil {
		return usageError{err}
	}
	payload := []byte("{}")
	if c.Payload != "" {
		if payload, err = os.ReadFile(c.Payload); err != nil {
			return badInput("--payload: %v", err)
		}
		if !json.Valid(payload) {
			return badInput("--payload: %s is not JSON", c.Payload)
		}
	}
	var targets []string
	known := map[string]bool{}
	for _, fn := range m.Functions {
		known[fn.Name] = true
	}
	for _, f := range c.Function {
		if !known[f] {
			return badInput("--function %s: the manifest has no such function", f)
		}
	}
	for _, fn := range m.Functions {
		if len(c.Function) == 0 || contains(c.Function, fn.Name) {
			targets = append(targets, m.FunctionName(env, fn.Name)+":"+m.Alias)
		}
	}
	cfg, err := c.clientFlags.config(e.ctx, env.Region)
	if err != nil {
		return err
	}
	lc := lambda.NewFromConfig(cfg)
	ctx := e.ctx
	if c.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Duration)
		defer cancel()
	}
	log := logWriter(e, c.outputFlags)
	fmt.Fprintf(log, "Invoking %s at %g/s each%s. Ctrl-C stops.\n", strings.Join(targets, ", "), c.Rate, durationNote(c.Duration))
	t := startTraffic(ctx, lc, targets, c.Rate, payload)
	if c.Every > 0 {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(c.Every):
					fmt.Fprintf(log, "%s  %s\n", time.Now().Format("15:04:05"), t.summary())
				}
			}
		}()
	}
	<-ctx.Done()
	t.stop()
	if c.json() {
		return writeJSON(e.stdout, &trafficOutput{Results: append([]trafficRow{}, t.rows()...)})
	}
	fmt.Fprintln(e.stdout)
	t.table(e.stdout)
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func durationNote(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return " for " + d.String()
}

// traffic invokes aliases at a steady rate and counts the answers by executed version.
type traffic struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	stats  map[trafficKey]*trafficStat
}

type trafficKey struct{ target, version string }

type trafficStat struct {
	n, errors, throttles, failed int
	millis                       []float64
}

// startTraffic invokes each target at rate per second, evenly spaced, with up to 256 invocations
// in flight per target.
func startTraffic(ctx context.Context, lc *lambda.Client, targets []string, rate float64, payload []byte) *traffic {
	ctx, cancel := context.WithCancel(ctx)
	t := &traffic{cancel: cancel, stats: map[trafficKey]*trafficStat{}}
	for _, target := range targets {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			sem := make(chan struct{}, 256)
			gap := time.Duration(float64(time.Second) / rate)
			next := time.Now()
			for {
				next = next.Add(gap)
				if d := time.Until(next); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				} else if ctx.Err() != nil {
					return
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				t.wg.Add(1)
				go func() {
					defer t.wg.Done()
					defer func() { <-sem }()
					t.invoke(ctx, lc, target, payload)
				}()
			}
		}()
	}
	return t
}

func (t *traffic) invoke(ctx context.Context, lc *lambda.Client, target string, payload []byte) {
	start := time.Now()
	out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(target), Payload: payload})
	took := float64(time.Since(start).Microseconds()) / 1000
	if ctx.Err() != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var tooMany *lambdatypes.TooManyRequestsException
	switch {
	case errors.As(err, &tooMany):
		t.stat(target, "(throttled)").throttles++
	case err != nil:
		t.stat(target, "(failed)").failed++
	default:
		s := t.stat(target, aws.ToString(out.ExecutedVersion))
		s.n++
		if out.FunctionError != nil {
			s.errors++
		}
		s.millis = append(s.millis, took)
	}
}

func (t *traffic) stat(target, version string) *trafficStat {
	k := trafficKey{target, version}
	s := t.stats[k]
	if s == nil {
		s = &trafficStat{}
		t.stats[k] = s
	}
	return s
}

func (t *traffic) stop() {
	t.cancel()
	t.wg.Wait()
}

type trafficRow struct {
	Function  string  `json:"function"`
	Version   string  `json:"version"`
	N         int     `json:"invocations"`
	Errors    int     `json:"errors"`
	Throttles int     `json:"throttles,omitempty"`
	Failed    int     `json:"failedRequests,omitempty"`
	P50       float64 `json:"p50Millis,omitempty"`
	P95       float64 `json:"p95Millis,omitempty"`
	P99       float64 `json:"p99Millis,omitempty"`
}

func (t *traffic) rows() []trafficRow {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []trafficRow
	for k, s := range t.stats {
		r := trafficRow{Function: k.target, Version: k.version, N: s.n, Errors: s.errors, Throttles: s.throttles, Failed: s.failed}
		if len(s.millis) > 0 {
			ms := append([]float64(nil), s.millis...)
			sort.Float64s(ms)
			q := func(p float64) float64 { return ms[min(int(p*float64(len(ms))), len(ms)-1)] }
			r.P50, r.P95, r.P99 = q(0.5), q(0.95), q(0.99)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// summary is the counts in a line.
func (t *traffic) summary() string {
	var parts []string
	for _, r := range t.rows() {
		s := fmt.Sprintf("%s v%s %d (%d errors)", r.Function, r.Version, r.N, r.Errors)
		if r.Throttles > 0 || r.Failed > 0 {
			s = fmt.Sprintf("%s %s %d", r.Function, r.Version, r.Throttles+r.Failed)
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no answers yet"
	}
	return strings.Join(parts, ", ")
}

func (t *traffic) table(w io.Writer) {
	fmt.Fprintf(w, "  %-36s %-12s %12s %8s %8s %9s %9s %9s\n", "ALIAS", "VERSION", "INVOCATIONS", "ERRORS", "ERROR%", "p50 ms", "p95 ms", "p99 ms")
	for _, r := range t.rows() {
		n := r.N + r.Throttles + r.Failed
		pct := 0.0
		if r.N > 0 {
			pct = 100 * float64(r.Errors) / float64(r.N)
		}
		fmt.Fprintf(w, "  %-36s %-12s %12d %8d %7.2f%% %9.1f %9.1f %9.1f\n", r.Function, r.Version, n, r.Errors, pct, r.P50, r.P95, r.P99)
	}
}
