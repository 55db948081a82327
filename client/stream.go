package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// DefaultStreamIdleTimeout is how long Stream and a Syncer wait for an
// event or a heartbeat before they take the connection for dead. It is
// four heartbeats of a hub with the default 15s heartbeat.
const DefaultStreamIdleTimeout = 60 * time.Second

// maxStreamLine bounds one line of the stream, in bytes. An event's data
// is one JSON change of a few hundred bytes.
const maxStreamLine = 1 << 20

// ErrStreamClosed is the error that ends Stream when the server closes the
// stream, as it does when it shuts down or the integration is deleted.
var ErrStreamClosed = errors.New("khub: the server closed the stream")

// ResyncRequiredError reports that retention has removed change-log
// entries after the reader's cursor, so changes were lost to it: the
// reader must reload the articles in scope. Stream and Feed go on with the
// oldest kept entry after they yield it.
type ResyncRequiredError struct {
	// After is the cursor the reader had.
	After int64
	// Oldest is the oldest entry the log still keeps. Reading goes on with
	// it, that is after cursor Oldest-1.
	Oldest int64
}

func (e *ResyncRequiredError) Error() string {
	return fmt.Sprintf("khub: change-log entries %d to %d were removed by retention before they were read: reload the articles in scope, then go on after cursor %d",
		e.After+1, e.Oldest-1, e.Oldest-1)
}

// Stream returns an iterator over the changes in the token's scope after a
// cursor, as the hub commits them, from the server-sent events of
// GET /v1/stream. It keeps one connection open, and the hub sends a
// heartbeat on it every 15s, so a connection that stays silent for
// DefaultStreamIdleTimeout counts as dead. The stream moves the
// integration's pull cursor as it sends changes, as the change feed does.
//
// The iterator yields each change once, in cursor order, and runs until
// ctx ends, the caller stops ranging or the connection ends. Once the
// connection is open, it ends with a *StreamEndError, which wraps
// ErrStreamClosed when the server closes the stream, the context's error,
// or the network's. To resume, call Stream again with its Resume cursor,
// or with the cursor of the last change received, so nothing in between
// is missed.
// The one error that does not end it is a *ResyncRequiredError, which it
// yields when retention has removed entries after the cursor. The
// iteration then goes on with the oldest kept entry, and the caller should
// reload the articles in scope before it applies further changes.
//
// An iterator fits Go's range statement and stops the connection when the
// loop breaks, which a callback API would need a second mechanism for.
func (c *Client) Stream(ctx context.Context, after int64) iter.Seq2[Change, error] {
	return func(yield func(Change, error) bool) {
		r, err := c.openStream(ctx, after, DefaultStreamIdleTimeout)
		if err != nil {
			yield(Change{}, err)
			return
		}
		defer r.close()
		resume := after
		for {
			ev, err := r.next()
			if err != nil {
				yield(Change{}, &StreamEndError{Resume: resume, Err: err})
				return
			}
			switch {
			case ev.heartbeat:
				// The id of a heartbeat is the cursor up to which every
				// change in scope was sent.
				if id, err := strconv.ParseInt(ev.id, 10, 64); err == nil && id > resume {
					resume = id
				}
			case ev.name == "change":
				ch, err := ev.change()
				if err != nil {
					yield(Change{}, &StreamEndError{Resume: resume, Err: err})
					return
				}
				resume = ch.Cursor
				if !yield(ch, nil) {
					return
				}
			case ev.name == "resync-required":
				rr, err := ev.resync()
				if err != nil {
					yield(Change{}, &StreamEndError{Resume: resume, Err: err})
					return
				}
				resume = rr.Oldest - 1
				if !yield(Change{}, rr) {
					return
				}
			}
		}
	}
}

// StreamEndError ends the iteration of Stream once its connection was
// open. Err is the cause. Resume is the cursor to pass to the next call of
// Stream: the last change received or, when later, the id of the last
// heartbeat, up to which the hub had sent every change in scope. So a
// client resumes past the changes of other scopes, which retention may
// remove meanwhile.
type StreamEndError struct {
	Resume int64
	Err    error
}

func (e *StreamEndError) Error() string { return e.Err.Error() }

func (e *StreamEndError) Unwrap() error { return e.Err }

// streamEvent is one server-sent event. A heartbeat is a block of comment
// lines without data, whose id, when it has one, is the cursor up to which
// the hub has sent every change in scope.
type streamEvent struct {
	name      string
	id        string
	data      []byte
	heartbeat bool
}

