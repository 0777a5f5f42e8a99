package cloudwatch

// Wire shapes of the CloudWatch API (botocore model cloudwatch/2010-08-01). JSON names serve the
// CBOR and JSON protocols and, through decodeQuery, the query protocol's input; XML names shape
// the query protocol's output.

type metric struct {
	Namespace  string      `json:"Namespace,omitempty" xml:"Namespace,omitempty"`
	MetricName string      `json:"MetricName,omitempty" xml:"MetricName,omitempty"`
	Dimensions []Dimension `json:"Dimensions,omitempty" xml:"Dimensions>member,omitempty"`
}

type metricStat struct {
	Metric metric `json:"Metric"`
	Period int    `json:"Period"`
	Stat   string `json:"Stat"`
	Unit   string `json:"Unit,omitempty"`
}

type metricDataQuery struct {
	ID         string      `json:"Id"`
	MetricStat *metricStat `json:"MetricStat,omitempty"`
	Expression string      `json:"Expression,omitempty"`
	Label      string      `json:"Label,omitempty"`
	ReturnData *bool       `json:"ReturnData,omitempty"`
	Period     int         `json:"Period,omitempty"`
}

type getMetricDataInput struct {
	MetricDataQueries []metricDataQuery `json:"MetricDataQueries"`
	StartTime         *ts               `json:"StartTime"`
	EndTime           *ts               `json:"EndTime"`
	NextToken         string            `json:"NextToken,omitempty"`
	ScanBy            string            `json:"ScanBy,omitempty"`
	MaxDatapoints     int               `json:"MaxDatapoints,omitempty"`
}

type messageData struct {
	Code  string `json:"Code,omitempty" xml:"Code,omitempty"`
	Value string `json:"Value,omitempty" xml:"Value,omitempty"`
}

type metricDataResult struct {
	ID         string        `json:"Id" xml:"Id"`
	Label      string        `json:"Label" xml:"Label"`
	Timestamps []ts          `json:"Timestamps" xml:"Timestamps>member"`
	Values     []float64     `json:"Values" xml:"Values>member"`
	StatusCode string        `json:"StatusCode" xml:"StatusCode"`
	Messages   []messageData `json:"Messages,omitempty" xml:"Messages>member,omitempty"`
}

type getMetricDataOutput struct {
	MetricDataResults []metricDataResult `json:"MetricDataResults" xml:"MetricDataResults>member"`
	NextToken         string             `json:"NextToken,omitempty" xml:"NextToken,omitempty"`
	Messages          []messageData      `json:"Messages,omitempty" xml:"Messages>member,omitempty"`
}

type getMetricStatisticsInput struct {
	Namespace          string      `json:"Namespace"`
	MetricName         string      `json:"MetricName"`
	Dimensions         []Dimension `json:"Dimensions,omitempty"`
	StartTime          *ts         `json:"StartTime"`
	EndTime            *ts         `json:"EndTime"`
	Period             int         `json:"Period"`
	Statistics         []string    `json:"Statistics,omitempty"`
	ExtendedStatistics []string    `json:"ExtendedStatistics,omitempty"`
	Unit               string      `json:"Unit,omitempty"`
}

type datapoint struct {
	Timestamp          ts        `json:"Timestamp" xml:"Timestamp"`
	SampleCount        *float64  `json:"SampleCount,omitempty" xml:"SampleCount,omitempty"`
	Average            *float64  `json:"Average,omitempty" xml:"Average,omitempty"`
	Sum                *float64  `json:"Sum,omitempty" xml:"Sum,omitempty"`
	Minimum            *float64  `json:"Minimum,omitempty" xml:"Minimum,omitempty"`
	Maximum            *float64  `json:"Maximum,omitempty" xml:"Maximum,omitempty"`
	Unit               string    `json:"Unit,omitempty" xml:"Unit,omitempty"`
	ExtendedStatistics stringMap `json:"ExtendedStatistics,omitempty" xml:"ExtendedStatistics,omitempty"`
}

type getMetricStatisticsOutput struct {
	Label      string      `json:"Label" xml:"Label"`
	Datapoints []datapoint `json:"Datapoints" xml:"Datapoints>member"`
}

type statisticSet struct {
	SampleCount float64 `json:"SampleCount"`
	Sum         float64 `json:"Sum"`
	Minimum     float64 `json:"Minimum"`
	Maximum     float64 `json:"Maximum"`
}

