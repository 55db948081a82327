package importer

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// utf8BOM is the byte order mark some editors put at the start of UTF-8
// files. It is not part of the content.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// errTOMLFrontMatter rejects a "+++" block, the TOML front matter that
// Hugo sites may use.
var errTOMLFrontMatter = errors.New("has TOML front matter (+++), which khub does not read: convert it to YAML between --- lines")

// splitFrontMatter separates a leading YAML front matter block from the
// Markdown body. The block opens with a "---" line as the very first line
// and closes at the next "---" or "..." line. Both lines may end in spaces
// and a CR. The body is every byte after the closing line, minus one blank
// line directly after it. Without an opening line the whole input is the
// body and hasFrontMatter is false.
//
// src must not start with a byte order mark; the caller strips it.
func splitFrontMatter(src []byte) (frontMatter, body []byte, hasFrontMatter bool, err error) {
	first, rest, _ := bytes.Cut(src, []byte("\n"))
	switch string(trimLineEnd(first)) {
	case "---":
	case "+++":
		return nil, nil, false, errTOMLFrontMatter
	default:
		return nil, src, false, nil
	}

	start := len(src) - len(rest)
	for pos := start; pos < len(src); {
		line := src[pos:]
		next := len(src)
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
			next = pos + i + 1
		}
		if marker := string(trimLineEnd(line)); marker == "---" || marker == "..." {
			return src[start:pos], trimLeadingBlankLine(src[next:]), true, nil
		}
		pos = next
	}
	return nil, nil, false, errors.New("front matter opens with --- on line 1 but has no closing --- line: add one after the last key, or remove the first line")
}

// trimLineEnd removes trailing spaces, tabs and a CR.
func trimLineEnd(line []byte) []byte {
	return bytes.TrimRight(line, " \t\r")
}

// trimLeadingBlankLine removes one line that contains only spaces, tabs or
// a CR from the start of body, the blank line writers put after front
// matter.
func trimLeadingBlankLine(body []byte) []byte {
	line, rest, found := bytes.Cut(body, []byte("\n"))
	if found && len(trimLineEnd(line)) == 0 {
		return rest
	}
	return body
}

// frontMatter is the decoded front matter. HasTags distinguishes an absent
// tags key from an empty list. ReviewEveryKey is the key that gave ReviewEvery,
// review_every or review_interval, so that errors name the key the file
// uses.
type frontMatter struct {
	ID             string
	Title          string
	Class          string
	Status         string
	Tags           []string
	HasTags        bool
	Metadata       map[string]string
	ReviewEvery    string
	ReviewEveryKey string
	Owner          string
}

// knownKeys are the front matter keys that map to article fields. They
// match in any case. "collection" is listed so that it is dropped, because
// the collection comes from Options, never from a file. "review_interval"
// is another name for "review_every".
var knownKeys = map[string]bool{
	"id": true, "title": true, "class": true, "status": true,
	"tags": true, "metadata": true, "collection": true,
	"review_every": true, "review_interval": true, "owner": true,
}

// yamlLinePattern finds the line number in go.yaml.in/yaml/v3 syntax
// errors, such as "yaml: line 3: did not find expected key".
var yamlLinePattern = regexp.MustCompile(`^yaml: line (\d+): `)

// parseFrontMatter decodes a YAML front matter block. Scalar values of
// unknown keys go to Metadata as written in the file, and lists and maps
// under unknown keys are dropped. The explicit metadata map wins over a
// top-level key of the same name.
func parseFrontMatter(src []byte) (frontMatter, error) {
	fm := frontMatter{Metadata: map[string]string{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return fm, fmt.Errorf("invalid YAML front matter: %s; fix the YAML between the --- lines", yamlErrorText(err))
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return fm, nil // an empty block
	}
	top := resolveAlias(doc.Content[0])
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return fm, nil // only comments
	}
	if top.Kind != yaml.MappingNode {
		return fm, errors.New("front matter is not a YAML mapping: write one \"key: value\" per line between the --- lines")
	}

	seen := map[string]bool{}
	explicit := map[string]string{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		keyNode, value := resolveAlias(top.Content[i]), resolveAlias(top.Content[i+1])
		if keyNode.Kind != yaml.ScalarNode || keyNode.Tag == "!!merge" {
			continue
		}
		key := keyNode.Value
		lower := strings.ToLower(key)
		if !knownKeys[lower] {
			if seen[key] {
				return fm, fmt.Errorf("front matter key %q appears twice (line %d): keep one", key, keyNode.Line+1)
			}
			seen[key] = true
			if s, ok := scalarString(value); ok {
				fm.Metadata[key] = s
			}
			continue
		}
		if seen[lower] {
			return fm, fmt.Errorf("front matter key %q appears twice (line %d): keep one", lower, keyNode.Line+1)
		}
		seen[lower] = true
		if err := fm.setKnown(lower, value, explicit); err != nil {
			return fm, err
		}
	}
	for k, v := range explicit {
		fm.Metadata[k] = v
	}
	return fm, nil
}

