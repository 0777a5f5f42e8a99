// Package sns is the sandbox's Amazon Simple Notification Service over the query protocol:
// topics (CreateTopic, DeleteTopic, ListTopics), subscriptions (Subscribe, Unsubscribe,
// ListSubscriptionsByTopic) and Publish. A message published to a topic is delivered to its
// Lambda subscriptions as the event Lambda receives from SNS (Records[].Sns, EventSource
// "aws:sns"), by an asynchronous (Event) invocation of the subscribed function; CodeDeploy's
// triggers publish through [Service.Publish].
//
// The rule it keeps: what a publisher and a subscribed function can see is AWS's — NotFound for
// a topic that does not exist, InvalidParameter for an empty message, the event's shape. Only
// the lambda protocol is delivered; subscriptions of other protocols are kept (http, https and
// email ones pending confirmation, as AWS has them) but receive nothing. Signatures in the event
// are placeholders, and the function's resource policy is not checked. State is in memory.
package sns

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

//go:generate go run ../protocol/errorsgen -model sns/2010-03-31 -o model_gen.go

// Functions invokes a subscribed Lambda function asynchronously.
type Functions interface {
	InvokeEvent(functionARN string, payload []byte) error
}

// Config sets up a Service.
type Config struct {
	Region, Account string
	Functions       Functions
	Now             func() time.Time
	Logger          *slog.Logger
}

// Service is the sandbox's SNS.
type Service struct {
	cfg    Config
	mu     sync.Mutex
	topics map[string]*topic // by ARN
}

type topic struct {
	arn  string
	subs []*subscription
}

type subscription struct {
	arn, protocol, endpoint string
	pending                 bool
}

// New returns an SNS with no topics.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, topics: map[string]*topic{}}
}

// Handler serves the SNS API; l is asked about every request.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "sns", Model: apiModel, Limits: l,
		DecodeError: func(err error) *protocol.Error { return invalid("%v", err) }}
	protocol.Handle(api, "CreateTopic", s.createTopic)
	protocol.Handle(api, "DeleteTopic", s.deleteTopic)
	protocol.Handle(api, "ListTopics", s.listTopics)
	protocol.Handle(api, "Subscribe", s.subscribe)
	protocol.Handle(api, "Unsubscribe", s.unsubscribe)
	protocol.Handle(api, "ListSubscriptionsByTopic", s.listSubscriptions)
	protocol.Handle(api, "Publish", s.publish)
	return api
}

func invalid(format string, args ...any) *protocol.Error {
	return &protocol.Error{Code: "InvalidParameterException", Message: "Invalid parameter: " + fmt.Sprintf(format, args...)}
}

func topicNotFound() *protocol.Error {
	return &protocol.Error{Code: "NotFoundException", Message: "Topic does not exist"}
}

