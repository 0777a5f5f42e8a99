package scheduler

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// expression is a parsed ScheduleExpression: exactly one of rate, cron or at is set.
type expression struct {
	rate time.Duration
	cron *cronExpr
	// at is the one-time schedule's wall-clock time, read in the schedule's time zone.
	at *time.Time
}

// parseExpression reads rate(value unit), cron(six fields) or at(yyyy-mm-ddThh:mm:ss), as
// EventBridge Scheduler documents them; loc is ScheduleExpressionTimezone.
func parseExpression(s string, loc *time.Location) (expression, error) {
	bad := fmt.Errorf("Invalid Schedule Expression %s.", s)
	open := strings.IndexByte(s, '(')
	if open < 0 || !strings.HasSuffix(s, ")") {
		return expression{}, bad
	}
	kind, body := s[:open], s[open+1:len(s)-1]
	switch kind {
	case "rate":
		d, err := parseRate(body)
		if err != nil {
			return expression{}, bad
		}
		return expression{rate: d}, nil
	case "cron":
		c, err := parseCron(body)
		if err != nil {
			return expression{}, fmt.Errorf("Invalid Schedule Expression %s: %v.", s, err)
		}
		return expression{cron: c}, nil
	case "at":
		t, err := time.ParseInLocation("2006-01-02T15:04:05", body, loc)
		if err != nil {
			return expression{}, bad
		}
		return expression{at: &t}, nil
	}
	return expression{}, bad
}

// parseRate reads "value unit": a positive whole number and minute(s), hour(s) or day(s), the
// unit singular exactly when the value is 1.
func parseRate(body string) (time.Duration, error) {
	f := strings.Fields(body)
	if len(f) != 2 {
		return 0, fmt.Errorf("rate takes a value and a unit")
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1 || strconv.Itoa(n) != f[0] {
		return 0, fmt.Errorf("rate value %q is not a positive integer", f[0])
	}
	unit, plural := strings.CutSuffix(f[1], "s")
	if plural == (n == 1) {
		return 0, fmt.Errorf("rate unit %q does not agree with %d", f[1], n)
	}
	switch unit {
	case "minute":
		return time.Duration(n) * time.Minute, nil
	case "hour":
		return time.Duration(n) * time.Hour, nil
	case "day":
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return 0, fmt.Errorf("rate unit %q is not minute(s), hour(s) or day(s)", f[1])
}

// cronExpr is AWS's six-field cron: minutes hours day-of-month month day-of-week year. Exactly
// one of day-of-month and day-of-week is "?".
type cronExpr struct {
	minutes, hours, months, years set
	dom                           domRule
	dow                           dowRule
}

// set is the values a field matches.
type set map[int]bool

type domRule struct {
	any      bool // "?" (day-of-week decides)
	days     set
	last     bool // L: the month's last day
	weekday  int  // nW: the weekday nearest day n (0 when unused)
	lastWeek bool // LW: the month's last weekday
}

type dowRule struct {
	any     bool // "?" (day-of-month decides)
	days    set  // 1 (SUN) … 7 (SAT)
	lastDow int  // nL: the month's last such weekday (0 when unused)
	nthDow  int  // n#k: the k-th such weekday of the month
	nth     int
}

var (
	monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
	dayNames   = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
)

func parseCron(body string) (*cronExpr, error) {
	f := strings.Fields(body)
	if len(f) != 6 {
		return nil, fmt.Errorf("cron takes six fields (minutes hours day-of-month month day-of-week year), got %d", len(f))
	}
	var c cronExpr
	var err error
	if c.minutes, err = parseField(f[0], 0, 59, nil); err != nil {
		return nil, fmt.Errorf("minutes: %w", err)
	}
	if c.hours, err = parseField(f[1], 0, 23, nil); err != nil {
		return nil, fmt.Errorf("hours: %w", err)
	}
	if c.months, err = parseField(f[3], 1, 12, monthNames); err != nil {
		return nil, fmt.Errorf("month: %w", err)
	}
	if c.years, err = parseField(f[5], 1970, 2199, nil); err != nil {
		return nil, fmt.Errorf("year: %w", err)
	}
	domAny, dowAny := f[2] == "?", f[4] == "?"
	if domAny == dowAny {
		return nil, fmt.Errorf("exactly one of day-of-month and day-of-week must be ?")
	}
	if c.dom, err = parseDOM(f[2]); err != nil {
		return nil, fmt.Errorf("day-of-month: %w", err)
	}
	if c.dow, err = parseDOW(f[4]); err != nil {
		return nil, fmt.Errorf("day-of-week: %w", err)
	}
	return &c, nil
}

func parseDOM(s string) (domRule, error) {
	switch {
	case s == "?":
		return domRule{any: true}, nil
	case s == "L":
		return domRule{last: true}, nil
	case s == "LW":
		return domRule{lastWeek: true}, nil
	case strings.HasSuffix(s, "W"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "W"))
		if err != nil || n < 1 || n > 31 {
			return domRule{}, fmt.Errorf("%q is not nW with n in 1-31", s)
		}
		return domRule{weekday: n}, nil
	}
	days, err := parseField(s, 1, 31, nil)
	return domRule{days: days}, err
}

func parseDOW(s string) (dowRule, error) {
	switch {
	case s == "?":
		return dowRule{any: true}, nil
	case s == "L":
		return dowRule{days: set{7: true}}, nil // L alone is Saturday, the week's last day
	case strings.HasSuffix(s, "L"):
		n, err := value(strings.TrimSuffix(s, "L"), 1, 7, dayNames)
		if err != nil {
			return dowRule{}, err
		}
		return dowRule{lastDow: n}, nil
	case strings.Contains(s, "#"):
		d, k, _ := strings.Cut(s, "#")
		n, err := value(d, 1, 7, dayNames)
		if err != nil {
			return dowRule{}, err
		}
		nth, err := strconv.Atoi(k)
		if err != nil || nth < 1 || nth > 5 {
			return dowRule{}, fmt.Errorf("%q: the week after # must be 1-5", s)
		}
		return dowRule{nthDow: n, nth: nth}, nil
	}
	days, err := parseField(s, 1, 7, dayNames)
	return dowRule{days: days}, err
}

// parseField reads a comma-separated list of *, values, ranges (a-b) and steps (*/n, a/n, a-b/n).
func parseField(s string, lo, hi int, names map[string]int) (set, error) {
	out := set{}
	for _, part := range strings.Split(s, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%q: step must be a positive integer", part)
			}
			step = n
		}
		from, to := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if from, err = value(a, lo, hi, names); err != nil {
				return nil, err
			}
			if to, err = value(b, lo, hi, names); err != nil {
				return nil, err
			}
			if from > to {
				return nil, fmt.Errorf("%q: range runs backwards", part)
			}
		default:
			v, err := value(rng, lo, hi, names)
			if err != nil {
				return nil, err
			}
			from = v
			if !hasStep {
				to = v
			}
		}
		for v := from; v <= to; v += step {
			out[v] = true
		}
	}
	return out, nil
}

