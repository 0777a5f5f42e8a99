// Package cloudwatch is the sandbox's Amazon CloudWatch: metrics (PutMetricData, and the AWS/Lambda
// metrics every Invoke records), GetMetricData and GetMetricStatistics with percentiles, ListMetrics,
// and metric alarms that are evaluated against the stored metrics. It speaks the Smithy RPC v2
// CBOR protocol of current aws-sdk-go-v2 clients, awsJson1_0, and the query protocol of older
// clients such as Debian's awscli.
package cloudwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

// Config sets up a Service.
type Config struct {
	Region  string
	Account string
	// Resolution is the finest period the stored metrics answer: AWS's standard resolution is
	// 60 s; a shorter one makes tests fast. High-resolution custom metrics keep 1 s regardless.
	Resolution time.Duration
	// Retention is how long datapoints are kept.
	Retention time.Duration
	DataDir   string
	Now       func() time.Time
	Logger    *slog.Logger
}

// Service is the sandbox's CloudWatch.
type Service struct {
	cfg     Config
	metrics *metrics
	mu      sync.Mutex
	alarms  map[string]*alarm
	history []alarmHistoryItem
	stop    chan struct{}
	done    chan struct{}
}

// New starts a Service with its alarm evaluator; Close stops it.
func New(cfg Config) (*Service, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	if cfg.Resolution <= 0 {
		cfg.Resolution = time.Minute
	}
	if cfg.Resolution < time.Second {
		cfg.Resolution = time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 3 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, metrics: newMetrics(cfg.Retention), alarms: map[string]*alarm{}, stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.load(); err != nil {
		return nil, err
	}
	go s.evaluateLoop()
	return s, nil
}

// Close stops the alarm evaluator and, with a data directory, saves the metrics.
func (s *Service) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
		close(s.stop)
	}
	<-s.done
	if s.cfg.DataDir == "" {
		return nil
	}
	b, err := json.Marshal(s.metrics.snapshot())
	if err != nil {
		return err
	}
	return writeAtomic(s.metricsPath(), b)
}

func (s *Service) metricsPath() string {
	return filepath.Join(s.cfg.DataDir, "cloudwatch", "metrics.json")
}

func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Resolution is the finest period the service's standard metrics answer.
func (s *Service) Resolution() time.Duration { return s.cfg.Resolution }

// Put records one sample of a metric at the service's standard resolution.
func (s *Service) Put(namespace, name string, dims []Dimension, unit string, t time.Time, v float64) {
	s.metrics.get(namespace, name, dims, unit, s.cfg.Resolution).add(t, v, 1, s.cfg.Retention)
}

//go:generate go run ../protocol/errorsgen -model cloudwatch/2010-08-01 -o model_gen.go

// Handler serves the CloudWatch API in whichever protocol a request speaks (RPC v2 CBOR for
// current SDKs, awsJson1_0, the query protocol for older SDKs and awscli); l is asked about every
// request.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "monitoring", Model: apiModel, Limits: l,
		Refused: func(ref *limits.Refusal) *protocol.Error {
			if ref.Kind == limits.InjectedServerError {
				return &protocol.Error{Code: "InternalServiceFault", QueryCode: "InternalServiceError", Status: 500, Message: "Internal service error (injected by the sandbox's fault settings)."}
			}
			return &protocol.Error{Code: "LimitExceededException", QueryCode: "Throttling", Status: 400, Message: "Rate exceeded"}
		},
	}
	handle(api, "GetMetricData", s.getMetricData)
	handle(api, "GetMetricStatistics", s.getMetricStatistics)
	handle(api, "PutMetricData", noOutput(s.putMetricData))
	handle(api, "ListMetrics", s.listMetrics)
	handle(api, "PutMetricAlarm", noOutput(s.putMetricAlarm))
	handle(api, "DescribeAlarms", s.describeAlarms)
	handle(api, "DescribeAlarmsForMetric", func(in *describeAlarmsForMetricInput) (*describeAlarmsForMetricOutput, *apiError) {
		return s.describeAlarmsForMetric(in), nil
	})
	handle(api, "SetAlarmState", noOutput(s.setAlarmState))
	handle(api, "DeleteAlarms", noOutput(s.deleteAlarms))
	handle(api, "DescribeAlarmHistory", s.describeAlarmHistory)
	return api
}

func handle[In, Out any](api *protocol.Service, name string, f func(*In) (*Out, *apiError)) {
	protocol.Handle(api, name, func(_ context.Context, _ *protocol.Request, in *In) (*Out, *apiError) { return f(in) })
}

// noOutput adapts an operation whose output has no members.
func noOutput[In any](f func(*In) *apiError) func(*In) (*struct{}, *apiError) {
	return func(in *In) (*struct{}, *apiError) { return nil, f(in) }
}

