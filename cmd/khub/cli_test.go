package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/store/sqlite"
)

// runCLI runs the khub command in this process against the hub at c and
// returns what it printed on standard output.
func runCLI(t *testing.T, c *client.Client, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(append(args, "--server", c.BaseURL(), "--token", c.Token()))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestImportEmptyPagesDoNotFail(t *testing.T) {
	_, c := startHub(t)
	dir := t.TempDir()
	files := map[string]string{
		"_index.md":          "---\ntitle: Handbook\nweight: 1\n---\n",
		"ops/_index.md":      "---\ntitle: Operations\n---\n\n",
		"ops/disk-full.md":   "# Disk full\n\nDelete old logs.\n",
		"ops/restart.md":     "# Restart\n\nRestart the service.\n",
		"policy/_index.md":   "---\ntitle: Policies\n---\n",
		"policy/travel.md":   "---\nclass: policy\n---\n# Travel\n\nBook economy.\n",
		"policy/placeholder": "not Markdown",
	}
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	out, err := runCLI(t, c, "import", dir, "--collection", "handbook")
	if err != nil {
		t.Fatalf("import of a clean corpus with empty section pages failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "imported:      3") || !strings.Contains(out, "skipped:       3 (3 empty pages") {
		t.Errorf("summary does not report 3 imported and 3 empty pages:\n%s", out)
	}

	// A file that cannot be read still fails the command.
	if err := os.WriteFile(filepath.Join(dir, "broken.md"), []byte("# Broken \xff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, c, "import", dir, "--collection", "handbook")
	if err == nil || !strings.Contains(err.Error(), "1 file could not be imported") {
		t.Errorf("import with an invalid file: err = %v, want one file reported\n%s", err, out)
	}
}

func TestSearchFlags(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	for _, a := range []client.Article{
		{ID: "rb-a", Title: "Failover A", Body: "Promote\nthe\n\n  replica for failover.\nThen check.", Collection: "ops", Class: "runbook", Metadata: map[string]string{"team": "platform"}},
		{ID: "rb-b", Title: "Failover B", Body: "Failover of the queue.", Collection: "ops", Class: "runbook", Metadata: map[string]string{"team": "data"}},
	} {
		if _, _, err := c.PutArticle(ctx, a); err != nil {
			t.Fatal(err)
		}
	}

	for _, limit := range []string{"0", "-1", "101"} {
		_, err := runCLI(t, c, "search", "failover", "--limit", limit)
		if err == nil || !strings.Contains(err.Error(), "--limit "+limit) || !strings.Contains(err.Error(), "1 to 100") {
			t.Errorf("--limit %s: err = %v, want an error naming --limit and the range", limit, err)
		}
	}

	out, err := runCLI(t, c, "search", "failover", "--meta", "team=platform")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "rb-a") || strings.Contains(out, "rb-b") {
		t.Errorf("--meta team=platform found:\n%s\nwant only rb-a", out)
	}
	// One hit is two lines, however many newlines its snippet has.
	if lines := strings.Count(strings.TrimRight(out, "\n"), "\n") + 1; lines != 2 {
		t.Errorf("one hit printed as %d lines, want 2:\n%s", lines, out)
	}

	if _, err := runCLI(t, c, "search", "failover", "--meta", "team"); err == nil || !strings.Contains(err.Error(), "--meta") {
		t.Errorf("--meta without =: err = %v, want an error naming --meta", err)
	}

	out, err = runCLI(t, c, "search", "failover", "--facets")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"classes: runbook 2", "collections: ops 2", "tags: none"} {
		if !strings.Contains(out, want) {
			t.Errorf("--facets output lacks %q:\n%s", want, out)
		}
	}
}

func TestSearchPagesWithCursor(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	for i := range 3 {
		a := client.Article{ID: fmt.Sprintf("rb-%d", i), Title: fmt.Sprintf("Failover %d", i), Body: "Failover steps.", Collection: "ops", Class: "runbook"}
		if _, _, err := c.PutArticle(ctx, a); err != nil {
			t.Fatal(err)
		}
	}

	// The JSON output carries the cursor of the next page.
	out, err := runCLI(t, c, "search", "failover", "--limit", "2", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var first client.SearchResult
	if err := json.Unmarshal([]byte(out), &first); err != nil {
		t.Fatalf("--json output is not a search result: %v\n%s", err, out)
	}
	if len(first.Hits) != 2 || first.Next == "" {
		t.Fatalf("first page: %d hits, next %q; want 2 hits and a cursor", len(first.Hits), first.Next)
	}

	out, err = runCLI(t, c, "search", "failover", "--limit", "2", "--cursor", first.Next)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, h := range first.Hits {
		if strings.Contains(out, h.ID+" ") {
			t.Errorf("second page repeats %s:\n%s", h.ID, out)
		}
	}
	for i := range 3 {
		if strings.Contains(out, fmt.Sprintf("rb-%d ", i)) {
			seen++
		}
	}
	if seen != 1 {
		t.Errorf("second page shows %d articles, want the 1 left:\n%s", seen, out)
	}
}

func TestIntegrationsByNameAndPullDeliveries(t *testing.T) {
	_, c := startHub(t)
	in, err := c.CreateIntegration(context.Background(), client.IntegrationRequest{Name: "help desk", Freshness: "15m", Lookups: true,
		Scope: client.Scope{Classes: []string{"runbook"}}})
	if err != nil {
		t.Fatal(err)
	}

	for _, ref := range []string{in.ID, "help desk"} {
		out, err := runCLI(t, c, "integrations", "show", ref)
		if err != nil || !strings.Contains(out, in.ID) || !strings.Contains(out, "scope:     classes runbook\n") || !strings.Contains(out, "lookups:") {
			t.Errorf("show %q: err %v, output without the id, scope and lookups:\n%s", ref, err, out)
		}
	}
	if _, err := runCLI(t, c, "integrations", "show", "nobody"); err == nil || !strings.Contains(err.Error(), `"nobody"`) {
		t.Errorf("show of an unknown name: err = %v, want it named", err)
	}

	out, err := runCLI(t, c, "integrations", "deliveries", "help desk")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "uses pull") || !strings.Contains(out, "no deliveries") || strings.Contains(out, "EVENT") {
		t.Errorf("deliveries of a pull integration printed:\n%s\nwant an explanation instead of an empty table", out)
	}

	out, err = runCLI(t, c, "integrations", "delete", "help desk")
	if err != nil || !strings.Contains(out, in.ID) {
		t.Errorf("delete by name: err %v, output %q", err, out)
	}
	if all, err := c.ListIntegrations(context.Background()); err != nil || len(all) != 0 {
		t.Errorf("after delete: %d integrations, err %v; want none", len(all), err)
	}
}

func TestTokenHelpSaysWhoMayCall(t *testing.T) {
	root := newRootCmd()
	for _, path := range [][]string{
		{"integrations", "create"}, {"integrations", "list"}, {"integrations", "show"},
		{"integrations", "delete"}, {"integrations", "deliveries"}, {"status"}, {"import"},
	} {
		cmd, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		if help := cmd.Flags().Lookup("token").Usage; strings.Contains(help, "pull token") {
			t.Errorf("%s --token help %q offers the pull token, but the call is admin-only", strings.Join(path, " "), help)
		}
	}
	cmd, _, _ := root.Find([]string{"search"})
	if help := cmd.Flags().Lookup("token").Usage; !strings.Contains(help, "pull token") {
		t.Errorf("search --token help %q does not mention the pull token", help)
	}
}

func TestLastErrorHiddenAfterSuccess(t *testing.T) {
	t1 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Minute)
	cases := []struct {
		name             string
		errAt, successAt *time.Time
		want             string
	}{
		{"error only", &t1, nil, "HTTP 500"},
		{"success after error", &t1, &t2, ""},
		{"error after success", &t2, &t1, "HTTP 500"},
	}
	for _, tc := range cases {
		in := client.Integration{ID: "int_1", Name: "board", Pattern: "push", LastError: "HTTP 500", LastErrorAt: tc.errAt, LastSuccessAt: tc.successAt}
		if got := currentError(&in); got != tc.want {
			t.Errorf("%s: currentError = %q, want %q", tc.name, got, tc.want)
		}
		var out bytes.Buffer
		printStatusTable(&out, []client.Integration{in})
		if shown := strings.Contains(out.String(), "HTTP 500"); shown != (tc.want != "") {
			t.Errorf("%s: status table shows the error = %v:\n%s", tc.name, shown, out.String())
		}
	}
}

// TestStatusTableShowsStoppedDelivery checks that the status table shows a
// paused or disabled state, not only the freshness window.
func TestStatusTableShowsStoppedDelivery(t *testing.T) {
	for state, want := range map[string]string{"active": "within window", "paused": "PAUSED, within window", "disabled": "DISABLED, within window"} {
		in := client.Integration{ID: "int_1", Name: "board", Pattern: "push", State: state}
		in.Freshness.WithinWindow = true
		var out bytes.Buffer
		printStatusTable(&out, []client.Integration{in})
		if !strings.Contains(out.String(), want) {
			t.Errorf("state %s: status table lacks %q:\n%s", state, want, out.String())
		}
	}
}

func TestErrorsPrintOnePrefix(t *testing.T) {
	_, c := startHub(t)
	cmd := khubCommand("integrations", "show", "int_missing", "--server", c.BaseURL(), "--token", c.Token())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("show of a missing integration exited with status 0")
	}
	msg := stderr.String()
	if strings.Contains(msg, "khub: khub:") || !strings.HasPrefix(msg, "khub: ") {
		t.Errorf("error line %q, want one khub: prefix", msg)
	}
}

// TestDemoFallsBackFromBusyPort starts the demo on a port that another
// listener holds and checks that it serves on a free one instead.
func TestDemoFallsBackFromBusyPort(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo imports the example knowledge base and waits for pushes")
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var out bytes.Buffer
	d := &demo{out: &out, addr: busy.Addr().String()}
	if err := d.run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), true); err != nil {
		t.Fatalf("demo on a busy port: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "hub started at http://127.0.0.1:") || strings.Contains(out.String(), busy.Addr().String()) {
		t.Errorf("demo output does not show a hub on another port than %s:\n%s", busy.Addr(), out.String())
	}
}

func TestDemoRunsTwiceOnOneDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo imports the example knowledge base and waits for pushes")
	}
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	run := func() string {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out bytes.Buffer
		d := &demo{out: &out, addr: "127.0.0.1:0", dataDir: dir}
		if err := d.run(ctx, logger, true); err != nil {
			t.Fatalf("demo: %v\n%s", err, out.String())
		}
		return out.String()
	}
	run()
	out := run()
	if !strings.Contains(out, "Deleted the integrations of an earlier demo run") {
		t.Errorf("second run does not say it removed the first run's integrations:\n%s", out)
	}

	st, err := sqlite.Open(filepath.Join(dir, "khub.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	all, err := st.ListIntegrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range all {
		names = append(names, in.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"helpdesk", "ops-chat", "safety-board"}) {
		t.Errorf("integrations after two runs = %q, want one of each", names)
	}
}

func TestOneLineEscapesControls(t *testing.T) {
	cases := map[string]string{
		"Reset \x1b[2J\x1b[31mnow\x1b[0m": `Reset \x1b[2J\x1b[31mnow\x1b[0m`,
		"tag\x1b]0;owned\a":               `tag\x1b]0;owned\a`,
		"two\nlines\t here":               "two lines here",
		"evil\u202Etxt.exe":               `evil\u202etxt.exe`,
		"Grüße 東京 🚒":                      "Grüße 東京 🚒",
	}
	for in, want := range cases {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRefusedConnectionHint checks the hint for an address where no hub
// listens, and the example that search without words prints.
func TestRefusedConnectionHint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close() // nothing listens there now

	_, err = runCLI(t, client.New(addr, "some-token"), "status")
	if err == nil {
		t.Fatal("status against a closed port succeeded")
	}
	if line := errorLine(err); !strings.Contains(line, "no hub is listening there") || !strings.Contains(line, "khub serve") {
		t.Errorf("error line %q, want a hint to start a hub or fix --server", line)
	}

	_, c := startHub(t)
	if _, err := runCLI(t, c, "search"); err == nil || !strings.Contains(err.Error(), `khub search "database failover"`) {
		t.Errorf("search without words: %v, want a message with an example", err)
	}
}

// TestSearchSaysNothingSearchable checks that a query of symbols alone,
// which the index cannot match, is explained rather than just unmatched.
func TestSearchSaysNothingSearchable(t *testing.T) {
	_, c := startHub(t)
	if _, err := runCLI(t, c, "search", "🚨 *"); err == nil || !strings.Contains(err.Error(), "no word that can be searched") {
		t.Errorf("search of symbols: err = %v, want an error saying that nothing can be searched", err)
	}
	if out, err := runCLI(t, c, "search", "zebrafour"); err != nil || !strings.Contains(out, "no matches") {
		t.Errorf("search of an unknown word: %q, %v; want no matches", out, err)
	}
}

// TestLookupCommand checks that khub lookup sends the subject, the
// description and the attributes, prints each hit with its reason and a
// deprecation's replacement, and names the flag of a mistake.
func TestLookupCommand(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	for _, a := range []client.Article{
		{ID: "rb-crash", Title: "Pod crash looping", Body: "Read the logs of the container that restarts.", Collection: "ops", Class: "runbook",
			Metadata: map[string]string{"service": "checkout"}, Owner: "sre-team"},
		{ID: "rb-crash-old", Title: "Pod crash looping (old)", Body: "Restart the pod.", Collection: "ops", Class: "runbook",
			Status: "deprecated", Metadata: map[string]string{"replaced_by": "rb-crash"}},
		{ID: "rb-disk", Title: "Disk full", Body: "Delete old logs.", Collection: "ops", Class: "runbook"},
	} {
		if _, _, err := c.PutArticle(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	run := func(stdin string, args ...string) (string, string, error) {
		root := newRootCmd()
		var out, errOut bytes.Buffer
		root.SetIn(strings.NewReader(stdin))
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append(args, "--server", c.BaseURL(), "--token", c.Token()))
		err := root.ExecuteContext(context.Background())
		return out.String(), errOut.String(), err
	}

	out, notes, err := run("", "lookup", "Pods crash looping", "The checkout pods restart.", "--attr", "service=checkout")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "rb-crash ") {
		t.Errorf("first hit is not rb-crash:\n%s", out)
	}
	for _, want := range []string{"why: matches", "service=checkout (metadata)", "; owner sre-team\n", "Pod crash looping (old) (deprecated, use rb-crash)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "rb-disk") {
		t.Errorf("output shows rb-disk, which matches nothing:\n%s", out)
	}
	if !strings.Contains(notes, "searched: ") || !strings.Contains(notes, "checkout") {
		t.Errorf("stderr %q does not list the searched words", notes)
	}

	// Search marks the deprecated article too.
	if out, _, err := run("", "search", "crash looping"); err != nil || !strings.Contains(out, "Pod crash looping (old) (deprecated)\n") {
		t.Errorf("search output does not mark the deprecated article: %v\n%s", err, out)
	}

	// --file - reads the text from standard input, and --json prints
	// the API's result.
	out, _, err = run("Disk full on a worker\nThe root disk is full.\n", "lookup", "--file", "-", "--json", "--limit", "1")
	if err != nil {
		t.Fatal(err)
	}
	var res client.LookupResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output is not a lookup result: %v\n%s", err, out)
	}
	if len(res.Hits) != 1 || res.Hits[0].ID != "rb-disk" {
		t.Errorf("lookup from standard input found %+v, want rb-disk alone", res.Hits)
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"lookup"}, "needs the work's text"},
		{[]string{"lookup", "disk", "--attr", "service"}, `--attr "service" is invalid`},
		{[]string{"lookup", "disk", "--attr", "service="}, `--attr "service=" is invalid`},
		{[]string{"lookup", "disk", "--attr", "a=1", "--attr", "a=2"}, `gives key "a" twice`},
		{[]string{"lookup", "disk", "--limit", "21"}, "--limit 21 is invalid"},
		{[]string{"lookup", "disk", "--file", "-"}, "either as arguments or with --file"},
		{[]string{"lookup", "--file", filepath.Join(t.TempDir(), "missing.txt")}, "--file: open"},
		{[]string{"lookup", "--file="}, "--file needs a path"},
		{[]string{"lookup", "-"}, "use --file -"},
		{[]string{"lookup", "--file", "-"}, "is empty"},
		{[]string{"lookup", "--file", writeFile(t, "latin1.txt", "Caf\xe9 closed\n")}, "not UTF-8"},
		{[]string{"lookup", "--file", writeFile(t, "binary", "\x7fELF\x00\x01")}, "NUL bytes"},
		{append([]string{"lookup", "disk"}, manyAttrs(17)...), "--attr gives 17 attributes"},
	} {
		if _, _, err := run("", bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: err = %v, want one containing %q", bad.args, err, bad.want)
		}
	}
}

