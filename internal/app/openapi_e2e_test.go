package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/khub-dev/khub/client"
)

// oasChecker sends requests to a running hub and validates every response
// against the OpenAPI description that the hub serves.
type oasChecker struct {
	t     *testing.T
	base  string
	admin string
	v     validator.Validator
}

// oasCall is one request of the contract test. Token "" sends no
// Authorization header. Status 0 accepts any status the description
// declares for the operation, for calls whose outcome depends on timing.
type oasCall struct {
	method, path, token string
	header              map[string]string
	body                string
	status              int
}

// do sends the call, checks its status and validates the response's
// status, declared headers and body against the description. A call
// expected to succeed has its request validated as well, so the examples
// here also check the request schemas.
func (c *oasChecker) do(call oasCall) (*http.Response, []byte) {
	c.t.Helper()
	newReq := func() *http.Request {
		var body io.Reader
		if call.body != "" {
			body = strings.NewReader(call.body)
		}
		req, err := http.NewRequest(call.method, c.base+call.path, body)
		if err != nil {
			c.t.Fatal(err)
		}
		if call.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if call.token != "" {
			req.Header.Set("Authorization", "Bearer "+call.token)
		}
		for k, v := range call.header {
			req.Header.Set(k, v)
		}
		return req
	}

	resp, err := http.DefaultClient.Do(newReq())
	if err != nil {
		c.t.Fatalf("%s %s: %v", call.method, call.path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", call.method, call.path, err)
	}
	if call.status != 0 && resp.StatusCode != call.status {
		c.t.Fatalf("%s %s = %d, want %d: %s", call.method, call.path, resp.StatusCode, call.status, body)
	}

	resp.Body = io.NopCloser(bytes.NewReader(body))
	if ok, errs := c.v.ValidateHttpResponse(newReq(), resp); !ok {
		for _, e := range errs {
			c.t.Errorf("%s %s (%d): response breaks the description: %s: %s %v", call.method, call.path, resp.StatusCode, e.Message, e.Reason, e.SchemaValidationErrors)
		}
		c.t.Logf("body: %s", body)
	}

	if resp.StatusCode < 300 {
		if ok, errs := c.v.ValidateHttpRequest(newReq()); !ok {
			for _, e := range errs {
				c.t.Errorf("%s %s: request breaks the description: %s: %s %v", call.method, call.path, e.Message, e.Reason, e.SchemaValidationErrors)
			}
		}
	}
	return resp, body
}

// TestOpenAPIContract fetches the description from a real hub, checks that
// it is valid OpenAPI 3.1 and names every registered route, and validates
// real responses on the main paths against it.
func TestOpenAPIContract(t *testing.T) {
	_, c := startHub(t)

	resp, err := http.Get(c.BaseURL() + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json without a token = %d: %s", resp.StatusCode, spec)
	}
	etag, cc := resp.Header.Get("ETag"), resp.Header.Get("Cache-Control")
	if etag == "" || cc == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json headers: ETag %q, Cache-Control %q, Content-Type %q", etag, cc, resp.Header.Get("Content-Type"))
	}

	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatalf("parse the description: %v", err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("OpenAPI version %q, want 3.1", v)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build the OpenAPI model: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("the description breaks the OpenAPI 3.1 schema: %s: %s %v", e.Message, e.Reason, e.SchemaValidationErrors)
		}
		t.FailNow()
	}
	checkRoutesDocumented(t, &model.Model)

	ch := &oasChecker{t: t, base: c.BaseURL(), admin: c.Token(), v: v}
	admin := c.Token()

	ch.do(oasCall{method: "GET", path: "/openapi.json", header: map[string]string{"If-None-Match": etag}, status: http.StatusNotModified})
	ch.do(oasCall{method: "GET", path: "/healthz", status: http.StatusOK})

	// Articles.
	_, body := ch.do(oasCall{method: "POST", path: "/v1/articles", token: admin, status: http.StatusCreated,
		body: `{"id":"rb-db","title":"Database failover","body":"Promote the **replica** and repoint the app.","collection":"handbook","class":"runbook","tags":["database"],"metadata":{"team":"sre"},"review_every":"2160h","owner":"sre"}`})
	var created client.Article
	if err := json.Unmarshal(body, &created); err != nil || created.Version != 1 {
		t.Fatalf("created article %s: %v", body, err)
	}
	ch.do(oasCall{method: "POST", path: "/v1/articles", token: admin, status: http.StatusCreated,
		body: `{"title":"Data retention policy","body":"Keep tickets for two years.","collection":"handbook","class":"policy"}`})
	ch.do(oasCall{method: "PUT", path: "/v1/articles/rb-db", token: admin, header: map[string]string{"If-Match": `"v1"`}, status: http.StatusOK,
		body: `{"title":"Database failover","body":"Promote the replica, then repoint the app and page the DBA.","collection":"handbook","class":"runbook","tags":["database"]}`})
	ch.do(oasCall{method: "PUT", path: "/v1/articles/rb-cache", token: admin, header: map[string]string{"If-None-Match": "*"}, status: http.StatusCreated,
		body: `{"title":"Cache flush","body":"Flush the cache after a failover.","collection":"handbook","class":"runbook"}`})
	getResp, _ := ch.do(oasCall{method: "GET", path: "/v1/articles/rb-db", token: admin, status: http.StatusOK})
	ch.do(oasCall{method: "GET", path: "/v1/articles/rb-db", token: admin, header: map[string]string{"If-None-Match": getResp.Header.Get("ETag")}, status: http.StatusNotModified})
	ch.do(oasCall{method: "GET", path: "/v1/articles/rb-db/versions", token: admin, status: http.StatusOK})
	ch.do(oasCall{method: "GET", path: "/v1/articles/rb-db/versions/1", token: admin, status: http.StatusOK})
	ch.do(oasCall{method: "DELETE", path: "/v1/articles/rb-cache", token: admin, status: http.StatusOK})

	// Pull side, with the admin token and with a pull token.
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	pull := pc.Token()
	ch.do(oasCall{method: "GET", path: "/v1/search?q=failover&class=runbook&facets=true", token: admin, status: http.StatusOK})
	_, dotted := ch.do(oasCall{method: "GET", path: "/v1/search?q=replica&meta.team=sre&limit=5", token: pull, status: http.StatusOK})
	// The description's deepObject form of the same filter.
	_, deep := ch.do(oasCall{method: "GET", path: "/v1/search?q=replica&meta%5Bteam%5D=sre&limit=5", token: pull, status: http.StatusOK})
	if !bytes.Equal(dotted, deep) {
		t.Errorf("meta[team]=sre gives %s, meta.team=sre %s", deep, dotted)
	}
	ch.do(oasCall{method: "POST", path: "/v1/lookup", token: pull, status: http.StatusOK, body: `{"text":"database failover","attributes":{"service":"db"},"limit":3}`})
	_, body = ch.do(oasCall{method: "GET", path: "/v1/changes?after=0&limit=10", token: pull, status: http.StatusOK})
	var page client.ChangesPage
	if err := json.Unmarshal(body, &page); err != nil || len(page.Changes) == 0 {
		t.Fatalf("changes page %s: %v", body, err)
	}
	ch.do(oasCall{method: "GET", path: "/v1/changes?after=0&wait=10ms", token: admin, status: http.StatusOK})
	ch.do(oasCall{method: "GET", path: "/v1/cursor", token: pull, status: http.StatusOK})
	ch.do(oasCall{method: "POST", path: "/v1/cursor", token: pull, status: http.StatusOK, body: fmt.Sprintf(`{"cursor":%d}`, page.Next)})
	ch.do(oasCall{method: "POST", path: "/v1/receipts", token: pull, status: http.StatusOK, body: `{"article_id":"rb-db","version":2}`})
	ch.do(oasCall{method: "GET", path: "/v1/articles/rb-db", token: pull, status: http.StatusOK})

	// Integrations.
	rv := newReceiver(t)
	_, body = ch.do(oasCall{method: "POST", path: "/v1/integrations", token: admin, status: http.StatusCreated,
		body: `{"name":"policy-board","freshness":"1m","scope":{"classes":["policy"]},"webhook":{"url":"` + rv.URL() + `","secret":"` + rv.secret + `"},"delivery":{"batch_size":1,"coalesce":false,"rate_limit":0}}`})
	var pushIn client.Integration
	if err := json.Unmarshal(body, &pushIn); err != nil || pushIn.ID == "" {
		t.Fatalf("created integration %s: %v", body, err)
	}
	rv.waitFor("the policy pushed", func(evs []client.Event) bool { return len(evs) > 0 })
	ip := "/v1/integrations/" + pushIn.ID
	var deliveries client.DeliveryList
	eventually(t, "a recorded delivery", func() bool {
		getJSON(t, c, ip+"/deliveries", &deliveries)
		return len(deliveries.Deliveries) > 0
	})
	ch.do(oasCall{method: "GET", path: "/v1/integrations", token: admin, status: http.StatusOK})
	ch.do(oasCall{method: "GET", path: ip, token: admin, status: http.StatusOK})
	ch.do(oasCall{method: "GET", path: ip + "/deliveries?status=delivered&limit=10", token: admin, status: http.StatusOK})
	ch.do(oasCall{method: "GET", path: ip + "/staleness?since=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), token: admin, status: http.StatusOK})
	ch.do(oasCall{method: "GET", path: ip + "/applied?article=rb-db", token: admin, status: http.StatusOK})
	ch.do(oasCall{method: "PATCH", path: ip, token: admin, status: http.StatusOK, body: `{"freshness":"2m"}`})
	ch.do(oasCall{method: "POST", path: ip + "/resume", token: admin})
	ch.do(oasCall{method: "POST", path: ip + "/rotate-secret", token: admin, status: http.StatusOK, body: `{"overlap":"1h"}`})
	ch.do(oasCall{method: "POST", path: ip + "/replay", token: admin, body: `{"event_id":"` + deliveries.Deliveries[0].EventID + `"}`})
	ch.do(oasCall{method: "POST", path: "/v1/plan", token: admin, status: http.StatusOK,
		body: `{"integrations":[{"name":"crm","freshness":"1h","scope":{"classes":["reference"]},"lookups":true,"tool":"crm","requests_per_hour":10}]}`})
	ch.do(oasCall{method: "GET", path: "/metrics", token: admin, status: http.StatusOK})

	// Errors, each in the common error shape with its declared headers.
	ch.do(oasCall{method: "GET", path: "/v1/search?limit=0", token: admin, status: http.StatusBadRequest})
	ch.do(oasCall{method: "POST", path: "/v1/articles", token: admin, status: http.StatusBadRequest, body: `{"title":"No body","collection":"handbook","class":"runbook","Body":"x"}`})
	ch.do(oasCall{method: "GET", path: "/v1/articles/rb-db", status: http.StatusUnauthorized})
	ch.do(oasCall{method: "GET", path: "/v1/integrations", token: "wrong", status: http.StatusUnauthorized})
	ch.do(oasCall{method: "POST", path: "/v1/articles", token: pull, status: http.StatusForbidden, body: `{"title":"t","body":"b","collection":"handbook","class":"runbook"}`})
	ch.do(oasCall{method: "GET", path: "/v1/articles/no-such-article", token: admin, status: http.StatusNotFound})
	ch.do(oasCall{method: "GET", path: "/v1/articles/pol-none", token: pull, status: http.StatusNotFound})
	ch.do(oasCall{method: "GET", path: "/v1/integrations/no-such-integration", token: admin, status: http.StatusNotFound})
	ch.do(oasCall{method: "POST", path: "/v1/articles", token: admin, status: http.StatusConflict,
		body: `{"id":"rb-db","title":"Database failover","body":"Again.","collection":"handbook","class":"runbook"}`})
	ch.do(oasCall{method: "PUT", path: "/v1/articles/rb-db", token: admin, header: map[string]string{"If-Match": `"v1"`}, status: http.StatusPreconditionFailed,
		body: `{"title":"Database failover","body":"Stale write.","collection":"handbook","class":"runbook"}`})
	ch.do(oasCall{method: "GET", path: "/v1/changes?after=999999", token: admin, status: http.StatusBadRequest})

	ch.do(oasCall{method: "DELETE", path: ip, token: admin, status: http.StatusNoContent})
	ch.do(oasCall{method: "GET", path: ip, token: admin, status: http.StatusNotFound})
}

// checkRoutesDocumented parses the route registrations of internal/api,
// every s.mux.Handle and s.mux.HandleFunc call with a literal pattern, and
// checks that the description has each method and path, and no operation
// without a route.
func checkRoutesDocumented(t *testing.T, model *v3.Document) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "api", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("find the API sources: %v", err)
	}
	routes := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			if recv, ok := sel.X.(*ast.SelectorExpr); !ok || recv.Sel.Name != "mux" {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: a route pattern that is not a string literal cannot be checked against the description", fset.Position(call.Pos()))
				return true
			}
			pattern, _ := strconv.Unquote(lit.Value)
			method, path, ok := strings.Cut(pattern, " ")
			if !ok {
				t.Errorf("%s: route %q has no method", fset.Position(call.Pos()), pattern)
				return true
			}
			// The mux's {$} anchors a path at its end, which is what an
			// OpenAPI path means anyway.
			path = strings.TrimSuffix(path, "{$}")
			routes[method+" "+path] = true
			return true
		})
	}
	if len(routes) < 20 {
		t.Fatalf("found only %d routes in the API sources: the registration code changed shape, so update this parser", len(routes))
	}
	documented := map[string]bool{}
	for path, item := range model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	for r := range routes {
		if !documented[r] {
			t.Errorf("route %s is registered but not in the OpenAPI description", r)
		}
	}
	for d := range documented {
		if !routes[d] {
			t.Errorf("operation %s is in the OpenAPI description but no route serves it", d)
		}
	}
}
