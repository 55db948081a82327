package push

import "github.com/khub-dev/khub/internal/knowledge"

// EffectiveSettings returns an integration's delivery settings as its
// dispatcher applies them: every zero field is filled from the hub's
// defaults in Config, then from package knowledge's. The API shows these,
// so an operator reads the values in force rather than the zeros stored.
func (m *Manager) EffectiveSettings(in knowledge.DeliverySettings) knowledge.DeliverySettings {
	return m.settings(in)
}
