package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/aviary-deploy/aviary/release"
)

// Lambda's published prices (https://aws.amazon.com/lambda/pricing/, US East (N. Virginia), Arm:
// $0.0000133334 per GB-second for the first 7.5 billion GB-seconds a month, $0.20 per million
// requests) and EventBridge Scheduler's (https://aws.amazon.com/eventbridge/pricing/: $1.00 per
// million invocations after 14 million free a month).
const (
	armPerGBSecond   = 0.0000133334
	lambdaPerRequest = 0.20 / 1e6
	schedulerPerCall = 1.00 / 1e6
	installMemoryMB  = 256 // what `aviary controller install` gives the function
)

// BenchmarkControllerAgainstAttached measures what handing a release to the controller costs: the
// time each step waits past its bake for a tick (against an attached deploy, which moves on at
// its next poll), and the controller's Lambda bill per hour of a release. The schedule's minute is
// scaled down to tick, here a second: the added time is measured in ticks, and the cost counts
// the measured billed duration of a tick (the real bootstrap on the sandbox, over dynalite, on
// this machine; AWS's DynamoDB and Lambda APIs answer in milliseconds too, but not these) at 60
// ticks an hour, the function's memory as install sets it, and the prices above.
func BenchmarkControllerAgainstAttached(b *testing.B) {
	const tick = time.Second
	const bake = 3 * time.Second
	f := newFleet(b, 5, quick, fmt.Sprintf("      canary:\n        - weight: 10%%\n          bake: %s\n        - weight: 50%%\n          bake: %s", bake, bake))
	f.appendManifest("    approval:\n      at_step: 0\n")
	st := f.teamStore(b)
	ctx := context.Background()
	b.Setenv("AVIARY_PRE_APPROVE", "true")
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		b.Fatalf("first release: %d\n%s\n%s", code, out, errs)
	}
	c := deployController(b, f, st)
	var attached, ticked []time.Duration
	ticks := 0
	b.ResetTimer()
	for i := range b.N {
		// Attached: the deploy process moves the release on itself.
		b.Setenv("AVIARY_PRE_APPROVE", "true")
		f.stampAll(fmt.Sprintf("a%d", i))
		if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
			b.Fatalf("attached release: %d\n%s\n%s", code, out, errs)
		}
		rs, err := st.ListReleases(ctx, release.Filter{Service: "shop", Environment: "production", Limit: 1})
		if err != nil {
			b.Fatal(err)
		}
		attached = append(attached, stepLags(rs[0])...)

		// Detached: the controller moves it, one tick a second.
		b.Setenv("AVIARY_PRE_APPROVE", "")
		r := detach(b, f, st, fmt.Sprintf("d%d", i))
		approve(b, st, r.ID)
		for !r.Phase.Final() {
			start := time.Now()
			c.tick()
			ticks++
			if r, err = st.GetRelease(ctx, r.ID); err != nil {
				b.Fatal(err)
			}
			time.Sleep(tick - time.Since(start))
		}
		if r.Phase != release.Promoted {
			b.Fatalf("the detached release ended %s: %s", r.Phase, r.Reason)
		}
		ticked = append(ticked, stepLags(r)...)
	}
	b.StopTimer()
	billed := c.billed()
	if len(billed) == 0 {
		b.Fatal("no REPORT line in the controller's log")
	}
	var sum time.Duration
	for _, d := range billed {
		sum += d
	}
	perTick := sum / time.Duration(len(billed))
	gbSeconds := perTick.Seconds() * installMemoryMB / 1024
	perHour := 60 * (gbSeconds*armPerGBSecond + lambdaPerRequest)
	added := mean(ticked) - mean(attached)
	b.ReportMetric(added.Seconds()/tick.Seconds(), "added-ticks/step")
	b.ReportMetric(perHour, "USD/release-hour")
	fmt.Printf("\n%-44s %14s %14s\n", "", "attached", "controller")
	fmt.Printf("%-44s %14s %14s\n", "steps measured", strconv.Itoa(len(attached)), strconv.Itoa(len(ticked)))
	fmt.Printf("%-44s %14s %14s\n", "time past the bake, per step (mean)", mean(attached).Round(time.Millisecond), mean(ticked).Round(time.Millisecond))
	fmt.Printf("%-44s %14s %14s\n", "time past the bake, per step (max)", maxOf(attached).Round(time.Millisecond), maxOf(ticked).Round(time.Millisecond))
	fmt.Printf("%-44s %14s %14.2f\n", "added per step, in ticks (goal ≤ 1)", "", added.Seconds()/tick.Seconds())
	fmt.Printf("%-44s %14s %14d\n", "ticks (invocations) to drive the releases", "", ticks)
	fmt.Printf("%-44s %14s %14s\n", "billed duration per tick (mean)", "", perTick)
	fmt.Printf("%-44s %14s %14.4f\n", "GB-seconds per tick at 256 MB", "", gbSeconds)
	fmt.Printf("%-44s %14s %14.6f\n", "Lambda USD per release-hour (arm64, 60/h)", "", perHour)
	fmt.Printf("%-44s %14s %14.6f\n", "Scheduler USD per hour (60/h, past free)", "", 60*schedulerPerCall)
	fmt.Printf("%-44s %14s %14s\n", "CI runner minutes per release-hour", "60", "0")
}

// stepLags are how long each step of r went on past its bake: from when its bake should have
// ended to when the step's verdict was recorded.
func stepLags(r *release.Release) []time.Duration {
	var out []time.Duration
	for _, s := range r.Health.Steps {
		if s.Started.IsZero() || s.Ended.IsZero() {
			continue
		}
		out = append(out, s.Ended.Sub(s.Started.Add(r.Steps[s.Step].Bake)))
	}
	return out
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s / time.Duration(len(ds))
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

var billedRE = regexp.MustCompile(`Billed Duration: ([0-9]+) ms`)

// billed are the billed durations of the controller's invocations, from its REPORT lines.
func (c *ctl) billed() []time.Duration {
	var out []time.Duration
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/" + c.name), FilterPattern: aws.String(`"REPORT RequestId"`)}
	for {
		page, err := c.logs.FilterLogEvents(context.Background(), in)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, e := range page.Events {
			if m := billedRE.FindStringSubmatch(aws.ToString(e.Message)); m != nil && strings.HasPrefix(aws.ToString(e.Message), "REPORT") {
				ms, _ := strconv.Atoi(m[1])
				out = append(out, time.Duration(ms)*time.Millisecond)
			}
		}
		if page.NextToken == nil {
			return out
		}
		in.NextToken = page.NextToken
	}
}
