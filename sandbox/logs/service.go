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
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
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

//go:generate go run ../protocol/errorsgen -model logs/2014-03-28 -o model_gen.go

// apiError is a CloudWatch Logs error: the model's shape name (which awsJson1_1 clients match on
// __type), its message; the status comes from the model.
type apiError = protocol.Error

func invalidParameter(format string, args ...any) *apiError {
	return protocol.Errorf("InvalidParameterException", format, args...)
}

func notFound(format string, args ...any) *apiError {
	return protocol.Errorf("ResourceNotFoundException", format, args...)
}

func alreadyExists(format string, args ...any) *apiError {
	return protocol.Errorf("ResourceAlreadyExistsException", format, args...)
}

func groupNotFound() *apiError  { return notFound("The specified log group does not exist.") }
func streamNotFound() *apiError { return notFound("The specified log stream does not exist.") }

func invalidToken() *apiError { return invalidParameter("The specified nextToken is invalid.") }

// Handler serves the CloudWatch Logs API; l is asked about every request.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "logs", Model: apiModel, Limits: l,
		Classify: func(req *protocol.Request, _ any) (string, string) { return peekGroup(req.Body), "" },
		Refused: func(ref *limits.Refusal) *protocol.Error {
			if ref.Kind == limits.InjectedServerError {
				return protocol.Errorf("ServiceUnavailableException", "The service cannot complete the request (injected by the sandbox's fault settings).")
			}
			return &protocol.Error{Code: "ThrottlingException", Status: http.StatusBadRequest, Message: "Rate exceeded"}
		},
		MaxBody: 8 << 20,
	}
	handle(api, s, "CreateLogGroup", (*Service).createLogGroup)
	handle(api, s, "DeleteLogGroup", (*Service).deleteLogGroup)
	handle(api, s, "DescribeLogGroups", (*Service).describeLogGroups)
	handle(api, s, "CreateLogStream", (*Service).createLogStream)
	handle(api, s, "DeleteLogStream", (*Service).deleteLogStream)
	handle(api, s, "DescribeLogStreams", (*Service).describeLogStreams)
	handle(api, s, "PutLogEvents", (*Service).putLogEvents)
	handle(api, s, "GetLogEvents", (*Service).getLogEvents)
	handle(api, s, "FilterLogEvents", (*Service).filterLogEvents)
	handle(api, s, "PutRetentionPolicy", (*Service).putRetentionPolicy)
	handle(api, s, "DeleteRetentionPolicy", (*Service).deleteRetentionPolicy)
	handle(api, s, "TagLogGroup", (*Service).tagLogGroup)
	handle(api, s, "UntagLogGroup", (*Service).untagLogGroup)
	handle(api, s, "ListTagsLogGroup", (*Service).listTagsLogGroup)
	handle(api, s, "TagResource", (*Service).tagResource)
	handle(api, s, "UntagResource", (*Service).untagResource)
	handle(api, s, "ListTagsForResource", (*Service).listTagsForResource)
	return api
}

// handle registers an operation whose output is untyped (any): each returns its own shape.
func handle[T any](api *protocol.Service, s *Service, name string, f func(*Service, *T) (any, *apiError)) {
	protocol.Handle(api, name, func(_ context.Context, _ *protocol.Request, in *T) (*any, *apiError) {
		out, err := f(s, in)
		if err != nil {
			return nil, err
		}
		if out == nil {
			return nil, nil
		}
		return &out, nil
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
