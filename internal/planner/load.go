package planner

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

// Usage is one planned integration with its expected traffic: what the
// plan file declares and what the hub measured for its scope.
type Usage struct {
	Name     string
	Request  Request
	Decision Decision
	// RequestsPerHour is the pull usage the file declares; zero when it
	// declares none.
	RequestsPerHour float64
	// PushesPerHour is the measured rate of the changes in scope that the
	// chosen pattern pushes.
	PushesPerHour float64
}

// PullsPerHour returns the pull requests per hour that the tool is
// expected to make, and false when the usage is unknown because the tool looks
// knowledge up but declares no requests_per_hour. Declared usage wins over
// the polling interval, a poller makes 3600/poll_interval requests per hour,
// and push tools make none because they get no pull token.
func (u Usage) PullsPerHour() (float64, bool) {
	if !u.Decision.Pattern.Pulls() {
		return 0, true
	}
	if u.RequestsPerHour > 0 {
		return u.RequestsPerHour, true
	}
	if u.Request.Lookups {
		return 0, false
	}
	poll := u.Request.PollInterval
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	return float64(time.Hour) / float64(poll), true
}

// Warnings returns what the operator should know about one planned
// integration, one sentence or two each.
func (u Usage) Warnings() []string {
	var out []string
	p := u.Decision.Pattern
	if p == knowledge.PatternPull && u.Request.Scope.HasTimeSensitive() {
		out = append(out, u.pulledTimeSensitiveWarning())
	}
	if _, known := u.PullsPerHour(); !known {
		out = append(out, "The tool looks knowledge up but declares no requests_per_hour, so its pull load is unknown: declare how many requests per hour its lookups make.")
	}
	if u.RequestsPerHour > 0 && !p.Pulls() {
		out = append(out, fmt.Sprintf("requests_per_hour (%s) is not used: pattern %s gives the tool no pull token, so it makes no requests. Remove it, or use hybrid if the tool also reads from khub.", FormatRate(u.RequestsPerHour), p))
	}
	return out
}

func (u Usage) pulledTimeSensitiveWarning() string {
	var names []string
	for _, c := range knowledge.TimeSensitiveClasses {
		if len(u.Request.Scope.Classes) == 0 || containsClass(u.Request.Scope.Classes, c) {
			names = append(names, string(c))
		}
	}
	when := "looks the article up"
	if !u.Request.Lookups {
		poll := u.Request.PollInterval
		if poll <= 0 {
			poll = DefaultPollInterval
		}
		when = fmt.Sprintf("polls, every %s", poll)
	}
	return fmt.Sprintf("Time-sensitive classes would be pulled: a change to %s reaches the tool only when it next %s, not when the change commits. Use hybrid to push those changes and pull the rest.", joinAnd(names), when)
}

// PlanWarnings returns what the operator should know about a plan as a
// whole. When every integration of two or more pushes every change, each
// commit is sent once per integration and the fan-out grows with every
// integration added, so the warning gives the pushes per hour they add
// together.
func PlanWarnings(all []Usage) []string {
	if len(all) < 2 {
		return nil
	}
	var total float64
	for _, u := range all {
		if u.Decision.Pattern != knowledge.PatternPush {
			return nil
		}
		total += u.PushesPerHour
	}
	return []string{fmt.Sprintf("Everything is push: all %d integrations receive every change in their scopes, so each commit is sent once per integration and the fan-out grows with every integration added. Together they add %s pushes per hour at the measured change rate. Use pull for tools that look knowledge up or poll within their window, or hybrid to push only time-sensitive changes.", len(all), FormatRate(total))}
}

// FormatRate formats a rate for people: rates of 0.1 and above with one
// decimal, dropped when it is zero, and smaller ones with two significant
// digits, so that a change a week still shows as 0.006.
func FormatRate(r float64) string {
	switch {
	case r == 0:
		return "0"
	case r < 0.1:
		return strconv.FormatFloat(r, 'g', 2, 64)
	}
	return strings.TrimSuffix(strconv.FormatFloat(r, 'f', 1, 64), ".0")
}
