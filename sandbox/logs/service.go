// Package logs is the sandbox's Amazon CloudWatch Logs: log groups and streams, PutLogEvents,
// GetLogEvents and FilterLogEvents with CloudWatch's filter pattern syntax, retention policies and
// tags, over the awsJson1_1 protocol (X-Amz-Target Logs_20140328.<Operation>). In-process writers
// such as the sandbox's Lambda use Write, which creates groups and streams as Lambda does.
//
// The rule it keeps: it behaves as the botocore model (logs/2014-03-28) and the CloudWatch Logs
// documentation say — required parameters, limits, error types, pagination tokens — so that a
// client cannot tell it from the service.
package logs

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/sandbox/limits"
)

// Config sets up a Service.
type Config struct {
	Region  string
	Account string
	// DataDir keeps log groups and events across restarts; "" keeps them in memory.
	DataDir string
	// SaveInterval is how often new events and changed groups are written to DataDir (besides at
	// Close); the default is a second.
	SaveInterval time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// Service is the sandbox's CloudWatch Logs.
type Service struct {
	cfg    Config
	mu     sync.RWMutex
	groups map[string]*group
	seq    uint64 // the last event sequence number handed out
	// Persistence (with a data directory): events not yet journaled, whether groups or streams
	// changed, and deletions the journal's replay must honour.
	pending    []journalEntry
	metaDirty  bool
	tombstones []tombstone
	saveMu     sync.Mutex
	stop       chan struct{}
	done       chan struct{}
	closed     bool
}

// New starts a Service; Close saves its state and stops it.
func New(cfg Config) (*Service, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SaveInterval <= 0 {
		cfg.SaveInterval = time.Second
	}
	s := &Service{cfg: cfg, groups: map[string]*group{}, stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.load(); err != nil {
		return nil, err
	}
	go s.background()
	return s, nil
}

// Close stops the background work and, with a data directory, saves every group and event.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	return s.compact()
}

// background applies retention and saves changed state now and then.
func (s *Service) background() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.SaveInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.expire()
		if err := s.save(); err != nil {
			s.cfg.Logger.Error("persist cloudwatch logs", "err", err)
		}
	}
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

const targetPrefix = "Logs_20140328."