// checkPeriod enforces what AWS requires of a period for metrics of the given storage
// resolution: a multiple of it (standard metrics: 60 s on AWS, the sandbox's resolution here).
func (s *Service) checkPeriod(period int, res time.Duration) *apiError {
	if period < 1 {
		return invalidParameter("The parameter Period must be greater than 0.")
	}
	r := int(res / time.Second)
	if r > 1 && period%r != 0 {
		return invalidParameter("The parameter Period must be a multiple of %d.", r)
	}
	return nil
}

const maxDatapoints = 100800

func (s *Service) getMetricData(in *getMetricDataInput) (*getMetricDataOutput, *apiError) {
	if len(in.MetricDataQueries) == 0 {
		return nil, missingParameter("MetricDataQueries")
	}
	if len(in.MetricDataQueries) > 500 {
		return nil, invalidParameter("The collection MetricDataQueries must not have a size greater than 500.")
	}
	if in.StartTime == nil || in.EndTime == nil {
		return nil, missingParameter("StartTime and EndTime")
	}
	if !in.EndTime.After(in.StartTime.Time) {
		return nil, invalidParameter("The parameter StartTime must be less than the parameter EndTime.")
	}
	descending := in.ScanBy != "TimestampAscending"
	limit := in.MaxDatapoints
	if limit <= 0 {
		limit = maxDatapoints
	}
	skip := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(in.NextToken, "aviary-"))
		if err != nil || n < 0 {
			return nil, invalidNextToken()
		}
		skip = n
	}
	ids := map[string]bool{}
	out := &getMetricDataOutput{MetricDataResults: []metricDataResult{}}
	emitted, total := 0, 0
	for _, q := range in.MetricDataQueries {
		if q.ID == "" || ids[q.ID] {
			return nil, validationError(fmt.Sprintf("The value %q for parameter MetricDataQueries.member.Id is invalid or used twice.", q.ID))
		}
		ids[q.ID] = true
		if q.Expression != "" {
			return nil, invalidParameter("Metric math expressions are not supported by the Aviary sandbox; query metrics with MetricStat.")
		}
		if q.MetricStat == nil {
			return nil, invalidParameter("The parameter MetricDataQueries.member.%s must have either MetricStat or Expression.", q.ID)
		}
		ms := q.MetricStat
		if !validStatistic(ms.Stat) {
			return nil, invalidParameter("The value %s for parameter MetricDataQueries.member.MetricStat.Stat is not supported.", ms.Stat)
		}
		res := metricDataResult{ID: q.ID, Label: q.Label, StatusCode: "Complete", Timestamps: []ts{}, Values: []float64{}}
		if res.Label == "" {
			res.Label = ms.Metric.MetricName
		}
		sr := s.metrics.lookup(ms.Metric.Namespace, ms.Metric.MetricName, ms.Metric.Dimensions)
		resolution := s.cfg.Resolution
		if sr != nil {
			resolution = sr.Resolution
		}
		if err := s.checkPeriod(ms.Period, resolution); err != nil {
			return nil, err
		}
		if q.ReturnData != nil && !*q.ReturnData {
			continue
		}
		if sr != nil && (ms.Unit == "" || ms.Unit == sr.Unit) {
			points := sr.aggregate(in.StartTime.Time, in.EndTime.Time, time.Duration(ms.Period)*time.Second)
			keys := sortedKeys(points, descending)
			for _, k := range keys {
				v, err := statistic(points[k], ms.Stat)
				if err != nil {
					return nil, invalidParameter("%v", err)
				}
				total++
				if total <= skip || emitted >= limit {
					continue
				}
				res.Timestamps = append(res.Timestamps, ts{Time: time.Unix(k, 0).UTC()})
				res.Values = append(res.Values, v)
				emitted++
			}
		}
		if emitted >= limit && total > skip+emitted {
			res.StatusCode = "PartialData"
		}
		out.MetricDataResults = append(out.MetricDataResults, res)
	}
	if total > skip+emitted {
		out.NextToken = "aviary-" + strconv.Itoa(skip+emitted)
	}
	return out, nil
}

func sortedKeys(points map[int64]*bucket, descending bool) []int64 {
	keys := make([]int64, 0, len(points))
	for k := range points {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if descending {
			return keys[i] > keys[j]
		}
		return keys[i] < keys[j]
	})
	return keys
}

