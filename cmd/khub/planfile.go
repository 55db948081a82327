package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/khub-dev/khub/client"
)

// maxPlanFileBytes bounds an integrations file, so that a wrong path such
// as a log file fails fast instead of being read whole.
const maxPlanFileBytes = 4 << 20

// maxParseErrors bounds the errors listed for one file.
const maxParseErrors = 20

// planFile is an integrations file as sent to the hub, with the line of
// every key so that errors point into the file.
type planFile struct {
	path    string
	entries []client.PlanEntry
	// lines maps, per entry, a key path such as "freshness" or
	// "delivery.batch_size" to its line; "" is the line of the entry.
	lines []map[string]int
}

// Keys of an integrations file. They are the field names of the API, so
// that an error from the hub names the key to fix.
var (
	entryKeys    = []string{"name", "tool", "pattern", "freshness", "scope", "lookups", "poll_interval", "webhook", "requests_per_hour", "accept_risk", "delivery"}
	scopeKeys    = []string{"collections", "classes", "tags", "metadata"}
	webhookKeys  = []string{"url"}
	deliveryKeys = []string{"initial_backoff", "max_backoff", "retry_for", "timeout", "batch_size", "coalesce", "rate_limit", "pause_after", "probe_every"}
)

// readPlanFile reads and parses an integrations file; "-" reads standard
// input.
func readPlanFile(path string, stdin io.Reader) (*planFile, error) {
	var r io.Reader = stdin
	name := "standard input"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, name = f, path
	}
	data, err := io.ReadAll(io.LimitReader(r, maxPlanFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxPlanFileBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB: give a file of integrations such as examples/integrations.yaml", name, maxPlanFileBytes>>20)
	}
	return parsePlanFile(name, data)
}

// parseErrors collects the errors of one file, each with its line.
type parseErrors struct {
	path string
	list []string
}

func (p *parseErrors) add(line int, format string, args ...any) {
	if len(p.list) < maxParseErrors {
		p.list = append(p.list, fmt.Sprintf("%s:%d: %s", p.path, line, fmt.Sprintf(format, args...)))
	}
}

func (p *parseErrors) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return errors.New(strings.Join(p.list, "\n"))
}

// parsePlanFile parses the YAML text of an integrations file. Unknown keys,
// repeated keys and values of the wrong type are errors that name the line
// and the key. The hub checks the values themselves.
func parsePlanFile(path string, data []byte) (*planFile, error) {
	errs := &parseErrors{path: path}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s is empty: list the integrations under the key integrations, as in examples/integrations.yaml", path)
		}
		return nil, yamlError(path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, yamlError(path, err)
		}
		return nil, fmt.Errorf("%s:%d: a second YAML document starts here: put every integration in one list under the key integrations", path, line)
	}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the file must be a mapping with the key integrations, not %s: write \"integrations:\" and list the integrations under it", path, root.Line, kindName(root))
	}
	out := &planFile{path: path}
	var list *yaml.Node
	eachKey(errs, root, "the file", []string{"integrations"}, func(key string, _ *yaml.Node, v *yaml.Node) {
		list = v
	})
	switch {
	case list == nil && len(errs.list) == 0:
		return nil, fmt.Errorf("%s:%d: the key integrations is missing: list the integrations under it", path, root.Line)
	case list == nil:
	case list.Kind != yaml.SequenceNode:
		errs.add(list.Line, "integrations must be a list of integrations, not %s", kindName(list))
	default:
		for i, item := range list.Content {
			e, lines := parseEntry(errs, i+1, resolve(item))
			out.entries = append(out.entries, e)
			out.lines = append(out.lines, lines)
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	if len(out.entries) == 0 {
		return nil, fmt.Errorf("%s:%d: integrations is empty: list at least one integration", path, list.Line)
	}
	return out, nil
}

// yamlLinePrefix finds the line in go.yaml.in/yaml/v3 syntax errors, such
// as "yaml: line 3: did not find expected key".
var yamlLinePrefix = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlError formats a YAML syntax error as "FILE:LINE: message".
func yamlError(path string, err error) error {
	msg := err.Error()
	if m := yamlLinePrefix.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: %s", path, m[1], msg[len(m[0]):])
	}
	return fmt.Errorf("%s: %s", path, strings.TrimPrefix(msg, "yaml: "))
}

