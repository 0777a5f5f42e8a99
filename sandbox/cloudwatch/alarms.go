package cloudwatch

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	stateOK           = "OK"
	stateAlarm        = "ALARM"
	stateInsufficient = "INSUFFICIENT_DATA"
)

// alarm is a metric alarm and when it was last evaluated.
type alarm struct {
	metricAlarm
	LastEvaluated time.Time
}

var comparisons = map[string]func(v, t float64) bool{
	"GreaterThanOrEqualToThreshold": func(v, t float64) bool { return v >= t },
	"GreaterThanThreshold":          func(v, t float64) bool { return v > t },
	"LessThanThreshold":             func(v, t float64) bool { return v < t },
	"LessThanOrEqualToThreshold":    func(v, t float64) bool { return v <= t },
}

var comparisonWords = map[string]string{
	"GreaterThanOrEqualToThreshold": "greater than or equal to",
	"GreaterThanThreshold":          "greater than",
	"LessThanThreshold":             "less than",
	"LessThanOrEqualToThreshold":    "less than or equal to",
}

func (s *Service) putMetricAlarm(in *putMetricAlarmInput) *apiError {
	switch {
	case in.AlarmName == "":
		return missingParameter("AlarmName")
	case len(in.AlarmName) > 255:
		return invalidParameter("The parameter AlarmName must be shorter than 256 characters.")
	case len(in.Metrics) > 0:
		return invalidParameter("Metric math alarms (Metrics) are not supported by the Aviary sandbox; use MetricName, Namespace and Statistic.")
	case in.MetricName == "" || in.Namespace == "":
		return missingParameter("MetricName and Namespace")
	case in.Statistic == "" && in.ExtendedStatistic == "":
		return missingParameter("Statistic or ExtendedStatistic")
	case in.Statistic != "" && in.ExtendedStatistic != "":
		return &apiError{Code: "InvalidParameterCombinationException",
			Message: "Exactly one element of the parameters Statistic and ExtendedStatistic must be specified."}
	case in.Statistic != "" && (!validStatistic(in.Statistic) || strings.HasPrefix(in.Statistic, "p")):
		return invalidParameter("The parameter Statistic must be a value in the set [ Average, Sum, SampleCount, Maximum, Minimum ].")
	case in.ExtendedStatistic != "" && !validExtended(in.ExtendedStatistic):
		return invalidParameter("The value %s for parameter ExtendedStatistic is not supported.", in.ExtendedStatistic)
	case in.EvaluationPeriods < 1:
		return invalidParameter("The parameter EvaluationPeriods must be greater than or equal to 1.")
	case in.DatapointsToAlarm > in.EvaluationPeriods:
		return validationError("DatapointsToAlarm must be less than or equal to EvaluationPeriods")
	case in.Threshold == nil:
		return validationError("Comparison operators that do not use an anomaly detection band require a Threshold.")
	case comparisons[in.ComparisonOperator] == nil:
		return invalidParameter("The parameter ComparisonOperator must be a value in the set [ GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold ].")
	case in.Period*in.EvaluationPeriods > 86400*7:
		return invalidParameter("The evaluation period (Period * EvaluationPeriods) must not exceed 7 days.")
	}
	if err := s.checkPeriod(in.Period, s.cfg.Resolution); err != nil {
		return err
	}
	switch in.TreatMissingData {
	case "", "missing", "ignore", "breaching", "notBreaching":
	default:
		return invalidParameter("The parameter TreatMissingData must be one of missing, ignore, breaching, notBreaching.")
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	a, exists := s.alarms[in.AlarmName]
	if !exists {
		a = &alarm{metricAlarm: metricAlarm{
			AlarmName:  in.AlarmName,
			AlarmArn:   fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", s.cfg.Region, s.cfg.Account, in.AlarmName),
			StateValue: stateInsufficient, StateReason: "Unchecked: Initial alarm creation",
			StateUpdatedTimestamp: ts{Time: now}, StateTransitionedTimestamp: ts{Time: now},
		}}
		s.alarms[in.AlarmName] = a
	}
	m := &a.metricAlarm
	m.AlarmDescription = ""
	if in.AlarmDescription != nil {
		m.AlarmDescription = *in.AlarmDescription
	}
	m.ActionsEnabled = in.ActionsEnabled == nil || *in.ActionsEnabled
	m.OKActions, m.AlarmActions, m.InsufficientDataActions = nonNil(in.OKActions), nonNil(in.AlarmActions), nonNil(in.InsufficientDataActions)
	m.MetricName, m.Namespace, m.Statistic, m.ExtendedStatistic = in.MetricName, in.Namespace, in.Statistic, in.ExtendedStatistic
	m.Dimensions = in.Dimensions
	if m.Dimensions == nil {
		m.Dimensions = []Dimension{}
	}
	m.Period, m.Unit, m.EvaluationPeriods, m.DatapointsToAlarm = in.Period, in.Unit, in.EvaluationPeriods, in.DatapointsToAlarm
	m.Threshold, m.ComparisonOperator, m.TreatMissingData = *in.Threshold, in.ComparisonOperator, in.TreatMissingData
	m.AlarmConfigurationUpdatedTimestamp = ts{Time: now}
	// The first evaluation comes when the current period closes, as on AWS.
	a.LastEvaluated = periodStart(now, m.Period)
	verb := "updated"
	if !exists {
		verb = "created"
	}
	s.recordHistory(in.AlarmName, now, "ConfigurationUpdate", fmt.Sprintf("Alarm %q %s", in.AlarmName, verb), "")
	s.save()
	return nil
}

func validExtended(stat string) bool {
	_, ok := percentile(stat)
	return ok
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Service) recordHistory(name string, t time.Time, typ, summary, data string) {
	s.history = append(s.history, alarmHistoryItem{AlarmName: name, AlarmType: "MetricAlarm", Timestamp: ts{Time: t}, HistoryItemType: typ, HistorySummary: summary, HistoryData: data})
	if len(s.history) > 10000 {
		s.history = s.history[len(s.history)-10000:]
	}
}

func (s *Service) describeAlarms(in *describeAlarmsInput) (*describeAlarmsOutput, *apiError) {
	if in.MaxRecords < 0 || in.MaxRecords > 100 {
		return nil, invalidParameter("The parameter MaxRecords must be between 1 and 100.")
	}
	if len(in.AlarmNames) > 0 && in.AlarmNamePrefix != "" {
		return nil, &apiError{Code: "InvalidParameterCombinationException",
			Message: "AlarmNames and AlarmNamePrefix cannot be used together."}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.alarms {
		names = append(names, n)
	}
	sort.Strings(names)
	var matched []metricAlarm
	for _, n := range names {
		a := s.alarms[n]
		switch {
		case len(in.AlarmNames) > 0 && !slices.Contains(in.AlarmNames, n):
			continue
		case in.AlarmNamePrefix != "" && !strings.HasPrefix(n, in.AlarmNamePrefix):
			continue
		case in.StateValue != "" && a.StateValue != in.StateValue:
			continue
		case len(in.AlarmTypes) > 0 && !slices.Contains(in.AlarmTypes, "MetricAlarm"):
			continue
		case in.ActionPrefix != "" && !anyPrefix(a.AlarmActions, in.ActionPrefix) && !anyPrefix(a.OKActions, in.ActionPrefix) && !anyPrefix(a.InsufficientDataActions, in.ActionPrefix):
			continue
		}
		matched = append(matched, a.metricAlarm)
	}
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(in.NextToken, "aviary-"))
		if err != nil || n < 0 || n > len(matched) {
			return nil, invalidNextToken()
		}
		start = n
	}
	limit := in.MaxRecords
	if limit == 0 {
		limit = 50
	}
	end := min(start+limit, len(matched))
	out := &describeAlarmsOutput{MetricAlarms: append([]metricAlarm{}, matched[start:end]...), CompositeAlarms: []struct{}{}}
	if end < len(matched) {
		out.NextToken = "aviary-" + strconv.Itoa(end)
	}
	return out, nil
}

func anyPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func (s *Service) describeAlarmsForMetric(in *describeAlarmsForMetricInput) *describeAlarmsForMetricOutput {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &describeAlarmsForMetricOutput{MetricAlarms: []metricAlarm{}}
	want := seriesKey(in.Namespace, in.MetricName, sortDims(in.Dimensions))
	var names []string
	for n := range s.alarms {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := s.alarms[n]
		if seriesKey(a.Namespace, a.MetricName, sortDims(a.Dimensions)) != want {
			continue
		}
		if (in.Statistic != "" && a.Statistic != in.Statistic) || (in.ExtendedStatistic != "" && a.ExtendedStatistic != in.ExtendedStatistic) ||
			(in.Period != 0 && a.Period != in.Period) || (in.Unit != "" && a.Unit != in.Unit) {
			continue
		}
		out.MetricAlarms = append(out.MetricAlarms, a.metricAlarm)
	}
	return out
}

func (s *Service) setAlarmState(in *setAlarmStateInput) *apiError {
	switch in.StateValue {
	case stateOK, stateAlarm, stateInsufficient:
	default:
		return validationError(fmt.Sprintf("1 validation error detected: Value '%s' at 'stateValue' failed to satisfy constraint: Member must satisfy enum value set: [INSUFFICIENT_DATA, ALARM, OK]", in.StateValue))
	}
	if in.StateReasonData != "" && !json.Valid([]byte(in.StateReasonData)) {
		return &apiError{Code: "InvalidFormatFault", Message: "The StateReasonData must be valid JSON."}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.alarms[in.AlarmName]
	if !ok {
		return resourceNotFound("Alarm %s not found", in.AlarmName)
	}
	// The state holds until the alarm's next evaluation, as on AWS.
	s.transition(a, s.cfg.Now(), in.StateValue, in.StateReason, in.StateReasonData)
	s.save()
	return nil
}

func (s *Service) deleteAlarms(in *deleteAlarmsInput) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range in.AlarmNames {
		if _, ok := s.alarms[n]; !ok {
			return resourceNotFound("Alarm %s not found", n)
		}
	}
	for _, n := range in.AlarmNames {
		delete(s.alarms, n)
	}
	s.save()
	return nil
}

