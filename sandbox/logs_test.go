package sandbox_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go"
)

// wantLogsError asserts err is the CloudWatch Logs error code, answered with HTTP 400 as
// CloudWatch Logs answers every client error.
func wantLogsError(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("error = %v, want %s", err, code)
	}
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != 400 {
		t.Fatalf("%s answered with HTTP status other than 400: %v", code, err)
	}
}

func ms(t time.Time) *int64 { return aws.Int64(t.UnixMilli()) }

func TestLogGroupsAndStreams(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	l := e.logs

	if _, err := l.CreateLogGroup(c, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/app/web"), Tags: map[string]string{"team": "web"}}); err != nil {
		t.Fatal(err)
	}
	_, err := l.CreateLogGroup(c, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/app/web")})
	var exists *logtypes.ResourceAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("second CreateLogGroup: %v", err)
	}
	wantLogsError(t, err, "ResourceAlreadyExistsException")
	_, err = l.CreateLogGroup(c, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("bad name!")})
	wantLogsError(t, err, "InvalidParameterException")
	for i := range 7 {
		if _, err := l.CreateLogGroup(c, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(fmt.Sprintf("/app/svc-%d", i))}); err != nil {
			t.Fatal(err)
		}
	}

	// Pagination, ASCII order, prefix and pattern.
	var names []string
	var pages int
	for p := cloudwatchlogs.NewDescribeLogGroupsPaginator(l, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/app/"), Limit: aws.Int32(3)}); p.HasMorePages(); pages++ {
		out, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.LogGroups {
			names = append(names, aws.ToString(g.LogGroupName))
		}
	}
	if pages != 3 || len(names) != 8 || names[0] != "/app/svc-0" || names[7] != "/app/web" {
		t.Errorf("DescribeLogGroups pages: %d pages, %v", pages, names)
	}
	pat, err := l.DescribeLogGroups(c, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePattern: aws.String("web")})
	if err != nil || len(pat.LogGroups) != 1 {
		t.Fatalf("DescribeLogGroups pattern: %v %+v", err, pat)
	}
	g := pat.LogGroups[0]
	if aws.ToString(g.Arn) != "arn:aws:logs:us-east-1:000000000000:log-group:/app/web:*" || aws.ToString(g.LogGroupArn) != "arn:aws:logs:us-east-1:000000000000:log-group:/app/web" ||
		aws.ToInt64(g.CreationTime) == 0 || g.RetentionInDays != nil || g.LogGroupClass != logtypes.LogGroupClassStandard {
		t.Errorf("log group: %+v", g)
	}
	_, err = l.DescribeLogGroups(c, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/app"), LogGroupNamePattern: aws.String("web")})
	wantLogsError(t, err, "InvalidParameterException")
	_, err = l.DescribeLogGroups(c, &cloudwatchlogs.DescribeLogGroupsInput{Limit: aws.Int32(51)})
	wantLogsError(t, err, "InvalidParameterException")
	_, err = l.DescribeLogGroups(c, &cloudwatchlogs.DescribeLogGroupsInput{NextToken: aws.String("not-a-token!")})
	wantLogsError(t, err, "InvalidParameterException")

	// Streams.
	_, err = l.CreateLogStream(c, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("/nope"), LogStreamName: aws.String("s")})
	wantLogsError(t, err, "ResourceNotFoundException")
	for _, s := range []string{"b", "a", "c"} {
		if _, err := l.CreateLogStream(c, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("/app/web"), LogStreamName: aws.String(s)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = l.CreateLogStream(c, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("/app/web"), LogStreamName: aws.String("a")})
	wantLogsError(t, err, "ResourceAlreadyExistsException")
	_, err = l.CreateLogStream(c, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("/app/web"), LogStreamName: aws.String("a:b")})
	wantLogsError(t, err, "InvalidParameterException")
	now := time.Now()
	put := func(stream string, at time.Time, msg string) {
		t.Helper()
		if _, err := l.PutLogEvents(c, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("/app/web"), LogStreamName: aws.String(stream),
			LogEvents: []logtypes.InputLogEvent{{Timestamp: ms(at), Message: aws.String(msg)}}}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", now.Add(-3*time.Minute), "a1")
	put("c", now.Add(-2*time.Minute), "c1")
	put("b", now.Add(-time.Minute), "b1")

	streams := func(in *cloudwatchlogs.DescribeLogStreamsInput) []string {
		t.Helper()
		var out []string
		for p := cloudwatchlogs.NewDescribeLogStreamsPaginator(l, in); p.HasMorePages(); {
			page, err := p.NextPage(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page.LogStreams {
				out = append(out, aws.ToString(s.LogStreamName))
			}
		}
		return out
	}
	if got := streams(&cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/app/web"), Limit: aws.Int32(1)}); strings.Join(got, ",") != "a,b,c" {
		t.Errorf("streams by name: %v", got)
	}
	if got := streams(&cloudwatchlogs.DescribeLogStreamsInput{LogGroupIdentifier: aws.String("arn:aws:logs:us-east-1:000000000000:log-group:/app/web"), Descending: aws.Bool(true)}); strings.Join(got, ",") != "c,b,a" {
		t.Errorf("streams by name, descending: %v", got)
	}
	if got := streams(&cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/app/web"), OrderBy: logtypes.OrderByLastEventTime, Descending: aws.Bool(true), Limit: aws.Int32(2)}); strings.Join(got, ",") != "b,c,a" {
		t.Errorf("streams by last event time, descending: %v", got)
	}
	if got := streams(&cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/app/web"), LogStreamNamePrefix: aws.String("c")}); strings.Join(got, ",") != "c" {
		t.Errorf("streams by prefix: %v", got)
	}
	_, err = l.DescribeLogStreams(c, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/app/web"), OrderBy: logtypes.OrderByLastEventTime, LogStreamNamePrefix: aws.String("a")})
	wantLogsError(t, err, "InvalidParameterException")
	_, err = l.DescribeLogStreams(c, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/app/web"), LogGroupIdentifier: aws.String("/app/web")})
	wantLogsError(t, err, "InvalidParameterException")
	_, err = l.DescribeLogStreams(c, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/nope")})
	wantLogsError(t, err, "ResourceNotFoundException")
	one, err := l.DescribeLogStreams(c, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/app/web"), LogStreamNamePrefix: aws.String("a")})
	if err != nil {
		t.Fatal(err)
	}
	s := one.LogStreams[0]
	if aws.ToInt64(s.FirstEventTimestamp) != now.Add(-3*time.Minute).UnixMilli() || aws.ToInt64(s.LastEventTimestamp) != now.Add(-3*time.Minute).UnixMilli() ||
		aws.ToInt64(s.LastIngestionTime) < now.UnixMilli()-5000 || aws.ToString(s.Arn) != "arn:aws:logs:us-east-1:000000000000:log-group:/app/web:log-stream:a" {
		t.Errorf("log stream: %+v", s)
	}

	// Retention: valid values only, and applied to what is stored.
	_, err = l.PutRetentionPolicy(c, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String("/app/web"), RetentionInDays: aws.Int32(2)})
	wantLogsError(t, err, "InvalidParameterException")
	put("a", now.Add(-3*24*time.Hour), "three days old")
	if _, err := l.PutRetentionPolicy(c, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String("/app/web"), RetentionInDays: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	all, err := l.FilterLogEvents(c, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/app/web")})
	if err != nil || len(all.Events) != 3 {
		t.Fatalf("events after a 1-day retention: %v %+v", err, all)
	}
	ret, _ := l.DescribeLogGroups(c, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/app/web")})
	if aws.ToInt32(ret.LogGroups[0].RetentionInDays) != 1 {
		t.Errorf("retention: %+v", ret.LogGroups[0])
	}
	old, err := l.PutLogEvents(c, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("/app/web"), LogStreamName: aws.String("a"),
		LogEvents: []logtypes.InputLogEvent{{Timestamp: ms(now.Add(-2 * 24 * time.Hour)), Message: aws.String("expired")}, {Timestamp: ms(now), Message: aws.String("kept")}}})
	if err != nil || old.RejectedLogEventsInfo == nil || aws.ToInt32(old.RejectedLogEventsInfo.ExpiredLogEventEndIndex) != 1 {
		t.Errorf("PutLogEvents of an expired event: %v %+v", err, old)
	}
	if _, err := l.DeleteRetentionPolicy(c, &cloudwatchlogs.DeleteRetentionPolicyInput{LogGroupName: aws.String("/app/web")}); err != nil {
		t.Fatal(err)
	}

	// Tags, both APIs.
	arn := "arn:aws:logs:us-east-1:000000000000:log-group:/app/web"
	if _, err := l.TagResource(c, &cloudwatchlogs.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"env": "test"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := l.ListTagsForResource(c, &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil || tags.Tags["team"] != "web" || tags.Tags["env"] != "test" {
		t.Errorf("ListTagsForResource: %v %+v", err, tags)
	}
	if _, err := l.UntagResource(c, &cloudwatchlogs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	old2, err := l.ListTagsLogGroup(c, &cloudwatchlogs.ListTagsLogGroupInput{LogGroupName: aws.String("/app/web")})
	if err != nil || len(old2.Tags) != 1 || old2.Tags["env"] != "test" {
		t.Errorf("ListTagsLogGroup: %v %+v", err, old2)
	}
	_, err = l.ListTagsForResource(c, &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:logs:us-east-1:000000000000:log-group:/nope")})
	wantLogsError(t, err, "ResourceNotFoundException")

	// Deletion.
	if _, err := l.DeleteLogStream(c, &cloudwatchlogs.DeleteLogStreamInput{LogGroupName: aws.String("/app/web"), LogStreamName: aws.String("b")}); err != nil {
		t.Fatal(err)
	}
	_, err = l.DeleteLogStream(c, &cloudwatchlogs.DeleteLogStreamInput{LogGroupName: aws.String("/app/web"), LogStreamName: aws.String("b")})
	wantLogsError(t, err, "ResourceNotFoundException")
	if _, err := l.DeleteLogGroup(c, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String("/app/web")}); err != nil {
		t.Fatal(err)
	}
	_, err = l.DeleteLogGroup(c, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String("/app/web")})
	var nf *logtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("DeleteLogGroup twice: %v", err)
	}
}

func TestPutAndGetLogEvents(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	l := e.logs
	group, stream := aws.String("/app/events"), aws.String("s1")
	if _, err := l.CreateLogGroup(c, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: group}); err != nil {
		t.Fatal(err)
	}
	_, err := l.PutLogEvents(c, &cloudwatchlogs.PutLogEventsInput{LogGroupName: group, LogStreamName: stream,
		LogEvents: []logtypes.InputLogEvent{{Timestamp: ms(time.Now()), Message: aws.String("x")}}})
	wantLogsError(t, err, "ResourceNotFoundException")
	if _, err := l.CreateLogStream(c, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: group, LogStreamName: stream}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var evs []logtypes.InputLogEvent
	for i := range 25 {
		evs = append(evs, logtypes.InputLogEvent{Timestamp: ms(base.Add(time.Duration(i) * time.Second)), Message: aws.String(fmt.Sprintf("event %02d", i))})
	}
	// The sequence token is accepted and ignored, as it is now on AWS.
	out, err := l.PutLogEvents(c, &cloudwatchlogs.PutLogEventsInput{LogGroupName: group, LogStreamName: stream, LogEvents: evs, SequenceToken: aws.String("whatever")})
	if err != nil || out.RejectedLogEventsInfo != nil {
		t.Fatalf("PutLogEvents: %v %+v", err, out)
	}

	// Out of order, too big a span, empty, too many: the whole batch fails.
	_, err = l.PutLogEvents(c, &cloudwatchlogs.PutLogEventsInput{LogGroupName: group, LogStreamName: stream,
		LogEvents: []logtypes.InputLogEvent{{Timestamp: ms(base.Add(time.Second)), Message: aws.String("b")}, {Timestamp: ms(base), Message: aws.String("a")}}})
	wantLogsError(t, err, "InvalidParameterException")
	_, err = l.PutLogEvents(c, &cloudwatchlogs.PutLogEventsInput{LogGroupName: group, LogStreamName: stream,
		LogEvents: []logtypes.InputLogEvent{{Timestamp: ms(time.Now().Add(-25 * time.Hour)), Message: aws.String("a")}, {Timestamp: ms(time.Now()), Message: aws.String("b")}}})
	wantLogsError(t, err, "InvalidParameterException")
	_, err = l.PutLogEvents(c, &cloudwatchlogs.PutLogEventsInput{LogGroupName: group, LogStreamName: stream, LogEvents: []logtypes.InputLogEvent{}})
	wantLogsError(t, err, "InvalidParameterException")
	many := make([]logtypes.InputLogEvent, 10001)
	for i := range many {
		many[i] = logtypes.InputLogEvent{Timestamp: ms(base), Message: aws.String("m")}
	}
	_, err = l.PutLogEvents(c, &cloudwatchlogs.PutLogEventsInput{LogGroupName: group, LogStreamName: stream, LogEvents: many})
	wantLogsError(t, err, "InvalidParameterException")

	// Too old and too new events are rejected, the rest kept.
	mixed, err := l.PutLogEvents(c, &cloudwatchlogs.PutLogEventsInput{LogGroupName: group, LogStreamName: aws.String("s1"), LogEvents: []logtypes.InputLogEvent{
		{Timestamp: ms(time.Now().Add(-15 * 24 * time.Hour)), Message: aws.String("too old")},
		{Timestamp: ms(time.Now().Add(-15*24*time.Hour + time.Minute)), Message: aws.String("too old too")},
		{Timestamp: ms(time.Now().Add(3 * time.Hour)), Message: aws.String("too new")},
	}})
	if err != nil || mixed.RejectedLogEventsInfo == nil || aws.ToInt32(mixed.RejectedLogEventsInfo.TooOldLogEventEndIndex) != 2 || aws.ToInt32(mixed.RejectedLogEventsInfo.TooNewLogEventStartIndex) != 2 {
		t.Fatalf("rejected events: %v %+v", err, mixed.RejectedLogEventsInfo)
	}

	// GetLogEvents from the head, forward, until the same token comes back.
	var got []string
	in := &cloudwatchlogs.GetLogEventsInput{LogGroupName: group, LogStreamName: stream, StartFromHead: aws.Bool(true), Limit: aws.Int32(10)}
	for range 10 {
		page, err := l.GetLogEvents(c, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			got = append(got, aws.ToString(ev.Message))
		}
		if in.NextToken != nil && aws.ToString(page.NextForwardToken) == aws.ToString(in.NextToken) {
			if len(page.Events) != 0 {
				t.Errorf("the end of the stream returned %d events", len(page.Events))
			}
			break
		}
		in.NextToken = page.NextForwardToken
	}
	if len(got) != 25 || got[0] != "event 00" || got[24] != "event 24" {
		t.Errorf("forward pages: %v", got)
	}
	// Without startFromHead the newest events come first, then pages go backward.
	last, err := l.GetLogEvents(c, &cloudwatchlogs.GetLogEventsInput{LogGroupName: group, LogStreamName: stream, Limit: aws.Int32(10)})
	if err != nil || len(last.Events) != 10 || aws.ToString(last.Events[0].Message) != "event 15" || aws.ToString(last.Events[9].Message) != "event 24" {
		t.Fatalf("latest page: %v %+v", err, last)
	}
	back, err := l.GetLogEvents(c, &cloudwatchlogs.GetLogEventsInput{LogGroupName: group, LogStreamName: stream, Limit: aws.Int32(10), NextToken: last.NextBackwardToken})
	if err != nil || len(back.Events) != 10 || aws.ToString(back.Events[0].Message) != "event 05" {
		t.Fatalf("backward page: %v %+v", err, back)
	}
	back2, _ := l.GetLogEvents(c, &cloudwatchlogs.GetLogEventsInput{LogGroupName: group, LogStreamName: stream, Limit: aws.Int32(10), NextToken: back.NextBackwardToken})
	back3, _ := l.GetLogEvents(c, &cloudwatchlogs.GetLogEventsInput{LogGroupName: group, LogStreamName: stream, Limit: aws.Int32(10), NextToken: back2.NextBackwardToken})
	if len(back2.Events) != 5 || len(back3.Events) != 0 || aws.ToString(back3.NextBackwardToken) != aws.ToString(back2.NextBackwardToken) {
		t.Errorf("backward to the start: %d then %d events, tokens %s %s", len(back2.Events), len(back3.Events), aws.ToString(back2.NextBackwardToken), aws.ToString(back3.NextBackwardToken))
	}
	// A time range: startTime inclusive, endTime exclusive.
	rng, err := l.GetLogEvents(c, &cloudwatchlogs.GetLogEventsInput{LogGroupName: group, LogStreamName: stream, StartFromHead: aws.Bool(true),
		StartTime: ms(base.Add(3 * time.Second)), EndTime: ms(base.Add(6 * time.Second))})
	if err != nil || len(rng.Events) != 3 || aws.ToString(rng.Events[0].Message) != "event 03" {
		t.Errorf("time range: %v %+v", err, rng.Events)
	}
	// New events are read with the last forward token.
	if _, err := l.PutLogEvents(c, &cloudwatchlogs.PutLogEventsInput{LogGroupName: group, LogStreamName: stream,
		LogEvents: []logtypes.InputLogEvent{{Timestamp: ms(base.Add(30 * time.Second)), Message: aws.String("later")}}}); err != nil {
		t.Fatal(err)
	}
	more, err := l.GetLogEvents(c, &cloudwatchlogs.GetLogEventsInput{LogGroupName: group, LogStreamName: stream, StartFromHead: aws.Bool(true), NextToken: in.NextToken})
	if err != nil || len(more.Events) != 1 || aws.ToString(more.Events[0].Message) != "later" || aws.ToInt64(more.Events[0].IngestionTime) == 0 {
		t.Errorf("after the end: %v %+v", err, more.Events)
	}
	_, err = l.GetLogEvents(c, &cloudwatchlogs.GetLogEventsInput{LogGroupName: group, LogStreamName: aws.String("nope")})
	wantLogsError(t, err, "ResourceNotFoundException")
	_, err = l.GetLogEvents(c, &cloudwatchlogs.GetLogEventsInput{LogGroupName: group, LogStreamName: stream, NextToken: aws.String("garbage")})
	wantLogsError(t, err, "InvalidParameterException")
}

func TestFilterLogEvents(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	l := e.logs
	group := aws.String("/app/filter")
	if _, err := l.CreateLogGroup(c, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: group}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	// Two streams whose events interleave in time.
	for s, offsets := range map[string][]int{"2026/01/01/[1]aaaa": {0, 2, 4, 6}, "2026/01/01/[2]bbbb": {1, 3, 5, 7}} {
		if _, err := l.CreateLogStream(c, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: group, LogStreamName: aws.String(s)}); err != nil {
			t.Fatal(err)
		}
		var evs []logtypes.InputLogEvent
		for _, o := range offsets {
			msg := fmt.Sprintf("INFO request %d ok", o)
			if o%3 == 0 {
				msg = fmt.Sprintf(`{"level":"ERROR","n":%d,"msg":"request failed"}`, o)
			}
			evs = append(evs, logtypes.InputLogEvent{Timestamp: ms(base.Add(time.Duration(o) * time.Second)), Message: aws.String(msg)})
		}
		if _, err := l.PutLogEvents(c, &cloudwatchlogs.PutLogEventsInput{LogGroupName: group, LogStreamName: aws.String(s), LogEvents: evs}); err != nil {
			t.Fatal(err)
		}
	}
	filter := func(in *cloudwatchlogs.FilterLogEventsInput) []logtypes.FilteredLogEvent {
		t.Helper()
		var out []logtypes.FilteredLogEvent
		for p := cloudwatchlogs.NewFilterLogEventsPaginator(l, in); p.HasMorePages(); {
			page, err := p.NextPage(c)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, page.Events...)
		}
		return out
	}
	all := filter(&cloudwatchlogs.FilterLogEventsInput{LogGroupName: group, Limit: aws.Int32(3)})
	if len(all) != 8 {
		t.Fatalf("FilterLogEvents returned %d events, want 8", len(all))
	}
	ids := map[string]bool{}
	for i, ev := range all {
		if i > 0 && aws.ToInt64(ev.Timestamp) < aws.ToInt64(all[i-1].Timestamp) {
			t.Errorf("events out of time order at %d", i)
		}
		wantStream := "2026/01/01/[1]aaaa"
		if i%2 == 1 {
			wantStream = "2026/01/01/[2]bbbb"
		}
		if aws.ToString(ev.LogStreamName) != wantStream || aws.ToInt64(ev.IngestionTime) == 0 || len(aws.ToString(ev.EventId)) != 56 || ids[aws.ToString(ev.EventId)] {
			t.Errorf("event %d: %+v", i, ev)
		}
		ids[aws.ToString(ev.EventId)] = true
	}
	if got := filter(&cloudwatchlogs.FilterLogEventsInput{LogGroupName: group, FilterPattern: aws.String("?failed ?\"request 5\"")}); len(got) != 4 {
		t.Errorf("OR pattern: %d events", len(got))
	}
	if got := filter(&cloudwatchlogs.FilterLogEventsInput{LogGroupIdentifier: aws.String("arn:aws:logs:us-east-1:000000000000:log-group:/app/filter"), FilterPattern: aws.String(`{ $.level = "ERROR" && $.n > 2 }`)}); len(got) != 2 {
		t.Errorf("JSON pattern: %d events", len(got))
	}
	if got := filter(&cloudwatchlogs.FilterLogEventsInput{LogGroupName: group, LogStreamNamePrefix: aws.String("2026/01/01/[2]"), FilterPattern: aws.String("INFO -\"request 1\"")}); len(got) != 2 {
		t.Errorf("prefix and exclusion: %d events", len(got))
	}
	if got := filter(&cloudwatchlogs.FilterLogEventsInput{LogGroupName: group, LogStreamNames: []string{"2026/01/01/[1]aaaa"}, FilterPattern: aws.String("[level, word, n >= 2, status]")}); len(got) != 2 {
		t.Errorf("space-delimited pattern on one stream: %d events", len(got))
	}
	// startTime and endTime are both inclusive.
	if got := filter(&cloudwatchlogs.FilterLogEventsInput{LogGroupName: group, StartTime: ms(base.Add(2 * time.Second)), EndTime: ms(base.Add(4 * time.Second))}); len(got) != 3 {
		t.Errorf("time range: %d events", len(got))
	}
	for _, bad := range []*cloudwatchlogs.FilterLogEventsInput{
		{LogGroupName: group, FilterPattern: aws.String(`{ $.level = `)},
		{LogGroupName: group, FilterPattern: aws.String(`[a, b`)},
		{LogGroupName: group, LogStreamNames: []string{"x"}, LogStreamNamePrefix: aws.String("x")},
		{LogGroupName: group, LogGroupIdentifier: group},
		{},
		{LogGroupName: group, Limit: aws.Int32(10001)},
		{LogGroupName: group, NextToken: aws.String("%%%")},
	} {
		_, err := l.FilterLogEvents(c, bad)
		wantLogsError(t, err, "InvalidParameterException")
	}
	_, err := l.FilterLogEvents(c, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/app/none")})
	wantLogsError(t, err, "ResourceNotFoundException")
	_, err = l.FilterLogEvents(c, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: group, LogStreamNames: []string{"no-such-stream"}})
	wantLogsError(t, err, "ResourceNotFoundException")
}
