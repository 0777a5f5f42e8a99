package sandbox_test

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func dims(kv ...string) []cwtypes.Dimension {
	var d []cwtypes.Dimension
	for i := 0; i < len(kv); i += 2 {
		d = append(d, cwtypes.Dimension{Name: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return d
}

// TestLambdaMetrics: every invocation through an alias lands in CloudWatch under the dimensions
// Lambda uses, so that a canary can be judged per executed version.
func TestLambdaMetrics(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "measured", zips.good)
	v1 := e.publish(t, "measured")
	e.updateCode(t, "measured", zips.bad)
	v2 := e.publish(t, "measured")
	if _, err := e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("measured"), Name: aws.String("live"), FunctionVersion: aws.String(v1),
		RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{v2: 0.3}}}); err != nil {
		t.Fatal(err)
	}
	begin := time.Now().Add(-time.Minute)
	counts, errs := map[string]float64{}, map[string]float64{}
	for range 200 {
		out, err := e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("measured:live")})
		if err != nil {
			t.Fatal(err)
		}
		counts[aws.ToString(out.ExecutedVersion)]++
		if out.FunctionError != nil {
			errs[aws.ToString(out.ExecutedVersion)]++
		}
	}
	// One unqualified invocation: counted per function, not under the alias.
	e.lambda.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String("measured")})
	end := time.Now().Add(time.Minute)

	stat := func(id, metric, s string, d []cwtypes.Dimension) cwtypes.MetricDataQuery {
		return cwtypes.MetricDataQuery{Id: aws.String(id), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/Lambda"), MetricName: aws.String(metric), Dimensions: d},
			Period: aws.Int32(600), Stat: aws.String(s)}}
	}
	under := func(v string) []cwtypes.Dimension {
		return dims("FunctionName", "measured", "Resource", "measured:live", "ExecutedVersion", v)
	}
	out, err := e.cw.GetMetricData(c, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(begin), EndTime: aws.Time(end), MetricDataQueries: []cwtypes.MetricDataQuery{
		stat("inv1", "Invocations", "Sum", under(v1)),
		stat("inv2", "Invocations", "Sum", under(v2)),
		stat("err1", "Errors", "Sum", under(v1)),
		stat("err2", "Errors", "Sum", under(v2)),
		stat("thr2", "Throttles", "Sum", under(v2)),
		stat("alias", "Invocations", "Sum", dims("FunctionName", "measured", "Resource", "measured:live")),
		stat("fn", "Invocations", "Sum", dims("FunctionName", "measured")),
		stat("all", "Invocations", "Sum", nil),
		stat("p50", "Duration", "p50", under(v1)),
		stat("p99", "Duration", "p99", under(v1)),
		stat("max", "Duration", "Maximum", under(v1)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, r := range out.MetricDataResults {
		if r.StatusCode != cwtypes.StatusCodeComplete {
			t.Errorf("%s: status %s", aws.ToString(r.Id), r.StatusCode)
		}
		for _, v := range r.Values {
			got[aws.ToString(r.Id)] += v
		}
	}
	want := map[string]float64{
		"inv1": counts[v1], "inv2": counts[v2], "err1": 0, "err2": errs[v2], "thr2": 0,
		"alias": 200, "fn": 201, "all": 201,
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s = %v, want %v (all: %v)", id, got[id], w, got)
		}
	}
	if errs[v2] == 0 || errs[v2] != counts[v2] {
		t.Fatalf("the bad flavour should fail every time: %v of %v", errs[v2], counts[v2])
	}
	if !(got["p50"] > 0 && got["p50"] <= got["p99"] && got["p99"] <= got["max"]) {
		t.Errorf("Duration p50 %v, p99 %v, max %v: not ordered", got["p50"], got["p99"], got["max"])
	}

	// GetMetricStatistics answers the same numbers, with percentiles as extended statistics.
	gs, err := e.cw.GetMetricStatistics(c, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("AWS/Lambda"), MetricName: aws.String("Duration"),
		Dimensions: under(v1), StartTime: aws.Time(begin), EndTime: aws.Time(end), Period: aws.Int32(600),
		Statistics: []cwtypes.Statistic{cwtypes.StatisticSampleCount, cwtypes.StatisticAverage}, ExtendedStatistics: []string{"p99"}})
	if err != nil {
		t.Fatal(err)
	}
	var samples float64
	for _, dp := range gs.Datapoints {
		samples += aws.ToFloat64(dp.SampleCount)
		if dp.ExtendedStatistics["p99"] <= 0 || dp.Unit != cwtypes.StandardUnitMilliseconds {
			t.Errorf("datapoint %+v", dp)
		}
	}
	if samples != counts[v1] {
		t.Errorf("Duration SampleCount = %v, want %v", samples, counts[v1])
	}

	// ListMetrics shows the dimension sets Lambda publishes.
	lm, err := e.cw.ListMetrics(c, &cloudwatch.ListMetricsInput{Namespace: aws.String("AWS/Lambda"), MetricName: aws.String("Invocations")})
	if err != nil {
		t.Fatal(err)
	}
	var sets []string
	for _, m := range lm.Metrics {
		var names []string
		for _, d := range m.Dimensions {
			names = append(names, aws.ToString(d.Name)+"="+aws.ToString(d.Value))
		}
		sets = append(sets, strings.Join(names, ","))
	}
	sort.Strings(sets)
	wantSets := []string{"", "ExecutedVersion=" + v1 + ",FunctionName=measured,Resource=measured:live", "ExecutedVersion=" + v2 + ",FunctionName=measured,Resource=measured:live",
		"FunctionName=measured", "FunctionName=measured,Resource=measured:live"}
	sort.Strings(wantSets)
	if strings.Join(sets, " | ") != strings.Join(wantSets, " | ") {
		t.Errorf("Invocations dimension sets:\n%s\nwant\n%s", strings.Join(sets, "\n"), strings.Join(wantSets, "\n"))
	}
}