func (s *Service) getMetricStatistics(in *getMetricStatisticsInput) (*getMetricStatisticsOutput, *apiError) {
	switch {
	case in.Namespace == "":
		return nil, missingParameter("Namespace")
	case in.MetricName == "":
		return nil, missingParameter("MetricName")
	case in.StartTime == nil:
		return nil, missingParameter("StartTime")
	case in.EndTime == nil:
		return nil, missingParameter("EndTime")
	case len(in.Statistics) == 0 && len(in.ExtendedStatistics) == 0:
		return nil, missingParameter("Statistics or ExtendedStatistics")
	case !in.EndTime.After(in.StartTime.Time):
		return nil, invalidParameter("The parameter StartTime must be less than the parameter EndTime.")
	}
	for _, st := range in.Statistics {
		if !validStatistic(st) || strings.HasPrefix(st, "p") {
			return nil, invalidParameter("The parameter Statistics.member.1 must be a value in the set [ Average, Sum, SampleCount, Maximum, Minimum ].")
		}
	}
	for _, st := range in.ExtendedStatistics {
		if _, ok := percentile(st); !ok {
			return nil, invalidParameter("The value %s for parameter ExtendedStatistics is not supported.", st)
		}
	}
	out := &getMetricStatisticsOutput{Label: in.MetricName, Datapoints: []datapoint{}}
	sr := s.metrics.lookup(in.Namespace, in.MetricName, in.Dimensions)
	resolution := s.cfg.Resolution
	if sr != nil {
		resolution = sr.Resolution
	}
	if err := s.checkPeriod(in.Period, resolution); err != nil {
		return nil, err
	}
	if sr == nil || (in.Unit != "" && in.Unit != sr.Unit) {
		return out, nil
	}
	points := sr.aggregate(in.StartTime.Time, in.EndTime.Time, time.Duration(in.Period)*time.Second)
	if len(points) > 1440 {
		return nil, invalidParameter("You have requested up to %d datapoints, which exceeds the limit of 1440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.", len(points))
	}
	for _, k := range sortedKeys(points, false) {
		b := points[k]
		dp := datapoint{Timestamp: ts{Time: time.Unix(k, 0).UTC()}, Unit: sr.Unit}
		if dp.Unit == "" {
			dp.Unit = "None"
		}
		for _, st := range in.Statistics {
			v, _ := statistic(b, st)
			switch st {
			case "SampleCount":
				dp.SampleCount = &v
			case "Sum":
				dp.Sum = &v
			case "Average":
				dp.Average = &v
			case "Minimum":
				dp.Minimum = &v
			case "Maximum":
				dp.Maximum = &v
			}
		}
		if len(in.ExtendedStatistics) > 0 {
			dp.ExtendedStatistics = stringMap{}
			for _, st := range in.ExtendedStatistics {
				v, _ := statistic(b, st)
				dp.ExtendedStatistics[st] = v
			}
		}
		out.Datapoints = append(out.Datapoints, dp)
	}
	return out, nil
}

func (s *Service) putMetricData(in *putMetricDataInput) *apiError {
	if in.Namespace == "" {
		return missingParameter("Namespace")
	}
	if strings.HasPrefix(in.Namespace, "AWS/") {
		return invalidParameter("The value AWS/ for parameter Namespace is invalid.")
	}
	if len(in.MetricData) > 1000 {
		return invalidParameter("The collection MetricData must not have a size greater than 1000.")
	}
	now := s.cfg.Now()
	// The whole request is validated before anything is recorded: CloudWatch takes all or nothing.
	times := make([]time.Time, len(in.MetricData))
	for i, d := range in.MetricData {
		if d.MetricName == "" {
			return missingParameter(fmt.Sprintf("MetricData.member.%d.MetricName", i+1))
		}
		n := 0
		if d.Value != nil {
			n++
		}
		if d.StatisticValues != nil {
			n++
		}
		if len(d.Values) > 0 {
			n++
		}
		if n != 1 {
			return &apiError{Code: "InvalidParameterCombinationException",
				Message: fmt.Sprintf("The parameters MetricData.member.%d.Value, MetricData.member.%d.StatisticValues and MetricData.member.%d.Values are mutually exclusive: specify exactly one of them.", i+1, i+1, i+1)}
		}
		if len(d.Counts) > 0 && len(d.Counts) != len(d.Values) {
			return invalidParameter("The parameters MetricData.member.%d.Values and MetricData.member.%d.Counts must be of the same size.", i+1, i+1)
		}
		if e := finiteValues(i+1, d); e != nil {
			return e
		}
		times[i] = now
		if d.Timestamp != nil {
			times[i] = d.Timestamp.Time
		}
		if times[i].Before(now.Add(-14*24*time.Hour)) || times[i].After(now.Add(2*time.Hour)) {
			return invalidParameter("The parameter MetricData.member.%d.Timestamp must specify a time no more than two weeks in the past or two hours in the future.", i+1)
		}
	}
	for i, d := range in.MetricData {
		t := times[i]
		res := s.cfg.Resolution
		if d.StorageResolution == 1 {
			res = time.Second
		}
		sr := s.metrics.get(in.Namespace, d.MetricName, d.Dimensions, d.Unit, res)
		switch {
		case d.Value != nil:
			sr.add(t, *d.Value, 1, s.cfg.Retention)
		case d.StatisticValues != nil:
			sv := d.StatisticValues
			// A statistic set cannot be split; record its mean as SampleCount samples, keeping
			// Sum, Minimum and Maximum exact by adding the extremes.
			if sv.SampleCount >= 2 {
				sr.add(t, sv.Minimum, 1, s.cfg.Retention)
				sr.add(t, sv.Maximum, 1, s.cfg.Retention)
				if rest := sv.SampleCount - 2; rest > 0 {
					sr.add(t, (sv.Sum-sv.Minimum-sv.Maximum)/rest, rest, s.cfg.Retention)
				}
			} else {
				sr.add(t, sv.Sum, sv.SampleCount, s.cfg.Retention)
			}
		default:
			for j, v := range d.Values {
				c := 1.0
				if len(d.Counts) > 0 {
					c = d.Counts[j]
				}
				sr.add(t, v, c, s.cfg.Retention)
			}
		}
	}
	return nil
}

