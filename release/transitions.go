package release

import "fmt"

// Move is what moves a release from one phase to the next. With the phase it is in, a move
// decides the phase it goes to: the [Transitions] table, which the engine consults on every
// move and which refuses any move not in it.
type Move string

// Moves.
const (
	// MovePublish starts a planned release: publish every new version.
	MovePublish Move = "publish"
	// MoveShift enters the next canary step (and moves the aliases to its weight).
	MoveShift Move = "shift"
	// MoveGate opens a gate: a person (or pre-approval, or the gate's timeout) decides.
	MoveGate Move = "gate"
	// MovePromote moves all traffic to the new versions.
	MovePromote Move = "promote"
	// MoveRollback puts every alias back: a failed action or check, a request, a decision.
	MoveRollback Move = "rollback"
	// MoveDone ends what the phase does: promoted, or rolled back.
	MoveDone Move = "done"
	// MoveFail ends a rollback that could not finish.
	MoveFail Move = "fail"
	// MoveReopen rolls back a release that ended: an operator's rollback after the fact.
	MoveReopen Move = "reopen"
)

// Transition is one allowed move.
type Transition struct {
	From Phase
	Move Move
	To   Phase
	// When says when the engine (or the lifecycle) makes it.
	When string
}

// Transitions are every move a release can make. Some phases have sub-states kept in fields,
// named here because they decide what a phase does next:
//
//   - Shifting: while StepStarted is zero the step's weights are being put in place (a crash
//     may leave some aliases at the step's weight and some not: the shift is redone, as every
//     alias write is idempotent); once it is set the step bakes ([Release.Baking]).
//   - Moving: set on entering Shifting or Promoting, before any alias moves. From then on a
//     rollback restores every published function, since a crash may have moved an alias the
//     record does not show.
//   - AwaitingApproval: with an open gate ([Release.OpenGate]) it waits for a decision; with a
//     decided gate it acts on the decision; with no gate and Awaiting set it waits for a promote
//     or rollback request (a release recorded before gates existed).
//   - Request: an operator's pending rollback or promotion, acted on by whoever drives the
//     release, from any phase that is not final.
var Transitions = []Transition{
	{Planned, MovePublish, Publishing, "the release starts"},
	{Planned, MoveRollback, RollingBack, "a rollback was requested before it started: nothing moved"},
	{Publishing, MoveShift, Shifting, "every new version is published (and checked before traffic): step 1"},
	{Publishing, MoveGate, AwaitingApproval, "published; the environment requires approval before any traffic moves"},
	{Publishing, MovePromote, Promoting, "published, with no canary steps, or a first release (no previous version to compare with), or a promotion was requested"},
	{Publishing, MoveRollback, RollingBack, "publishing, or the checks before traffic, failed; or a rollback was requested"},
	{Shifting, MoveShift, Shifting, "a step passed, or stayed inconclusive and goes on unjudged (on_inconclusive: auto without a gate, or promote): the next step"},
	{Shifting, MoveGate, AwaitingApproval, "a step passed (or went on unjudged) and the environment requires approval here, or it was inconclusive and on_inconclusive is gate (or auto, with an approval gate)"},
	{Shifting, MovePromote, Promoting, "the last step passed (or went on unjudged), or a promotion was requested"},
	{Shifting, MoveRollback, RollingBack, "a shift or a health check failed, a step stayed inconclusive (on_inconclusive: rollback), or a rollback was requested"},
	{AwaitingApproval, MoveShift, Shifting, "approved with steps left"},
	{AwaitingApproval, MoveGate, AwaitingApproval, "an inconclusive step was approved where the environment's approval gate also waits"},
	{AwaitingApproval, MovePromote, Promoting, "approved after the last step, or a promotion was requested"},
	{AwaitingApproval, MoveRollback, RollingBack, "rollback decided, the gate timed out to rollback, health failed while waiting, or a rollback was requested"},
	{Promoting, MoveDone, Promoted, "every alias is on its new version (and the checks after traffic passed)"},
	{Promoting, MoveRollback, RollingBack, "promoting, or the checks after traffic, failed; or a rollback was requested"},
	{RollingBack, MoveDone, RolledBack, "every alias the release touched is back on its previous version"},
	{RollingBack, MoveFail, Failed, "some alias could not be put back"},
	{Promoted, MoveReopen, RollingBack, "an operator rolls back the environment's latest release after it was promoted"},
	{Failed, MoveReopen, RollingBack, "an operator retries the rollback of a release whose rollback could not finish"},
}

// TransitionError is a move the table does not allow.
type TransitionError struct {
	From Phase
	Move Move
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("a release that is %s cannot %s", e.From, e.Move)
}

// Next is the phase a release in phase from goes to on move m, or a *TransitionError.
func Next(from Phase, m Move) (Phase, error) {
	for _, t := range Transitions {
		if t.From == from && t.Move == m {
			return t.To, nil
		}
	}
	return "", &TransitionError{From: from, Move: m}
}

// Baking reports whether the release is baking its current step: shifting, with every weight
// in place.
func (r *Release) Baking() bool { return r.Phase == Shifting && !r.StepStarted.IsZero() }
