package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sort"
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

// overlap is how far behind the newest line seen a line may be ingested and still be counted:
// each read starts again that far back (the cursor), and lines already seen are skipped by ID.
const overlap = 10 * time.Second

// logCursor is how far one function's log group has been read. Lines before from are counted
// for good (committed: fnWatch.fromLogs); lines at or after it are pending, re-read by every read
// and counted afresh (fnWatch.recent) on top of the committed state. So what the committed part
// holds — from, failed, current and the counts — is all a new process needs to go on exactly
// where this one stopped: it reads again from from, and sees the pending lines as this one did.
type logCursor struct {
	from    int64             // ms: the next read starts here; every line before it is committed
	newest  int64             // ms: the newest line seen
	failed  map[string]int64  // committed: request IDs with an error line whose REPORT has not come yet
	current map[string]string // committed: stream → the request it runs (its last START)
	pending []logLine         // lines at or after from, in the order read
	seen    map[string]bool   // IDs of the pending lines
	at      time.Time         // last read
	missing bool              // the log group does not exist (yet)
}

// logLine is a platform line read and not yet committed.
type logLine struct {
	id, stream string
	ts         int64
	o          outcome
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
		cur.seen, cur.failed, cur.current = map[string]bool{}, map[string]int64{}, map[string]string{}
		cur.from, cur.newest = first.UnixMilli(), first.UnixMilli()
	}
	group := fn.LogGroup
	if group == "" {
		group = "/aws/lambda/" + fn.FunctionName
	}
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), StartTime: aws.Int64(cur.from), FilterPattern: aws.String(logPattern)}
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
			if cur.seen[id] || ts < cur.from {
				continue
			}
			cur.newest = max(cur.newest, ts)
			o, ok := parseLine(aws.ToString(ev.Message))
			if !ok {
				continue
			}
			cur.seen[id] = true
			cur.pending = append(cur.pending, logLine{id: id, stream: aws.ToString(ev.LogStreamName), ts: ts, o: o})
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	cur.at = now
	// In time order (a stream's lines are; streams interleave as they were ingested), so that
	// two processes that read the same lines in different batches count them alike.
	sort.SliceStable(cur.pending, func(i, j int) bool { return cur.pending[i].ts < cur.pending[j].ts })
	ref, hasRef := r.Health.Reference[fn.FunctionName]
	cnt := lineCounter{period: grid(r.Checks), smoke: fw.smokeIDs, ref: ref.Millis, hasRef: hasRef}
	// Commit what is older than the overlap: a line ingested later than that is not counted.
	if from := cur.newest - overlap.Milliseconds(); from > cur.from {
		n := sort.Search(len(cur.pending), func(i int) bool { return cur.pending[i].ts >= from })
		for _, l := range cur.pending[:n] {
			cnt.count(l, fw.fromLogs, cur.failed, cur.current)
			delete(cur.seen, l.id)
		}
		cur.pending = append([]logLine(nil), cur.pending[n:]...)
		cur.from = from
		// An error line whose report never came (a lost line) is dropped after a while; a smoke
		// invocation's ID once its lines are committed (it ended within the function's timeout;
		// a minute more for the clocks' skew).
		for id, ts := range cur.failed {
			if ts < from-15*time.Minute.Milliseconds() {
				delete(cur.failed, id)
			}
		}
		timeout := time.Duration(max(fn.Timeout, 3)) * time.Second
		for id, ts := range fw.smokeIDs {
			if ts < from-(timeout+time.Minute).Milliseconds() {
				delete(fw.smokeIDs, id)
			}
		}
	}
	// The pending lines, counted on copies of the committed state.
	failed, current := maps.Clone(cur.failed), maps.Clone(cur.current)
	fw.recent = map[string]map[int64]*counts{}
	for _, l := range cur.pending {
		cnt.count(l, fw.recent, failed, current)
	}
	return nil
}

// lineCounter counts platform lines into buckets per version and period.
type lineCounter struct {
	period time.Duration
	smoke  map[string]int64 // request IDs not to count
	ref    float64          // the baseline's reference latency (ms), if hasRef
	hasRef bool
}

// count takes one line: a START notes the stream's request, an error line marks its request as
// failed, a REPORT counts the invocation in the period it was routed in.
func (lc lineCounter) count(l logLine, into map[string]map[int64]*counts, failed map[string]int64, current map[string]string) {
	o := l.o
	switch {
	case o.start:
		current[l.stream] = o.requestID
		return
	case !o.report:
		id := o.requestID
		if id == "" {
			id = current[l.stream]
		}
		if id != "" {
			failed[id] = l.ts
		}
		return
	}
	if current[l.stream] == o.requestID {
		delete(current, l.stream)
	}
	if _, smoke := lc.smoke[o.requestID]; smoke {
		delete(failed, o.requestID)
		return
	}
	m := versionRE.FindStringSubmatch(l.stream)
	if m == nil {
		return
	}
	// Routed when it started: its end less its duration. Counted in the period that holds that,
	// as CloudWatch times an invocation's metrics by when it was invoked; the checker gives
	// periods to steps.
	routed := time.UnixMilli(l.ts).Add(-time.Duration(o.millis * float64(time.Millisecond)))
	b := bucket(into, m[1], periodOf(routed, lc.period))
	b.n++
	if _, f := failed[o.requestID]; o.failed || f {
		b.errors++
	}
	delete(failed, o.requestID)
	if lc.hasRef && o.millis > lc.ref {
		b.slow++
	}
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
