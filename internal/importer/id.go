package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strings"
	"unicode"

	"github.com/khub-dev/khub/internal/knowledge"
)

// idHashLen is the number of hex digits of the SHA-256 suffix that keeps
// shortened ids apart (32 bits).
const idHashLen = 8

// derivedID builds an article id from the collection and a file's
// slash-separated path relative to the import root:
// "<collection>.<segments joined with '.'>" without the extension,
// lower-cased, with every run of characters outside [a-z0-9._-] replaced
// by '-'.
//
// Ids allow only ASCII letters, so a name whose letters or digits fall
// outside them, such as "日本" or "café", would lose them and could share
// its id with another name. Such an id ends in '-' and a hash of the path
// as given. An id longer than knowledge.MaxIDLen is cut and ends in '-' and
// a hash of the full id. Either way the id depends only on the path and
// the collection and is the same on every run and machine.
func derivedID(collection, relPath string) string {
	relPath = strings.TrimSuffix(relPath, path.Ext(relPath))
	raw := collection + "." + strings.ReplaceAll(relPath, "/", ".")
	id, lossy := sanitizeID(strings.ToLower(raw))
	var suffix string
	switch {
	case lossy:
		// The '-' that ends a replaced run at the end is dropped, so the
		// id does not end in "--".
		id = strings.TrimRight(id, "-")
		suffix = "-" + shortHash(raw)
	case len(id) > knowledge.MaxIDLen:
		suffix = "-" + shortHash(id)
	default:
		return id
	}
	// id is ASCII after sanitizeID, so any byte index is a safe cut.
	return id[:min(len(id), knowledge.MaxIDLen-len(suffix))] + suffix
}

// shortHash returns the first idHashLen hex digits of the SHA-256 of s.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:idHashLen]
}

// sanitizeID replaces every run of characters outside [a-z0-9._-] with a
// single '-'. lossy reports whether a replaced character was a letter or a
// digit. Spaces and punctuation only separate words, so replacing them
// loses nothing that distinguishes two names.
func sanitizeID(s string) (id string, lossy bool) {
	var b strings.Builder
	b.Grow(len(s))
	inRun := false
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
			inRun = false
			continue
		}
		if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) {
			lossy = true
		}
		if !inRun {
			b.WriteByte('-')
			inRun = true
		}
	}
	return b.String(), lossy
}
