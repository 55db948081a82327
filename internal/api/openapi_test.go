package api

import (
	"fmt"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPITextFields checks that every description, summary and title
// of the embedded description is a string and that no value is null. A
// description with a comma in a YAML flow mapping, such as
// {type: string, description: a, b}, parses as more keys with null
// values, and OpenAPI validators accept those as unknown keywords.
func TestOpenAPITextFields(t *testing.T) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		t.Fatal(err)
	}
	// names reports whether the keys of the mapping at path are names,
	// such as those of properties, rather than keywords.
	var walk func(v any, path string, names bool)
	walk = func(v any, path string, names bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				at := path + "." + k
				if x == nil {
					t.Errorf("%s is null: quote the text of the mapping that contains it", at)
					continue
				}
				switch k {
				case "description", "summary", "title":
					if _, ok := x.(string); !ok && !names {
						t.Errorf("%s is %T, not text: quote it", at, x)
					}
				}
				walk(x, at, !names && (k == "properties" || k == "paths" || k == "schemas" || k == "responses" || k == "parameters" || k == "headers"))
			}
		case []any:
			for i, x := range v {
				walk(x, fmt.Sprintf("%s[%d]", path, i), false)
			}
		}
	}
	walk(doc, "", false)
}