var topicName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}(\.fifo)?$`)

type createTopicInput struct {
	Name       string
	Attributes map[string]string
}

type createTopicOutput struct {
	TopicArn string `xml:"TopicArn"`
}

func (s *Service) createTopic(_ context.Context, _ *protocol.Request, in *createTopicInput) (*createTopicOutput, *protocol.Error) {
	if !topicName.MatchString(in.Name) || len(in.Name) > 256 {
		return nil, invalid("Topic Name")
	}
	arn := fmt.Sprintf("arn:aws:sns:%s:%s:%s", s.cfg.Region, s.cfg.Account, in.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.topics[arn]; !ok {
		s.topics[arn] = &topic{arn: arn}
	}
	return &createTopicOutput{TopicArn: arn}, nil
}

type topicInput struct{ TopicArn string }

func (s *Service) deleteTopic(_ context.Context, _ *protocol.Request, in *topicInput) (*struct{}, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.topics, in.TopicArn) // deleting a topic that does not exist succeeds, as in AWS
	return nil, nil
}

type topicEntry struct {
	TopicArn string `xml:"TopicArn"`
}

type listTopicsOutput struct {
	Topics []topicEntry `xml:"Topics>member"`
}

type listTopicsInput struct{ NextToken string }

func (s *Service) listTopics(_ context.Context, _ *protocol.Request, _ *listTopicsInput) (*listTopicsOutput, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &listTopicsOutput{Topics: []topicEntry{}}
	for arn := range s.topics {
		out.Topics = append(out.Topics, topicEntry{arn})
	}
	sort.Slice(out.Topics, func(i, j int) bool { return out.Topics[i].TopicArn < out.Topics[j].TopicArn })
	return out, nil
}

type subscribeInput struct {
	TopicArn              string
	Protocol              string
	Endpoint              string
	ReturnSubscriptionArn bool
}

type subscribeOutput struct {
	SubscriptionArn string `xml:"SubscriptionArn"`
}

var protocols = []string{"http", "https", "email", "email-json", "sms", "sqs", "application", "lambda", "firehose"}

func (s *Service) subscribe(_ context.Context, _ *protocol.Request, in *subscribeInput) (*subscribeOutput, *protocol.Error) {
	if !slices.Contains(protocols, in.Protocol) {
		return nil, invalid("Invalid protocol type: %s", in.Protocol)
	}
	if in.Endpoint == "" {
		return nil, invalid("Endpoint")
	}
	if in.Protocol == "lambda" && !strings.HasPrefix(in.Endpoint, "arn:aws:lambda:") {
		return nil, invalid("Lambda endpoint ARN")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[in.TopicArn]
	if !ok {
		return nil, topicNotFound()
	}
	for _, sub := range t.subs {
		if sub.protocol == in.Protocol && sub.endpoint == in.Endpoint {
			return s.subscriptionARN(sub, in.ReturnSubscriptionArn), nil
		}
	}
	sub := &subscription{arn: t.arn + ":" + protocol.NewRequestID(), protocol: in.Protocol, endpoint: in.Endpoint,
		pending: in.Protocol == "http" || in.Protocol == "https" || strings.HasPrefix(in.Protocol, "email")}
	t.subs = append(t.subs, sub)
	return s.subscriptionARN(sub, in.ReturnSubscriptionArn), nil
}

func (s *Service) subscriptionARN(sub *subscription, always bool) *subscribeOutput {
	if sub.pending && !always {
		return &subscribeOutput{SubscriptionArn: "pending confirmation"}
	}
	return &subscribeOutput{SubscriptionArn: sub.arn}
}

type unsubscribeInput struct{ SubscriptionArn string }

func (s *Service) unsubscribe(_ context.Context, _ *protocol.Request, in *unsubscribeInput) (*struct{}, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.topics {
		n := len(t.subs)
		t.subs = slices.DeleteFunc(t.subs, func(sub *subscription) bool { return sub.arn == in.SubscriptionArn })
		if len(t.subs) != n {
			return nil, nil
		}
	}
	return nil, &protocol.Error{Code: "NotFoundException", Message: "Subscription does not exist"}
}

type subscriptionEntry struct {
	SubscriptionArn string `xml:"SubscriptionArn"`
	Owner           string `xml:"Owner"`
	Protocol        string `xml:"Protocol"`
	Endpoint        string `xml:"Endpoint"`
	TopicArn        string `xml:"TopicArn"`
}

type listSubscriptionsOutput struct {
	Subscriptions []subscriptionEntry `xml:"Subscriptions>member"`
}

type listSubscriptionsInput struct {
	TopicArn  string
	NextToken string
}

func (s *Service) listSubscriptions(_ context.Context, _ *protocol.Request, in *listSubscriptionsInput) (*listSubscriptionsOutput, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[in.TopicArn]
	if !ok {
		return nil, topicNotFound()
	}
	out := &listSubscriptionsOutput{Subscriptions: []subscriptionEntry{}}
	for _, sub := range t.subs {
		arn := sub.arn
		if sub.pending {
			arn = "PendingConfirmation"
		}
		out.Subscriptions = append(out.Subscriptions, subscriptionEntry{arn, s.cfg.Account, sub.protocol, sub.endpoint, t.arn})
	}
	return out, nil
}

type publishInput struct {
	TopicArn  string
	TargetArn string
	Message   string
	Subject   string
	// MessageAttributes are read from the form by messageAttributes: SNS names a map entry's
	// members Name and Value, not key and value.
	MessageAttributes struct{} `json:"-"`
}

type publishOutput struct {
	MessageID string `xml:"MessageId"`
}

// messageAttributes reads MessageAttributes.entry.N.Name / .Value.DataType / .Value.StringValue.
func messageAttributes(body []byte) map[string]map[string]string {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil
	}
	attrs := map[string]map[string]string{}
	for i := 1; ; i++ {
		p := "MessageAttributes.entry." + strconv.Itoa(i)
		name := form.Get(p + ".Name")
		if name == "" {
			return attrs
		}
		attrs[name] = map[string]string{"Type": form.Get(p + ".Value.DataType"), "Value": form.Get(p + ".Value.StringValue")}
	}
}

func (s *Service) publish(_ context.Context, req *protocol.Request, in *publishInput) (*publishOutput, *protocol.Error) {
	arn := in.TopicArn
	if arn == "" {
		arn = in.TargetArn
	}
	if arn == "" {
		return nil, invalid("TopicArn or TargetArn Reason: no value for required parameter")
	}
	if in.Message == "" {
		return nil, invalid("Empty message")
	}
	if len(in.Subject) > 100 {
		return nil, invalid("Subject")
	}
	attrs := messageAttributes(req.Body)
	id, err := s.Publish(arn, in.Subject, in.Message, attrs)
	if err != nil {
		return nil, topicNotFound()
	}
	return &publishOutput{MessageID: id}, nil
}

// ErrNoTopic is what Publish answers for a topic that does not exist.
var ErrNoTopic = fmt.Errorf("topic does not exist")

// Publish publishes a message to a topic and delivers it to the topic's Lambda subscriptions; it
// returns the message ID. Delivery is asynchronous: a function that fails or does not exist is
// logged, not reported to the publisher, as in AWS.
func (s *Service) Publish(topicARN, subject, message string, attrs map[string]map[string]string) (string, error) {
	s.mu.Lock()
	t, ok := s.topics[topicARN]
	var subs []subscription
	if ok {
		for _, sub := range t.subs {
			subs = append(subs, *sub)
		}
	}
	s.mu.Unlock()
	if !ok {
		return "", ErrNoTopic
	}
	id := protocol.NewRequestID()
	now := s.cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	for _, sub := range subs {
		if sub.protocol != "lambda" || s.cfg.Functions == nil {
			continue
		}
		var subj any
		if subject != "" {
			subj = subject
		}
		if attrs == nil {
			attrs = map[string]map[string]string{}
		}
		ev := map[string]any{"Records": []any{map[string]any{
			"EventSource":          "aws:sns",
			"EventVersion":         "1.0",
			"EventSubscriptionArn": sub.arn,
			"Sns": map[string]any{
				"Type":              "Notification",
				"MessageId":         id,
				"TopicArn":          topicARN,
				"Subject":           subj,
				"Message":           message,
				"Timestamp":         now,
				"SignatureVersion":  "1",
				"Signature":         "c2FuZGJveA==", // the sandbox does not sign
				"SigningCertUrl":    fmt.Sprintf("https://sns.%s.amazonaws.com/SimpleNotificationService-sandbox.pem", s.cfg.Region),
				"UnsubscribeUrl":    fmt.Sprintf("https://sns.%s.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=%s", s.cfg.Region, sub.arn),
				"MessageAttributes": attrs,
			},
		}}}
		b, _ := json.Marshal(ev)
		if err := s.cfg.Functions.InvokeEvent(sub.endpoint, b); err != nil {
			s.cfg.Logger.Warn("sns: delivery to a lambda subscription failed", "topic", topicARN, "function", sub.endpoint, "err", err)
		}
	}
	return id, nil
}

// HasTopic reports whether the topic exists.
func (s *Service) HasTopic(arn string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.topics[arn]
	return ok
}
