package push

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/khub-dev/khub/internal/knowledge"
)

func TestSignKnownVector(t *testing.T) {
	// The example from the Standard Webhooks specification, which the
	// reference library's own tests use too.
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	if got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestSignVerifiesWithLibrary(t *testing.T) {
	secret := NewSecret()
	key, err := ParseSecret(secret)
	if err != nil {
		t.Fatalf("ParseSecret(NewSecret()): %v", err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("library rejects the secret: %v", err)
	}
	body := []byte(`{"specversion":"1.0","data":{"body":"é “x” 😀 <&>"}}`)
	now := time.Now()
	header := http.Header{}
	header.Set(HeaderID, "evt_42")
	header.Set(HeaderTimestamp, fmt.Sprint(now.Unix()))
	header.Set(HeaderSignature, Sign(key, "evt_42", now, body))
	if err := wh.Verify(body, header); err != nil {
		t.Errorf("library Verify: %v", err)
	}

	tampered := bytes.Replace(body, []byte("x"), []byte("y"), 1)
	if err := wh.Verify(tampered, header); err == nil {
		t.Error("library verified a tampered body")
	}
}

func TestNewSecretForm(t *testing.T) {
	first, second := NewSecret(), NewSecret()
	if first == second {
		t.Error("two calls returned the same secret")
	}
	if !strings.HasPrefix(first, "whsec_") {
		t.Errorf("secret does not start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(first, "whsec_"))
	if err != nil {
		t.Fatalf("secret is not base64 after the prefix: %v", err)
	}
	if len(key) != 24 {
		t.Errorf("secret decodes to %d bytes, want 24", len(key))
	}
}

func TestParseSecretTable(t *testing.T) {
	encode := func(n int) string {
		return "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n))
	}
	cases := []struct {
		name    string
		secret  string
		wantErr string
	}{
		{"16 bytes", encode(16), ""},
		{"64 bytes", encode(64), ""},
		{"15 bytes", encode(15), "decodes to 15 bytes"},
		{"65 bytes", encode(65), "decodes to 65 bytes"},
		{"no prefix", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 24)), `does not start with "whsec_"`},
		{"empty", "", `does not start with "whsec_"`},
		{"bad base64", "whsec_not*base64!sixteen-bytes-long", "is not valid base64"},
		{"URL-safe base64", "whsec_" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 24)), "is not valid base64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key, err := ParseSecret(tc.secret)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSecret = %v, want nil", err)
				}
				if len(key) == 0 {
					t.Error("ParseSecret returned an empty key")
				}
				return
			}
			var fe *knowledge.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseSecret error %v is not a *knowledge.FieldError", err)
			}
			if fe.Field != "webhook.secret" {
				t.Errorf("Field = %q, want webhook.secret", fe.Field)
			}
			if !strings.Contains(fe.Message, tc.wantErr) {
				t.Errorf("message %q does not contain %q", fe.Message, tc.wantErr)
			}
			if !strings.Contains(fe.Message, `use "whsec_" followed by the standard base64 of 16 to 64 random bytes`) {
				t.Errorf("message %q does not give the expected form", fe.Message)
			}
			if tc.secret != "" && strings.Contains(fe.Message, strings.TrimPrefix(tc.secret, "whsec_")) {
				t.Errorf("message %q repeats the secret", fe.Message)
			}
		})
	}
}

func sampleChange() *knowledge.Change {
	created := time.Date(2025, 3, 4, 5, 6, 7, 80, time.UTC)
	return &knowledge.Change{
		Cursor:    42,
		ArticleID: "leave-policy",
		Version:   3,
		Type:      knowledge.ChangeUpdated,
		Time:      time.Date(2025, 3, 5, 10, 11, 12, 123456789, time.UTC),
		Article: knowledge.Article{
			ID:         "leave-policy",
			Title:      "Leave policy",
			Body:       "Staff get 25 days.",
			Collection: "hr",
			Class:      knowledge.ClassPolicy,
			Tags:       []string{"leave"},
			Metadata:   map[string]string{"owner": "hr-team"},
			Status:     knowledge.StatusPublished,
			Version:    3,
			CreatedAt:  created,
			UpdatedAt:  created.Add(time.Hour),
		},
	}
}

