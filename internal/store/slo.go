package store

import "time"

// StalenessSample is one freshness measurement of an integration, as the
// SLO recorder stores it.
type StalenessSample struct {
	IntegrationID string
	// At is the start of the sample's time bucket. The recorder truncates
	// the measurement time to its sampling interval, so that nodes sharing
	// a store write the same key for the same moment.
	At        time.Time
	Staleness time.Duration
	// WithinWindow is true when the staleness was within the integration's
	// freshness window.
	WithinWindow bool
}

// StalenessSummary condenses an integration's samples over the hour and
// the day before a time.
type StalenessSummary struct {
	// WorstHour and WorstDay are the largest staleness of the samples of
	// the last hour and of the last 24 hours; zero without samples.
	WorstHour time.Duration
	WorstDay  time.Duration
	// DaySamples counts the samples of the last 24 hours, and DayWithin
	// those of them within the window.
	DaySamples int64
	DayWithin  int64
}
