// go-redis's own log lines (connection pool retries, unknown replies)
// through the program's slog logger.

package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// SetClientLogger sends go-redis's log lines to l at debug level: the
// errors they describe reach the caller as returned errors, so by default
// (info) they are not printed twice, and with log.format json they stay
// JSON. go-redis has one logger per process; the last call wins.
func SetClientLogger(l *slog.Logger) {
	if l == nil {
		return
	}
	redis.SetLogger(clientLogger{l})
}

type clientLogger struct{ l *slog.Logger }

func (c clientLogger) Printf(ctx context.Context, format string, v ...any) {
	c.l.DebugContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}
