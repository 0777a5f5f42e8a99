package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/aviary-deploy/aviary/sandbox"
)

// stoppedScheduler is a fast sandbox whose scheduler clock stands still: only the test's
// advances make schedules due (a rate schedule's first, immediate occurrence aside).
func stoppedScheduler() (sandbox.Options, time.Time) {
	opts := fast
	t0 := time.Now().UTC()
	opts.SchedulerClock = func() time.Time { return t0 }
	return opts, t0
}

func newSchedule(name, expr, targetARN string, mod ...func(*scheduler.CreateScheduleInput)) *scheduler.CreateScheduleInput {
	in := &scheduler.CreateScheduleInput{
		Name: aws.String(name), ScheduleExpression: aws.String(expr),
		FlexibleTimeWindow: &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff},
		Target:             &schedtypes.Target{Arn: aws.String(targetARN), RoleArn: aws.String(role)},
	}
	for _, m := range mod {
		m(in)
	}
	return in
}

func TestSchedulerSchedules(t *testing.T) {
	opts, _ := stoppedScheduler()
	e := start(t, opts)
	c := ctx(t)
	sch := scheduler.NewFromConfig(e.cfg)
	fn := "arn:aws:lambda:us-east-1:000000000000:function:absent"

	out, err := sch.CreateSchedule(c, newSchedule("every-minute", "rate(1 minute)", fn, func(in *scheduler.CreateScheduleInput) {
		in.Target.Input = aws.String(`{"hello":"world"}`)
		in.Description = aws.String("the controller's tick")
	}))
	if err != nil {
		t.Fatalf("CreateSchedule: %v", err)
	}
	if got, want := aws.ToString(out.ScheduleArn), "arn:aws:scheduler:us-east-1:000000000000:schedule/default/every-minute"; got != want {
		t.Fatalf("ScheduleArn = %s, want %s", got, want)
	}
	_, err = sch.CreateSchedule(c, newSchedule("every-minute", "rate(5 minutes)", fn))
	wantAPIError[*schedtypes.ConflictException](t, err, http.StatusConflict)

	got, err := sch.GetSchedule(c, &scheduler.GetScheduleInput{Name: aws.String("every-minute")})
	if err != nil {
		t.Fatalf("GetSchedule: %v", err)
	}
	if got.State != schedtypes.ScheduleStateEnabled || aws.ToString(got.GroupName) != "default" || aws.ToString(got.ScheduleExpressionTimezone) != "UTC" ||
		got.ActionAfterCompletion != schedtypes.ActionAfterCompletionNone || aws.ToString(got.Target.Input) != `{"hello":"world"}` ||
		aws.ToString(got.Description) != "the controller's tick" || aws.ToInt32(got.Target.RetryPolicy.MaximumRetryAttempts) != 185 ||
		got.CreationDate == nil || got.FlexibleTimeWindow.Mode != schedtypes.FlexibleTimeWindowModeOff {
		t.Fatalf("GetSchedule = %+v (target %+v)", got, got.Target)
	}

	// UpdateSchedule replaces the whole schedule: what it leaves out is gone.
	if _, err := sch.UpdateSchedule(c, &scheduler.UpdateScheduleInput{Name: aws.String("every-minute"),
		ScheduleExpression: aws.String("cron(0 9 ? * MON-FRI *)"), ScheduleExpressionTimezone: aws.String("Europe/Paris"),
		State:              schedtypes.ScheduleStateDisabled,
		FlexibleTimeWindow: &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeFlexible, MaximumWindowInMinutes: aws.Int32(15)},
		Target:             &schedtypes.Target{Arn: aws.String(fn), RoleArn: aws.String(role)}}); err != nil {
		t.Fatalf("UpdateSchedule: %v", err)
	}
	got, err = sch.GetSchedule(c, &scheduler.GetScheduleInput{Name: aws.String("every-minute")})
	if err != nil {
		t.Fatalf("GetSchedule: %v", err)
	}
	if got.State != schedtypes.ScheduleStateDisabled || got.Target.Input != nil || got.Description != nil ||
		aws.ToString(got.ScheduleExpressionTimezone) != "Europe/Paris" || aws.ToInt32(got.FlexibleTimeWindow.MaximumWindowInMinutes) != 15 {
		t.Fatalf("after UpdateSchedule, GetSchedule = %+v", got)
	}
	_, err = sch.UpdateSchedule(c, &scheduler.UpdateScheduleInput{Name: aws.String("absent"), ScheduleExpression: aws.String("rate(1 hour)"),
		FlexibleTimeWindow: &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff},
		Target:             &schedtypes.Target{Arn: aws.String(fn), RoleArn: aws.String(role)}})
	wantAPIError[*schedtypes.ResourceNotFoundException](t, err, http.StatusNotFound)
	_, err = sch.GetSchedule(c, &scheduler.GetScheduleInput{Name: aws.String("absent")})
	wantAPIError[*schedtypes.ResourceNotFoundException](t, err, http.StatusNotFound)

	for _, tc := range []struct {
		name string
		in   *scheduler.CreateScheduleInput
	}{
		{"plural unit for 1", newSchedule("bad", "rate(1 minutes)", fn)},
		{"singular unit for 5", newSchedule("bad", "rate(5 minute)", fn)},
		{"five cron fields", newSchedule("bad", "cron(0 12 * * ?)", fn)},
		{"cron without ?", newSchedule("bad", "cron(0 12 * * * *)", fn)},
		{"at without seconds", newSchedule("bad", "at(2030-01-01T10:00)", fn)},
		{"unknown time zone", newSchedule("bad", "rate(1 hour)", fn, func(in *scheduler.CreateScheduleInput) { in.ScheduleExpressionTimezone = aws.String("Mars/Olympus") })},
		{"role not an IAM role", newSchedule("bad", "rate(1 hour)", fn, func(in *scheduler.CreateScheduleInput) {
			in.Target.RoleArn = aws.String("arn:aws:iam::000000000000:user/bob")
		})},
		{"flexible without a window", newSchedule("bad", "rate(1 hour)", fn, func(in *scheduler.CreateScheduleInput) {
			in.FlexibleTimeWindow.Mode = schedtypes.FlexibleTimeWindowModeFlexible
		})},
		{"end before now", newSchedule("bad", "rate(1 hour)", fn, func(in *scheduler.CreateScheduleInput) { in.EndDate = aws.Time(time.Now().Add(-time.Hour)) })},
		{"bad name", newSchedule("bad/name", "rate(1 hour)", fn)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sch.CreateSchedule(c, tc.in)
			v := wantAPIError[*schedtypes.ValidationException](t, err, http.StatusBadRequest)
			if aws.ToString(v.Message) == "" {
				t.Fatalf("ValidationException without a message: %v", err)
			}
		})
	}
	_, err = sch.CreateSchedule(c, newSchedule("x", "rate(1 hour)", fn, func(in *scheduler.CreateScheduleInput) { in.GroupName = aws.String("nope") }))
	wantAPIError[*schedtypes.ResourceNotFoundException](t, err, http.StatusNotFound)

	// Groups, listing and pagination.
	if _, err := sch.CreateScheduleGroup(c, &scheduler.CreateScheduleGroupInput{Name: aws.String("team")}); err != nil {
		t.Fatalf("CreateScheduleGroup: %v", err)
	}
	_, err = sch.CreateScheduleGroup(c, &scheduler.CreateScheduleGroupInput{Name: aws.String("team")})
	wantAPIError[*schedtypes.ConflictException](t, err, http.StatusConflict)
	for i := range 5 {
		in := newSchedule(fmt.Sprintf("job-%d", i), "rate(1 hour)", fn, func(in *scheduler.CreateScheduleInput) { in.GroupName = aws.String("team") })
		if i%2 == 1 {
			in.State = schedtypes.ScheduleStateDisabled
		}
		if _, err := sch.CreateSchedule(c, in); err != nil {
			t.Fatalf("CreateSchedule job-%d: %v", i, err)
		}
	}
	list := func(in *scheduler.ListSchedulesInput) (names []string, pages int) {
		t.Helper()
		p := scheduler.NewListSchedulesPaginator(sch, in)
		for p.HasMorePages() {
			out, err := p.NextPage(c)
			if err != nil {
				t.Fatalf("ListSchedules: %v", err)
			}
			pages++
			for _, s := range out.Schedules {
				names = append(names, aws.ToString(s.GroupName)+"/"+aws.ToString(s.Name))
			}
		}
		return names, pages
	}
	names, pages := list(&scheduler.ListSchedulesInput{MaxResults: aws.Int32(2)})
	if want := []string{"default/every-minute", "team/job-0", "team/job-1", "team/job-2", "team/job-3", "team/job-4"}; !slices.Equal(names, want) || pages != 3 {
		t.Fatalf("ListSchedules by 2 = %v in %d pages, want %v in 3", names, pages, want)
	}
	names, _ = list(&scheduler.ListSchedulesInput{GroupName: aws.String("team"), State: schedtypes.ScheduleStateEnabled, NamePrefix: aws.String("job-")})
	if want := []string{"team/job-0", "team/job-2", "team/job-4"}; !slices.Equal(names, want) {
		t.Fatalf("ListSchedules of team's enabled jobs = %v, want %v", names, want)
	}
	_, err = sch.ListSchedules(c, &scheduler.ListSchedulesInput{GroupName: aws.String("nope")})
	wantAPIError[*schedtypes.ResourceNotFoundException](t, err, http.StatusNotFound)

	groups, err := sch.ListScheduleGroups(c, &scheduler.ListScheduleGroupsInput{})
	if err != nil || len(groups.ScheduleGroups) != 2 || aws.ToString(groups.ScheduleGroups[0].Name) != "default" {
		t.Fatalf("ListScheduleGroups = %+v, %v; want default and team", groups, err)
	}
	_, err = sch.DeleteScheduleGroup(c, &scheduler.DeleteScheduleGroupInput{Name: aws.String("default")})
	wantAPIError[*schedtypes.ValidationException](t, err, http.StatusBadRequest)
	if _, err := sch.DeleteScheduleGroup(c, &scheduler.DeleteScheduleGroupInput{Name: aws.String("team")}); err != nil {
		t.Fatalf("DeleteScheduleGroup: %v", err)
	}
	_, err = sch.GetScheduleGroup(c, &scheduler.GetScheduleGroupInput{Name: aws.String("team")})
	wantAPIError[*schedtypes.ResourceNotFoundException](t, err, http.StatusNotFound)
	if names, _ := list(&scheduler.ListSchedulesInput{}); !slices.Equal(names, []string{"default/every-minute"}) {
		t.Fatalf("after deleting the group, ListSchedules = %v", names)
	}

	if _, err := sch.DeleteSchedule(c, &scheduler.DeleteScheduleInput{Name: aws.String("every-minute")}); err != nil {
		t.Fatalf("DeleteSchedule: %v", err)
	}
	_, err = sch.DeleteSchedule(c, &scheduler.DeleteScheduleInput{Name: aws.String("every-minute")})
	wantAPIError[*schedtypes.ResourceNotFoundException](t, err, http.StatusNotFound)
}