func value(s string, lo, hi int, names map[string]int) (int, error) {
	if v, ok := names[strings.ToUpper(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%q is not a value in %d-%d", s, lo, hi)
	}
	return v, nil
}

// matchesDay reports whether the cron fires on the given date (its year, month and day).
func (c *cronExpr) matchesDay(y int, m time.Month, d int) bool {
	if !c.years[y] || !c.months[int(m)] {
		return false
	}
	last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
	wd := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday()
	if !c.dom.any {
		switch {
		case c.dom.last:
			return d == last
		case c.dom.lastWeek:
			return d == nearestWeekday(y, m, last)
		case c.dom.weekday > 0:
			return c.dom.weekday <= last && d == nearestWeekday(y, m, c.dom.weekday)
		}
		return c.dom.days[d]
	}
	dow := int(wd) + 1
	switch {
	case c.dow.lastDow > 0:
		return dow == c.dow.lastDow && d+7 > last
	case c.dow.nthDow > 0:
		return dow == c.dow.nthDow && (d-1)/7+1 == c.dow.nth
	}
	return c.dow.days[dow]
}

// nearestWeekday is the weekday (Monday–Friday) nearest day n of the month, not leaving the month.
func nearestWeekday(y int, m time.Month, n int) int {
	last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
	switch time.Date(y, m, n, 0, 0, 0, 0, time.UTC).Weekday() {
	case time.Saturday:
		if n == 1 {
			return 3
		}
		return n - 1
	case time.Sunday:
		if n == last {
			return n - 2
		}
		return n + 1
	}
	return n
}

// next is the first time the cron fires strictly after t, in loc; false when it never does
// again (its years have passed). Wall-clock times that a daylight-saving change skips are
// skipped.
func (c *cronExpr) next(t time.Time, loc *time.Location) (time.Time, bool) {
	t = t.In(loc)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	for i := 0; i < 366*230; i++ {
		y, m, d := day.Date()
		if y > 2199 {
			break
		}
		if c.matchesDay(y, m, d) {
			for h := 0; h < 24; h++ {
				if !c.hours[h] {
					continue
				}
				for min := 0; min < 60; min++ {
					if !c.minutes[min] {
						continue
					}
					at := time.Date(y, m, d, h, min, 0, 0, loc)
					if at.Hour() != h || at.Minute() != min || at.Day() != d {
						continue // skipped by a daylight-saving change
					}
					if at.After(t) {
						return at, true
					}
				}
			}
		}
		day = time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	}
	return time.Time{}, false
}