// setKnown stores the value of a known key. Metadata entries go to
// explicit so that the caller can let them win over top-level keys.
func (fm *frontMatter) setKnown(key string, value *yaml.Node, explicit map[string]string) error {
	switch key {
	case "collection":
		return nil
	case "tags":
		tags, err := decodeTags(value)
		if err != nil {
			return err
		}
		fm.Tags, fm.HasTags = tags, true
		return nil
	case "metadata":
		return decodeMetadata(value, explicit)
	}
	s, ok := scalarString(value)
	if !ok {
		return fmt.Errorf("front matter %s (line %d) must be a single value, not a list or map", key, value.Line+1)
	}
	switch key {
	case "id":
		fm.ID = strings.TrimSpace(s)
	case "title":
		fm.Title = s
	case "class":
		fm.Class = s
	case "status":
		fm.Status = strings.ToLower(strings.TrimSpace(s))
	case "review_every", "review_interval":
		if fm.ReviewEveryKey != "" {
			return fmt.Errorf("front matter has both %s and %s (line %d): keep one", fm.ReviewEveryKey, key, value.Line+1)
		}
		fm.ReviewEvery, fm.ReviewEveryKey = strings.TrimSpace(s), key
	case "owner":
		fm.Owner = s
	}
	return nil
}

// decodeTags accepts a list of scalars or one comma-separated string.
func decodeTags(value *yaml.Node) ([]string, error) {
	if s, ok := scalarString(value); ok {
		var tags []string
		for t := range strings.SplitSeq(s, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
		return tags, nil
	}
	if value.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("front matter tags (line %d) must be a list or a comma-separated string", value.Line+1)
	}
	tags := make([]string, 0, len(value.Content))
	for _, item := range value.Content {
		s, ok := scalarString(resolveAlias(item))
		if !ok {
			return nil, fmt.Errorf("front matter tags (line %d) must contain only plain values, not lists or maps", item.Line+1)
		}
		tags = append(tags, s)
	}
	return tags, nil
}

// decodeMetadata copies a map of scalars into out.
func decodeMetadata(value *yaml.Node, out map[string]string) error {
	if value.Kind == yaml.ScalarNode && value.Tag == "!!null" {
		return nil
	}
	if value.Kind != yaml.MappingNode {
		return fmt.Errorf("front matter metadata (line %d) must be a map of keys to single values", value.Line+1)
	}
	for i := 0; i+1 < len(value.Content); i += 2 {
		k, v := resolveAlias(value.Content[i]), resolveAlias(value.Content[i+1])
		key, ok := scalarString(k)
		if !ok {
			return fmt.Errorf("front matter metadata (line %d) has a key that is a list or map", k.Line+1)
		}
		if _, dup := out[key]; dup {
			return fmt.Errorf("front matter metadata key %q appears twice (line %d): keep one", key, k.Line+1)
		}
		s, ok := scalarString(v)
		if !ok {
			return fmt.Errorf("front matter metadata.%s (line %d) must be a single value, not a list or map", key, v.Line+1)
		}
		out[key] = s
	}
	return nil
}

// scalarString returns a scalar's text as written in the file, so that
// "weight: 010" stays "010" and dates keep their format. A null value
// returns "".
func scalarString(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	return n.Value, true
}

// resolveAlias follows a YAML alias (*name) to its anchored node.
func resolveAlias(n *yaml.Node) *yaml.Node {
	// YAML puts anchors on real nodes only, so one step is enough. The
	// bound guards against a malformed tree all the same.
	for range 8 {
		if n.Kind != yaml.AliasNode || n.Alias == nil {
			return n
		}
		n = n.Alias
	}
	return n
}

// yamlErrorText shortens a YAML error and shifts its line number from the
// front matter block to the file, whose line 1 is the opening ---.
func yamlErrorText(err error) string {
	msg := err.Error()
	m := yamlLinePattern.FindStringSubmatch(msg)
	if m == nil {
		return strings.TrimPrefix(msg, "yaml: ")
	}
	n, convErr := strconv.Atoi(m[1])
	if convErr != nil {
		return strings.TrimPrefix(msg, "yaml: ")
	}
	return fmt.Sprintf("line %d: %s", n+1, msg[len(m[0]):])
}
