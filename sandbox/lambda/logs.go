package lambda

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Lambda sends each invocation's log to the version's log group (LoggingConfig.LogGroup, by
// default /aws/lambda/<function>), into the stream of the execution environment that ran it
// (YYYY/MM/DD/[VERSION]<32 hex>). What it writes follows the AWS Lambda Developer Guide:
//
//   - Text (plain text) format: INIT_START on a cold start; the function's output, one event per
//     line; START RequestId: <id> Version: <version>; END RequestId: <id>; and
//     REPORT RequestId: <id>\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t
//     Max Memory Used: 30 MB\t, with Init Duration: on a cold start. Since Lambda's "new style"
//     system logs (2024), an invocation that times out or crashes writes no line of its own:
//     REPORT carries Status: timeout, or Status: error\tError Type: Runtime.ExitError. An
//     error the function reports itself (/invocation/error) leaves REPORT as on success; the
//     runtime logs it, as aws-lambda-go does. A failed init writes INIT_REPORT.
//   - JSON format: platform.initStart, platform.start, platform.report (and platform.initReport
//     when init fails; platform.runtimeDone at SystemLogLevel DEBUG) as {"time", "type",
//     "record"} objects; platform.report's record carries requestId, metrics (durationMs,
//     billedDurationMs, memorySizeMB, maxMemoryUsedMB, initDurationMs on a cold start), status
//     (success, error, timeout) and errorType when not success. The function's output lines are
//     kept as they are (Lambda formats application logs only for its managed runtimes), filtered by
//     ApplicationLogLevel when they are JSON objects with a "level".

// LogSink receives each invocation's log events, as Lambda sends them to CloudWatch Logs. It must
// not fail the invocation.
type LogSink interface {
	WriteLogs(group, stream string, events []LogEvent)
}

// LogEvent is one log event: a line of output or a platform record.
type LogEvent struct {
	Time    time.Time
	Message string
}

// invocationLog is what an invocation's log is written from.
type invocationLog struct {
	id, arn, region string
	spec            envSpec
	stream          string
	coldStart       bool
	envStarted      time.Time
	rep             runReport
	end             time.Time
}

const timeLayout = "2006-01-02T15:04:05.000Z"

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func runtimeVersionName(runtime string) string {
	return strings.Replace(runtime, ".", ":", 1) + ".v1"
}

// status says how an invocation ended, as platform.report's status and errorType do: a timeout,
// an error Lambda detected (fault), or an error the function reported.
func (l *invocationLog) status() (status, errorType string) {
	res := l.rep.res
	switch {
	case !res.isError:
		return "success", ""
	case res.errorType == "Sandbox.Timedout":
		return "timeout", ""
	case res.errorType != "":
		return "error", res.errorType
	}
	var p struct {
		ErrorType string `json:"errorType"`
	}
	_ = json.Unmarshal(res.payload, &p)
	if p.ErrorType != "" {
		return "error", p.ErrorType
	}
	return "error", "Unhandled"
}

// initStatus is INIT_REPORT's status of a failed init.
func (l *invocationLog) initStatus() (status, errorType string) {
	if l.rep.initTimeout {
		return "timeout", ""
	}
	return l.status()
}

// events renders the invocation's log in the version's LogFormat.
func (l *invocationLog) events() []LogEvent {
	if l.spec.LogFormat == "JSON" {
		return l.jsonEvents()
	}
	return l.textEvents()
}

func lineEvents(dst []LogEvent, lines []logLine) []LogEvent {
	for _, ln := range lines {
		dst = append(dst, LogEvent{Time: ln.at, Message: ln.text})
	}
	return dst
}

func (l *invocationLog) textEvents() []LogEvent {
	rep := l.rep
	evs := make([]LogEvent, 0, len(rep.pre)+len(rep.out)+5)
	if l.coldStart {
		evs = append(evs, LogEvent{Time: l.envStarted, Message: fmt.Sprintf("INIT_START Runtime Version: %s\tRuntime Version ARN: arn:aws:lambda:%s::runtime:%s\n",
			runtimeVersionName(l.spec.Runtime), l.region, runtimeVersionID(l.spec.Runtime))})
	}
	evs = lineEvents(evs, rep.pre)
	if rep.initFail {
		st, typ := l.initStatus()
		msg := fmt.Sprintf("INIT_REPORT Init Duration: %.2f ms\tPhase: init\tStatus: %s", ms(rep.initDur), st)
		if typ != "" {
			msg += "\tError Type: " + typ
		}
		evs = append(evs, LogEvent{Time: rep.start, Message: msg + "\n"})
	}
	evs = append(evs, LogEvent{Time: rep.start, Message: fmt.Sprintf("START RequestId: %s Version: %s\n", l.id, l.spec.Version)})
	evs = lineEvents(evs, rep.out)
	evs = append(evs, LogEvent{Time: l.end, Message: fmt.Sprintf("END RequestId: %s\n", l.id)})
	var b strings.Builder
	fmt.Fprintf(&b, "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB\t",
		l.id, ms(rep.dur), billed(rep.dur+rep.initDur), l.spec.MemoryMB, rep.maxMemMB)
	if l.coldStart && !rep.initFail {
		fmt.Fprintf(&b, "Init Duration: %.2f ms\t", ms(rep.initDur))
	}
	// A function's own error leaves REPORT as on success; what Lambda detected is reported.
	if st, typ := l.status(); rep.res.fault {
		b.WriteString("Status: " + st)
		if typ != "" {
			b.WriteString("\tError Type: " + typ)
		}
	}
	b.WriteString("\n")
	evs = append(evs, LogEvent{Time: l.end, Message: b.String()})
	return evs
}

// platformRecord is a JSON-format system log record.
type platformRecord struct {
	Time   string `json:"time"`
	Type   string `json:"type"`
	Record any    `json:"record"`
}

type initStartRecord struct {
	InitializationType string `json:"initializationType"`
	Phase              string `json:"phase"`
	RuntimeVersion     string `json:"runtimeVersion"`
	RuntimeVersionArn  string `json:"runtimeVersionArn"`
	FunctionName       string `json:"functionName"`
	FunctionVersion    string `json:"functionVersion"`
	InstanceID         string `json:"instanceId"`
	InstanceMaxMemory  int64  `json:"instanceMaxMemory"`
}

type initReportRecord struct {
	InitializationType string `json:"initializationType"`
	Phase              string `json:"phase"`
	Status             string `json:"status"`
	ErrorType          string `json:"errorType,omitempty"`
	Metrics            struct {
		DurationMs float64 `json:"durationMs"`
	} `json:"metrics"`
}

type startRecord struct {
	RequestID   string `json:"requestId"`
	FunctionArn string `json:"functionArn"`
	Version     string `json:"version"`
}

type runtimeDoneRecord struct {
	RequestID string `json:"requestId"`
	Status    string `json:"status"`
	ErrorType string `json:"errorType,omitempty"`
	Metrics   struct {
		DurationMs    float64 `json:"durationMs"`
		ProducedBytes int     `json:"producedBytes"`
	} `json:"metrics"`
}

type reportMetrics struct {
	DurationMs       float64  `json:"durationMs"`
	BilledDurationMs int64    `json:"billedDurationMs"`
	MemorySizeMB     int      `json:"memorySizeMB"`
	MaxMemoryUsedMB  int      `json:"maxMemoryUsedMB"`
	InitDurationMs   *float64 `json:"initDurationMs,omitempty"`
}

type reportRecord struct {
	RequestID string        `json:"requestId"`
	Metrics   reportMetrics `json:"metrics"`
	Status    string        `json:"status"`
	ErrorType string        `json:"errorType,omitempty"`
}

// Log levels, least detailed last.
var levels = map[string]int{"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "ERROR": 4, "FATAL": 5}

func levelOf(name string) int {
	if l, ok := levels[strings.ToUpper(name)]; ok {
		return l
	}
	return levels["INFO"]
}

func (l *invocationLog) jsonEvents() []LogEvent {
	rep := l.rep
	sys := levelOf(l.spec.SystemLogLevel)
	app := levelOf(l.spec.ApplicationLogLevel)
	evs := make([]LogEvent, 0, len(rep.pre)+len(rep.out)+5)
	platform := func(t time.Time, level int, typ string, rec any) {
		if level < sys {
			return
		}
		b, _ := json.Marshal(platformRecord{Time: t.UTC().Format(timeLayout), Type: typ, Record: rec})
		evs = append(evs, LogEvent{Time: t, Message: string(b)})
	}
	appLines := func(lines []logLine) {
		for _, ln := range lines {
			if applicationLevel(ln.text) >= app {
				evs = append(evs, LogEvent{Time: ln.at, Message: ln.text})
			}
		}
	}
	if l.coldStart {
		platform(l.envStarted, levels["INFO"], "platform.initStart", initStartRecord{
			InitializationType: "on-demand", Phase: "init",
			RuntimeVersion:    runtimeVersionName(l.spec.Runtime),
			RuntimeVersionArn: fmt.Sprintf("arn:aws:lambda:%s::runtime:%s", l.region, runtimeVersionID(l.spec.Runtime)),
			FunctionName:      l.spec.Function, FunctionVersion: l.spec.Version,
			InstanceID:        strings.Replace(l.stream, "/[", "/"+l.spec.Function+"[", 1),
			InstanceMaxMemory: int64(l.spec.MemoryMB) << 20,
		})
	}
	appLines(rep.pre)
	if rep.initFail {
		r := initReportRecord{InitializationType: "on-demand", Phase: "init"}
		r.Status, r.ErrorType = l.initStatus()
		r.Metrics.DurationMs = ms(rep.initDur)
		platform(rep.start, levels["INFO"], "platform.initReport", r)
	}
	platform(rep.start, levels["INFO"], "platform.start", startRecord{RequestID: l.id, FunctionArn: l.arn, Version: l.spec.Version})
	appLines(rep.out)
	status, errorType := l.status()
	done := runtimeDoneRecord{RequestID: l.id, Status: status, ErrorType: errorType}
	done.Metrics.DurationMs = ms(rep.dur)
	if !rep.res.fault {
		done.Metrics.ProducedBytes = len(rep.res.payload)
	}
	platform(l.end, levels["DEBUG"], "platform.runtimeDone", done)
	report := reportRecord{RequestID: l.id, Status: status, ErrorType: errorType, Metrics: reportMetrics{
		DurationMs: ms(rep.dur), BilledDurationMs: billed(rep.dur + rep.initDur), MemorySizeMB: l.spec.MemoryMB, MaxMemoryUsedMB: rep.maxMemMB,
	}}
	if l.coldStart && !rep.initFail {
		d := ms(rep.initDur)
		report.Metrics.InitDurationMs = &d
	}
	platform(l.end, levels["INFO"], "platform.report", report)
	return evs
}

// applicationLevel is the level Lambda gives a line of function output: a JSON object's "level",
// or INFO.
func applicationLevel(line string) int {
	s := strings.TrimSpace(line)
	if !strings.HasPrefix(s, "{") {
		return levels["INFO"]
	}
	var v struct {
		Level string `json:"level"`
	}
	if json.Unmarshal([]byte(s), &v) != nil {
		return levels["INFO"]
	}
	return levelOf(v.Level)
}

// logText joins events into the text Invoke's LogResult carries.
func logText(evs []LogEvent) []byte {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Message)
		if !strings.HasSuffix(e.Message, "\n") {
			b.WriteByte('\n')
		}
	}
	return []byte(b.String())
}