func TestCustomMetricsAndErrors(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	now := time.Now()
	if _, err := e.cw.PutMetricData(c, &cloudwatch.PutMetricDataInput{Namespace: aws.String("App"), MetricData: []cwtypes.MetricDatum{
		{MetricName: aws.String("Latency"), Dimensions: dims("Service", "checkout"), Values: []float64{10, 20, 30, 1000}, Counts: []float64{10, 10, 79, 1}, Unit: cwtypes.StandardUnitMilliseconds},
		{MetricName: aws.String("Latency"), Dimensions: dims("Service", "checkout"), Value: aws.Float64(20), Unit: cwtypes.StandardUnitMilliseconds},
	}}); err != nil {
		t.Fatal(err)
	}
	gs, err := e.cw.GetMetricStatistics(c, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("App"), MetricName: aws.String("Latency"),
		Dimensions: dims("Service", "checkout"), StartTime: aws.Time(now.Add(-time.Minute)), EndTime: aws.Time(now.Add(time.Minute)), Period: aws.Int32(3600),
		Statistics: []cwtypes.Statistic{cwtypes.StatisticSampleCount, cwtypes.StatisticSum, cwtypes.StatisticMinimum, cwtypes.StatisticMaximum}, ExtendedStatistics: []string{"p50", "p99", "p100"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(gs.Datapoints) != 1 {
		t.Fatalf("datapoints: %+v", gs.Datapoints)
	}
	dp := gs.Datapoints[0]
	if aws.ToFloat64(dp.SampleCount) != 101 || aws.ToFloat64(dp.Sum) != 100+200+2370+1000+20 || aws.ToFloat64(dp.Minimum) != 10 || aws.ToFloat64(dp.Maximum) != 1000 {
		t.Errorf("statistics: count %v sum %v min %v max %v", aws.ToFloat64(dp.SampleCount), aws.ToFloat64(dp.Sum), aws.ToFloat64(dp.Minimum), aws.ToFloat64(dp.Maximum))
	}
	// Percentiles are within the sketch's 0.5% of a sample value.
	for stat, want := range map[string]float64{"p50": 30, "p99": 30, "p100": 1000} {
		if got := dp.ExtendedStatistics[stat]; got < want*0.99 || got > want*1.01 {
			t.Errorf("%s = %v, want about %v", stat, got, want)
		}
	}

	// Errors are the SDK's typed errors, with the query-compatible codes.
	_, err = e.cw.GetMetricData(c, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(now), EndTime: aws.Time(now.Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("m"), Expression: aws.String("SUM(METRICS())")}}})
	var ipv *cwtypes.InvalidParameterValueException
	if !errors.As(err, &ipv) || errorCode(err) != "InvalidParameterValue" {
		t.Errorf("metric math: %v (code %s), want InvalidParameterValueException with code InvalidParameterValue", err, errorCode(err))
	}
	_, err = e.cw.GetMetricStatistics(c, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("App"), MetricName: aws.String("Latency"),
		StartTime: aws.Time(now), EndTime: aws.Time(now.Add(time.Minute)), Period: aws.Int32(60)})
	var mrp *cwtypes.MissingRequiredParameterException
	if !errors.As(err, &mrp) {
		t.Errorf("no statistics: %v, want MissingRequiredParameterException", err)
	}
	_, err = e.cw.PutMetricData(c, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/Lambda"), MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("Errors"), Value: aws.Float64(1)}}})
	if !errors.As(err, &ipv) {
		t.Errorf("publishing into AWS/: %v", err)
	}
}