// schedulerReport is the answer of POST /_aviary/scheduler/tick.
type schedulerReport struct {
	Now     time.Time `json:"now"`
	Invoked []struct {
		Schedule  string    `json:"schedule"`
		Target    string    `json:"target"`
		Due       time.Time `json:"due"`
		Input     string    `json:"input"`
		Delivered bool      `json:"delivered"`
		Error     string    `json:"error"`
		Deleted   bool      `json:"deleted"`
	} `json:"invoked"`
}

func (r schedulerReport) fired(name string) int {
	n := 0
	for _, f := range r.Invoked {
		if f.Schedule == name {
			n++
		}
	}
	return n
}

func advanceScheduler(t *testing.T, srv *sandbox.Server, d string) schedulerReport {
	t.Helper()
	resp, err := http.Post(srv.URL+"/_aviary/scheduler/tick?advance="+d, "", nil)
	if err != nil {
		t.Fatalf("scheduler tick: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scheduler tick: HTTP %d", resp.StatusCode)
	}
	var rep schedulerReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatalf("scheduler tick: %v", err)
	}
	return rep
}

// waitForLog waits until the function has logged text and returns how many lines have it.
func (e *env) waitForLog(t *testing.T, group, text string) int {
	t.Helper()
	c := ctx(t)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		out, err := e.logs.FilterLogEvents(c, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), FilterPattern: aws.String(`"` + text + `"`)})
		if err == nil && len(out.Events) > 0 {
			return len(out.Events)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the function never logged %q (last error %v)", text, err)
		}
	}
}

