package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go"

	"github.com/aviary-deploy/aviary/release"
)

// The fast path: Lambda writes every invocation's platform lines to a log stream named for the
// execution environment and the version it runs (YYYY/MM/DD/[VERSION]…), seconds after they
// happen. In Text format:
//
//	START RequestId: … Version: 7
//	…the function's output…
//	END RequestId: …
//	REPORT RequestId: …	Duration: 12.34 ms	…	Status: timeout
//
// (REPORT carries Status: timeout or Status: error for what Lambda itself detects; older logs
// have a "Task timed out after" line instead). In JSON format the same come as platform.start and
// platform.report records, whose status tells a handled function error too. In Text format a
// handled error has no platform line: runtimes log it themselves — aws-lambda-go a line
// `2024/01/01 00:00:00 {"errorMessage":…}` inside the invocation (an environment runs one
// invocation at a time, so it belongs to the stream's last START), Node `…\tERROR\tInvoke Error`
// with the request ID. What no line tells is seen by the metrics path.

// logPattern selects the lines that say how an invocation ended.
const logPattern = `?"START RequestId" ?"REPORT RequestId" ?"Task timed out" ?"Invoke Error" ?"errorMessage" ?"platform.start" ?"platform.report"`

// overlap is how far back each read looks again, for events ingested late; events already seen
// are skipped by ID.
const overlap = 10 * time.Second

// logCursor is how far one function's log group has been read.
type logCursor struct {
	from    int64             // ms: the next read starts here (minus overlap)
	seen    map[string]int64  // event ID → timestamp, for the overlap
	failed  map[string]int64  // request IDs with an error line whose REPORT has not come yet
	current map[string]string // stream → the request it runs (its last START)
	at      time.Time         // last read
	missing bool              // the log group does not exist (yet)
}

// versionRE reads the version from a Lambda log stream's name.
var versionRE = regexp.MustCompile(`^\d{4}/\d{2}/\d{2}/\[([^\]]+)\]`)

// outcome is what a log line tells of an invocation.
type outcome struct {
	requestID string  // "" for an error line of the stream's current invocation
	start     bool    // the invocation began
	report    bool    // the invocation's last line: it ended
	failed    bool    // it failed (error, timeout, crash)
	millis    float64 // its duration, on a report
}

var (
	reportRE   = regexp.MustCompile(`^REPORT RequestId: ([0-9a-fA-F-]+)\s`)
	durationRE = regexp.MustCompile(`\tDuration: ([0-9.]+) ms`)
	statusRE   = regexp.MustCompile(`\tStatus: ([a-z]+)`)
	timeoutRE  = regexp.MustCompile(`^\S+ ([0-9a-fA-F-]{36}) Task timed out after`)
	nodeErrRE  = regexp.MustCompile(`^\S+\t([0-9a-fA-F-]{36})\tERROR\tInvoke Error`)
	startRE    = regexp.MustCompile(`^START RequestId: ([0-9a-fA-F-]+)`)
	goErrRE    = regexp.MustCompile(`^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \{"errorMessage":`)
)

// parseLine reads a platform line; ok is false for lines that are not one.
func parseLine(msg string) (outcome, bool) {
	msg = strings.TrimRight(msg, "\n")
	if strings.HasPrefix(msg, "{") {
		var rec struct {
			Type   string `json:"type"`
			Record struct {
				RequestID string `json:"requestId"`
				Status    string `json:"status"`
				Metrics   struct {
					DurationMs float64 `json:"durationMs"`
				} `json:"metrics"`
			} `json:"record"`
		}
		if json.Unmarshal([]byte(msg), &rec) != nil || rec.Record.RequestID == "" {
			return outcome{}, false
		}
		if rec.Type == "platform.start" {
			return outcome{requestID: rec.Record.RequestID, start: true}, true
		}
		if rec.Type != "platform.report" {
			return outcome{}, false
		}
		return outcome{requestID: rec.Record.RequestID, report: true, failed: rec.Record.Status != "" && rec.Record.Status != "success", millis: rec.Record.Metrics.DurationMs}, true
	}
	if m := reportRE.FindStringSubmatch(msg); m != nil {
		o := outcome{requestID: m[1], report: true}
		if d := durationRE.FindStringSubmatch(msg); d != nil {
			o.millis, _ = strconv.ParseFloat(d[1], 64)
		}
		if s := statusRE.FindStringSubmatch(msg); s != nil && s[1] != "success" {
			o.failed = true
		}
		return o, true
	}
	if m := startRE.FindStringSubmatch(msg); m != nil {
		return outcome{requestID: m[1], start: true}, true
	}
	if goErrRE.MatchString(msg) {
		return outcome{failed: true}, true
	}
	if m := timeoutRE.FindStringSubmatch(msg); m != nil {
		return outcome{requestID: m[1], failed: true}, true
	}
	if m := nodeErrRE.FindStringSubmatch(msg); m != nil {
		return outcome{requestID: m[1], failed: true}, true
	}
	return outcome{}, false
}

