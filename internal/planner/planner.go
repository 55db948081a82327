// Package planner applies khub's freshness rules: it picks how knowledge
// moves to a tool (push, pull or hybrid) from the tool's freshness window,
// scope and polling, explains the choice, and rejects explicit choices that
// break the rules unless the caller accepts the risk.
package planner

import (
	"fmt"
	"strings"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

// DefaultPollInterval is the polling interval assumed for a pull tool that
// does not declare one. A minute is the shortest interval most ticketing
// and CRM schedulers offer.
const DefaultPollInterval = time.Minute

// Request is what an integration declares about its tool.
type Request struct {
	Pattern      knowledge.Pattern // empty means auto
	Freshness    time.Duration     // required, positive
	PollInterval time.Duration     // zero means DefaultPollInterval
	Lookups      bool
	Scope        knowledge.Scope
	HasWebhook   bool
	AcceptRisk   bool
}

// Decision is the chosen pattern with the reasons, one sentence each.
type Decision struct {
	Pattern knowledge.Pattern
	Reasons []string
}

// Decide applies the rules. Errors are *knowledge.FieldError naming the
// field to change.
func Decide(r Request) (Decision, error) {
	if r.Freshness <= 0 {
		return Decision{}, &knowledge.FieldError{Field: "freshness", Message: "is required: every integration declares how fresh its tool must be, as a duration such as 30s, 15m or 24h"}
	}
	poll := r.PollInterval
	if poll == 0 {
		poll = DefaultPollInterval
	}
	f := facts{Request: r, poll: poll}

	switch r.Pattern {
	case "", knowledge.PatternAuto:
		return f.auto()
	case knowledge.PatternPush, knowledge.PatternHybrid:
		return f.explicitPush()
	case knowledge.PatternPull:
		return f.explicitPull()
	}
	return Decision{}, &knowledge.FieldError{Field: "pattern", Message: fmt.Sprintf("%q is invalid: use auto, push, pull or hybrid", r.Pattern)}
}

type facts struct {
	Request
	poll time.Duration
}

// toleratesPull reports whether pulling keeps the tool within its window:
// lookups read at query time, and a poller within its interval.
func (f facts) toleratesPull() bool { return f.Lookups || f.Freshness >= f.poll }

func (f facts) pullReason() string {
	if f.Lookups {
		return "The tool looks knowledge up during workflow steps, and a lookup reads the current version, so pull keeps it within its window."
	}
	return fmt.Sprintf("Polling every %s keeps the tool within its %s window.", f.poll, f.Freshness)
}

func (f facts) timeSensitiveReason() string {
	names := make([]string, 0, 3)
	for _, c := range knowledge.TimeSensitiveClasses {
		if len(f.Scope.Classes) == 0 || containsClass(f.Scope.Classes, c) {
			names = append(names, string(c))
		}
	}
	what := "The scope includes " + joinAnd(names)
	if len(f.Scope.Classes) == 0 {
		what = "The scope names no classes, so it includes " + joinAnd(names)
	}
	return what + ", which tools must reflect as soon as they change, so khub pushes those changes as they commit."
}

func (f facts) auto() (Decision, error) {
	ts, other := f.Scope.HasTimeSensitive(), f.Scope.HasOther()
	var d Decision
	switch {
	case ts && other && f.toleratesPull():
		d = Decision{Pattern: knowledge.PatternHybrid, Reasons: []string{
			f.timeSensitiveReason(),
			"The other classes are pulled: " + lowerFirst(f.pullReason()),
			"Deprecations and archivals of any article in scope are pushed too, and a tool that was offline catches up from the change feed.",
		}}
	case ts:
		d = Decision{Pattern: knowledge.PatternPush, Reasons: []string{f.timeSensitiveReason()}}
		if other {
			d.Reasons = append(d.Reasons, f.tooShortReason())
		}
	case f.toleratesPull():
		d = Decision{Pattern: knowledge.PatternPull, Reasons: []string{
			"The scope holds no time-sensitive classes (policy, safety, compliance).",
			f.pullReason(),
		}}
	default:
		d = Decision{Pattern: knowledge.PatternPush, Reasons: []string{
			"The scope holds no time-sensitive classes (policy, safety, compliance).",
			f.tooShortReason(),
		}}
	}
	if d.Pattern.Pushes() && !f.HasWebhook {
		return Decision{}, &knowledge.FieldError{Field: "webhook.url", Message: fmt.Sprintf(
			"is required: pattern auto chose %s (%s) Give the tool's webhook URL, or choose pattern pull explicitly",
			d.Pattern, strings.Join(d.Reasons, " "))}
	}
	return d, nil
}

func (f facts) tooShortReason() string {
	return fmt.Sprintf("The %s window is shorter than the %s polling interval and the tool does not look knowledge up at query time, so pulling would miss the window and khub pushes instead.", f.Freshness, f.poll)
}

func (f facts) explicitPush() (Decision, error) {
	if !f.HasWebhook {
		return Decision{}, &knowledge.FieldError{Field: "webhook.url", Message: fmt.Sprintf("is required for pattern %s: give the URL that receives the tool's webhooks", f.Pattern)}
	}
	d := Decision{Pattern: f.Pattern, Reasons: []string{fmt.Sprintf("Pattern %s was requested.", f.Pattern)}}
	if f.Scope.HasTimeSensitive() {
		d.Reasons = append(d.Reasons, f.timeSensitiveReason())
	}
	if f.Pattern == knowledge.PatternHybrid {
		if !f.Scope.HasTimeSensitive() {
			d.Reasons = append(d.Reasons, "The scope holds no time-sensitive classes, so only deprecations and archivals are pushed; the tool pulls everything else.")
		} else if f.Scope.HasOther() {
			d.Reasons = append(d.Reasons, "The other classes are pulled, and deprecations and archivals of any article in scope are pushed.")
		}
	}
	return d, nil
}

func (f facts) explicitPull() (Decision, error) {
	if f.HasWebhook {
		return Decision{}, &knowledge.FieldError{Field: "webhook", Message: "is not used by pattern pull: remove it, or choose push or hybrid to receive webhooks"}
	}
	d := Decision{Pattern: knowledge.PatternPull, Reasons: []string{"Pattern pull was requested."}}
	risky := f.Scope.HasTimeSensitive() && f.Freshness < f.poll
	if !risky {
		d.Reasons = append(d.Reasons, f.pullReason())
		return d, nil
	}
	risk := fmt.Sprintf("the scope includes time-sensitive classes (policy, safety, compliance) and the %s window is shorter than the %s polling interval, so a change could reach the tool after its window", f.Freshness, f.poll)
	if !f.AcceptRisk {
		return Decision{}, &knowledge.FieldError{Field: "pattern", Message: "pull is rejected: " + risk + "; use push or hybrid, lengthen the window, or set accept_risk to true"}
	}
	d.Reasons = append(d.Reasons, "The risk was accepted: "+risk+".")
	return d, nil
}

func containsClass(cs []knowledge.Class, c knowledge.Class) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// joinAnd joins words as an English list: "a", "a and b", "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
