package health

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Traffic reads each alias's Invocations and Errors (FunctionName + Resource, no version), in
// about 60 whole periods within the window, and counts only what is inside it.
func TestTrafficReadsTheAlias(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 30, 30, 0, time.UTC)
	cw := &fakeCloudWatch{}
	for m := range 90 { // 90 minutes of 20 requests/s, 1 in 1000 failing; one minute older than the hour
		at := now.Add(-time.Duration(m+1) * time.Minute).Truncate(time.Minute)
		cw.put("shop-api", "Invocations", "", at, 1200)
		cw.put("shop-api", "Errors", "", at, 1.2)
	}
	c := &Checker{CloudWatch: cw}
	got, err := c.Traffic(context.Background(), "live", []string{"shop-api", "shop-quiet"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	in := cw.metricCalls[0]
	if p := aws.ToInt32(in.MetricDataQueries[0].MetricStat.Period); p != 60 {
		t.Errorf("period %d, want 60 (an hour in minutes)", p)
	}
	for _, d := range in.MetricDataQueries[0].MetricStat.Metric.Dimensions {
		if aws.ToString(d.Name) == "ExecutedVersion" {
			t.Errorf("the alias's traffic is read per version: %v", d)
		}
	}
	api := got["shop-api"]
	// 10:30:30 − 1h = 09:30:30: the minute from 09:30 is partly outside, so whole minutes from
	// 09:31 to 10:29 count: 59 of them, over 59.5 minutes.
	if api.Invocations != 59*1200 || api.Span != 59*time.Minute+30*time.Second {
		t.Errorf("api: %+v", api)
	}
	if r := api.Rate(); r < 19.8 || r > 20 {
		t.Errorf("rate %v, want about 20/s", r)
	}
	if e := api.ErrorRate(); e < 0.00099 || e > 0.00101 {
		t.Errorf("error rate %v, want 0.1%%", e)
	}
	if q := got["shop-quiet"]; q.Invocations != 0 || q.Rate() != 0 || q.ErrorRate() != 0 {
		t.Errorf("an alias that served nothing: %+v", q)
	}
	cw.metricsErr = errors.New("AccessDenied")
	if _, err := c.Traffic(context.Background(), "live", []string{"shop-api"}, time.Hour, now); err == nil {
		t.Error("a CloudWatch error was not returned")
	}
}

func TestTrafficPeriod(t *testing.T) {
	for w, want := range map[time.Duration]time.Duration{
		10 * time.Second: time.Second, 5 * time.Minute: 5 * time.Second, 30 * time.Minute: 30 * time.Second,
		time.Hour: time.Minute, 24 * time.Hour: 24 * time.Minute, 7 * 24 * time.Hour: 168 * time.Minute,
	} {
		if got := trafficPeriod(w); got != want {
			t.Errorf("trafficPeriod(%s) = %s, want %s", w, got, want)
		}
	}
}
