package sandbox

import (
	"github.com/aviary-deploy/aviary/sandbox/cloudwatch"
	"github.com/aviary-deploy/aviary/sandbox/lambda"
	"github.com/aviary-deploy/aviary/sandbox/logs"
)

// lambdaMetrics records each invocation's AWS/Lambda metrics as Lambda publishes them: across all
// functions, per function, per invoked version or alias (Resource = "name:qualifier"), and, for
// invocations through an alias, per version the alias routed to (ExecutedVersion) — the dimension a
// canary is judged by. An invocation through an alias is not also recorded under its version's
// Resource, as on AWS.
type lambdaMetrics struct{ cw *cloudwatch.Service }

const lambdaNamespace = "AWS/Lambda"

func (m lambdaMetrics) RecordInvocation(inv lambda.Invocation) {
	sets := [][]cloudwatch.Dimension{
		nil,
		{{Name: "FunctionName", Value: inv.FunctionName}},
	}
	if inv.Resource != inv.FunctionName {
		sets = append(sets, []cloudwatch.Dimension{{Name: "FunctionName", Value: inv.FunctionName}, {Name: "Resource", Value: inv.Resource}})
		if inv.ThroughAlias && !inv.Throttled {
			sets = append(sets, []cloudwatch.Dimension{
				{Name: "FunctionName", Value: inv.FunctionName}, {Name: "Resource", Value: inv.Resource},
				{Name: "ExecutedVersion", Value: inv.ExecutedVersion},
			})
		}
	}
	for _, dims := range sets {
		// Lambda emits Throttles and Errors for every invoke request (0 when there was none);
		// a throttled request records no Invocations, Errors or Duration.
		if inv.Throttled {
			m.cw.Put(lambdaNamespace, "Throttles", dims, "Count", inv.Time, 1)
			continue
		}
		errs := 0.0
		if inv.Error {
			errs = 1
		}
		m.cw.Put(lambdaNamespace, "Invocations", dims, "Count", inv.Time, 1)
		m.cw.Put(lambdaNamespace, "Errors", dims, "Count", inv.Time, errs)
		m.cw.Put(lambdaNamespace, "Throttles", dims, "Count", inv.Time, 0)
		m.cw.Put(lambdaNamespace, "Duration", dims, "Milliseconds", inv.Time, float64(inv.Duration.Microseconds())/1000)
	}
}

// lambdaLogs writes each invocation's log to CloudWatch Logs, creating the log group and the
// execution environment's stream as Lambda does.
type lambdaLogs struct{ logs *logs.Service }

func (l lambdaLogs) WriteLogs(group, stream string, events []lambda.LogEvent) {
	out := make([]logs.Event, len(events))
	for i, e := range events {
		out[i] = logs.Event{Time: e.Time, Message: e.Message}
	}
	l.logs.Write(group, stream, out)
}
