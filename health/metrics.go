package health

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/aviary-deploy/aviary/release"
)

// The metrics path: AWS/Lambda Invocations and Errors of an alias by the version that ran them
// (dimensions FunctionName, Resource = function:alias, ExecutedVersion), and the alias's
// Throttles (a throttled request ran no version). On AWS they come in 1-minute points that can
// arrive late, so only periods that closed longer ago than the function's timeout plus the
// settling delay are counted; each read recounts every settled period, so a late point is
// counted once it lands.

const maxQueries = 500 // GetMetricData's limit per request

func dims(fn, alias, version string) []cwtypes.Dimension {
	d := []cwtypes.Dimension{
		{Name: aws.String("FunctionName"), Value: aws.String(fn)},
		{Name: aws.String("Resource"), Value: aws.String(fn + ":" + alias)},
	}
	if version != "" {
		d = append(d, cwtypes.Dimension{Name: aws.String("ExecutedVersion"), Value: aws.String(version)})
	}
	return d
}

func query(id, metric string, d []cwtypes.Dimension, period time.Duration, stat string) cwtypes.MetricDataQuery {
	return cwtypes.MetricDataQuery{Id: aws.String(id), ReturnData: aws.Bool(true), MetricStat: &cwtypes.MetricStat{
		Metric: &cwtypes.Metric{Namespace: aws.String("AWS/Lambda"), MetricName: aws.String(metric), Dimensions: d},
		Period: aws.Int32(int32(period / time.Second)), Stat: aws.String(stat)}}
}

// metricPoint is one query's value at one period.
type metricPoint struct {
	at    time.Time
	value float64
}

// getMetricData runs queries in batches, following pages, and returns each query's points.
func (c *Checker) getMetricData(ctx context.Context, qs []cwtypes.MetricDataQuery, start, end time.Time) (map[string][]metricPoint, error) {
	out := map[string][]metricPoint{}
	for len(qs) > 0 {
		batch := qs[:min(len(qs), maxQueries)]
		qs = qs[len(batch):]
		in := &cloudwatch.GetMetricDataInput{MetricDataQueries: batch, StartTime: aws.Time(start), EndTime: aws.Time(end), ScanBy: cwtypes.ScanByTimestampAscending}
		for {
			res, err := c.CloudWatch.GetMetricData(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("GetMetricData: %w", err)
			}
			for _, r := range res.MetricDataResults {
				id := aws.ToString(r.Id)
				for i := range min(len(r.Timestamps), len(r.Values)) {
					out[id] = append(out[id], metricPoint{r.Timestamps[i], r.Values[i]})
				}
			}
			if res.NextToken == nil {
				break
			}
			in.NextToken = res.NextToken
		}
	}
	return out, nil
}

// readMetrics recounts every settled period since the release's first step, per function, version
// and period (the checker gives periods to steps, the same way for both sources).
func (c *Checker) readMetrics(ctx context.Context, r *release.Release, w *watch, now time.Time) error {
	ch := r.Checks
	period := ch.MetricsPeriod
	first := r.Health.Steps[0].Shifted
	start := first.Truncate(period)
	if !now.After(start) {
		return nil
	}
	var qs []cwtypes.MetricDataQuery
	for i, fn := range r.Functions {
		p := fmt.Sprintf("f%d_", i)
		qs = append(qs,
			query(p+"ci", "Invocations", dims(fn.FunctionName, r.Alias, fn.New), period, "Sum"),
			query(p+"ce", "Errors", dims(fn.FunctionName, r.Alias, fn.New), period, "Sum"),
			query(p+"th", "Throttles", dims(fn.FunctionName, r.Alias, ""), period, "Sum"))
		if fn.Previous != "" {
			qs = append(qs,
				query(p+"bi", "Invocations", dims(fn.FunctionName, r.Alias, fn.Previous), period, "Sum"),
				query(p+"be", "Errors", dims(fn.FunctionName, r.Alias, fn.Previous), period, "Sum"))
		}
	}
	points, err := c.getMetricData(ctx, qs, start, now)
	if err != nil {
		return err
	}
	for i, fn := range r.Functions {
		fw := w.fns[fn.FunctionName]
		timeout := time.Duration(max(fn.Timeout, 3)) * time.Second
		settled := func(at time.Time) bool {
			return !at.Add(period).Add(timeout).Add(ch.MetricsDelay).After(now)
		}
		fw.fromMetrics = map[string]map[int64]*counts{}
		fw.throttles = map[int64]float64{}
		p := fmt.Sprintf("f%d_", i)
		add := func(id, version string, set func(*counts, float64)) {
			for _, pt := range points[p+id] {
				if settled(pt.at) {
					set(bucket(fw.fromMetrics, version, periodOf(pt.at, period)), pt.value)
				}
			}
		}
		add("ci", fn.New, func(c *counts, v float64) { c.n += v })
		add("ce", fn.New, func(c *counts, v float64) { c.errors += v })
		if fn.Previous != "" {
			add("bi", fn.Previous, func(c *counts, v float64) { c.n += v })
			add("be", fn.Previous, func(c *counts, v float64) { c.errors += v })
		}
		for _, pt := range points[p+"th"] {
			if settled(pt.at) {
				fw.throttles[periodOf(pt.at, period)] += pt.value
			}
		}
	}
	return nil
}