func TestAlarms(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	alarm := &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("checkout-errors"), Namespace: aws.String("App"), MetricName: aws.String("Errors"), Dimensions: dims("Service", "checkout"),
		Statistic: cwtypes.StatisticSum, Period: aws.Int32(1), EvaluationPeriods: aws.Int32(2), DatapointsToAlarm: aws.Int32(1),
		Threshold: aws.Float64(5), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold,
		TreatMissingData: aws.String("notBreaching"),
	}
	if _, err := e.cw.PutMetricAlarm(c, alarm); err != nil {
		t.Fatal(err)
	}
	state := func() cwtypes.MetricAlarm {
		out, err := e.cw.DescribeAlarms(c, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"checkout-errors"}})
		if err != nil || len(out.MetricAlarms) != 1 {
			t.Fatalf("DescribeAlarms: %v %+v", err, out)
		}
		return out.MetricAlarms[0]
	}
	waitFor := func(want cwtypes.StateValue, feed func()) cwtypes.MetricAlarm {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if feed != nil {
				feed()
			}
			a := state()
			if a.StateValue == want {
				return a
			}
			if time.Now().After(deadline) {
				t.Fatalf("alarm stayed %s (%s), want %s", a.StateValue, aws.ToString(a.StateReason), want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if a := state(); a.StateValue != cwtypes.StateValueInsufficientData || aws.ToString(a.AlarmArn) != "arn:aws:cloudwatch:us-east-1:000000000000:alarm:checkout-errors" {
		t.Errorf("new alarm: %s %s", a.StateValue, aws.ToString(a.AlarmArn))
	}
	// With no data and notBreaching, the alarm settles OK; errors above the threshold raise it.
	waitFor(cwtypes.StateValueOk, nil)
	a := waitFor(cwtypes.StateValueAlarm, func() {
		e.cw.PutMetricData(c, &cloudwatch.PutMetricDataInput{Namespace: aws.String("App"), MetricData: []cwtypes.MetricDatum{
			{MetricName: aws.String("Errors"), Dimensions: dims("Service", "checkout"), Value: aws.Float64(9)}}})
	})
	if !strings.Contains(aws.ToString(a.StateReason), "Threshold Crossed") {
		t.Errorf("alarm reason %q", aws.ToString(a.StateReason))
	}
	// SetAlarmState overrides until the next evaluation.
	if _, err := e.cw.SetAlarmState(c, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("checkout-errors"), StateValue: cwtypes.StateValueOk, StateReason: aws.String("testing")}); err != nil {
		t.Fatal(err)
	}
	_, err := e.cw.SetAlarmState(c, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("nope"), StateValue: cwtypes.StateValueOk, StateReason: aws.String("x")})
	var rnf *cwtypes.ResourceNotFound
	if !errors.As(err, &rnf) {
		t.Errorf("SetAlarmState of a missing alarm: %v", err)
	}
	hist, err := e.cw.DescribeAlarmHistory(c, &cloudwatch.DescribeAlarmHistoryInput{AlarmName: aws.String("checkout-errors"), HistoryItemType: cwtypes.HistoryItemTypeStateUpdate})
	if err != nil {
		t.Fatal(err)
	}
	var summaries []string
	for _, h := range hist.AlarmHistoryItems {
		summaries = append(summaries, aws.ToString(h.HistorySummary))
	}
	joined := strings.Join(summaries, "; ")
	for _, want := range []string{"Alarm updated from INSUFFICIENT_DATA to OK", "Alarm updated from OK to ALARM", "Alarm updated from ALARM to OK"} {
		if !strings.Contains(joined, want) {
			t.Errorf("history lacks %q: %s", want, joined)
		}
	}
	byMetric, err := e.cw.DescribeAlarmsForMetric(c, &cloudwatch.DescribeAlarmsForMetricInput{Namespace: aws.String("App"), MetricName: aws.String("Errors"), Dimensions: dims("Service", "checkout")})
	if err != nil || len(byMetric.MetricAlarms) != 1 {
		t.Errorf("DescribeAlarmsForMetric: %v %+v", err, byMetric)
	}
	// Periods that do not divide a day evaluate too (periods align to the epoch, as the data do).
	seven := *alarm
	seven.AlarmName, seven.Period, seven.EvaluationPeriods, seven.DatapointsToAlarm = aws.String("seven-seconds"), aws.Int32(7), aws.Int32(1), aws.Int32(1)
	seven.Dimensions = dims("Service", "payments")
	if _, err := e.cw.PutMetricAlarm(c, &seven); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		e.cw.PutMetricData(c, &cloudwatch.PutMetricDataInput{Namespace: aws.String("App"), MetricData: []cwtypes.MetricDatum{
			{MetricName: aws.String("Errors"), Dimensions: dims("Service", "payments"), Value: aws.Float64(9)}}})
		out, err := e.cw.DescribeAlarms(c, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"seven-seconds"}})
		if err != nil {
			t.Fatal(err)
		}
		if out.MetricAlarms[0].StateValue == cwtypes.StateValueAlarm {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a 7-second alarm over breaching data stayed %s", out.MetricAlarms[0].StateValue)
		}
	}
	// Invalid alarms are refused.
	bad := *alarm
	bad.DatapointsToAlarm = aws.Int32(3)
	if _, err := e.cw.PutMetricAlarm(c, &bad); err == nil {
		t.Error("DatapointsToAlarm > EvaluationPeriods accepted")
	}
	if _, err := e.cw.DeleteAlarms(c, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"checkout-errors"}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.cw.DeleteAlarms(c, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"checkout-errors"}})
	if !errors.As(err, &rnf) {
		t.Errorf("deleting a missing alarm: %v", err)
	}
}

