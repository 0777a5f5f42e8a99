package scheduler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	lambdasdk "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Report is what one run of the runner fired.
type Report struct {
	// Now is the scheduler's time the run fired at.
	Now time.Time `json:"now"`
	// Invoked lists every firing, by due time.
	Invoked []Firing `json:"invoked"`
}

// Firing is one due occurrence of a schedule and what became of it.
type Firing struct {
	Schedule    string `json:"schedule"`
	Group       string `json:"group"`
	ScheduleArn string `json:"scheduleArn"`
	Target      string `json:"target"`
	// Due is the occurrence's time (the <aws.scheduler.scheduled-time> of AWS's context).
	Due   time.Time `json:"due"`
	Input string    `json:"input,omitempty"`
	// Delivered says Lambda accepted the event (202); Error says why not.
	Delivered  bool   `json:"delivered"`
	StatusCode int    `json:"statusCode,omitempty"`
	Error      string `json:"error,omitempty"`
	// Deleted says the schedule was deleted after it completed (ActionAfterCompletion DELETE).
	Deleted bool `json:"deleted,omitempty"`
}

// first is when a schedule validated at now is first due; zero when never.
func first(v validated, now time.Time) time.Time {
	switch {
	case v.expr.at != nil:
		return v.expr.at.UTC()
	case v.expr.rate > 0:
		// "If you don't provide a StartDate for a rate-based schedule, your schedule starts
		// invoking the target immediately."
		t := now
		if sd := v.def.StartDate; sd != nil && sd.After(now) {
			t = sd.Time
		}
		return within(v.def, t)
	default:
		from := now
		if sd := v.def.StartDate; sd != nil && sd.After(now) {
			from = sd.Time
		}
		t, ok := v.expr.cron.next(from.Add(-time.Nanosecond), v.loc)
		if !ok {
			return time.Time{}
		}
		return within(v.def, t.UTC())
	}
}

// following is the occurrence after t; zero when there is none.
func following(v validated, t time.Time) time.Time {
	switch {
	case v.expr.at != nil:
		return time.Time{}
	case v.expr.rate > 0:
		return within(v.def, t.Add(v.expr.rate))
	default:
		n, ok := v.expr.cron.next(t, v.loc)
		if !ok {
			return time.Time{}
		}
		return within(v.def, n.UTC())
	}
}

// within drops an occurrence after the schedule's EndDate.
func within(def scheduleDef, t time.Time) time.Time {
	if ed := def.EndDate; ed != nil && t.After(ed.Time) {
		return time.Time{}
	}
	return t
}

// revalidate parses a stored schedule's expression again (it was valid when stored).
func revalidate(def scheduleDef) (validated, error) {
	loc, err := time.LoadLocation(def.ScheduleExpressionTimezone)
	if err != nil {
		return validated{}, err
	}
	expr, err := parseExpression(def.ScheduleExpression, loc)
	if err != nil {
		return validated{}, err
	}
	return validated{def: def, expr: expr, loc: loc}, nil
}

// Advance moves the scheduler's clock forward by d and fires what is then due, as Tick does.
func (s *Service) Advance(ctx context.Context, d time.Duration) (Report, error) {
	if d < 0 {
		return Report{}, fmt.Errorf("advance the scheduler's clock by %s: it only moves forward", d)
	}
	s.fire.Lock()
	defer s.fire.Unlock()
	s.mu.Lock()
	s.offset += d
	s.save()
	s.mu.Unlock()
	return s.tick(ctx), nil
}

// Tick fires every enabled schedule that is due at the scheduler's time and waits until each
// target has accepted its event (or failed to).
func (s *Service) Tick(ctx context.Context) Report {
	s.fire.Lock()
	defer s.fire.Unlock()
	return s.tick(ctx)
}

// due is a firing decided under the lock, and the schedule it came from.
type due struct {
	Firing
	sc     *schedule
	input  *string
	finish bool // the schedule has no occurrence left
}

func (s *Service) tick(ctx context.Context) Report {
	s.mu.Lock()
	now := s.now()
	var fire []due
	for k, sc := range s.schedules {
		if sc.Def.State != "ENABLED" || sc.Next.IsZero() || sc.Next.After(now) {
			continue
		}
		v, err := revalidate(sc.Def)
		if err != nil {
			s.cfg.Logger.Error("scheduler: stored schedule no longer parses", "schedule", k.Name, "err", err)
			continue
		}
		for n := 0; !sc.Next.IsZero() && !sc.Next.After(now); n++ {
			if n == MaxCatchUp {
				// Too far behind: skip what is left, as missed.
				for !sc.Next.IsZero() && !sc.Next.After(now) {
					sc.Next = following(v, sc.Next)
				}
				break
			}
			f := due{sc: sc, input: sc.Def.Target.Input, Firing: Firing{Schedule: k.Name, Group: k.Group,
				ScheduleArn: s.scheduleARN(k.Group, k.Name), Target: sc.Def.Target.Arn, Due: sc.Next}}
			if f.input != nil {
				f.Input = *f.input
			}
			sc.Next = following(v, sc.Next)
			sc.Fired++
			f.finish = sc.Next.IsZero()
			fire = append(fire, f)
		}
	}
	if len(fire) > 0 {
		s.save()
	}
	s.mu.Unlock()

	slices.SortFunc(fire, func(a, b due) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return strings.Compare(a.ScheduleArn, b.ScheduleArn)
	})
	rep := Report{Now: now, Invoked: []Firing{}}
	for _, f := range fire {
		s.deliver(ctx, &f.Firing, f.input)
		if f.finish && f.sc.Def.ActionAfterCompletion == "DELETE" {
			s.mu.Lock()
			k := key{f.Group, f.Schedule}
			if s.schedules[k] == f.sc && f.sc.Next.IsZero() {
				s.remove(k)
				s.save()
				f.Deleted = true
			}
			s.mu.Unlock()
		}
		rep.Invoked = append(rep.Invoked, f.Firing)
	}
	return rep
}

// isLambda reports whether a target ARN names a Lambda function (qualified or not).
func isLambda(arn string) bool {
	parts := strings.Split(arn, ":")
	return len(parts) >= 7 && len(parts) <= 8 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function"
}

// deliver invokes a Lambda target asynchronously with the schedule's input, as Scheduler does.
func (s *Service) deliver(ctx context.Context, f *Firing, input *string) {
	log := s.cfg.Logger.With("schedule", f.ScheduleArn, "target", f.Target, "due", f.Due)
	if !isLambda(f.Target) || s.cfg.Lambda == nil {
		f.Error = "the sandbox's scheduler delivers to Lambda functions only"
		log.Warn("scheduler: target not delivered", "err", f.Error)
		return
	}
	in := &lambdasdk.InvokeInput{FunctionName: aws.String(f.Target), InvocationType: lambdatypes.InvocationTypeEvent}
	if input != nil {
		in.Payload = []byte(*input)
	}
	out, err := s.cfg.Lambda.Invoke(ctx, in, func(o *lambdasdk.Options) { o.RetryMaxAttempts = MaxRetries + 1 })
	if err != nil {
		f.Error = err.Error()
		log.Warn("scheduler: invoking the target failed; the event is dropped", "err", err)
		return
	}
	f.Delivered, f.StatusCode = true, int(out.StatusCode)
	log.Debug("scheduler: invoked the target")
}