func TestSchedulerInvokesLambda(t *testing.T) {
	opts, t0 := stoppedScheduler()
	e := start(t, opts)
	c := ctx(t)
	sch := scheduler.NewFromConfig(e.cfg)
	fnARN := aws.ToString(e.createFunction(t, "ticker", zips.good).FunctionArn)
	version := e.publish(t, "ticker")
	tag := fmt.Sprint(time.Now().UnixNano())
	logLine := func(what string) string { return what + "-" + tag }
	input := func(what string) func(*scheduler.CreateScheduleInput) {
		return func(in *scheduler.CreateScheduleInput) {
			in.Target.Input = aws.String(`{"action":"log","text":"` + logLine(what) + `"}`)
		}
	}

	for _, in := range []*scheduler.CreateScheduleInput{
		newSchedule("every-minute", "rate(1 minute)", fnARN, input("every")),
		// A one-time schedule two minutes on, on a published version, deleted once it has fired.
		newSchedule("once", "at("+t0.Add(2*time.Minute).Format("2006-01-02T15:04:05")+")", fnARN+":"+version, input("once"),
			func(in *scheduler.CreateScheduleInput) {
				in.ActionAfterCompletion = schedtypes.ActionAfterCompletionDelete
			}),
		newSchedule("disabled", "rate(1 minute)", fnARN, input("disabled"), func(in *scheduler.CreateScheduleInput) { in.State = schedtypes.ScheduleStateDisabled }),
	} {
		if _, err := sch.CreateSchedule(c, in); err != nil {
			t.Fatalf("CreateSchedule %s: %v", aws.ToString(in.Name), err)
		}
	}

	rep := advanceScheduler(t, e.srv, "60s")
	if got, want := rep.Now, t0.Add(time.Minute); !got.Equal(want.Truncate(time.Millisecond)) && !got.Equal(want) {
		t.Fatalf("the scheduler's time after advancing 60s = %v, want %v", got, want)
	}
	if rep.fired("every-minute") == 0 || rep.fired("once") != 0 {
		t.Fatalf("after 60s the tick fired %+v, want every-minute and not once", rep.Invoked)
	}
	for _, f := range rep.Invoked {
		if !f.Delivered || f.Error != "" || f.Target != fnARN || !strings.Contains(f.Input, logLine("every")) {
			t.Fatalf("firing %+v: want delivered to %s with the schedule's input", f, fnARN)
		}
	}
	e.waitForLog(t, "/aws/lambda/ticker", logLine("every"))

	rep = advanceScheduler(t, e.srv, "60s")
	if rep.fired("every-minute") != 1 || rep.fired("once") != 1 {
		t.Fatalf("at two minutes the tick fired %+v, want every-minute and once, once each", rep.Invoked)
	}
	for _, f := range rep.Invoked {
		if f.Schedule == "once" && (!f.Deleted || !f.Delivered || f.Target != fnARN+":"+version) {
			t.Fatalf("the one-time firing = %+v, want delivered to version %s and the schedule deleted", f, version)
		}
	}
	_, err := sch.GetSchedule(c, &scheduler.GetScheduleInput{Name: aws.String("once")})
	wantAPIError[*schedtypes.ResourceNotFoundException](t, err, http.StatusNotFound)
	e.waitForLog(t, "/aws/lambda/ticker", logLine("once"))

	rep = advanceScheduler(t, e.srv, "5m")
	if rep.fired("every-minute") != 5 || rep.fired("once") != 0 || rep.fired("disabled") != 0 {
		t.Fatalf("five minutes on the tick fired %+v, want every-minute five times and nothing else", rep.Invoked)
	}
	if n := e.waitForLog(t, "/aws/lambda/ticker", logLine("once")); n != 1 {
		t.Fatalf("the one-time schedule's input was logged %d times, want once", n)
	}
	// Enabling the disabled schedule makes it due from then on.
	got, err := sch.GetSchedule(c, &scheduler.GetScheduleInput{Name: aws.String("disabled")})
	if err != nil {
		t.Fatalf("GetSchedule: %v", err)
	}
	if _, err := sch.UpdateSchedule(c, &scheduler.UpdateScheduleInput{Name: got.Name, ScheduleExpression: got.ScheduleExpression,
		FlexibleTimeWindow: got.FlexibleTimeWindow, Target: got.Target, State: schedtypes.ScheduleStateEnabled}); err != nil {
		t.Fatalf("UpdateSchedule: %v", err)
	}
	if rep := advanceScheduler(t, e.srv, "60s"); rep.fired("disabled") == 0 {
		t.Fatalf("once enabled, the schedule did not fire: %+v", rep.Invoked)
	}
	e.waitForLog(t, "/aws/lambda/ticker", logLine("disabled"))

	resp, err := http.Post(e.srv.URL+"/_aviary/scheduler/tick?advance=-1m", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("advancing the scheduler backwards answered %d, want 400", resp.StatusCode)
	}
}

