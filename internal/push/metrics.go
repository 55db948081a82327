package push

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus collectors of the dispatchers. Every series
// carries the integration_id label, and the series of an integration are
// deleted when its dispatcher is removed. A nil *Metrics records nothing.
type Metrics struct {
	attempts        *prometheus.CounterVec
	attemptDuration *prometheus.HistogramVec
	deliveryLatency *prometheus.HistogramVec
}

// NewMetrics creates the collectors and registers them with reg, unless
// reg is nil. It panics if they are already registered, as
// prometheus.MustRegister does.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "khub_push_deliveries_total",
			Help: "Webhook delivery attempts by integration, outcome (delivered, retrying or failed) and status class of the response (2xx, 4xx, 5xx, or error when no response arrived).",
		}, []string{"integration_id", "outcome", "status_class"}),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "khub_push_attempt_duration_seconds",
			Help:    "Duration of one webhook attempt, from sending the request to reading the response or failing.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30},
		}, []string{"integration_id"}),
		deliveryLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "khub_push_delivery_latency_seconds",
			Help:    "Time from a change's commit to the 2xx response that delivered it, retries included.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 24 * 3600, 72 * 3600},
		}, []string{"integration_id"}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.attemptDuration, m.deliveryLatency)
	}
	return m
}

// observeAttempt counts one attempt. status is the HTTP status code of the
// response, or 0 when the attempt failed without one.
func (m *Metrics) observeAttempt(integrationID, outcome string, status int, duration time.Duration) {
	if m == nil {
		return
	}
	m.attempts.WithLabelValues(integrationID, outcome, statusClass(status)).Inc()
	m.attemptDuration.WithLabelValues(integrationID).Observe(duration.Seconds())
}

func (m *Metrics) observeDelivered(integrationID string, sinceCommit time.Duration) {
	if m == nil {
		return
	}
	m.deliveryLatency.WithLabelValues(integrationID).Observe(sinceCommit.Seconds())
}

func (m *Metrics) forget(integrationID string) {
	if m == nil {
		return
	}
	labels := prometheus.Labels{"integration_id": integrationID}
	m.attempts.DeletePartialMatch(labels)
	m.attemptDuration.DeletePartialMatch(labels)
	m.deliveryLatency.DeletePartialMatch(labels)
}

// statusClass returns the status_class label of an HTTP status code: "1xx"
// to "5xx", "error" for 0 (a timeout or a connection error), and "other"
// for codes outside 100 to 599.
func statusClass(status int) string {
	switch {
	case status == 0:
		return "error"
	case status >= 100 && status <= 599:
		return strconv.Itoa(status/100) + "xx"
	}
	return "other"
}