// parseEntry reads one integration; number counts from 1.
func parseEntry(errs *parseErrors, number int, n *yaml.Node) (client.PlanEntry, map[string]int) {
	var e client.PlanEntry
	lines := map[string]int{"": n.Line}
	subject := fmt.Sprintf("integration %d", number)
	if n.Kind != yaml.MappingNode {
		errs.add(n.Line, "%s must be a mapping of keys such as name and freshness, not %s", subject, kindName(n))
		return e, lines
	}
	// The name goes first into messages, wherever it is in the entry.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], resolve(n.Content[i+1]); k.Value == "name" && v.Kind == yaml.ScalarNode {
			subject = fmt.Sprintf("integration %d (%q)", number, v.Value)
		}
	}
	eachKey(errs, n, subject, entryKeys, func(key string, k, v *yaml.Node) {
		lines[key] = k.Line
		switch key {
		case "name":
			e.Name = scalarString(errs, subject, key, v)
		case "tool":
			e.Tool = scalarString(errs, subject, key, v)
		case "pattern":
			e.Pattern = scalarString(errs, subject, key, v)
		case "freshness":
			e.Freshness = scalarString(errs, subject, key, v)
		case "poll_interval":
			e.PollInterval = scalarString(errs, subject, key, v)
		case "lookups":
			e.Lookups = scalarBool(errs, subject, key, v)
		case "accept_risk":
			e.AcceptRisk = scalarBool(errs, subject, key, v)
		case "requests_per_hour":
			e.RequestsPerHour = scalarNumber(errs, subject, key, v)
		case "scope":
			e.Scope = parseScope(errs, subject, v, lines)
		case "webhook":
			e.Webhook = parseWebhook(errs, subject, v, lines)
		case "delivery":
			e.Delivery = parseDelivery(errs, subject, v, lines)
		}
	})
	return e, lines
}

func parseScope(errs *parseErrors, subject string, n *yaml.Node, lines map[string]int) client.Scope {
	var s client.Scope
	if !isMapping(errs, subject, "scope", n) {
		return s
	}
	eachKey(errs, n, subject+" scope", scopeKeys, func(key string, k, v *yaml.Node) {
		path := "scope." + key
		lines[path] = k.Line
		switch key {
		case "collections":
			s.Collections = stringList(errs, subject, path, v)
		case "classes":
			s.Classes = stringList(errs, subject, path, v)
		case "tags":
			s.Tags = stringList(errs, subject, path, v)
		case "metadata":
			s.Metadata = stringMap(errs, subject, path, v, lines)
		}
	})
	return s
}

func parseWebhook(errs *parseErrors, subject string, n *yaml.Node, lines map[string]int) *client.Webhook {
	if !isMapping(errs, subject, "webhook", n) {
		return nil
	}
	w := &client.Webhook{}
	eachKey(errs, n, subject+" webhook", webhookKeys, func(key string, k, v *yaml.Node) {
		lines["webhook."+key] = k.Line
		w.URL = scalarString(errs, subject, "webhook.url", v)
	})
	return w
}

func parseDelivery(errs *parseErrors, subject string, n *yaml.Node, lines map[string]int) *client.DeliverySettings {
	if !isMapping(errs, subject, "delivery", n) {
		return nil
	}
	d := &client.DeliverySettings{}
	eachKey(errs, n, subject+" delivery", deliveryKeys, func(key string, k, v *yaml.Node) {
		path := "delivery." + key
		lines[path] = k.Line
		switch key {
		case "initial_backoff":
			d.InitialBackoff = scalarString(errs, subject, path, v)
		case "max_backoff":
			d.MaxBackoff = scalarString(errs, subject, path, v)
		case "retry_for":
			d.RetryFor = scalarString(errs, subject, path, v)
		case "timeout":
			d.Timeout = scalarString(errs, subject, path, v)
		case "probe_every":
			d.ProbeEvery = scalarString(errs, subject, path, v)
		case "batch_size":
			d.BatchSize = scalarInt(errs, subject, path, v)
		case "pause_after":
			d.PauseAfter = scalarInt(errs, subject, path, v)
		case "coalesce":
			d.Coalesce = scalarBool(errs, subject, path, v)
		case "rate_limit":
			d.RateLimit = scalarNumber(errs, subject, path, v)
		}
	})
	return d
}