func TestBuildEventEnvelope(t *testing.T) {
	body, err := BuildEvent("urn:khub:hub:test", sampleChange())
	if err != nil {
		t.Fatalf("BuildEvent: %v", err)
	}
	var got struct {
		SpecVersion     string            `json:"specversion"`
		ID              string            `json:"id"`
		Source          string            `json:"source"`
		Type            string            `json:"type"`
		Subject         string            `json:"subject"`
		Time            string            `json:"time"`
		DataContentType string            `json:"datacontenttype"`
		Data            knowledge.Article `json:"data"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("event is not JSON: %v\n%s", err, body)
	}
	checks := []struct{ field, got, want string }{
		{"specversion", got.SpecVersion, "1.0"},
		{"id", got.ID, "evt_42"},
		{"source", got.Source, "urn:khub:hub:test"},
		{"type", got.Type, "khub.article.updated"},
		{"subject", got.Subject, "leave-policy"},
		{"time", got.Time, "2025-03-05T10:11:12.123456789Z"},
		{"datacontenttype", got.DataContentType, "application/json"},
		{"data.id", got.Data.ID, "leave-policy"},
		{"data.title", got.Data.Title, "Leave policy"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if got.Data.Version != 3 {
		t.Errorf("data.version = %d, want 3", got.Data.Version)
	}
	if !bytes.HasPrefix(body, []byte(`{"specversion":"1.0","id":"evt_42",`)) {
		t.Errorf("event does not start with specversion and id: %s", body)
	}
	if bytes.HasSuffix(body, []byte("\n")) {
		t.Error("event ends with a newline")
	}
}

func TestBuildEventDeterministic(t *testing.T) {
	first := sampleChange()
	first.Article.Metadata = map[string]string{}
	second := sampleChange()
	second.Article.Metadata = map[string]string{}
	for i := range 50 {
		first.Article.Metadata[fmt.Sprintf("key-%02d", i)] = fmt.Sprint(i)
		second.Article.Metadata[fmt.Sprintf("key-%02d", 49-i)] = fmt.Sprint(49 - i)
	}
	// The same instants in another time zone encode the same way.
	zone := time.FixedZone("UTC+5", 5*3600)
	second.Time = second.Time.In(zone)
	second.Article.CreatedAt = second.Article.CreatedAt.In(zone)
	second.Article.UpdatedAt = second.Article.UpdatedAt.In(zone)

	a, err := BuildEvent("urn:khub", first)
	if err != nil {
		t.Fatalf("BuildEvent: %v", err)
	}
	for range 20 {
		b, err := BuildEvent("urn:khub", second)
		if err != nil {
			t.Fatalf("BuildEvent: %v", err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("encodings differ:\n%s\n%s", a, b)
		}
	}
}

func TestBuildEventKeepsHTMLCharacters(t *testing.T) {
	c := sampleChange()
	c.Article.Body = "a <b> & \"c\" \u2028 end"
	body, err := BuildEvent("urn:khub", c)
	if err != nil {
		t.Fatalf("BuildEvent: %v", err)
	}
	if !json.Valid(body) {
		t.Fatalf("event is not valid JSON: %s", body)
	}
	if !bytes.Contains(body, []byte(`a <b> & \"c\"`)) {
		t.Errorf("HTML characters were escaped: %s", body)
	}
	var decoded struct {
		Data knowledge.Article `json:"data"`
	}
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if decoded.Data.Body != c.Article.Body {
		t.Errorf("body round-trips as %q, want %q", decoded.Data.Body, c.Article.Body)
	}
}

func TestBuildEventEmptyCollections(t *testing.T) {
	c := sampleChange()
	c.Article.Tags = nil
	c.Article.Metadata = nil
	body, err := BuildEvent("urn:khub", c)
	if err != nil {
		t.Fatalf("BuildEvent: %v", err)
	}
	if !bytes.Contains(body, []byte(`"tags":[]`)) {
		t.Errorf("nil tags are not encoded as []: %s", body)
	}
	if !bytes.Contains(body, []byte(`"metadata":{}`)) {
		t.Errorf("nil metadata is not encoded as {}: %s", body)
	}
}

func TestEventIDStable(t *testing.T) {
	c := sampleChange()
	if got := EventID(c); got != "evt_42" {
		t.Errorf("EventID = %q, want evt_42", got)
	}
	c.Article.Title = "changed"
	if got := EventID(c); got != "evt_42" {
		t.Errorf("EventID after an article edit = %q, want evt_42", got)
	}
}

func TestBackoffDelayTable(t *testing.T) {
	const initial, maxDelay = 2 * time.Second, 10 * time.Minute
	cases := []struct {
		failed int
		random float64
		want   time.Duration
	}{
		{1, 0.5, time.Second},
		{1, 0, 0},
		{2, 0.5, 2 * time.Second},
		{3, 0.5, 4 * time.Second},
		{9, 0.5, 256 * time.Second},
		{10, 0.5, 5 * time.Minute}, // 1024s is above the cap
		{40, 0.5, 5 * time.Minute},
		{63, 0.5, 5 * time.Minute},
		{1000, 0.5, 5 * time.Minute},
	}
	for _, tc := range cases {
		got := backoffDelay(tc.failed, initial, maxDelay, tc.random)
		if got != tc.want {
			t.Errorf("backoffDelay(%d, random %.1f) = %s, want %s", tc.failed, tc.random, got, tc.want)
		}
	}
	if got := backoffDelay(5, initial, maxDelay, 0.999999); got >= 32*time.Second {
		t.Errorf("backoffDelay(5, random near 1) = %s, want below the 32s ceiling", got)
	}
}

func TestDefaultScheduleKeepsTryingThreeDays(t *testing.T) {
	set := knowledge.DeliverySettings{}.WithDefaults()
	if set.RetryFor < 72*time.Hour {
		t.Errorf("default RetryFor = %s, want at least 72h", set.RetryFor)
	}
	// Full jitter draws each wait below its ceiling, so the ceilings of the
	// waits within RetryFor bound how many attempts that is at least.
	var total time.Duration
	attempts := 1
	for total < set.RetryFor {
		total += backoffDelay(attempts, set.InitialBackoff, set.MaxBackoff, 1)
		attempts++
	}
	if attempts < 70 {
		t.Errorf("the ceilings reach RetryFor after %d attempts, want at least 70", attempts)
	}
}

func TestParseRetryAfterTable(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"5", 5 * time.Second, true},
		{" 7 ", 7 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"99999999999999999", time.Duration(1<<63 - 1), true},
	}
	for _, tc := range cases {
		got, ok := parseRetryAfter(tc.value, now)
		if ok != tc.wantOK || got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tc.value, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestRetryableStatusTable(t *testing.T) {
	cases := map[int]bool{
		301: false, 302: false, 307: false,
		400: false, 401: false, 403: false, 404: false, 410: false, 422: false,
		408: true, 429: true,
		500: true, 502: true, 503: true, 504: true,
	}
	for code, want := range cases {
		if got := retryableStatus(code); got != want {
			t.Errorf("retryableStatus(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestTransportErrorTextHidesURL(t *testing.T) {
	err := &url.Error{Op: "Post", URL: "https://hooks.example.com/t0ken?key=hidden", Err: errors.New("connection reset by peer")}
	if got := transportErrorText(err, time.Second); got != "connection reset by peer" {
		t.Errorf("transportErrorText = %q, want the inner error only", got)
	}
	timeout := &url.Error{Op: "Post", URL: "https://hooks.example.com/t0ken?key=hidden", Err: context.DeadlineExceeded}
	if got := transportErrorText(timeout, 15*time.Second); got != "timed out after 15s" {
		t.Errorf("transportErrorText(timeout) = %q, want %q", got, "timed out after 15s")
	}
}
