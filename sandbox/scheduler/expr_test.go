package scheduler

import (
	"testing"
	"time"
)

func TestParseExpression(t *testing.T) {
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{"rate(1 minute)", true},
		{"rate(5 minutes)", true},
		{"rate(1 minutes)", false}, // the unit is singular exactly for 1
		{"rate(2 minute)", false},
		{"rate(1 hour)", true},
		{"rate(12 hours)", true},
		{"rate(1 day)", true},
		{"rate(0 minutes)", false},
		{"rate(1 week)", false},
		{"rate(01 minute)", false},
		{"cron(0 12 * * ? *)", true},
		{"cron(15 10 ? * 6L 2022-2199)", true},
		{"cron(0 18 ? * MON-FRI *)", true},
		{"cron(0/5 8-17 ? * MON-FRI *)", true},
		{"cron(0 9 L * ? *)", true},
		{"cron(0 9 15W * ? *)", true},
		{"cron(0 9 ? * 2#1 *)", true},
		{"cron(0 12 * * * *)", false}, // neither day field is ?
		{"cron(0 12 ? * ? *)", false}, // both are
		{"cron(0 12 * * ?)", false},   // five fields
		{"cron(60 12 * * ? *)", false},
		{"at(2030-01-02T03:04:05)", true},
		{"at(2030-01-02 03:04:05)", false},
		{"every(5 minutes)", false},
		{"rate(5 minutes", false},
	} {
		_, err := parseExpression(tc.expr, time.UTC)
		if got := err == nil; got != tc.ok {
			t.Errorf("parseExpression(%q) error = %v, want ok=%v", tc.expr, err, tc.ok)
		}
	}
}

func TestCronNext(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		expr  string
		loc   *time.Location
		after string
		want  string
	}{
		{"cron(0 12 * * ? *)", time.UTC, "2026-03-01T12:00:00Z", "2026-03-02T12:00:00Z"},
		{"cron(0 12 * * ? *)", time.UTC, "2026-03-01T11:59:59Z", "2026-03-01T12:00:00Z"},
		{"cron(0/15 * * * ? *)", time.UTC, "2026-03-01T10:07:00Z", "2026-03-01T10:15:00Z"},
		// 9:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer.
		{"cron(0 9 * * ? *)", ny, "2026-01-05T00:00:00Z", "2026-01-05T14:00:00Z"},
		{"cron(0 9 * * ? *)", ny, "2026-07-05T00:00:00Z", "2026-07-05T13:00:00Z"},
		// 2:30 does not exist in New York on 2026-03-08: skipped to the next day.
		{"cron(30 2 * * ? *)", ny, "2026-03-08T00:00:00Z", "2026-03-09T06:30:00Z"},
		{"cron(0 9 L * ? *)", time.UTC, "2026-02-01T00:00:00Z", "2026-02-28T09:00:00Z"},
		{"cron(0 9 ? * MON-FRI *)", time.UTC, "2026-03-06T10:00:00Z", "2026-03-09T09:00:00Z"}, // Friday → Monday
		{"cron(0 9 ? * 2#1 *)", time.UTC, "2026-03-03T00:00:00Z", "2026-04-06T09:00:00Z"},     // first Monday
		{"cron(0 9 ? * 6L *)", time.UTC, "2026-03-01T00:00:00Z", "2026-03-27T09:00:00Z"},      // last Friday
		{"cron(0 9 15W * ? *)", time.UTC, "2026-03-01T00:00:00Z", "2026-03-16T09:00:00Z"},     // the 15th is a Sunday
		{"cron(0 0 1 1 ? 2027)", time.UTC, "2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z"},
	} {
		e, err := parseExpression(tc.expr, tc.loc)
		if err != nil {
			t.Fatalf("parseExpression(%q): %v", tc.expr, err)
		}
		got, ok := e.cron.next(utc(tc.after), tc.loc)
		if !ok || !got.Equal(utc(tc.want)) {
			t.Errorf("%s in %s after %s = %v (%v), want %s", tc.expr, tc.loc, tc.after, got.UTC(), ok, tc.want)
		}
	}
	e, _ := parseExpression("cron(0 0 1 1 ? 2020)", time.UTC)
	if got, ok := e.cron.next(utc("2026-01-01T00:00:00Z"), time.UTC); ok {
		t.Errorf("a cron whose years have passed fires again at %v", got)
	}
}