func (ev *streamEvent) change() (Change, error) {
	var ch Change
	if err := json.Unmarshal(ev.data, &ch); err != nil {
		return ch, fmt.Errorf("khub: decode the change event with id %q: %w", ev.id, err)
	}
	return ch, nil
}

func (ev *streamEvent) resync() (*ResyncRequiredError, error) {
	var body struct {
		OldestCursor int64 `json:"oldest_cursor"`
		After        int64 `json:"after"`
	}
	if err := json.Unmarshal(ev.data, &body); err != nil {
		return nil, fmt.Errorf("khub: decode the resync-required event: %w", err)
	}
	return &ResyncRequiredError{After: body.After, Oldest: body.OldestCursor}, nil
}

// streamReader reads the events of one GET /v1/stream response.
type streamReader struct {
	body     io.ReadCloser
	br       *bufio.Reader
	ctx      context.Context
	cancel   context.CancelCauseFunc
	watchdog *time.Timer
	idle     time.Duration
}

// errStreamIdle is the cause with which the watchdog cancels a stream that
// stayed silent.
var errStreamIdle = errors.New("khub: the stream sent no event or heartbeat within the idle timeout")

// openStream starts GET /v1/stream after a cursor. The stream is cut off
// when no line arrives for idle.
func (c *Client) openStream(ctx context.Context, after int64, idle time.Duration) (*streamReader, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	watchdog := time.AfterFunc(idle, func() { cancel(errStreamIdle) })
	fail := func(err error) (*streamReader, error) {
		watchdog.Stop()
		cancel(nil)
		return nil, err
	}
	path := "/v1/stream?after=" + strconv.FormatInt(after, 10)
	if c.reportsCursor {
		path += "&record=false"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return fail(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	// The client's Timeout bounds a whole request, body included, so the
	// stream uses a copy without it and relies on the watchdog.
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errStreamIdle) {
			err = fmt.Errorf("%w (%s)", cause, idle)
		}
		return fail(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return fail(decodeError(resp))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		return fail(fmt.Errorf("khub: GET /v1/stream responded with Content-Type %q, not text/event-stream: check that the server URL points at a khub hub and no proxy rewrites the stream", resp.Header.Get("Content-Type")))
	}
	watchdog.Reset(idle)
	return &streamReader{body: resp.Body, br: bufio.NewReader(resp.Body), ctx: ctx, cancel: cancel, watchdog: watchdog, idle: idle}, nil
}

func (r *streamReader) close() {
	r.watchdog.Stop()
	r.cancel(nil)
	r.body.Close()
}

// next returns the next event or heartbeat. It implements the parsing
// rules of server-sent events (WHATWG HTML, section 9.2.6) for lines that
// end in LF or CRLF, because the hub never ends a line with a lone CR.
func (r *streamReader) next() (streamEvent, error) {
	var ev streamEvent
	var data []byte
	hasData, comment := false, false
	for {
		line, err := r.readLine()
		if err != nil {
			return streamEvent{}, r.readError(err)
		}
		r.watchdog.Reset(r.idle)
		if len(line) == 0 {
			switch {
			case hasData:
				ev.data = data
				if ev.name == "" {
					ev.name = "message"
				}
				return ev, nil
			case comment:
				return streamEvent{heartbeat: true, id: ev.id}, nil
			}
			ev = streamEvent{}
			continue
		}
		if line[0] == ':' {
			comment = true
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.name = string(value)
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.id = string(value)
			}
		}
	}
}

// readLine returns one line without its line ending. The line is valid
// until the next read.
func (r *streamReader) readLine() ([]byte, error) {
	chunk, err := r.br.ReadSlice('\n')
	if err == nil {
		return trimLineEnd(chunk), nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	// ReadSlice reuses its buffer, so a line longer than the buffer is
	// copied as it is read.
	line := bytes.Clone(chunk)
	for {
		chunk, err = r.br.ReadSlice('\n')
		if len(line)+len(chunk) > maxStreamLine {
			return nil, fmt.Errorf("khub: a line of the stream is longer than %d bytes", maxStreamLine)
		}
		line = append(line, chunk...)
		if err == nil {
			return trimLineEnd(line), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

func trimLineEnd(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

// readError turns the error that ended a read into the error of the
// stream: ErrStreamClosed when the server ended it, the idle timeout when
// the watchdog cut it off, or the caller's context error.
func (r *streamReader) readError(err error) error {
	if cause := context.Cause(r.ctx); cause != nil {
		if errors.Is(cause, errStreamIdle) {
			return fmt.Errorf("%w (%s)", cause, r.idle)
		}
		return cause
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrStreamClosed
	}
	return err
}
