// Package push sends change-log entries to webhook receivers. Each push
// or hybrid integration gets a dispatcher that delivers its changes in log
// order, one request at a time, as CloudEvents 1.0 JSON (one event, or a
// batch) signed per Standard Webhooks, and records every attempt in the
// store. Dispatchers retry with full-jitter backoff, pause behind a
// circuit breaker, and run under leases so that nodes sharing a store
// never dispatch one integration twice at once.
package push

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

// ContentType is the media type of a structured-mode CloudEvent in JSON.
const ContentType = "application/cloudevents+json; charset=utf-8"

// EventTypePrefix starts every event type, and the change type follows it,
// as in "khub.article.updated".
const EventTypePrefix = "khub.article."

// eventTimeLayout is RFC 3339 with a fixed nine-digit fraction, so that
// equal times always encode to equal text.
const eventTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// envelope is a CloudEvents 1.0 envelope with data of type D. Fields
// encode in declaration order.
type envelope[D any] struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Subject         string `json:"subject"`
	Time            string `json:"time"`
	DataContentType string `json:"datacontenttype"`
	Data            D      `json:"data"`
}

// newEnvelope returns the envelope of an event with JSON data.
func newEnvelope[D any](source, id, eventType, subject string, at time.Time, data D) envelope[D] {
	return envelope[D]{SpecVersion: "1.0", ID: id, Source: source, Type: eventType, Subject: subject,
		Time: at.UTC().Format(eventTimeLayout), DataContentType: "application/json", Data: data}
}

// encodeEvent encodes an envelope without HTML escaping: "<", ">" and "&"
// are valid in JSON strings, so escaping them would only make bodies
// harder to read.
func encodeEvent(ev any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, err
	}
	// Encode ends the value with a newline, which is not part of the event.
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// eventData is the article version of an event with its review interval
// and due time. ReviewDue follows from the version alone, so every retry
// of a change encodes the same bytes. Whether the review is overdue
// depends on when the event is read, so receivers compare review_due with
// their own clock. Computing it as of the change would give false every
// time, because a new version counts as a review.
type eventData struct {
	knowledge.Article
	ReviewEvery string     `json:"review_every,omitempty"`
	ReviewDue   *time.Time `json:"review_due,omitempty"`
}

// EventID returns the event id of a change: "evt_" and its cursor. The id
// is also the webhook-id header, so it is the same for every retry,
// restart and replay of the change, and receivers can drop duplicates by
// it.
func EventID(c *knowledge.Change) string {
	return "evt_" + strconv.FormatInt(c.Cursor, 10)
}

// BuildEvent encodes a change as a CloudEvents 1.0 JSON event whose data
// is the article version that the change created. The encoding is
// deterministic: the same change gives the same bytes every time, because
// struct fields keep their order, encoding/json sorts map keys, and times
// are converted to UTC. HTML characters are not escaped.
func BuildEvent(source string, c *knowledge.Change) ([]byte, error) {
	article := c.Article
	article.CreatedAt = article.CreatedAt.UTC()
	article.UpdatedAt = article.UpdatedAt.UTC()
	// Receivers get empty collections instead of null.
	if article.Tags == nil {
		article.Tags = []string{}
	}
	if article.Metadata == nil {
		article.Metadata = map[string]string{}
	}
	ev := newEnvelope(source, EventID(c), EventTypePrefix+string(c.Type), c.ArticleID, c.Time, eventData{Article: article})
	if article.ReviewEvery > 0 {
		due := article.ReviewDue()
		ev.Data.ReviewEvery = knowledge.FormatDuration(article.ReviewEvery)
		ev.Data.ReviewDue = &due
	}
	return encodeEvent(ev)
}

// RemovedEventType is the type of the event for a change that moves an
// article out of an integration's scope. Its data holds only the article's
// id and new version, because the tool may not see that version: the
// receiver must drop its copy of the article.
const RemovedEventType = EventTypePrefix + string(knowledge.ChangeRemoved)

// removedData is the data of a RemovedEventType event.
type removedData struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

// BuildRemovedEvent encodes a change that moves its article out of a
// scope as a CloudEvents 1.0 JSON event of RemovedEventType. Its id is the
// change's, as for BuildEvent, so retries and replays repeat it.
func BuildRemovedEvent(source string, c *knowledge.Change) ([]byte, error) {
	data := removedData{ID: c.ArticleID, Version: c.Version}
	return encodeEvent(newEnvelope(source, EventID(c), RemovedEventType, c.ArticleID, c.Time, data))
}

// BatchContentType is the media type of a batch of CloudEvents in JSON.
const BatchContentType = "application/cloudevents-batch+json; charset=utf-8"

// BatchID returns the webhook-id of a request that carries several
// changes: "batch_", the first cursor, "-" and the last. Each event in the
// batch keeps its own id, which is what receivers should deduplicate by,
// because a batch may be cut differently after a restart.
func BatchID(changes []*knowledge.Change) string {
	return "batch_" + strconv.FormatInt(changes[0].Cursor, 10) + "-" + strconv.FormatInt(changes[len(changes)-1].Cursor, 10)
}

// BuildBatch encodes changes as a JSON array of the events BuildEvent
// makes, in order.
func BuildBatch(source string, changes []*knowledge.Change) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, c := range changes {
		ev, err := BuildEvent(source, c)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(ev)
	}
	buf.WriteByte(']')
	return buf.Bytes(), nil
}
