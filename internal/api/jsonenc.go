package api

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/khub-dev/khub/client"
)

// jsonAppender is a response value that writeJSON lets encode itself,
// byte for byte as encoding/json would.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// searchResultJSON is a search result that encodes itself.
type searchResultJSON struct{ *client.SearchResult }

// appendJSON appends the result's JSON. writeJSON passes a pooled buffer,
// which after the first responses has room for the result, so no size is
// computed ahead.
func (r searchResultJSON) appendJSON(b []byte) []byte {
	return appendSearchResult(b, r.SearchResult)
}

// appendSearchResult appends the JSON of a search result, byte for byte
// what writeJSON writes for it. encoding/json reflects on each field of
// each hit: without it, cold searches through the API ran about a tenth
// faster. Facets, which few searches request, go through encoding/json.
func appendSearchResult(b []byte, r *client.SearchResult) []byte {
	b = append(b, `{"hits":`...)
	b = appendJSONList(b, r.Hits, appendSearchHit)
	if r.Next != "" {
		b = append(b, `,"next":`...)
		b = appendJSONText(b, r.Next)
	}
	if r.Facets != nil {
		b = append(b, `,"facets":`...)
		b = appendJSONValue(b, r.Facets)
	}
	if r.AnyTerm {
		b = append(b, `,"any_term":true`...)
	}
	return append(b, "}\n"...)
}

func appendSearchHit(b []byte, h *client.SearchHit) []byte {
	b = appendHitStart(b, h.ID, h.Title, h.Collection, h.Class)
	b = append(b, `,"tags":`...)
	b = appendJSONTexts(b, h.Tags)
	b = appendHitText(b, h.Status, h.Version, h.Snippet, h.SnippetHTML)
	if len(h.Matched) > 0 {
		b = append(b, `,"matched":`...)
		b = appendJSONTexts(b, h.Matched)
	}
	b = append(b, `,"score":`...)
	b = appendJSONFloat(b, h.Score)
	return appendHitReview(b, h.Owner, h.ReviewOverdue)
}

// appendHitStart opens the object of a search or lookup hit with the
// fields that both begin with.
func appendHitStart(b []byte, id, title, collection, class string) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONText(b, id)
	b = append(b, `,"title":`...)
	b = appendJSONText(b, title)
	b = append(b, `,"collection":`...)
	b = appendJSONText(b, collection)
	b = append(b, `,"class":`...)
	return appendJSONText(b, class)
}

// appendHitText appends the status, version and snippets of a hit.
func appendHitText(b []byte, status string, version int64, snippet, snippetHTML string) []byte {
	b = append(b, `,"status":`...)
	b = appendJSONText(b, status)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, version, 10)
	b = append(b, `,"snippet":`...)
	b = appendJSONText(b, snippet)
	b = append(b, `,"snippet_html":`...)
	return appendJSONText(b, snippetHTML)
}

// appendHitReview appends a hit's review fields, which both leave out
// when empty, and closes its object.
func appendHitReview(b []byte, owner string, overdue bool) []byte {
	if owner != "" {
		b = append(b, `,"owner":`...)
		b = appendJSONText(b, owner)
	}
	if overdue {
		b = append(b, `,"review_overdue":true`...)
	}
	return append(b, '}')
}

// lookupResultJSON is a lookup result that encodes itself.
type lookupResultJSON struct{ *client.LookupResult }

// appendJSON appends the result's JSON, as searchResultJSON does.
func (r lookupResultJSON) appendJSON(b []byte) []byte {
	return appendLookupResult(b, r.LookupResult)
}

// appendLookupResult appends the JSON of a lookup result, byte for byte
// what writeJSON writes for it, for the reason given at
// appendSearchResult.
func appendLookupResult(b []byte, r *client.LookupResult) []byte {
	b = append(b, `{"hits":`...)
	b = appendJSONList(b, r.Hits, appendLookupHit)
	b = append(b, `,"terms":`...)
	b = appendJSONTexts(b, r.Terms)
	return append(b, "}\n"...)
}

func appendLookupHit(b []byte, h *client.LookupHit) []byte {
	b = appendHitStart(b, h.ID, h.Title, h.Collection, h.Class)
	b = appendHitText(b, h.Status, h.Version, h.Snippet, h.SnippetHTML)
	b = append(b, `,"score":`...)
	b = appendJSONFloat(b, h.Score)
	b = append(b, `,"reason":`...)
	b = appendJSONText(b, h.Reason)
	if len(h.MatchedTerms) > 0 {
		b = append(b, `,"matched_terms":`...)
		b = appendJSONTexts(b, h.MatchedTerms)
	}
	if len(h.MatchedAttributes) > 0 {
		b = append(b, `,"matched_attributes":`...)
		b = appendJSONTexts(b, h.MatchedAttributes)
	}
	if h.Deprecated {
		b = append(b, `,"deprecated":true`...)
	} else {
		b = append(b, `,"deprecated":false`...)
	}
	if h.ReplacedBy != "" {
		b = append(b, `,"replaced_by":`...)
		b = appendJSONText(b, h.ReplacedBy)
	}
	return appendHitReview(b, h.Owner, h.ReviewOverdue)
}

// appendJSONTexts appends a list of strings, or null for a nil list, as
// encoding/json does.
func appendJSONTexts(b []byte, list []string) []byte {
	return appendJSONList(b, list, func(b []byte, s *string) []byte { return appendJSONText(b, *s) })
}

// appendJSONList appends a list with each element written by each, or
// null for a nil list, as encoding/json does.
func appendJSONList[T any](b []byte, list []T, each func([]byte, *T) []byte) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = each(b, &list[i])
	}
	return append(b, ']')
}

// appendJSONText appends s as a JSON string as encoding/json writes it
// without HTML escaping: quotes, backslashes and control characters
// escaped, invalid UTF-8 as U+FFFD and U+2028 and U+2029 escaped.
func appendJSONText(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && plain8(s[i:i+8]) {
			i += 8
			continue
		}
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// plain8 reports whether the 8 bytes of s are ASCII that a JSON string
// contains unescaped: no control character, quote or backslash. It tests
// them at once, as snippets and titles are mostly such text.
func plain8(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	v := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	// A byte x below n sets the high bit of (x - n) &^ x; a byte equal to
	// c leaves zero in v ^ c, which the same test with n = 1 finds. Bytes
	// of 0x80 and above set their own high bit.
	quote, backslash := v^(ones*'"'), v^(ones*'\\')
	m := (v-ones*0x20)&^v | (quote-ones)&^quote | (backslash-ones)&^backslash | v
	return m&highs == 0
}

// appendJSONFloat appends f as encoding/json writes a float64: like
// strconv's shortest form, with an exponent only below 1e-6 or from 1e21,
// and without a leading zero in a negative exponent. Scores are finite.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONTime appends t as time.Time.MarshalJSON does, in RFC 3339
// with nanoseconds. MarshalJSON fails outside the years 0 to 9999, which
// no commit time reaches.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONValue appends v encoded by encoding/json without HTML
// escaping, as writeJSON encodes it.
func appendJSONValue(b []byte, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}