func (s *Service) listMetrics(in *listMetricsInput) (*listMetricsOutput, *apiError) {
	var since time.Time
	if in.RecentlyActive == "PT3H" {
		since = s.cfg.Now().Add(-3 * time.Hour)
	}
	all := s.metrics.matching(in.Namespace, in.MetricName, in.Dimensions, since)
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(in.NextToken, "aviary-"))
		if err != nil || n < 0 || n > len(all) {
			return nil, invalidNextToken()
		}
		start = n
	}
	end := min(start+500, len(all))
	out := &listMetricsOutput{Metrics: []metric{}}
	for _, sr := range all[start:end] {
		out.Metrics = append(out.Metrics, metric{Namespace: sr.Namespace, MetricName: sr.Name, Dimensions: sr.Dims})
	}
	if end < len(all) {
		out.NextToken = "aviary-" + strconv.Itoa(end)
	}
	return out, nil
}

type persistedState struct {
	Alarms  map[string]*alarm
	History []alarmHistoryItem
}

func (s *Service) statePath() string {
	return filepath.Join(s.cfg.DataDir, "cloudwatch", "alarms.json")
}

func (s *Service) load() error {
	if s.cfg.DataDir == "" {
		return nil
	}
	if b, err := os.ReadFile(s.metricsPath()); err == nil {
		var snap snapshot
		if err := json.Unmarshal(b, &snap); err != nil {
			return fmt.Errorf("read %s: %w", s.metricsPath(), err)
		}
		s.metrics.restore(snap, s.cfg.Now())
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var st persistedState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("read %s: %w", s.statePath(), err)
	}
	if st.Alarms != nil {
		s.alarms = st.Alarms
	}
	s.history = st.History
	return nil
}

// save persists alarms and their history; the caller holds s.mu.
func (s *Service) save() {
	if s.cfg.DataDir == "" {
		return
	}
	b, err := json.Marshal(persistedState{Alarms: s.alarms, History: s.history})
	if err == nil {
		err = writeAtomic(s.statePath(), b)
	}
	if err != nil {
		s.cfg.Logger.Error("persist cloudwatch alarms", "err", err)
	}
}

// finiteValues refuses what CloudWatch refuses and no statistic could use: a value, count or
// statistic that is NaN or infinite, and a statistic set of no samples.
func finiteValues(member int, d metricDatum) *apiError {
	bad := func(field string, v float64) *apiError {
		return invalidParameter("The value %v for parameter MetricData.member.%d.%s is invalid.", v, member, field)
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if d.Value != nil && !finite(*d.Value) {
		return bad("Value", *d.Value)
	}
	for j, v := range d.Values {
		if !finite(v) {
			return bad(fmt.Sprintf("Values.member.%d", j+1), v)
		}
	}
	for j, c := range d.Counts {
		if !finite(c) || c < 0 {
			return bad(fmt.Sprintf("Counts.member.%d", j+1), c)
		}
	}
	if sv := d.StatisticValues; sv != nil {
		for _, f := range []struct {
			name string
			v    float64
		}{{"SampleCount", sv.SampleCount}, {"Sum", sv.Sum}, {"Minimum", sv.Minimum}, {"Maximum", sv.Maximum}} {
			if !finite(f.v) {
				return bad("StatisticValues."+f.name, f.v)
			}
		}
		if sv.SampleCount <= 0 {
			return bad("StatisticValues.SampleCount", sv.SampleCount)
		}
	}
	return nil
}
