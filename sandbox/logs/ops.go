package logs

import (
	"container/heap"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

// ---- validation, as the model's constraints are enforced (InvalidParameterException) ----

var (
	groupNameRE  = regexp.MustCompile(`^[\.\-_/#A-Za-z0-9]+$`)
	patternRE    = regexp.MustCompile(`^[\.\-_/#A-Za-z0-9]*$`)
	streamNameRE = regexp.MustCompile(`^[^:*]*$`)
	identifierRE = regexp.MustCompile(`^[\w#+=/:,.@-]*$`)
	arnRE        = regexp.MustCompile(`^[\w+=/:,.@-]*$`)
	tagKeyRE     = regexp.MustCompile(`^([\p{L}\p{Z}\p{N}_.:/=+\-@]+)$`)
	tagValueRE   = regexp.MustCompile(`^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`)
)

func constraint(value any, member, rule string) *apiError {
	return invalidParameter("1 validation error detected: Value '%v' at '%s' failed to satisfy constraint: %s", value, member, rule)
}

func missing(member string) *apiError {
	return invalidParameter("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
}

// checkString enforces a string member's length and pattern; a nil value passes unless required.
func checkString(v *string, member string, required bool, minLen, maxLen int, re *regexp.Regexp) *apiError {
	if v == nil {
		if required {
			return missing(member)
		}
		return nil
	}
	n := utf8.RuneCountInString(*v)
	if n < minLen {
		return constraint(*v, member, fmt.Sprintf("Member must have length greater than or equal to %d", minLen))
	}
	if maxLen > 0 && n > maxLen {
		return constraint(*v, member, fmt.Sprintf("Member must have length less than or equal to %d", maxLen))
	}
	if re != nil && !re.MatchString(*v) {
		return constraint(*v, member, "Member must satisfy regular expression pattern: "+strings.Trim(re.String(), "^$"))
	}
	return nil
}

func checkGroupName(v *string, member string, required bool) *apiError {
	return checkString(v, member, required, 1, 512, groupNameRE)
}

func checkStreamName(v *string, member string, required bool) *apiError {
	return checkString(v, member, required, 1, 512, streamNameRE)
}

func checkLimit(v *int, maxv int) *apiError {
	if v == nil {
		return nil
	}
	if *v < 1 {
		return constraint(*v, "limit", "Member must have value greater than or equal to 1")
	}
	if *v > maxv {
		return constraint(*v, "limit", fmt.Sprintf("Member must have value less than or equal to %d", maxv))
	}
	return nil
}

func checkTags(tags map[string]string, member string) *apiError {
	if tags == nil {
		return nil
	}
	if len(tags) < 1 {
		return constraint("{}", member, "Member must have length greater than or equal to 1")
	}
	if len(tags) > 50 {
		return constraint(fmt.Sprintf("map of %d tags", len(tags)), member, "Member must have length less than or equal to 50")
	}
	for k, v := range tags {
		if e := checkString(&k, member+".key", true, 1, 128, tagKeyRE); e != nil {
			return e
		}
		if e := checkString(&v, member+".value", true, 0, 256, tagValueRE); e != nil {
			return e
		}
	}
	return nil
}

func strOr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// ---- names and ARNs ----

func (s *Service) groupARN(name string) string {
	return fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s", s.cfg.Region, s.cfg.Account, name)
}

func (s *Service) streamARN(group, stream string) string {
	return s.groupARN(group) + ":log-stream:" + stream
}

// groupFromARN reads the log group name from arn:aws:logs:region:account:log-group:NAME[:*].
func groupFromARN(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "logs" || !strings.HasPrefix(parts[5], "log-group:") {
		return "", false
	}
	name := strings.TrimSuffix(strings.TrimPrefix(parts[5], "log-group:"), ":*")
	if name == "" || strings.Contains(name, ":") {
		return "", false
	}
	return name, true
}

// groupParam resolves "logGroupName or logGroupIdentifier, but not both" to a group name.
func groupParam(name, ident *string) (string, *apiError) {
	switch {
	case name != nil && ident != nil:
		return "", invalidParameter("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
	case name == nil && ident == nil:
		return "", invalidParameter("Either logGroupName or logGroupIdentifier must be specified.")
	case name != nil:
		if e := checkGroupName(name, "logGroupName", true); e != nil {
			return "", e
		}
		return *name, nil
	}
	if e := checkString(ident, "logGroupIdentifier", true, 1, 2048, identifierRE); e != nil {
		return "", e
	}
	if strings.HasPrefix(*ident, "arn:") {
		g, ok := groupFromARN(*ident)
		if !ok {
			return "", invalidParameter("The logGroupIdentifier %s is not a log group name or ARN (arn:aws:logs:REGION:ACCOUNT:log-group:NAME).", *ident)
		}
		return g, nil
	}
	return *ident, nil
}

// ---- pagination tokens: opaque to clients, positions to the sandbox ----

func encodeToken(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(tok *string, v any) *apiError {
	if tok == nil {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*tok)
	if err != nil || json.Unmarshal(b, v) != nil {
		return invalidToken()
	}
	return nil
}

// ---- log groups ----

func (s *Service) createLogGroup(in *createLogGroupInput) (any, *apiError) {
	if e := checkGroupName(in.LogGroupName, "logGroupName", true); e != nil {
		return nil, e
	}
	name := *in.LogGroupName
	if strings.HasPrefix(name, "aws/") {
		return nil, invalidParameter("Log group names cannot start with 'aws/'.")
	}
	if len(in.KmsKeyID) > 256 {
		return nil, constraint(in.KmsKeyID, "kmsKeyId", "Member must have length less than or equal to 256")
	}
	if e := checkTags(in.Tags, "tags"); e != nil {
		return nil, e
	}
	class := "STANDARD"
	if in.LogGroupClass != "" {
		if !slices.Contains([]string{"STANDARD", "INFREQUENT_ACCESS", "DELIVERY"}, in.LogGroupClass) {
			return nil, constraint(in.LogGroupClass, "logGroupClass", "Member must satisfy enum value set: [STANDARD, INFREQUENT_ACCESS, DELIVERY]")
		}
		class = in.LogGroupClass
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[name]; ok {
		return nil, alreadyExists("The specified log group already exists")
	}
	g := s.newGroup(name, s.cfg.Now().UnixMilli())
	g.kms, g.class = in.KmsKeyID, class
	maps.Copy(g.tags, in.Tags)
	return nil, nil
}

func (s *Service) deleteLogGroup(in *logGroupNameInput) (any, *apiError) {
	if e := checkGroupName(in.LogGroupName, "logGroupName", true); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[*in.LogGroupName]
	if !ok {
		return nil, groupNotFound()
	}
	delete(s.groups, *in.LogGroupName)
	s.bury(g, nil)
	return nil, nil
}

func (s *Service) groupOut(g *group) logGroupOut {
	out := logGroupOut{LogGroupName: g.name, CreationTime: g.created, Arn: s.groupARN(g.name) + ":*", StoredBytes: g.bytes,
		KmsKeyID: g.kms, LogGroupClass: g.class, LogGroupArn: s.groupARN(g.name)}
	if g.retention > 0 {
		r := g.retention
		out.RetentionInDays = &r
	}
	return out
}

func (s *Service) describeLogGroups(in *describeLogGroupsInput) (any, *apiError) {
	if e := checkGroupName(in.LogGroupNamePrefix, "logGroupNamePrefix", false); e != nil {
		return nil, e
	}
	if e := checkString(in.LogGroupNamePattern, "logGroupNamePattern", false, 0, 512, patternRE); e != nil {
		return nil, e
	}
	if e := checkLimit(in.Limit, 50); e != nil {
		return nil, e
	}
	if in.LogGroupNamePrefix != nil && in.LogGroupNamePattern != nil {
		return nil, invalidParameter("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
	}
	if in.LogGroupIdentifiers != nil {
		if len(in.LogGroupIdentifiers) < 1 || len(in.LogGroupIdentifiers) > 50 {
			return nil, constraint(in.LogGroupIdentifiers, "logGroupIdentifiers", "Member must have length between 1 and 50")
		}
		if in.LogGroupNamePrefix != nil || in.LogGroupNamePattern != nil {
			return nil, invalidParameter("logGroupIdentifiers cannot be combined with logGroupNamePrefix or logGroupNamePattern.")
		}
	}
	if in.LogGroupClass != "" && !slices.Contains([]string{"STANDARD", "INFREQUENT_ACCESS", "DELIVERY"}, in.LogGroupClass) {
		return nil, constraint(in.LogGroupClass, "logGroupClass", "Member must satisfy enum value set: [STANDARD, INFREQUENT_ACCESS, DELIVERY]")
	}
	var after struct {
		N string `json:"n"`
	}
	if e := decodeToken(in.NextToken, &after); e != nil {
		return nil, e
	}
	wanted := map[string]bool{}
	for _, id := range in.LogGroupIdentifiers {
		name := id
		if strings.HasPrefix(id, "arn:") {
			name, _ = groupFromARN(id)
		}
		wanted[name] = true
	}
	limit := 50
	if in.Limit != nil {
		limit = *in.Limit
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.groups))
	for name, g := range s.groups {
		switch {
		case in.LogGroupNamePrefix != nil && !strings.HasPrefix(name, *in.LogGroupNamePrefix),
			in.LogGroupNamePattern != nil && !strings.Contains(name, *in.LogGroupNamePattern),
			len(wanted) > 0 && !wanted[name],
			in.LogGroupClass != "" && g.class != in.LogGroupClass,
			in.NextToken != nil && name <= after.N:
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	out := describeLogGroupsOutput{LogGroups: []logGroupOut{}}
	for i, name := range names {
		if i == limit {
			out.NextToken = encodeToken(map[string]string{"n": names[i-1]})
			break
		}
		out.LogGroups = append(out.LogGroups, s.groupOut(s.groups[name]))
	}
	return out, nil
}

// ---- log streams ----

// lookupGroup finds a group; the caller holds s.mu.
func (s *Service) lookupGroup(name string) (*group, *apiError) {
	g, ok := s.groups[name]
	if !ok {
		return nil, groupNotFound()
	}
	return g, nil
}

func (s *Service) createLogStream(in *streamInput) (any, *apiError) {
	if e := checkGroupName(in.LogGroupName, "logGroupName", true); e != nil {
		return nil, e
	}
	if e := checkStreamName(in.LogStreamName, "logStreamName", true); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.lookupGroup(*in.LogGroupName)
	if e != nil {
		return nil, e
	}
	if _, ok := g.streams[*in.LogStreamName]; ok {
		return nil, alreadyExists("The specified log stream already exists")
	}
	g.newStream(s, *in.LogStreamName, s.cfg.Now().UnixMilli())
	return nil, nil
}

func (s *Service) deleteLogStream(in *streamInput) (any, *apiError) {
	if e := checkGroupName(in.LogGroupName, "logGroupName", true); e != nil {
		return nil, e
	}
	if e := checkStreamName(in.LogStreamName, "logStreamName", true); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.lookupGroup(*in.LogGroupName)
	if e != nil {
		return nil, e
	}
	st, ok := g.streams[*in.LogStreamName]
	if !ok {
		return nil, streamNotFound()
	}
	for _, ev := range st.events {
		g.bytes -= int64(len(ev.msg))
	}
	delete(g.streams, *in.LogStreamName)
	s.bury(g, st)
	return nil, nil
}

// visible returns the events of a stream its group's retention still keeps.
func visible(st *stream, cut int64) []event {
	i := sort.Search(len(st.events), func(i int) bool { return st.events[i].ts >= cut })
	return st.events[i:]
}

func (s *Service) streamOut(g *group, st *stream, cut int64) logStreamOut {
	out := logStreamOut{LogStreamName: st.name, CreationTime: st.created, Arn: s.streamARN(g.name, st.name)}
	if evs := visible(st, cut); len(evs) > 0 {
		first, last, ingest := evs[0].ts, evs[len(evs)-1].ts, st.lastIngest
		out.FirstEventTimestamp, out.LastEventTimestamp, out.LastIngestionTime = &first, &last, &ingest
		out.UploadSequenceToken = sequenceToken(st.uploads)
	}
	return out
}

func sequenceToken(n uint64) string {
	return fmt.Sprintf("4963%052d", n+1)
}

func lastEventTime(st *stream, cut int64) int64 {
	if evs := visible(st, cut); len(evs) > 0 {
		return evs[len(evs)-1].ts
	}
	return 0
}

type streamKey struct {
	T int64  `json:"t,omitempty"`
	N string `json:"n"`
}

func (s *Service) describeLogStreams(in *describeLogStreamsInput) (any, *apiError) {
	name, e := groupParam(in.LogGroupName, in.LogGroupIdentifier)
	if e != nil {
		return nil, e
	}
	if e := checkStreamName(in.LogStreamNamePrefix, "logStreamNamePrefix", false); e != nil {
		return nil, e
	}
	if e := checkLimit(in.Limit, 50); e != nil {
		return nil, e
	}
	byTime := false
	if in.OrderBy != nil {
		switch *in.OrderBy {
		case "LogStreamName":
		case "LastEventTime":
			byTime = true
		default:
			return nil, constraint(*in.OrderBy, "orderBy", "Member must satisfy enum value set: [LogStreamName, LastEventTime]")
		}
	}
	if byTime && in.LogStreamNamePrefix != nil {
		return nil, invalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.")
	}
	var after streamKey
	if e := decodeToken(in.NextToken, &after); e != nil {
		return nil, e
	}
	limit := 50
	if in.Limit != nil {
		limit = *in.Limit
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, e := s.lookupGroup(name)
	if e != nil {
		return nil, e
	}
	cut := g.cutoff(s.cfg.Now())
	keys := make([]streamKey, 0, len(g.streams))
	for n, st := range g.streams {
		if in.LogStreamNamePrefix != nil && !strings.HasPrefix(n, *in.LogStreamNamePrefix) {
			continue
		}
		k := streamKey{N: n}
		if byTime {
			k.T = lastEventTime(st, cut)
		}
		keys = append(keys, k)
	}
	less := func(a, b streamKey) bool {
		if a.T != b.T {
			return a.T < b.T
		}
		return a.N < b.N
	}
	if in.Descending {
		asc := less
		less = func(a, b streamKey) bool { return asc(b, a) }
	}
	sort.Slice(keys, func(i, j int) bool { return less(keys[i], keys[j]) })
	start := 0
	if in.NextToken != nil {
		start = sort.Search(len(keys), func(i int) bool { return less(after, keys[i]) })
	}
	out := describeLogStreamsOutput{LogStreams: []logStreamOut{}}
	for i := start; i < len(keys); i++ {
		if len(out.LogStreams) == limit {
			out.NextToken = encodeToken(keys[i-1])
			break
		}
		out.LogStreams = append(out.LogStreams, s.streamOut(g, g.streams[keys[i].N], cut))
	}
	return out, nil
}

// ---- events ----

const (
	maxBatchBytes   = 1048576
	eventOverhead   = 26
	maxEventBytes   = maxBatchBytes - eventOverhead
	maxBatchEvents  = 10000
	maxPageBytes    = 1048576
	maxEventsLimit  = 10000
	tooOldAge       = 14 * 24 * time.Hour
	tooNewAhead     = 2 * time.Hour
	maxBatchSpan    = 24 * time.Hour
	defaultPageSize = 10000
)

func (s *Service) putLogEvents(in *putLogEventsInput) (any, *apiError) {
	if e := checkGroupName(in.LogGroupName, "logGroupName", true); e != nil {
		return nil, e
	}
	if e := checkStreamName(in.LogStreamName, "logStreamName", true); e != nil {
		return nil, e
	}
	if in.LogEvents == nil {
		return nil, missing("logEvents")
	}
	if n := len(in.LogEvents); n < 1 || n > maxBatchEvents {
		rule := "Member must have length greater than or equal to 1"
		if n > maxBatchEvents {
			rule = fmt.Sprintf("Member must have length less than or equal to %d", maxBatchEvents)
		}
		return nil, constraint(fmt.Sprintf("list of %d events", n), "logEvents", rule)
	}
	size := 0
	for i, ev := range in.LogEvents {
		member := fmt.Sprintf("logEvents.%d.member", i+1)
		if ev.Timestamp == nil {
			return nil, missing(member + ".timestamp")
		}
		if *ev.Timestamp < 0 {
			return nil, constraint(*ev.Timestamp, member+".timestamp", "Member must have value greater than or equal to 0")
		}
		if ev.Message == nil {
			return nil, missing(member + ".message")
		}
		if *ev.Message == "" {
			return nil, constraint("", member+".message", "Member must have length greater than or equal to 1")
		}
		if len(*ev.Message) > maxEventBytes {
			return nil, invalidParameter("Log event too large: %d bytes exceeds limit of %d", len(*ev.Message), maxEventBytes)
		}
		size += len(*ev.Message) + eventOverhead
	}
	if size > maxBatchBytes {
		return nil, invalidParameter("Upload too large: %d bytes exceeds limit of %d", size, maxBatchBytes)
	}
	for i := 1; i < len(in.LogEvents); i++ {
		if *in.LogEvents[i].Timestamp < *in.LogEvents[i-1].Timestamp {
			return nil, invalidParameter("Log events in a single PutLogEvents request must be in chronological order.")
		}
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.lookupGroup(*in.LogGroupName)
	if e != nil {
		return nil, e
	}
	st, ok := g.streams[*in.LogStreamName]
	if !ok {
		return nil, streamNotFound()
	}
	// The events are sorted, so the rejected ones are a prefix (too old, expired) and a suffix
	// (too new).
	evs := in.LogEvents
	tooOld := now.Add(-tooOldAge).UnixMilli()
	tooNew := now.Add(tooNewAhead).UnixMilli()
	oldEnd := sort.Search(len(evs), func(i int) bool { return *evs[i].Timestamp >= tooOld })
	expiredEnd := 0
	if g.retention > 0 {
		expiredEnd = sort.Search(len(evs), func(i int) bool { return *evs[i].Timestamp >= g.cutoff(now) })
	}
	newStart := sort.Search(len(evs), func(i int) bool { return *evs[i].Timestamp > tooNew })
	first := max(oldEnd, expiredEnd)
	if first < newStart && *evs[newStart-1].Timestamp-*evs[first].Timestamp > maxBatchSpan.Milliseconds() {
		return nil, invalidParameter("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
	}
	kept := make([]event, 0, max(0, newStart-first))
	for _, ev := range evs[first:max(first, newStart)] {
		kept = append(kept, event{ts: *ev.Timestamp, msg: *ev.Message})
	}
	s.add(g, st, kept, now.UnixMilli())
	st.uploads++
	s.metaDirty = true
	out := putLogEventsOutput{NextSequenceToken: sequenceToken(st.uploads)}
	if oldEnd > 0 || expiredEnd > 0 || newStart < len(evs) {
		out.RejectedLogEventsInfo = &rejectedLogEventsInfo{}
		if oldEnd > 0 {
			out.RejectedLogEventsInfo.TooOldLogEventEndIndex = &oldEnd
		}
		if expiredEnd > 0 {
			out.RejectedLogEventsInfo.ExpiredLogEventEndIndex = &expiredEnd
		}
		if newStart < len(evs) {
			out.RejectedLogEventsInfo.TooNewLogEventStartIndex = &newStart
		}
	}
	return out, nil
}

// timeRange checks startTime and endTime.
func timeRange(start, end *int64) *apiError {
	if start != nil && *start < 0 {
		return constraint(*start, "startTime", "Member must have value greater than or equal to 0")
	}
	if end != nil && *end < 0 {
		return constraint(*end, "endTime", "Member must have value greater than or equal to 0")
	}
	if start != nil && end != nil && *start > *end {
		return invalidParameter("startTime (%d) must be less than or equal to endTime (%d).", *start, *end)
	}
	return nil
}

// A GetLogEvents token is a position between two events of the stream, written as CloudWatch
// Logs writes its tokens (f/ or b/ and 56 digits): "f/" and an event's ID is just after that
// event, going forward; "b/" and an event's ID is just before it, going backward.
func parseGetToken(tok string) (forward bool, ts int64, seq uint64, ok bool) {
	dir, digits, found := strings.Cut(tok, "/")
	if !found || dir != "f" && dir != "b" || len(digits) != 56 {
		return false, 0, 0, false
	}
	t, err1 := strconv.ParseInt(digits[:20], 10, 64)
	q, err2 := strconv.ParseUint(digits[20:], 10, 64)
	if err1 != nil || err2 != nil {
		return false, 0, 0, false
	}
	return dir == "f", t, q, true
}

func forwardToken(ts int64, seq uint64) string  { return fmt.Sprintf("f/%020d%036d", ts, seq) }
func backwardToken(ts int64, seq uint64) string { return fmt.Sprintf("b/%020d%036d", ts, seq) }

func (s *Service) getLogEvents(in *getLogEventsInput) (any, *apiError) {
	name, e := groupParam(in.LogGroupName, in.LogGroupIdentifier)
	if e != nil {
		return nil, e
	}
	if e := checkStreamName(in.LogStreamName, "logStreamName", true); e != nil {
		return nil, e
	}
	if e := checkLimit(in.Limit, maxEventsLimit); e != nil {
		return nil, e
	}
	if e := timeRange(in.StartTime, in.EndTime); e != nil {
		return nil, e
	}
	var forward bool
	var tokTS int64
	var tokSeq uint64
	if in.NextToken != nil {
		var ok bool
		if forward, tokTS, tokSeq, ok = parseGetToken(*in.NextToken); !ok {
			return nil, invalidToken()
		}
	}
	limit := defaultPageSize
	if in.Limit != nil {
		limit = *in.Limit
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, e := s.lookupGroup(name)
	if e != nil {
		return nil, e
	}
	st, ok := g.streams[*in.LogStreamName]
	if !ok {
		return nil, streamNotFound()
	}
	// [lo, hi) are the events in the time range that retention keeps.
	evs := st.events
	from := g.cutoff(s.cfg.Now())
	if in.StartTime != nil {
		from = max(from, *in.StartTime)
	}
	lo := sort.Search(len(evs), func(i int) bool { return evs[i].ts >= from })
	hi := len(evs)
	if in.EndTime != nil {
		hi = sort.Search(len(evs), func(i int) bool { return evs[i].ts >= *in.EndTime })
	}
	hi = max(lo, hi)
	var a, b int // the page is evs[a:b]
	switch {
	case in.NextToken == nil && in.StartFromHead, in.NextToken != nil && forward:
		a = lo
		if in.NextToken != nil {
			// The first event after (tokTS, tokSeq).
			a = max(lo, sort.Search(len(evs), func(i int) bool { return !evs[i].before(tokTS, tokSeq+1) }))
		}
		b = a
		size := 0
		for b < hi && b-a < limit {
			size += len(evs[b].msg) + eventOverhead
			if size > maxPageBytes && b > a {
				break
			}
			b++
		}
	default:
		b = hi
		if in.NextToken != nil {
			// Just before (tokTS, tokSeq).
			b = min(hi, sort.Search(len(evs), func(i int) bool { return !evs[i].before(tokTS, tokSeq) }))
		}
		b = max(b, lo)
		a = b
		size := 0
		for a > lo && b-a < limit {
			size += len(evs[a-1].msg) + eventOverhead
			if size > maxPageBytes && b > a {
				break
			}
			a--
		}
	}
	out := getLogEventsOutput{Events: make([]outputLogEvent, 0, b-a)}
	for _, ev := range evs[a:b] {
		out.Events = append(out.Events, outputLogEvent{Timestamp: ev.ts, Message: ev.msg, IngestionTime: ev.ingest})
	}
	switch {
	case b > a:
		out.NextForwardToken = forwardToken(evs[b-1].ts, evs[b-1].seq)
		out.NextBackwardToken = backwardToken(evs[a].ts, evs[a].seq)
	case in.NextToken != nil && forward:
		// The end of the stream: the same forward token, and a backward one from here.
		out.NextForwardToken = *in.NextToken
		out.NextBackwardToken = backwardToken(tokTS, tokSeq+1)
	case in.NextToken != nil:
		out.NextBackwardToken = *in.NextToken
		if tokSeq > 0 {
			out.NextForwardToken = forwardToken(tokTS, tokSeq-1)
		} else {
			out.NextForwardToken = forwardToken(tokTS-1, 1<<63)
		}
	default:
		// Nothing in range: positions before everything, so that later events are read forward.
		out.NextForwardToken = forwardToken(0, 0)
		out.NextBackwardToken = backwardToken(0, 0)
	}
	return out, nil
}

// eventID is a 56-digit decimal ID, as CloudWatch Logs' are: the timestamp, then the sequence.
func eventID(ev *event) string {
	return fmt.Sprintf("%020d%036d", ev.ts, ev.seq)
}

// cursor is a FilterLogEvents position: the last event returned.
type cursor struct {
	T int64  `json:"t"`
	S uint64 `json:"s"`
}

// streamIter walks one stream's events for the merge.
type streamIter struct {
	st  *stream
	evs []event
	i   int
}

type mergeHeap []*streamIter

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	a, b := &h[i].evs[h[i].i], &h[j].evs[h[j].i]
	return a.before(b.ts, b.seq)
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*streamIter)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (s *Service) filterLogEvents(in *filterLogEventsInput) (any, *apiError) {
	name, e := groupParam(in.LogGroupName, in.LogGroupIdentifier)
	if e != nil {
		return nil, e
	}
	if in.LogStreamNames != nil {
		if n := len(in.LogStreamNames); n < 1 || n > 100 {
			return nil, constraint(in.LogStreamNames, "logStreamNames", "Member must have length between 1 and 100")
		}
		for i := range in.LogStreamNames {
			if e := checkStreamName(&in.LogStreamNames[i], fmt.Sprintf("logStreamNames.%d.member", i+1), true); e != nil {
				return nil, e
			}
		}
	}
	if e := checkStreamName(in.LogStreamNamePrefix, "logStreamNamePrefix", false); e != nil {
		return nil, e
	}
	if in.LogStreamNames != nil && in.LogStreamNamePrefix != nil {
		return nil, invalidParameter("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
	}
	if e := checkString(in.FilterPattern, "filterPattern", false, 0, 1024, nil); e != nil {
		return nil, e
	}
	if e := checkLimit(in.Limit, maxEventsLimit); e != nil {
		return nil, e
	}
	if e := timeRange(in.StartTime, in.EndTime); e != nil {
		return nil, e
	}
	pat, err := compilePattern(strOr(in.FilterPattern))
	if err != nil {
		return nil, invalidParameter("%v", err)
	}
	var after cursor
	if e := decodeToken(in.NextToken, &after); e != nil {
		return nil, e
	}
	limit := defaultPageSize
	if in.Limit != nil {
		limit = *in.Limit
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, e := s.lookupGroup(name)
	if e != nil {
		return nil, e
	}
	var streams []*stream
	switch {
	case in.LogStreamNames != nil:
		for _, n := range in.LogStreamNames {
			st, ok := g.streams[n]
			if !ok {
				return nil, streamNotFound()
			}
			if !slices.Contains(streams, st) {
				streams = append(streams, st)
			}
		}
	default:
		for n, st := range g.streams {
			if in.LogStreamNamePrefix == nil || strings.HasPrefix(n, *in.LogStreamNamePrefix) {
				streams = append(streams, st)
			}
		}
	}
	from := g.cutoff(s.cfg.Now())
	if in.StartTime != nil {
		from = max(from, *in.StartTime)
	}
	h := mergeHeap{}
	for _, st := range streams {
		evs := st.events
		i := sort.Search(len(evs), func(i int) bool { return evs[i].ts >= from })
		if in.NextToken != nil {
			i = max(i, sort.Search(len(evs), func(i int) bool { return !evs[i].before(after.T, after.S+1) }))
		}
		j := len(evs)
		if in.EndTime != nil {
			j = sort.Search(len(evs), func(i int) bool { return evs[i].ts > *in.EndTime })
		}
		if i < j {
			h = append(h, &streamIter{st: st, evs: evs[i:j]})
		}
	}
	heap.Init(&h)
	out := filterLogEventsOutput{Events: []filteredLogEvent{}, SearchedLogStreams: []searchedLogStream{}}
	size := 0
	var last *event
	for h.Len() > 0 {
		it := h[0]
		ev := &it.evs[it.i]
		if it.i++; it.i == len(it.evs) {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
		if !pat.match(ev.msg) {
			continue
		}
		size += len(ev.msg) + eventOverhead
		if len(out.Events) == limit || size > maxPageBytes && len(out.Events) > 0 {
			// There is more: the next page starts after the last event returned.
			out.NextToken = encodeToken(cursor{T: last.ts, S: last.seq})
			break
		}
		out.Events = append(out.Events, filteredLogEvent{LogStreamName: it.st.name, Timestamp: ev.ts, Message: ev.msg, IngestionTime: ev.ingest, EventID: eventID(ev)})
		last = ev
	}
	return out, nil
}

// ---- retention ----

var retentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

func (s *Service) putRetentionPolicy(in *putRetentionPolicyInput) (any, *apiError) {
	if e := checkGroupName(in.LogGroupName, "logGroupName", true); e != nil {
		return nil, e
	}
	if in.RetentionInDays == nil {
		return nil, missing("retentionInDays")
	}
	if !slices.Contains(retentionDays, *in.RetentionInDays) {
		set := make([]string, len(retentionDays))
		for i, d := range retentionDays {
			set[i] = strconv.Itoa(d)
		}
		return nil, constraint(*in.RetentionInDays, "retentionInDays", "Member must satisfy enum value set: ["+strings.Join(set, ", ")+"]")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.lookupGroup(*in.LogGroupName)
	if e != nil {
		return nil, e
	}
	g.retention = *in.RetentionInDays
	s.expireGroup(g, s.cfg.Now())
	s.metaDirty = true
	return nil, nil
}

func (s *Service) deleteRetentionPolicy(in *logGroupNameInput) (any, *apiError) {
	if e := checkGroupName(in.LogGroupName, "logGroupName", true); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.lookupGroup(*in.LogGroupName)
	if e != nil {
		return nil, e
	}
	g.retention = 0
	s.metaDirty = true
	return nil, nil
}

// ---- tags ----

// addTags merges tags into a group's, refusing to go past 50.
func (s *Service) addTags(name string, tags map[string]string, tooMany func() *apiError) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.lookupGroup(name)
	if e != nil {
		return e
	}
	merged := maps.Clone(g.tags)
	maps.Copy(merged, tags)
	if len(merged) > 50 {
		return tooMany()
	}
	g.tags = merged
	s.metaDirty = true
	return nil
}

func (s *Service) removeTags(name string, keys []string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, e := s.lookupGroup(name)
	if e != nil {
		return e
	}
	for _, k := range keys {
		delete(g.tags, k)
	}
	s.metaDirty = true
	return nil
}

func (s *Service) tagsOf(name string) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, e := s.lookupGroup(name)
	if e != nil {
		return nil, e
	}
	return tagsOutput{Tags: maps.Clone(g.tags)}, nil
}

func (s *Service) tagLogGroup(in *tagLogGroupInput) (any, *apiError) {
	if e := checkGroupName(in.LogGroupName, "logGroupName", true); e != nil {
		return nil, e
	}
	if in.Tags == nil {
		return nil, missing("tags")
	}
	if e := checkTags(in.Tags, "tags"); e != nil {
		return nil, e
	}
	return nil, s.addTags(*in.LogGroupName, in.Tags, func() *apiError {
		return invalidParameter("A log group can have no more than 50 tags.")
	})
}

func (s *Service) untagLogGroup(in *untagLogGroupInput) (any, *apiError) {
	if e := checkGroupName(in.LogGroupName, "logGroupName", true); e != nil {
		return nil, e
	}
	if len(in.Tags) == 0 {
		if in.Tags == nil {
			return nil, missing("tags")
		}
		return nil, constraint("[]", "tags", "Member must have length greater than or equal to 1")
	}
	return nil, s.removeTags(*in.LogGroupName, in.Tags)
}

func (s *Service) listTagsLogGroup(in *logGroupNameInput) (any, *apiError) {
	if e := checkGroupName(in.LogGroupName, "logGroupName", true); e != nil {
		return nil, e
	}
	return s.tagsOf(*in.LogGroupName)
}

// resourceGroup resolves a TagResource-style ARN to a log group name.
func resourceGroup(arn *string) (string, *apiError) {
	if e := checkString(arn, "resourceArn", true, 1, 1011, arnRE); e != nil {
		return "", e
	}
	name, ok := groupFromARN(*arn)
	if !ok {
		return "", invalidParameter("The resource ARN %s is not a log group ARN (arn:aws:logs:REGION:ACCOUNT:log-group:NAME).", *arn)
	}
	return name, nil
}

func (s *Service) tagResource(in *tagResourceInput) (any, *apiError) {
	name, e := resourceGroup(in.ResourceArn)
	if e != nil {
		return nil, e
	}
	if in.Tags == nil {
		return nil, missing("tags")
	}
	if e := checkTags(in.Tags, "tags"); e != nil {
		return nil, e
	}
	return nil, s.addTags(name, in.Tags, func() *apiError {
		return protocol.Errorf("TooManyTagsException", "A resource can have no more than 50 tags.")
	})
}

func (s *Service) untagResource(in *untagResourceInput) (any, *apiError) {
	name, e := resourceGroup(in.ResourceArn)
	if e != nil {
		return nil, e
	}
	if in.TagKeys == nil {
		return nil, missing("tagKeys")
	}
	if len(in.TagKeys) > 50 {
		return nil, constraint(in.TagKeys, "tagKeys", "Member must have length less than or equal to 50")
	}
	return nil, s.removeTags(name, in.TagKeys)
}

func (s *Service) listTagsForResource(in *resourceArnInput) (any, *apiError) {
	name, e := resourceGroup(in.ResourceArn)
	if e != nil {
		return nil, e
	}
	return s.tagsOf(name)
}