func (s *Service) describeAlarmHistory(in *describeAlarmHistoryInput) (*describeAlarmHistoryOutput, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []alarmHistoryItem
	for _, h := range s.history {
		switch {
		case in.AlarmName != "" && h.AlarmName != in.AlarmName:
			continue
		case in.HistoryItemType != "" && h.HistoryItemType != in.HistoryItemType:
			continue
		case in.StartDate != nil && h.Timestamp.Before(in.StartDate.Time):
			continue
		case in.EndDate != nil && h.Timestamp.After(in.EndDate.Time):
			continue
		}
		items = append(items, h)
	}
	if in.ScanBy != "TimestampAscending" {
		slices.Reverse(items)
	}
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(in.NextToken, "aviary-"))
		if err != nil || n < 0 || n > len(items) {
			return nil, invalidNextToken()
		}
		start = n
	}
	limit := in.MaxRecords
	if limit <= 0 {
		limit = 100
	}
	end := min(start+limit, len(items))
	out := &describeAlarmHistoryOutput{AlarmHistoryItems: append([]alarmHistoryItem{}, items[start:end]...)}
	if end < len(items) {
		out.NextToken = "aviary-" + strconv.Itoa(end)
	}
	return out, nil
}

// transition moves an alarm to a state, recording history when the state changes.
func (s *Service) transition(a *alarm, now time.Time, state, reason, data string) {
	old := a.StateValue
	a.StateReason, a.StateReasonData, a.StateUpdatedTimestamp = reason, data, ts{Time: now}
	if old == state {
		return
	}
	a.StateValue = state
	a.StateTransitionedTimestamp = ts{Time: now}
	s.recordHistory(a.AlarmName, now, "StateUpdate", fmt.Sprintf("Alarm updated from %s to %s", old, state),
		fmt.Sprintf(`{"version":"1.0","oldState":{"stateValue":%q},"newState":{"stateValue":%q,"stateReason":%q}}`, old, state, reason))
}

