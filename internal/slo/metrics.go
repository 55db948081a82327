package slo

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/khub-dev/khub/internal/freshness"
	"github.com/khub-dev/khub/internal/store"
)

// Metrics are the recorder's gauges, set at every sample. Every series
// carries the integration_id label, and the series of an integration are
// deleted at the first sample after it was deleted. A nil *Metrics records
// nothing.
type Metrics struct {
	info       *prometheus.GaugeVec
	staleness  *prometheus.GaugeVec
	window     *prometheus.GaugeVec
	alerting   *prometheus.GaugeVec
	queueDepth *prometheus.GaugeVec
}

// NewMetrics creates the gauges and registers them with reg, unless reg is
// nil. It panics if they are already registered, as
// prometheus.MustRegister does.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "khub_integration_info",
			Help: "Always 1; labels an integration id with its name and pattern, for joins in queries.",
		}, []string{"integration_id", "name", "pattern"}),
		staleness: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "khub_integration_staleness_seconds",
			Help: "Age of the oldest change in scope that the integration's tool has not received, at the last sample; 0 when caught up.",
		}, []string{"integration_id"}),
		window: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "khub_integration_freshness_window_seconds",
			Help: "The integration's freshness window: the maximum staleness its objective allows.",
		}, []string{"integration_id"}),
		alerting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "khub_integration_alerting",
			Help: "1 while the integration's freshness alert is raised, else 0.",
		}, []string{"integration_id"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "khub_push_queue_depth",
			Help: "Change-log entries after a push or hybrid integration's stored push cursor at the last sample, in its scope or not; an upper bound of the changes waiting for delivery.",
		}, []string{"integration_id"}),
	}
	if reg != nil {
		reg.MustRegister(m.info, m.staleness, m.window, m.alerting, m.queueDepth)
	}
	return m
}

// observe sets the gauges of one integration from a sample. head is the
// change log's head cursor, read in the same round.
func (m *Metrics) observe(in *store.IntegrationState, rep freshness.Report, head int64) {
	if m == nil {
		return
	}
	// A rename or a new pattern replaces the info series instead of adding
	// a second one.
	m.info.DeletePartialMatch(prometheus.Labels{"integration_id": in.ID})
	m.info.WithLabelValues(in.ID, in.Name, string(in.Pattern)).Set(1)
	m.staleness.WithLabelValues(in.ID).Set(rep.Staleness.Seconds())
	m.window.WithLabelValues(in.ID).Set(in.Freshness.Seconds())
	if in.Pattern.Pushes() {
		m.queueDepth.WithLabelValues(in.ID).Set(float64(max(head-in.PushCursor, 0)))
	} else {
		m.queueDepth.DeleteLabelValues(in.ID)
	}
}

func (m *Metrics) setAlerting(integrationID string, raised bool) {
	if m == nil {
		return
	}
	v := 0.0
	if raised {
		v = 1
	}
	m.alerting.WithLabelValues(integrationID).Set(v)
}

func (m *Metrics) forget(integrationID string) {
	if m == nil {
		return
	}
	labels := prometheus.Labels{"integration_id": integrationID}
	m.info.DeletePartialMatch(labels)
	m.staleness.DeletePartialMatch(labels)
	m.window.DeletePartialMatch(labels)
	m.alerting.DeletePartialMatch(labels)
	m.queueDepth.DeletePartialMatch(labels)
}