// apiError is a CloudWatch Logs error: the model's shape name, which awsJson1_1 clients match on
// __type, its message and HTTP status.
type apiError struct {
	Type    string
	Message string
	Status  int
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

func invalidParameter(format string, args ...any) *apiError {
	return &apiError{Type: "InvalidParameterException", Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{Type: "ResourceNotFoundException", Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

func alreadyExists(format string, args ...any) *apiError {
	return &apiError{Type: "ResourceAlreadyExistsException", Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

func groupNotFound() *apiError  { return notFound("The specified log group does not exist.") }
func streamNotFound() *apiError { return notFound("The specified log stream does not exist.") }

func invalidToken() *apiError { return invalidParameter("The specified nextToken is invalid.") }

// Handler serves the CloudWatch Logs API.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqID := newRequestID()
		target := r.Header.Get("X-Amz-Target")
		op, ok := strings.CutPrefix(target, targetPrefix)
		if r.Method != http.MethodPost || !ok {
			writeError(w, reqID, &apiError{Type: "UnknownOperationException", Status: http.StatusBadRequest,
				Message: fmt.Sprintf("CloudWatch Logs is served as POST / with X-Amz-Target %s<Operation>; got %s %s with X-Amz-Target %q.", targetPrefix, r.Method, r.URL.Path, target)})
			return
		}
		h, ok := handlers[op]
		if !ok {
			writeError(w, reqID, &apiError{Type: "UnknownOperationException", Status: http.StatusBadRequest,
				Message: fmt.Sprintf("The operation %s is not served by the Aviary sandbox's CloudWatch Logs (it serves %s).", op, strings.Join(operationNames(), ", "))})
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			writeError(w, reqID, &apiError{Type: "SerializationException", Status: http.StatusBadRequest, Message: err.Error()})
			return
		}
		if ref := limits.Admit(l, r, limits.Op{Service: "logs", Name: op, Resource: peekGroup(body)}); ref != nil {
			if ref.Kind == limits.InjectedServerError {
				writeError(w, reqID, &apiError{Type: "ServiceUnavailableException", Status: http.StatusInternalServerError, Message: "The service cannot complete the request (injected by the sandbox's fault settings)."})
			} else {
				writeError(w, reqID, &apiError{Type: "ThrottlingException", Status: http.StatusBadRequest, Message: "Rate exceeded"})
			}
			return
		}
		out, aerr := h(s, body)
		if aerr != nil {
			writeError(w, reqID, aerr)
			return
		}
		w.Header().Set("x-amzn-RequestId", reqID)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusOK)
		if out == nil {
			io.WriteString(w, "{}")
			return
		}
		_ = json.NewEncoder(w).Encode(out)
	})
}

// peekGroup names the log group a request acts on, for the request log.
func peekGroup(body []byte) string {
	var in struct {
		LogGroupName       string `json:"logGroupName"`
		LogGroupIdentifier string `json:"logGroupIdentifier"`
		ResourceArn        string `json:"resourceArn"`
	}
	_ = json.Unmarshal(body, &in)
	switch {
	case in.LogGroupName != "":
		return in.LogGroupName
	case in.LogGroupIdentifier != "":
		return in.LogGroupIdentifier
	}
	return in.ResourceArn
}

func writeError(w http.ResponseWriter, reqID string, e *apiError) {
	h := w.Header()
	h.Set("x-amzn-RequestId", reqID)
	h.Set("x-amzn-ErrorType", e.Type)
	h.Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.Type, "message": e.Message})
}

type handler func(s *Service, body []byte) (any, *apiError)

// decodeAs decodes an operation's input; a body that is not the input's JSON is a
// SerializationException, as awsJson services answer it.
func decodeAs[T any](body []byte) (*T, *apiError) {
	in := new(T)
	if len(body) == 0 {
		return in, nil
	}
	if err := json.Unmarshal(body, in); err != nil {
		return nil, &apiError{Type: "SerializationException", Status: http.StatusBadRequest, Message: err.Error()}
	}
	return in, nil
}

func typed[T any](f func(s *Service, in *T) (any, *apiError)) handler {
	return func(s *Service, body []byte) (any, *apiError) {
		in, err := decodeAs[T](body)
		if err != nil {
			return nil, err
		}
		return f(s, in)
	}
}

var handlers = map[string]handler{
	"CreateLogGroup":        typed((*Service).createLogGroup),
	"DeleteLogGroup":        typed((*Service).deleteLogGroup),
	"DescribeLogGroups":     typed((*Service).describeLogGroups),
	"CreateLogStream":       typed((*Service).createLogStream),
	"DeleteLogStream":       typed((*Service).deleteLogStream),
	"DescribeLogStreams":    typed((*Service).describeLogStreams),
	"PutLogEvents":          typed((*Service).putLogEvents),
	"GetLogEvents":          typed((*Service).getLogEvents),
	"FilterLogEvents":       typed((*Service).filterLogEvents),
	"PutRetentionPolicy":    typed((*Service).putRetentionPolicy),
	"DeleteRetentionPolicy": typed((*Service).deleteRetentionPolicy),
	"TagLogGroup":           typed((*Service).tagLogGroup),
	"UntagLogGroup":         typed((*Service).untagLogGroup),
	"ListTagsLogGroup":      typed((*Service).listTagsLogGroup),
	"TagResource":           typed((*Service).tagResource),
	"UntagResource":         typed((*Service).untagResource),
	"ListTagsForResource":   typed((*Service).listTagsForResource),
}

func operationNames() []string {
	names := make([]string, 0, len(handlers))
	for n := range handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