func (s *Service) evaluateLoop() {
	defer close(s.done)
	tick := time.NewTicker(min(s.cfg.Resolution, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.evaluateAll(s.cfg.Now())
		}
	}
}

// periodStart is the start of the period holding t, aligned to the Unix epoch as the stored
// metrics' periods are.
func periodStart(t time.Time, period int) time.Time {
	p := int64(max(period, 1))
	return time.Unix(t.Unix()/p*p, 0)
}

// evaluateAll evaluates every alarm whose period closed since its last evaluation.
func (s *Service) evaluateAll(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, a := range s.alarms {
		closed := periodStart(now, a.Period)
		if !a.LastEvaluated.Before(closed) {
			continue
		}
		a.LastEvaluated = closed
		state, reason, data := s.evaluate(a, closed)
		if state == "" {
			continue
		}
		old := a.StateValue
		s.transition(a, now, state, reason, data)
		changed = changed || old != state
	}
	if changed {
		s.save()
	}
}

// evaluate judges an alarm over its last EvaluationPeriods periods ending at end: ALARM when
// at least DatapointsToAlarm of them breach, with missing data treated as configured. An empty
// state means "keep the current one" (TreatMissingData ignore with no data).
func (s *Service) evaluate(a *alarm, end time.Time) (state, reason, data string) {
	period := time.Duration(a.Period) * time.Second
	start := end.Add(-time.Duration(a.EvaluationPeriods) * period)
	stat := a.Statistic
	if stat == "" {
		stat = a.ExtendedStatistic
	}
	need := a.DatapointsToAlarm
	if need == 0 {
		need = a.EvaluationPeriods
	}
	cmp := comparisons[a.ComparisonOperator]
	var points map[int64]*bucket
	if sr := s.metrics.lookup(a.Namespace, a.MetricName, a.Dimensions); sr != nil && (a.Unit == "" || a.Unit == sr.Unit) {
		points = sr.aggregate(start, end, period)
	}
	breaching, present := 0, 0
	var shown []string
	for t := end.Add(-period); !t.Before(start); t = t.Add(-period) {
		b, ok := points[t.Unix()]
		if !ok {
			switch a.TreatMissingData {
			case "breaching":
				breaching++
				present++
			case "notBreaching":
				present++
			}
			continue
		}
		v, _ := statistic(b, stat)
		present++
		if cmp(v, a.Threshold) {
			breaching++
		}
		shown = append(shown, fmt.Sprintf("%s (%s)", strconv.FormatFloat(v, 'f', -1, 64), t.UTC().Format("02/01/06 15:04:05")))
	}
	if present == 0 {
		if a.TreatMissingData == "ignore" {
			return "", "", ""
		}
		return stateInsufficient, fmt.Sprintf("Insufficient Data: %d datapoints were unknown.", a.EvaluationPeriods), ""
	}
	word := comparisonWords[a.ComparisonOperator]
	data = fmt.Sprintf(`{"version":"1.0","queryDate":%q,"statistic":%q,"period":%d,"recentDatapoints":[%s],"threshold":%s}`,
		end.UTC().Format("2006-01-02T15:04:05.000+0000"), stat, a.Period, strings.Join(valuesOf(shown), ","), strconv.FormatFloat(a.Threshold, 'f', -1, 64))
	if breaching >= need {
		return stateAlarm, fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s] %s %s the threshold (%s) (minimum %d datapoint for OK -> ALARM transition).",
			breaching, a.EvaluationPeriods, strings.Join(shown, ", "), pluralWas(breaching), word, strconv.FormatFloat(a.Threshold, 'f', -1, 64), need), data
	}
	return stateOK, fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s] %s not %s the threshold (%s) (minimum %d datapoint for ALARM -> OK transition).",
		present-breaching, a.EvaluationPeriods, strings.Join(shown, ", "), pluralWas(present-breaching), word, strconv.FormatFloat(a.Threshold, 'f', -1, 64), 1), data
}

func pluralWas(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

func valuesOf(shown []string) []string {
	out := make([]string, len(shown))
	for i, s := range shown {
		out[i], _, _ = strings.Cut(s, " ")
	}
	return out
}