func TestSchedulerWithAWSCLI(t *testing.T) {
	opts, _ := stoppedScheduler()
	srv, err := startSandbox(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := newCLI(t, srv)
	out := c.ok("scheduler", "create-schedule", "--name", "nightly", "--schedule-expression", "cron(0 2 * * ? *)",
		"--schedule-expression-timezone", "Europe/Berlin", "--flexible-time-window", "Mode=OFF",
		"--target", `{"Arn":"arn:aws:lambda:us-east-1:000000000000:function:f","RoleArn":"`+role+`","Input":"{}"}`)
	if got, want := out["ScheduleArn"], "arn:aws:scheduler:us-east-1:000000000000:schedule/default/nightly"; got != want {
		t.Fatalf("create-schedule ScheduleArn = %v, want %s", got, want)
	}
	got := c.ok("scheduler", "get-schedule", "--name", "nightly")
	if got["ScheduleExpression"] != "cron(0 2 * * ? *)" || got["State"] != "ENABLED" || got["ScheduleExpressionTimezone"] != "Europe/Berlin" {
		t.Fatalf("get-schedule = %v", got)
	}
	_, stderr, code := c.run("scheduler", "get-schedule", "--name", "absent")
	if code == 0 || !strings.Contains(stderr, "ResourceNotFoundException") {
		t.Fatalf("get-schedule of a missing schedule: exit %d, %s", code, stderr)
	}
}

func TestSchedulerKeepsSchedulesAcrossRestarts(t *testing.T) {
	opts, _ := stoppedScheduler()
	opts.DataDir = t.TempDir()
	srv, err := startSandbox(opts)
	if err != nil {
		t.Fatal(err)
	}
	sch := scheduler.NewFromConfig(connect(t, srv).cfg)
	if _, err := sch.CreateSchedule(ctx(t), newSchedule("kept", "rate(1 hour)", "arn:aws:lambda:us-east-1:000000000000:function:f")); err != nil {
		t.Fatalf("CreateSchedule: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	e := start(t, opts)
	got, err := scheduler.NewFromConfig(e.cfg).GetSchedule(ctx(t), &scheduler.GetScheduleInput{Name: aws.String("kept")})
	if err != nil || aws.ToString(got.ScheduleExpression) != "rate(1 hour)" {
		t.Fatalf("after a restart, GetSchedule = %+v, %v", got, err)
	}
}

// Schedule groups carry tags, from CreateScheduleGroup on; schedules do not (the model's ARN
// pattern admits groups only).
func TestSchedulerGroupTags(t *testing.T) {
	e := start(t, fast)
	sch := scheduler.NewFromConfig(e.cfg)
	out, err := sch.CreateScheduleGroup(ctx(t), &scheduler.CreateScheduleGroupInput{Name: aws.String("ops"),
		Tags: []schedtypes.Tag{{Key: aws.String("team"), Value: aws.String("shop")}}})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.ScheduleGroupArn
	tagsOf := func() string {
		t.Helper()
		got, err := sch.ListTagsForResource(ctx(t), &scheduler.ListTagsForResourceInput{ResourceArn: arn})
		if err != nil {
			t.Fatalf("ListTagsForResource: %v", err)
		}
		var kv []string
		for _, tg := range got.Tags {
			kv = append(kv, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
		return strings.Join(kv, ",")
	}
	if got, want := tagsOf(), "team=shop"; got != want {
		t.Errorf("tags after CreateScheduleGroup = %s, want %s", got, want)
	}
	if _, err := sch.TagResource(ctx(t), &scheduler.TagResourceInput{ResourceArn: arn,
		Tags: []schedtypes.Tag{{Key: aws.String("team"), Value: aws.String("ops")}, {Key: aws.String("env"), Value: aws.String("prod")}}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	if got, want := tagsOf(), "team=ops,env=prod"; got != want {
		t.Errorf("tags after TagResource = %s, want %s", got, want)
	}
	if _, err := sch.UntagResource(ctx(t), &scheduler.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"team"}}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	if got, want := tagsOf(), "env=prod"; got != want {
		t.Errorf("tags after UntagResource = %s, want %s", got, want)
	}
	_, err = sch.ListTagsForResource(ctx(t), &scheduler.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:scheduler:us-east-1:000000000000:schedule/default/nightly")})
	wantAPIError[*schedtypes.ValidationException](t, err, 400)
	_, err = sch.TagResource(ctx(t), &scheduler.TagResourceInput{ResourceArn: aws.String("arn:aws:scheduler:us-east-1:000000000000:schedule-group/nope"),
		Tags: []schedtypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantAPIError[*schedtypes.ResourceNotFoundException](t, err, 404)
}