// TestCloudWatchOtherProtocols: clients speaking awsJson1_0 or the query protocol get the same
// service (Debian's awscli speaks query).
func TestCloudWatchOtherProtocols(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	now := time.Now().UTC()
	if _, err := e.cw.PutMetricData(c, &cloudwatch.PutMetricDataInput{Namespace: aws.String("App"), MetricData: []cwtypes.MetricDatum{
		{MetricName: aws.String("Hits"), Dimensions: dims("Service", "web"), Values: []float64{1, 2, 3}}}}); err != nil {
		t.Fatal(err)
	}

	// awsJson1_0.
	body := `{"Namespace":"App","MetricName":"Hits","Dimensions":[{"Name":"Service","Value":"web"}],"StartTime":` +
		jsonNum(now.Add(-time.Minute)) + `,"EndTime":` + jsonNum(now.Add(time.Minute)) + `,"Period":3600,"Statistics":["Sum","SampleCount"]}`
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(body))
	req.Header.Set("X-Amz-Target", "GraniteServiceVersion20100801.GetMetricStatistics")
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var js struct {
		Label      string
		Datapoints []struct{ Sum, SampleCount, Timestamp float64 }
	}
	if err := json.Unmarshal(raw, &js); err != nil || resp.StatusCode != 200 || len(js.Datapoints) != 1 || js.Datapoints[0].Sum != 6 || js.Datapoints[0].SampleCount != 3 || js.Datapoints[0].Timestamp == 0 {
		t.Errorf("awsJson1_0 GetMetricStatistics: %d %s (%v)", resp.StatusCode, raw, err)
	}

	// Query protocol, as awscli sends it.
	form := url.Values{
		"Action": {"GetMetricStatistics"}, "Version": {"2010-08-01"}, "Namespace": {"App"}, "MetricName": {"Hits"},
		"Dimensions.member.1.Name": {"Service"}, "Dimensions.member.1.Value": {"web"},
		"StartTime": {now.Add(-time.Minute).Format(time.RFC3339)}, "EndTime": {now.Add(time.Minute).Format(time.RFC3339)},
		"Period": {"3600"}, "Statistics.member.1": {"Maximum"}, "ExtendedStatistics.member.1": {"p50"},
	}
	resp, err = http.PostForm(e.srv.URL+"/", form)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var xr struct {
		XMLName xml.Name `xml:"GetMetricStatisticsResponse"`
		Result  struct {
			Label      string `xml:"Label"`
			Datapoints []struct {
				Maximum  float64 `xml:"Maximum"`
				Extended []struct {
					Key   string  `xml:"key"`
					Value float64 `xml:"value"`
				} `xml:"ExtendedStatistics>entry"`
			} `xml:"Datapoints>member"`
		} `xml:"GetMetricStatisticsResult"`
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}
	if err := xml.Unmarshal(raw, &xr); err != nil || resp.StatusCode != 200 || len(xr.Result.Datapoints) != 1 || xr.Result.Datapoints[0].Maximum != 3 ||
		len(xr.Result.Datapoints[0].Extended) != 1 || xr.Result.Datapoints[0].Extended[0].Key != "p50" || xr.RequestID == "" {
		t.Errorf("query GetMetricStatistics: %d %s (%v)", resp.StatusCode, raw, err)
	}
	// Query errors are XML ErrorResponses with the query code.
	resp, err = http.PostForm(e.srv.URL+"/", url.Values{"Action": {"SetAlarmState"}, "Version": {"2010-08-01"}, "AlarmName": {"none"}, "StateValue": {"OK"}, "StateReason": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(raw), "<Code>ResourceNotFound</Code>") || !strings.Contains(string(raw), "<Type>Sender</Type>") {
		t.Errorf("query error: %d %s", resp.StatusCode, raw)
	}
}