// manyAttrs returns n --attr flags with distinct keys.
func manyAttrs(n int) []string {
	var out []string
	for i := range n {
		out = append(out, "--attr", fmt.Sprintf("k%d=v", i))
	}
	return out
}

// TestServerFlagChecked checks that a --server the client cannot use is
// named with the fix, and that its password is not shown.
func TestServerFlagChecked(t *testing.T) {
	for server, want := range map[string]string{
		"127.0.0.1:8080":                   "write http:// or https://",
		"me:hunter2@127.0.0.1:8080":        "has no scheme",
		"http://127.0.0.1:8080/?":          "has a query or fragment",
		" ":                                "--server is empty",
		"":                                 "--server is empty",
		"ftp://127.0.0.1":                  "not an http or https URL",
		"http://127.0.0.1:8080?token=abc":  "has a query or fragment",
		"http://me:hunter2@127.0.0.1:1/#x": "me:xxxxx@",
	} {
		root := newRootCmd()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs([]string{"search", "disk", "--server", server, "--token", "t"})
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("--server %q: err = %v, want one containing %q and no password", server, err, want)
		}
	}
}

// TestLookupFileStopsOnCancel checks that khub lookup --file - gives up
// its read when the command is stopped, as by Ctrl-C, and that it refuses
// a named pipe, whose read could block for good.
func TestLookupFileStopsOnCancel(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	root.SetIn(pr)
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"lookup", "--file", "-", "--server", "http://127.0.0.1:1", "--token", "t"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "stopped while reading") {
			t.Errorf("lookup stopped while reading: err = %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("lookup --file - kept reading after its context ended")
	}

	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	root = newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"lookup", "--file", fifo, "--server", "http://127.0.0.1:1", "--token", "t"})
	if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("lookup --file FIFO: err = %v, want it refused", err)
	}
}

// TestSelfCommandUnderGoRun checks that hints name go run for a binary
// that go run built, as this test binary is built.
func TestSelfCommandUnderGoRun(t *testing.T) {
	exe, err := os.Executable()
	if err != nil || !strings.Contains(exe, "go-build") {
		t.Skipf("this test binary is not in a go-build directory: %s", exe)
	}
	if got := selfCommand(); got != "go run ./cmd/khub" {
		t.Errorf("selfCommand() = %q for %s, want go run ./cmd/khub", got, exe)
	}
}
