package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/khub-dev/khub/internal/store"
)

var _ store.ChangeListener = (*Store)(nil)

// changeChannel returns the notification channel of the schema whose
// changes table has the given OID. Channels are shared by the whole
// database and their names are limited to 63 bytes, as schema names are,
// so the name carries the table's OID, which is unique within the
// database, rather than "khub_changes_" and the schema name.
func changeChannel(changesOID uint32) string {
	return "khub_changes_" + strconv.FormatUint(uint64(changesOID), 10)
}

// closeTimeout bounds how long ListenChanges waits for the server while it
// closes its connection after ctx ended.
const closeTimeout = 5 * time.Second

// ListenChanges implements store.ChangeListener with LISTEN on the schema's
// channel, to which SaveArticle sends each new cursor. It does not stop when
// the Store is closed, so callers cancel ctx first.
//
// The listener takes a connection from the pool and hijacks it, so the pool
// never hands a connection that is still listening to other queries, which
// would collect notifications that no caller reads. Unlike a separate
// pgx.Connect, this reuses the pool's connection settings, including
// search_path. ListenChanges closes the connection when it returns.
func (s *Store) ListenChanges(ctx context.Context, fn func(cursor int64)) error {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: listen for changes: %w", err)
	}
	conn := pooled.Hijack()
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		conn.Close(closeCtx)
	}()

	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return s.listenError(ctx, err)
	}
	// LISTEN is in effect from here on, so a change either is in this head
	// cursor or arrives as a notification.
	var head int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(cursor), 0) FROM changes`).Scan(&head); err != nil {
		return s.listenError(ctx, err)
	}
	fn(head)

	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return s.listenError(ctx, err)
		}
		// Anyone may notify on the channel, so a payload that is not a
		// cursor is skipped rather than ending the listener.
		cursor, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil || cursor <= 0 {
			continue
		}
		fn(cursor)
	}
}

// listenError returns ctx's error once ctx has ended, because the driver
// error then only reports the cancellation. Otherwise it wraps err with the
// channel name.
func (s *Store) listenError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("postgres: listen for changes on channel %s: %w", s.channel, err)
}