func jsonNum(t time.Time) string {
	b, _ := json.Marshal(float64(t.UnixMilli()) / 1000)
	return string(b)
}

// CloudWatch refuses values no statistic can use — NaN, infinities, a statistic set of no
// samples, a percentile that is not a number — with 400 InvalidParameterValue, and records
// nothing; before, it stored them and every later read of the metric answered 500.
func TestNonFiniteMetricValuesAreRefused(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	for name, fields := range map[string]url.Values{
		"NaN":          {"MetricData.member.1.Value": {"NaN"}},
		"+Inf":         {"MetricData.member.1.Value": {"+Inf"}},
		"Values -Inf":  {"MetricData.member.1.Values.member.1": {"-Inf"}},
		"no samples":   {"MetricData.member.1.StatisticValues.SampleCount": {"0"}, "MetricData.member.1.StatisticValues.Sum": {"0"}, "MetricData.member.1.StatisticValues.Minimum": {"0"}, "MetricData.member.1.StatisticValues.Maximum": {"0"}},
		"count is NaN": {"MetricData.member.1.Values.member.1": {"1"}, "MetricData.member.1.Counts.member.1": {"NaN"}},
	} {
		form := url.Values{"Action": {"PutMetricData"}, "Version": {"2010-08-01"}, "Namespace": {"App"}, "MetricData.member.1.MetricName": {"Odd"}}
		for k, v := range fields {
			form[k] = v
		}
		resp, err := http.PostForm(e.srv.URL+"/", form)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(raw), "<Code>InvalidParameterValue</Code>") {
			t.Errorf("%s: %d %s, want 400 InvalidParameterValue", name, resp.StatusCode, raw)
		}
	}
	now := time.Now()
	_, err := e.cw.GetMetricStatistics(c, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("App"), MetricName: aws.String("Odd"),
		StartTime: aws.Time(now.Add(-time.Minute)), EndTime: aws.Time(now.Add(time.Minute)), Period: aws.Int32(60), ExtendedStatistics: []string{"pNaN"}})
	var ipv *cwtypes.InvalidParameterValueException
	if !errors.As(err, &ipv) {
		t.Errorf("the statistic pNaN: %v, want InvalidParameterValueException", err)
	}
	out, err := e.cw.ListMetrics(c, &cloudwatch.ListMetricsInput{Namespace: aws.String("App")})
	if err != nil || len(out.Metrics) != 0 {
		t.Errorf("refused data was recorded: %+v, %v", out, err)
	}
}
