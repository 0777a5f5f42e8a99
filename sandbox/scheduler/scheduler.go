// Package scheduler is the sandbox's Amazon EventBridge Scheduler: schedules and schedule groups
// over REST-JSON (CreateSchedule, GetSchedule, UpdateSchedule, DeleteSchedule, ListSchedules,
// CreateScheduleGroup, GetScheduleGroup, ListScheduleGroups, DeleteScheduleGroup), and a runner
// that invokes Lambda targets when their schedule comes due, so that a controller run by a
// schedule can be rehearsed with its real function zip.
//
// Schedules are rate(value unit), cron(minutes hours day-of-month month day-of-week year) and
// at(yyyy-mm-ddThh:mm:ss), evaluated in ScheduleExpressionTimezone, between StartDate and
// EndDate, as AWS documents: a rate schedule first fires at its StartDate, or at once when it
// has none; an at() schedule fires once and, with ActionAfterCompletion DELETE, is deleted
// after. A due schedule whose target is a Lambda function (unqualified, or a version or alias)
// is invoked asynchronously (InvocationType Event, as Scheduler invokes Lambda) with
// Target.Input verbatim as the event, over the sandbox's own Lambda API.
//
// Where it differs from AWS, on purpose:
//   - Time is the scheduler's own clock ([Config.Now] plus what [Service.Advance] added), so a
//     test can move it forward instead of waiting; the runner looks for due schedules every
//     PollInterval of real time.
//   - A FLEXIBLE time window is accepted (MaximumWindowInMinutes validated) but the schedule
//     fires at its due time, as with OFF: "somewhere within the window" includes its start.
//   - RetryPolicy is validated and returned but a failed invocation is retried by the Lambda
//     client's standard retryer (throttles and server errors only) at most MaxRetries times,
//     not for up to 185 attempts or 24 hours; then it is logged and dropped (no dead-letter
//     queue is served).
//   - Only Lambda targets are delivered; another target is accepted and reported as not
//     delivered each time it comes due.
//   - When the clock jumps past many occurrences, at most MaxCatchUp of them fire per run (the
//     rest are skipped, as if missed).
//
// The rule it keeps: what a client sends is validated as AWS validates it — names, the three
// expression forms (a rate's unit singular exactly for 1; cron's six fields with exactly one
// "?"), time zones, the flexible time window, role ARNs — and answered with the model's errors
// (ValidationException 400, ResourceNotFoundException 404, ConflictException 409).
package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
	_ "time/tzdata" // ScheduleExpressionTimezone takes any IANA zone, whatever the machine has

	lambdasdk "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/internal/atomicfile"
)

//go:generate go run ../protocol/errorsgen -model scheduler/2021-06-30 -o model_gen.go

// Invoker is the Lambda API the runner invokes targets through (*lambda.Client).
type Invoker interface {
	Invoke(ctx context.Context, in *lambdasdk.InvokeInput, opts ...func(*lambdasdk.Options)) (*lambdasdk.InvokeOutput, error)
}

// Config sets up a Service.
type Config struct {
	Region, Account string
	// Lambda invokes the targets; nil delivers nothing (every firing is reported undelivered).
	Lambda Invoker
	// Now is the clock the scheduler runs by before any Advance; nil means time.Now.
	Now func() time.Time
	// PollInterval is how often, in real time, the runner looks for due schedules; zero means
	// one second, negative turns the background runner off (only Tick and Advance fire).
	PollInterval time.Duration
	// DataDir keeps schedules and groups across restarts; empty keeps them in memory.
	DataDir string
	Logger  *slog.Logger
}

// Limits of the sandbox's runner (see the package doc).
const (
	MaxRetries = 3
	MaxCatchUp = 60
)

// DefaultGroup is the schedule group every account has and schedules belong to by default.
const DefaultGroup = "default"

// Service is the sandbox's EventBridge Scheduler.
type Service struct {
	cfg Config

	mu        sync.Mutex // guards groups, schedules and offset
	groups    map[string]*group
	schedules map[key]*schedule
	offset    time.Duration // what Advance has added to cfg.Now

	fire   sync.Mutex // one run of the runner at a time
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

type key struct{ Group, Name string }

type group struct {
	Name      string
	Created   time.Time
	Modified  time.Time
	Token     string
	Tags      []tag
	Schedules int `json:"-"`
}

type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// schedule is one schedule as stored: its definition (what Get answers) and its runner state.
type schedule struct {
	Def      scheduleDef
	Created  time.Time
	Modified time.Time
	Token    string
	// Next is when the schedule is next due; zero when it never is again.
	Next time.Time
	// Fired is how many times it has fired, for the report.
	Fired int
}

// New returns a Service, loading its state from cfg.DataDir, and starts its runner.
func New(cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	s := &Service{cfg: cfg, groups: map[string]*group{}, schedules: map[key]*schedule{}, stop: make(chan struct{}), done: make(chan struct{})}
	now := cfg.Now().UTC()
	s.groups[DefaultGroup] = &group{Name: DefaultGroup, Created: now, Modified: now}
	if err := s.load(); err != nil {
		return nil, err
	}
	if cfg.PollInterval > 0 {
		go s.run(cfg.PollInterval)
	} else {
		close(s.done)
	}
	return s, nil
}

// Close stops the runner, waiting for a run in progress.
func (s *Service) Close() {
	s.closed.Do(func() { close(s.stop) })
	<-s.done
}

func (s *Service) run(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-s.stop:
					cancel()
				case <-ctx.Done():
				}
			}()
			s.Tick(ctx)
			cancel()
		}
	}
}

// Now is the scheduler's time: its clock plus what Advance has added.
func (s *Service) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

func (s *Service) now() time.Time { return s.cfg.Now().Add(s.offset).UTC() }

func (s *Service) scheduleARN(g, name string) string {
	return fmt.Sprintf("arn:aws:scheduler:%s:%s:schedule/%s/%s", s.cfg.Region, s.cfg.Account, g, name)
}

func (s *Service) groupARN(name string) string {
	return fmt.Sprintf("arn:aws:scheduler:%s:%s:schedule-group/%s", s.cfg.Region, s.cfg.Account, name)
}

type persisted struct {
	Groups    map[string]*group
	Schedules []*schedule
	Offset    time.Duration
}

func (s *Service) statePath() string { return filepath.Join(s.cfg.DataDir, "scheduler", "state.json") }

func (s *Service) load() error {
	if s.cfg.DataDir == "" {
		return nil
	}
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var p persisted
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("read %s: %w", s.statePath(), err)
	}
	for n, g := range p.Groups {
		s.groups[n] = g
	}
	for _, sc := range p.Schedules {
		s.schedules[key{sc.Def.GroupName, sc.Def.Name}] = sc
		if g := s.groups[sc.Def.GroupName]; g != nil {
			g.Schedules++
		}
	}
	s.offset = p.Offset
	return nil
}

// save persists groups and schedules; the caller holds s.mu.
func (s *Service) save() {
	if s.cfg.DataDir == "" {
		return
	}
	p := persisted{Groups: s.groups, Offset: s.offset}
	for _, sc := range s.schedules {
		p.Schedules = append(p.Schedules, sc)
	}
	b, err := json.Marshal(p)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(s.statePath()), 0o755)
	}
	if err == nil {
		err = atomicfile.Write(s.statePath(), b)
	}
	if err != nil {
		s.cfg.Logger.Error("persist scheduler state", "err", err)
	}
}