// referenceWindow is how far back a baseline's latency is measured.
const referenceWindow = 30 * time.Minute

// minReferenceSamples is the fewest invocations a baseline percentile is trusted from.
const minReferenceSamples = 20

// references measures each baseline's latency percentile before traffic moves: from the Duration
// metric of the alias's current version over the last half hour, or, if it has no points there,
// from the REPORT lines of that version's log streams.
func (c *Checker) references(ctx context.Context, r *release.Release) (map[string]release.Reference, []string, error) {
	ch := r.Checks
	now := c.now()
	var qs []cwtypes.MetricDataQuery
	for i, fn := range r.Functions {
		if fn.Previous == "" {
			continue
		}
		d := dims(fn.FunctionName, r.Alias, fn.Previous)
		qs = append(qs, query(fmt.Sprintf("f%d_p", i), "Duration", d, referenceWindow, ch.Latency),
			query(fmt.Sprintf("f%d_n", i), "Duration", d, referenceWindow, "SampleCount"))
	}
	out := map[string]release.Reference{}
	var notes []string
	if len(qs) == 0 {
		return out, nil, nil
	}
	var points map[string][]metricPoint
	if ch.Metrics {
		var err error
		if points, err = c.getMetricData(ctx, qs, now.Add(-referenceWindow), now); err != nil {
			notes = append(notes, "baseline latency from metrics: "+err.Error())
		}
	}
	for i, fn := range r.Functions {
		if fn.Previous == "" {
			continue
		}
		// Of the (at most two) half-hour points, the one with more samples.
		var best release.Reference
		ps, ns := points[fmt.Sprintf("f%d_p", i)], points[fmt.Sprintf("f%d_n", i)]
		for _, n := range ns {
			for _, p := range ps {
				if p.at.Equal(n.at) && int(n.value) > best.Samples {
					best = release.Reference{Percentile: ch.Latency, Millis: p.value, Samples: int(n.value), Source: "CloudWatch Duration " + ch.Latency}
				}
			}
		}
		if best.Samples < minReferenceSamples && ch.Logs {
			if ref, err := c.referenceFromLogs(ctx, r, fn, now); err != nil {
				notes = append(notes, err.Error())
			} else if ref.Samples > best.Samples {
				best = ref
			}
		}
		if best.Samples < minReferenceSamples {
			notes = append(notes, fmt.Sprintf("latency of %s is not judged: version %s ran %d times in the last %s, too few to measure its %s", fn.FunctionName, fn.Previous, best.Samples, referenceWindow, ch.Latency))
			continue
		}
		out[fn.FunctionName] = best
	}
	return out, notes, nil
}

// referenceFromLogs reads a version's REPORT lines of the last half hour.
func (c *Checker) referenceFromLogs(ctx context.Context, r *release.Release, fn release.Function, now time.Time) (release.Reference, error) {
	group := fn.LogGroup
	if group == "" {
		group = "/aws/lambda/" + fn.FunctionName
	}
	var millis []float64
	days := []time.Time{now.UTC()}
	if d := now.Add(-referenceWindow).UTC(); d.Day() != now.UTC().Day() {
		days = append(days, d)
	}
	for _, day := range days {
		in := &cloudwatchlogs.FilterLogEventsInput{
			LogGroupName: aws.String(group), LogStreamNamePrefix: aws.String(day.Format("2006/01/02") + "/[" + fn.Previous + "]"),
			StartTime: aws.Int64(now.Add(-referenceWindow).UnixMilli()), FilterPattern: aws.String(logPattern),
		}
		for pages := 0; pages < 50 && len(millis) < 100000; pages++ {
			if err := c.logsTicker().wait(ctx, c.clock()); err != nil {
				return release.Reference{}, err
			}
			out, err := c.Logs.FilterLogEvents(ctx, in)
			if err != nil {
				if isNotFound(err) {
					return release.Reference{}, nil
				}
				return release.Reference{}, fmt.Errorf("baseline latency of %s from logs: %w", fn.FunctionName, err)
			}
			for _, ev := range out.Events {
				if o, ok := parseLine(aws.ToString(ev.Message)); ok && o.report && !o.failed {
					millis = append(millis, o.millis)
				}
			}
			if out.NextToken == nil {
				break
			}
			in.NextToken = out.NextToken
		}
	}
	if len(millis) == 0 {
		return release.Reference{}, nil
	}
	return release.Reference{Percentile: r.Checks.Latency, Millis: percentile(millis, r.Checks.Latency), Samples: len(millis), Source: "REPORT lines of version " + fn.Previous}, nil
}

// percentile is the nearest-rank percentile ("p95") of xs.
func percentile(xs []float64, p string) float64 {
	sort.Float64s(xs)
	var q float64
	fmt.Sscanf(strings.TrimPrefix(p, "p"), "%g", &q)
	rank := int(math.Ceil(q / 100 * float64(len(xs))))
	return xs[min(max(rank-1, 0), len(xs)-1)]
}
