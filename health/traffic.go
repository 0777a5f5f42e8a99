package health

import (
	"context"
	"fmt"
	"time"

	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// Traffic is what a function's alias served over a window: Invocations and Errors of the
// alias, whatever version ran them (dimensions FunctionName and Resource = "name:alias").
type Traffic struct {
	// Window is the span asked for; Span the one counted (whole periods within the window).
	Window      time.Duration
	Span        time.Duration
	Invocations float64
	Errors      float64
}

// Rate is the invocations per second over the window.
func (t Traffic) Rate() float64 {
	if t.Span <= 0 {
		return 0
	}
	return t.Invocations / t.Span.Seconds()
}

// ErrorRate is the share of invocations that failed (0 without invocations).
func (t Traffic) ErrorRate() float64 {
	if t.Invocations == 0 {
		return 0
	}
	return t.Errors / t.Invocations
}

// trafficPeriod is the CloudWatch period a window is read in: about 60 points, at least 1 s (the
// high-resolution periods 1, 5, 10 and 30 s, or whole minutes).
func trafficPeriod(window time.Duration) time.Duration {
	p := window / 60
	switch {
	case p >= time.Minute:
		return p.Truncate(time.Minute)
	case p >= 30*time.Second:
		return 30 * time.Second
	case p >= 10*time.Second:
		return 10 * time.Second
	case p >= 5*time.Second:
		return 5 * time.Second
	}
	return time.Second
}

// Traffic reads what each function's alias served over the window ending at now: the traffic a
// release's canary steps will share. A function whose alias served nothing has zero counts.
func (c *Checker) Traffic(ctx context.Context, alias string, functions []string, window time.Duration, now time.Time) (map[string]Traffic, error) {
	period := trafficPeriod(window)
	var qs []cwtypes.MetricDataQuery
	for i, fn := range functions {
		d := dims(fn, alias, "")
		qs = append(qs, query(fmt.Sprintf("i%d", i), "Invocations", d, period, "Sum"), query(fmt.Sprintf("e%d", i), "Errors", d, period, "Sum"))
	}
	// Periods start at multiples of the period: the one holding now-window is partly outside
	// the window, and left out, so the count never covers more than the window.
	start := now.Add(-window).Truncate(period)
	if start.Before(now.Add(-window)) {
		start = start.Add(period)
	}
	points, err := c.getMetricData(ctx, qs, start, now)
	if err != nil {
		return nil, fmt.Errorf("read the traffic of alias %s: %w", alias, err)
	}
	out := map[string]Traffic{}
	for i, fn := range functions {
		t := Traffic{Window: window, Span: now.Sub(start)}
		for _, p := range points[fmt.Sprintf("i%d", i)] {
			t.Invocations += p.value
		}
		for _, p := range points[fmt.Sprintf("e%d", i)] {
			t.Errors += p.value
		}
		out[fn] = t
	}
	return out, nil
}
