package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/khub-dev/khub/client"
)

// Lookup bounds the API enforces, checked here too so that a mistake is
// named by its flag.
const (
	maxLookupLimit      = 20
	maxLookupText       = 64 << 10
	maxLookupAttributes = 16
)

func newLookupCmd() *cobra.Command {
	var r remote
	var attrs []string
	var file string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "lookup [SUBJECT [DESCRIPTION...]]",
		Short: "Find the articles that fit a piece of work, such as a ticket",
		Long: `lookup sends what a tool knows about a piece of work, such as a new
ticket, to the hub and prints the articles that fit it best, each with the
reason: the words and attributes that matched. A deprecated article is
marked, with the article that replaces it.

The first argument is the subject and the others the description. With
--file the file holds the text, subject on the first line; --file - reads
standard input.`,
		Example: `  khub lookup "Pods keep restarting" "kubectl shows CrashLoopBackOff" --attr service=checkout
  khub lookup --attr product=kubernetes --attr severity=high --file ticket.txt
  printf 'Disk full on node-3\nThe root disk is full.' | khub lookup --file - --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("file") && file == "" {
				return errors.New("--file needs a path, or - to read standard input")
			}
			if file == "" && len(args) == 1 && args[0] == "-" {
				return errors.New(`"-" is taken as the subject: to read the text from standard input, use --file -`)
			}
			text, err := lookupText(cmd.Context(), cmd.InOrStdin(), file, args)
			if err != nil {
				return err
			}
			req := client.LookupRequest{Text: text, Limit: limit}
			if req.Attributes, err = keyValues("--attr", "service=checkout", attrs, true); err != nil {
				return err
			}
			if len(req.Attributes) > maxLookupAttributes {
				return fmt.Errorf("--attr gives %d attributes; the maximum is %d: keep the ones that identify the work, such as service and product", len(req.Attributes), maxLookupAttributes)
			}
			if strings.TrimSpace(text) == "" && len(req.Attributes) == 0 {
				return errors.New(`lookup needs the work's text, attributes or both, as in: khub lookup "Pods keep restarting" --attr service=checkout`)
			}
			if limit < 1 || limit > maxLookupLimit {
				return fmt.Errorf("--limit %d is invalid: give a number of hits from 1 to %d", limit, maxLookupLimit)
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			res, err := c.Lookup(cmd.Context(), req)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return printJSON(w, res)
			}
			printLookup(w, cmd.ErrOrStderr(), &res)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&attrs, "attr", nil, "an attribute of the work as KEY=VALUE, such as service=checkout or severity=high (repeatable)")
	cmd.Flags().StringVar(&file, "file", "", "read the text from this file, subject on the first line; - reads standard input")
	cmd.Flags().IntVar(&limit, "limit", 5, fmt.Sprintf("number of hits, 1 to %d", maxLookupLimit))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON result instead of text")
	r.addReadFlags(cmd)
	return cmd
}

// lookupText returns the text of a lookup: the file's, or the arguments
// with the first, the subject, on a line of its own.
func lookupText(ctx context.Context, stdin io.Reader, file string, args []string) (string, error) {
	if file == "" {
		return strings.Join(args, "\n"), nil
	}
	if len(args) > 0 {
		return "", fmt.Errorf("give the text either as arguments or with --file, not both: %q came with --file %s", args[0], file)
	}
	in := stdin
	if file != "-" {
		// A pipe or device could block the read for good.
		if fi, err := os.Stat(file); err == nil && !fi.Mode().IsRegular() {
			return "", fmt.Errorf("--file %s is not a regular file: give a text file, or - and pipe the text to standard input", file)
		}
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		in = f
	}
	b, err := readAll(ctx, in, maxLookupText+1)
	if err != nil {
		return "", fmt.Errorf("--file %s: %w", file, err)
	}
	switch {
	case len(b) > maxLookupText:
		return "", fmt.Errorf("--file %s is larger than %d KiB: send the subject and the start of the description", file, maxLookupText>>10)
	case len(bytes.TrimSpace(b)) == 0:
		return "", fmt.Errorf("--file %s is empty: give the ticket's subject on the first line and its description below", file)
	case bytes.IndexByte(b, 0) >= 0:
		return "", fmt.Errorf("--file %s contains NUL bytes, so it is not text: give a text file", file)
	case !utf8.Valid(b):
		return "", fmt.Errorf("--file %s is not UTF-8 text: convert it first, as with iconv -f latin1 -t utf-8", file)
	}
	return string(b), nil
}

// readAll reads at most limit bytes of r, or stops when ctx ends, as on
// Ctrl-C while standard input is a terminal: a read from it cannot be
// interrupted, so it is left behind in its goroutine.
func readAll(ctx context.Context, r io.Reader, limit int64) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(r, limit))
		done <- result{b, err}
	}()
	select {
	case res := <-done:
		return res.b, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("stopped while reading: %w", context.Cause(ctx))
	}
}

// keyValues reads the repeated flag's KEY=VALUE pairs into a map, or
// returns nil for none. example is a pair to show in errors; needValue
// rejects an empty value.
func keyValues(flag, example string, pairs []string, needValue bool) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(pairs))
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || needValue && strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("%s %q is invalid: use KEY=VALUE, such as %s %s", flag, kv, flag, example)
		}
		if prev, dup := out[k]; dup && prev != v {
			return nil, fmt.Errorf("%s gives key %q twice, as %q and %q: give each key once", flag, k, prev, v)
		}
		out[k] = v
	}
	return out, nil
}

// printLookup prints a lookup's hits, three lines each: the article, why
// it fits and its snippet. The searched words go to notes, standard
// error, so that standard output holds only hits.
func printLookup(w, notes io.Writer, res *client.LookupResult) {
	if len(res.Terms) > 0 {
		fmt.Fprintf(notes, "searched: %s\n", oneLine(strings.Join(res.Terms, ", ")))
	}
	if len(res.Hits) == 0 {
		fmt.Fprintln(w, "no matches")
		return
	}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.ID
	}
	width := idWidth(ids)
	for _, h := range res.Hits {
		var notes []string
		if h.Deprecated && h.ReplacedBy != "" {
			notes = append(notes, "use "+h.ReplacedBy)
		}
		if h.ReviewOverdue {
			notes = append(notes, "review overdue")
		}
		reason := h.Reason
		if h.Owner != "" {
			reason += "; owner " + h.Owner
		}
		fmt.Fprintf(w, "%-*s v%-3d %-10s %s%s\n    why: %s\n    %s\n",
			width, oneLine(h.ID), h.Version, oneLine(h.Class), oneLine(h.Title), statusNote(h.Status, notes...), oneLine(reason), oneLine(h.Snippet))
	}
}