// readLogs reads what each function's log group gained since the last read, at most every
// LogsEvery per function, and counts invocations per version and period. A group that cannot be
// read is noted on its function (fnWatch.logsErr); only the context's end is an error.
func (c *Checker) readLogs(ctx context.Context, r *release.Release, w *watch, now time.Time) error {
	every := c.LogsEvery
	if every <= 0 {
		every = time.Second
	}
	first := r.Health.Steps[0].Shifted
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, c.parallelism())
	)
	for _, fn := range r.Functions {
		fw := w.fns[fn.FunctionName]
		if now.Sub(fw.logs.at) < every {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fw.logsErr = c.readGroup(ctx, r, w, fn, fw, first, now)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

func (c *Checker) readGroup(ctx context.Context, r *release.Release, w *watch, fn release.Function, fw *fnWatch, first, now time.Time) error {
	cur := &fw.logs
	if cur.seen == nil {
		cur.seen, cur.failed, cur.current = map[string]int64{}, map[string]int64{}, map[string]string{}
		cur.from = first.UnixMilli()
	}
	group := fn.LogGroup
	if group == "" {
		group = "/aws/lambda/" + fn.FunctionName
	}
	ref, hasRef := r.Health.Reference[fn.FunctionName]
	period := grid(r.Checks)
	start := max(cur.from-overlap.Milliseconds(), first.UnixMilli())
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), StartTime: aws.Int64(start), FilterPattern: aws.String(logPattern)}
	newest := cur.from
	for pages := 0; pages < 20; pages++ {
		if err := c.logsTicker().wait(ctx, c.clock()); err != nil {
			return err
		}
		out, err := c.Logs.FilterLogEvents(ctx, in)
		if err != nil {
			var nf *logtypes.ResourceNotFoundException
			if errors.As(err, &nf) {
				// Lambda creates the group with the first invocation's logs.
				cur.missing, cur.at = true, now
				return nil
			}
			return fmt.Errorf("read log group %s: %w", group, err)
		}
		cur.missing = false
		for _, ev := range out.Events {
			id, ts := aws.ToString(ev.EventId), aws.ToInt64(ev.Timestamp)
			if _, dup := cur.seen[id]; dup {
				continue
			}
			cur.seen[id] = ts
			newest = max(newest, ts)
			stream := aws.ToString(ev.LogStreamName)
			o, ok := parseLine(aws.ToString(ev.Message))
			if !ok {
				continue
			}
			switch {
			case o.start:
				cur.current[stream] = o.requestID
				continue
			case !o.report:
				id := o.requestID
				if id == "" {
					id = cur.current[stream]
				}
				if id != "" {
					cur.failed[id] = ts
				}
				continue
			}
			if cur.current[stream] == o.requestID {
				delete(cur.current, stream)
			}
			if w.smokeIDs[o.requestID] {
				delete(cur.failed, o.requestID)
				continue
			}
			m := versionRE.FindStringSubmatch(stream)
			if m == nil {
				continue
			}
			// Routed when it started: its end less its duration. Counted in the period that
			// holds that, as CloudWatch times an invocation's metrics by when it was invoked;
			// the checker gives periods to steps.
			routed := time.UnixMilli(ts).Add(-time.Duration(o.millis * float64(time.Millisecond)))
			b := bucket(fw.fromLogs, m[1], periodOf(routed, period))
			b.n++
			if _, f := cur.failed[o.requestID]; o.failed || f {
				b.errors++
			}
			delete(cur.failed, o.requestID)
			if hasRef && o.millis > ref.Millis {
				b.slow++
			}
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	cur.from, cur.at = newest, now
	// Forget IDs that fell out of the overlap.
	for id, ts := range cur.seen {
		if ts < newest-2*overlap.Milliseconds() {
			delete(cur.seen, id)
		}
	}
	// An error line whose report never came (a lost line) is dropped after a while.
	for id, ts := range cur.failed {
		if ts < newest-15*time.Minute.Milliseconds() {
			delete(cur.failed, id)
		}
	}
	return nil
}

// ticker spaces calls to a rate.
type ticker struct {
	mu   sync.Mutex
	next time.Time
	gap  time.Duration
}

func (c *Checker) logsTicker() *ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.logsTick == nil {
		rate := c.LogsRate
		if rate <= 0 {
			rate = 5
		}
		c.logsTick = &ticker{gap: time.Duration(float64(time.Second) / rate)}
	}
	return c.logsTick
}

func (t *ticker) wait(ctx context.Context, clock release.Clock) error {
	t.mu.Lock()
	now := clock.Now()
	at := t.next
	if at.Before(now) {
		at = now
	}
	t.next = at.Add(t.gap)
	t.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-clock.After(d):
		}
	}
	return nil
}

func isNotFound(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundException"
}
