package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strings"

	"github.com/khub-dev/khub/internal/knowledge"
)

// idHashLen is the number of hex digits of the SHA-256 suffix that keeps
// shortened ids apart (32 bits).
const idHashLen = 8

// derivedID builds an article id from the collection and a file's
// slash-separated path relative to the import root:
// "<collection>.<segments joined with '.'>" without the extension,
// lower-cased, with every run of characters outside [a-z0-9._-] replaced
// by '-'. An id longer than knowledge.MaxIDLen is cut and ends in '-' and
// a hash of the full id, so it depends only on the path and the
// collection and is the same on every run and machine.
func derivedID(collection, relPath string) string {
	relPath = strings.TrimSuffix(relPath, path.Ext(relPath))
	raw := collection + "." + strings.ReplaceAll(relPath, "/", ".")
	id := sanitizeID(strings.ToLower(raw))
	if len(id) <= knowledge.MaxIDLen {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	suffix := "-" + hex.EncodeToString(sum[:])[:idHashLen]
	// id is ASCII after sanitizeID, so any byte index is a safe cut.
	return id[:knowledge.MaxIDLen-len(suffix)] + suffix
}

// sanitizeID replaces every run of characters outside [a-z0-9._-] with a
// single '-'.
func sanitizeID(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	inRun := false
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
			inRun = false
			continue
		}
		if !inRun {
			b.WriteByte('-')
			inRun = true
		}
	}
	return b.String()
}