// eachKey calls fn for each key of a mapping in order. It reports unknown
// keys, keys given twice and keys that are not plain strings.
func eachKey(errs *parseErrors, n *yaml.Node, subject string, known []string, fn func(key string, k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			errs.add(k.Line, "%s has a key that is %s: keys are plain words such as %s", subject, kindName(k), known[0])
			continue
		}
		if first, dup := seen[k.Value]; dup {
			errs.add(k.Line, "%s gives the key %q twice, first on line %d: give each key once", subject, k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		if !slices.Contains(known, k.Value) {
			errs.add(k.Line, "%s has the unknown key %q%s: use %s", subject, k.Value, unknownKeyHint(k.Value), strings.Join(known, ", "))
			continue
		}
		fn(k.Value, k, v)
	}
}

// unknownKeyHint explains keys that people are likely to try.
func unknownKeyHint(key string) string {
	switch key {
	case "secret":
		return " (khub generates webhook secrets, and khub apply prints each new one once)"
	case "token":
		return " (khub generates pull tokens, and khub apply prints each new one once)"
	case "id":
		return " (khub finds integrations by name)"
	}
	return ""
}

// resolve follows YAML aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "not a value"
}

func isMapping(errs *parseErrors, subject, key string, n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode {
		errs.add(n.Line, "%s: %s must be a mapping, not %s", subject, key, kindName(n))
		return false
	}
	return true
}

// scalarString reads a scalar as text. Numbers are read as their text, so
// that a duration without a unit reaches the hub, which explains the fix.
func scalarString(errs *parseErrors, subject, key string, n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		errs.add(n.Line, "%s: %s must be a single value, not %s", subject, key, kindName(n))
		return ""
	}
	return n.Value
}

func scalarBool(errs *parseErrors, subject, key string, n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		errs.add(n.Line, "%s: %s must be true or false, not %s", subject, key, kindName(n))
		return false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		errs.add(n.Line, "%s: %s must be true or false, not %s", subject, key, kindName(n))
	}
	return b
}

func scalarNumber(errs *parseErrors, subject, key string, n *yaml.Node) float64 {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil {
			return f
		}
	}
	errs.add(n.Line, "%s: %s must be a number such as 120 or 0.5, not %s", subject, key, kindName(n))
	return 0
}

func scalarInt(errs *parseErrors, subject, key string, n *yaml.Node) int {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		var i int
		if err := n.Decode(&i); err == nil {
			return i
		}
	}
	errs.add(n.Line, "%s: %s must be a whole number such as 10, not %s", subject, key, kindName(n))
	return 0
}

func stringList(errs *parseErrors, subject, key string, n *yaml.Node) []string {
	if n.Kind != yaml.SequenceNode {
		errs.add(n.Line, "%s: %s must be a list such as [policy, runbook], not %s", subject, key, kindName(n))
		return nil
	}
	out := []string{}
	for _, item := range n.Content {
		out = append(out, scalarString(errs, subject, key, resolve(item)))
	}
	return out
}

func stringMap(errs *parseErrors, subject, key string, n *yaml.Node, lines map[string]int) map[string]string {
	if !isMapping(errs, subject, key, n) {
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		name := scalarString(errs, subject, key+" key", k)
		if _, dup := out[name]; dup {
			errs.add(k.Line, "%s gives the key %s.%s twice: give each key once", subject, key, name)
			continue
		}
		lines[key+"."+name] = k.Line
		out[name] = scalarString(errs, subject, key+"."+name, v)
	}
	return out
}

// line returns the line of the key that an API field names, such as
// "delivery.batch_size", falling back to the closest enclosing key and
// then to the entry.
func (f *planFile) line(entry int, field string) int {
	lines := f.lines[entry]
	for {
		if l, ok := lines[field]; ok {
			return l
		}
		i := strings.LastIndex(field, ".")
		if i < 0 {
			return lines[""]
		}
		field = field[:i]
	}
}

// where formats the position of an API field in an entry as "FILE:LINE".
func (f *planFile) where(entry int, field string) string {
	return fmt.Sprintf("%s:%d", f.path, f.line(entry, field))
}