type metricDatum struct {
	MetricName        string        `json:"MetricName"`
	Dimensions        []Dimension   `json:"Dimensions,omitempty"`
	Timestamp         *ts           `json:"Timestamp,omitempty"`
	Value             *float64      `json:"Value,omitempty"`
	StatisticValues   *statisticSet `json:"StatisticValues,omitempty"`
	Values            []float64     `json:"Values,omitempty"`
	Counts            []float64     `json:"Counts,omitempty"`
	Unit              string        `json:"Unit,omitempty"`
	StorageResolution int           `json:"StorageResolution,omitempty"`
}

type putMetricDataInput struct {
	Namespace  string        `json:"Namespace"`
	MetricData []metricDatum `json:"MetricData"`
}

type listMetricsInput struct {
	Namespace      string      `json:"Namespace,omitempty"`
	MetricName     string      `json:"MetricName,omitempty"`
	Dimensions     []Dimension `json:"Dimensions,omitempty"`
	NextToken      string      `json:"NextToken,omitempty"`
	RecentlyActive string      `json:"RecentlyActive,omitempty"`
}

type listMetricsOutput struct {
	Metrics   []metric `json:"Metrics" xml:"Metrics>member"`
	NextToken string   `json:"NextToken,omitempty" xml:"NextToken,omitempty"`
}

type putMetricAlarmInput struct {
	AlarmName               string            `json:"AlarmName"`
	AlarmDescription        *string           `json:"AlarmDescription,omitempty"`
	ActionsEnabled          *bool             `json:"ActionsEnabled,omitempty"`
	OKActions               []string          `json:"OKActions,omitempty"`
	AlarmActions            []string          `json:"AlarmActions,omitempty"`
	InsufficientDataActions []string          `json:"InsufficientDataActions,omitempty"`
	MetricName              string            `json:"MetricName,omitempty"`
	Namespace               string            `json:"Namespace,omitempty"`
	Statistic               string            `json:"Statistic,omitempty"`
	ExtendedStatistic       string            `json:"ExtendedStatistic,omitempty"`
	Dimensions              []Dimension       `json:"Dimensions,omitempty"`
	Period                  int               `json:"Period,omitempty"`
	Unit                    string            `json:"Unit,omitempty"`
	EvaluationPeriods       int               `json:"EvaluationPeriods"`
	DatapointsToAlarm       int               `json:"DatapointsToAlarm,omitempty"`
	Threshold               *float64          `json:"Threshold,omitempty"`
	ComparisonOperator      string            `json:"ComparisonOperator"`
	TreatMissingData        string            `json:"TreatMissingData,omitempty"`
	Metrics                 []metricDataQuery `json:"Metrics,omitempty"`
	Tags                    []tag             `json:"Tags,omitempty"`
}

type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// metricAlarm is the MetricAlarm output shape; it is also what --data persists.
type metricAlarm struct {
	AlarmName                          string      `json:"AlarmName" xml:"AlarmName"`
	AlarmArn                           string      `json:"AlarmArn" xml:"AlarmArn"`
	AlarmDescription                   string      `json:"AlarmDescription,omitempty" xml:"AlarmDescription,omitempty"`
	AlarmConfigurationUpdatedTimestamp ts          `json:"AlarmConfigurationUpdatedTimestamp" xml:"AlarmConfigurationUpdatedTimestamp"`
	ActionsEnabled                     bool        `json:"ActionsEnabled" xml:"ActionsEnabled"`
	OKActions                          []string    `json:"OKActions" xml:"OKActions>member"`
	AlarmActions                       []string    `json:"AlarmActions" xml:"AlarmActions>member"`
	InsufficientDataActions            []string    `json:"InsufficientDataActions" xml:"InsufficientDataActions>member"`
	StateValue                         string      `json:"StateValue" xml:"StateValue"`
	StateReason                        string      `json:"StateReason" xml:"StateReason"`
	StateReasonData                    string      `json:"StateReasonData,omitempty" xml:"StateReasonData,omitempty"`
	StateUpdatedTimestamp              ts          `json:"StateUpdatedTimestamp" xml:"StateUpdatedTimestamp"`
	MetricName                         string      `json:"MetricName,omitempty" xml:"MetricName,omitempty"`
	Namespace                          string      `json:"Namespace,omitempty" xml:"Namespace,omitempty"`
	Statistic                          string      `json:"Statistic,omitempty" xml:"Statistic,omitempty"`
	ExtendedStatistic                  string      `json:"ExtendedStatistic,omitempty" xml:"ExtendedStatistic,omitempty"`
	Dimensions                         []Dimension `json:"Dimensions" xml:"Dimensions>member"`
	Period                             int         `json:"Period,omitempty" xml:"Period,omitempty"`
	Unit                               string      `json:"Unit,omitempty" xml:"Unit,omitempty"`
	EvaluationPeriods                  int         `json:"EvaluationPeriods" xml:"EvaluationPeriods"`
	DatapointsToAlarm                  int         `json:"DatapointsToAlarm,omitempty" xml:"DatapointsToAlarm,omitempty"`
	Threshold                          float64     `json:"Threshold" xml:"Threshold"`
	ComparisonOperator                 string      `json:"ComparisonOperator" xml:"ComparisonOperator"`
	TreatMissingData                   string      `json:"TreatMissingData,omitempty" xml:"TreatMissingData,omitempty"`
	StateTransitionedTimestamp         ts          `json:"StateTransitionedTimestamp" xml:"StateTransitionedTimestamp"`
}

