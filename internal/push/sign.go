package push

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

// Webhook secrets follow Standard Webhooks: "whsec_" and the standard
// base64 encoding of the key bytes.
const (
	SecretPrefix  = "whsec_"
	MinSecretSize = 16 // decoded bytes
	MaxSecretSize = 64 // decoded bytes
	newSecretSize = 24 // decoded bytes; 24 encodes to 32 characters without padding
)

// Standard Webhooks request headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// NewSecret returns a random signing secret: "whsec_" and the base64 of 24
// bytes from crypto/rand.
func NewSecret() string {
	key := make([]byte, newSecretSize)
	rand.Read(key) // crypto/rand.Read never returns an error on supported platforms.
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// ParseSecret decodes a "whsec_" secret into the HMAC key. It returns a
// *knowledge.FieldError for the field "webhook.secret" when the prefix is
// missing, the rest is not standard base64, or the key is not 16 to 64
// bytes long. Errors never contain the secret.
func ParseSecret(s string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, secretError("does not start with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, secretError("is not valid base64 after %q", SecretPrefix)
	}
	if len(key) < MinSecretSize || len(key) > MaxSecretSize {
		return nil, secretError("decodes to %d bytes", len(key))
	}
	return key, nil
}

func secretError(format string, args ...any) error {
	return &knowledge.FieldError{
		Field: "webhook.secret",
		Message: fmt.Sprintf(format, args...) + fmt.Sprintf(
			": use %q followed by the standard base64 of %d to %d random bytes, or omit the field to have khub generate one",
			SecretPrefix, MinSecretSize, MaxSecretSize),
	}
}

// Sign returns the Standard Webhooks v1 signature of a message: "v1," and
// the base64 of HMAC-SHA256(secret, id + "." + unix seconds of ts + "." +
// body). The webhook-timestamp header must carry the same seconds.
func Sign(secret []byte, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