type describeAlarmsInput struct {
	AlarmNames      []string `json:"AlarmNames,omitempty"`
	AlarmNamePrefix string   `json:"AlarmNamePrefix,omitempty"`
	AlarmTypes      []string `json:"AlarmTypes,omitempty"`
	StateValue      string   `json:"StateValue,omitempty"`
	ActionPrefix    string   `json:"ActionPrefix,omitempty"`
	MaxRecords      int      `json:"MaxRecords,omitempty"`
	NextToken       string   `json:"NextToken,omitempty"`
}

type describeAlarmsOutput struct {
	MetricAlarms    []metricAlarm `json:"MetricAlarms" xml:"MetricAlarms>member"`
	CompositeAlarms []struct{}    `json:"CompositeAlarms" xml:"CompositeAlarms>member"`
	NextToken       string        `json:"NextToken,omitempty" xml:"NextToken,omitempty"`
}

type describeAlarmsForMetricInput struct {
	MetricName        string      `json:"MetricName"`
	Namespace         string      `json:"Namespace"`
	Statistic         string      `json:"Statistic,omitempty"`
	ExtendedStatistic string      `json:"ExtendedStatistic,omitempty"`
	Dimensions        []Dimension `json:"Dimensions,omitempty"`
	Period            int         `json:"Period,omitempty"`
	Unit              string      `json:"Unit,omitempty"`
}

type describeAlarmsForMetricOutput struct {
	MetricAlarms []metricAlarm `json:"MetricAlarms" xml:"MetricAlarms>member"`
}

type setAlarmStateInput struct {
	AlarmName       string `json:"AlarmName"`
	StateValue      string `json:"StateValue"`
	StateReason     string `json:"StateReason"`
	StateReasonData string `json:"StateReasonData,omitempty"`
}

type deleteAlarmsInput struct {
	AlarmNames []string `json:"AlarmNames"`
}

type describeAlarmHistoryInput struct {
	AlarmName       string `json:"AlarmName,omitempty"`
	HistoryItemType string `json:"HistoryItemType,omitempty"`
	StartDate       *ts    `json:"StartDate,omitempty"`
	EndDate         *ts    `json:"EndDate,omitempty"`
	MaxRecords      int    `json:"MaxRecords,omitempty"`
	NextToken       string `json:"NextToken,omitempty"`
	ScanBy          string `json:"ScanBy,omitempty"`
}

type alarmHistoryItem struct {
	AlarmName       string `json:"AlarmName" xml:"AlarmName"`
	AlarmType       string `json:"AlarmType" xml:"AlarmType"`
	Timestamp       ts     `json:"Timestamp" xml:"Timestamp"`
	HistoryItemType string `json:"HistoryItemType" xml:"HistoryItemType"`
	HistorySummary  string `json:"HistorySummary" xml:"HistorySummary"`
	HistoryData     string `json:"HistoryData,omitempty" xml:"HistoryData,omitempty"`
}

type describeAlarmHistoryOutput struct {
	AlarmHistoryItems []alarmHistoryItem `json:"AlarmHistoryItems" xml:"AlarmHistoryItems>member"`
	NextToken         string             `json:"NextToken,omitempty" xml:"NextToken,omitempty"`
}
